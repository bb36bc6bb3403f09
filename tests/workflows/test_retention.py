"""NRR, GRR, logo retention and the ARR bridge per period and cohort, hand-computed."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from clghub.config.models import ClghubConfig
from clghub.store.models import table_of
from clghub.store.revenue import ArrMovement, Retention
from clghub.workflows import arr, retention
from tests.workflows.ledger_builders import Book, ledger, retention_rows

D = Decimal
AS_OF = date(2024, 12, 20)


def _book(engine: Engine) -> dict[str, int]:
    with engine.begin() as connection:
        book = Book(connection)
        ann = book.person("Ann", email="ann@acme.test")
        # The same person in the other CRM: one cohort with the first.
        ann_in_hubspot = book.person("Ann", email="ann@acme.test", source="hubspot")
        bob = book.person("Bob", email="bob@acme.test")
        other_bob = book.person("Bob")
        ids = {
            "a1": book.account("A1", segment="smb", industry="Software", region="EU", owner=ann),
            "a2": book.account("A2", segment="enterprise", industry="Retail", owner=bob),
            "a3": book.account("A3", segment=None, owner=other_bob),
            "a4": book.account("A4", segment="smb"),
            "a5": book.account(
                "A5", segment="enterprise", industry="Software", owner=ann_in_hubspot
            ),
        }
        book.deal(ids["a1"], "1000", date(2023, 1, 1), date(2023, 12, 31))
        book.deal(ids["a1"], "1200", date(2024, 1, 1), type="renewal")
        book.deal(ids["a2"], "5000", date(2023, 6, 1), date(2024, 5, 31))
        book.deal(ids["a3"], "2000", date(2024, 3, 1))
        book.deal(ids["a4"], "800", date(2022, 1, 1), date(2022, 12, 31))
        book.deal(ids["a4"], "900", date(2024, 4, 1), type="new")
        book.deal(ids["a5"], "3000", date(2023, 1, 1), date(2023, 12, 31))
        book.deal(ids["a5"], "2500", date(2024, 1, 1), date(2024, 12, 31), type="renewal")
        book.deal(ids["a5"], "1000", date(2024, 7, 1), date(2024, 12, 31), type="expansion")
        ids.update(ann=ann, bob=bob, other_bob=other_bob)
    with engine.begin() as connection:
        arr.compute(connection, ClghubConfig(), AS_OF)
        retention.compute(connection, ClghubConfig(), AS_OF)
    return ids


def _bridge(row: Retention) -> tuple[Decimal, ...]:
    return (
        row.start_arr,
        row.new_arr,
        row.expansion_arr,
        row.contraction_arr,
        row.churn_arr,
        row.reactivation_arr,
        row.end_arr,
    )


def _logos(row: Retention) -> tuple[int, ...]:
    return (row.start_logos, row.new_logos, row.reactivated_logos, row.churned_logos, row.end_logos)


def test_trailing_twelve_months(engine: Engine) -> None:
    _book(engine)
    with engine.connect() as connection:
        ttm = retention_rows(connection, "ttm")[(date(2024, 1, 1), "all")]
    # Start (Dec 2023): A1 1000, A2 5000, A5 3000. End (Dec 2024): A1 1200, A3 2000
    # (new), A4 900 (back after 2022), A5 3500; A2 churned.
    assert _bridge(ttm) == (D(9000), D(2000), D(700), D(0), D(5000), D(900), D(7600))
    assert _logos(ttm) == (3, 1, 1, 1, 4)
    assert ttm.period_end == AS_OF  # the open period ends on as_of
    assert ttm.nrr == pytest.approx(4700 / 9000)
    assert ttm.grr == pytest.approx(4000 / 9000)
    assert ttm.logo_retention == pytest.approx(2 / 3)


def test_quarters_and_months(engine: Engine) -> None:
    _book(engine)
    with engine.connect() as connection:
        quarters = retention_rows(connection, "quarter")
        months = retention_rows(connection, "month")
    q1, q2, q3, q4 = (quarters[(date(2024, m, 1), "all")] for m in (1, 4, 7, 10))
    assert _bridge(q1) == (D(9000), D(2000), D(200), D(500), D(0), D(0), D(10700))
    assert (q1.nrr, q1.grr, q1.logo_retention) == pytest.approx((8700 / 9000, 8500 / 9000, 1.0))
    assert q1.period_end == date(2024, 3, 31)
    assert _bridge(q2) == (D(10700), D(0), D(0), D(0), D(5000), D(900), D(6600))
    assert (q2.nrr, q2.grr, q2.logo_retention) == pytest.approx((5700 / 10700, 5700 / 10700, 0.75))
    assert _bridge(q3) == (D(6600), D(0), D(1000), D(0), D(0), D(0), D(7600))
    assert _bridge(q4) == (D(7600), D(0), D(0), D(0), D(0), D(0), D(7600))
    assert q4.nrr == 1.0
    january = months[(date(2024, 1, 1), "all")]
    assert _bridge(january) == (D(9000), D(0), D(200), D(500), D(0), D(0), D(8700))
    # No ARR before 2022: that month's rates are empty.
    first = months[(date(2022, 1, 1), "all")]
    assert (first.new_arr, first.nrr, first.grr, first.logo_retention) == (D(800), None, None, None)


def test_cohorts(engine: Engine) -> None:
    _book(engine)
    period = date(2024, 1, 1)
    with engine.connect() as connection:
        rows = {
            dim: {
                value: row
                for (start, value), row in retention_rows(connection, "ttm", dim).items()
                if start == period
            }
            for dim in ("segment", "industry", "region", "acquisition_year", "owner")
        }
    segment = rows["segment"]
    # A3 has no segment: it takes segments.default (smb).
    assert _bridge(segment["smb"]) == (D(1000), D(2000), D(200), D(0), D(0), D(900), D(4100))
    assert segment["smb"].nrr == pytest.approx(1.2)
    assert _bridge(segment["enterprise"]) == (D(8000), D(0), D(500), D(0), D(5000), D(0), D(3500))
    assert (segment["enterprise"].grr, segment["enterprise"].logo_retention) == pytest.approx(
        (3000 / 8000, 0.5)
    )
    assert set(rows["industry"]) == {"Software", "Retail", "(none)"}
    assert rows["industry"]["Software"].end_arr == D(4700)
    assert set(rows["region"]) == {"EU", "(none)"}
    years = rows["acquisition_year"]
    assert years["2023"].nrr == pytest.approx(4700 / 9000)
    assert (years["2022"].reactivation_arr, years["2022"].nrr) == (D(900), None)
    assert years["2024"].new_arr == D(2000)
    owners = rows["owner"]
    # Two people named Bob stay apart, by email or else by CRM id (never by a
    # store id, which differs from store to store); an account without owner
    # is "(none)"; Ann in both CRMs is one cohort.
    assert set(owners) == {"Ann", "Bob (bob@acme.test)", "Bob (salesforce:005000004)", "(none)"}
    assert owners["Ann"].nrr == pytest.approx(4700 / 4000)


def test_bridge_identity_and_cohorts_add_up(engine: Engine) -> None:
    """On a random book: every row closes, every dimension adds up to "all",
    and the bridge equals the stored per-account movements."""
    rng = random.Random(20241220)
    with engine.begin() as connection:
        book = Book(connection)
        owners = [book.person(name) for name in ("Ann", "Bob", "Cy")]
        for n in range(40):
            account = book.account(
                f"C{n}",
                segment=rng.choice(["smb", "mid_market", "enterprise", None]),
                industry=rng.choice(["Software", "Retail", None]),
                region=rng.choice(["EU", "US", None]),
                owner=rng.choice([*owners, None]),
            )
            start = date(2021, 1, 1) + timedelta(days=rng.randrange(1200))
            for _ in range(rng.randrange(1, 5)):
                kind = rng.choice(["new", "renewal", "expansion", "contraction", None])
                length = rng.choice([180, 365, 730])
                value = str(rng.randrange(1, 50) * 500)
                if kind == "contraction":
                    value = "100"
                book.deal(account, value, start, start + timedelta(days=length), type=kind)
                start += timedelta(days=rng.randrange(30, 500))
    as_of = date(2024, 9, 17)
    config = ClghubConfig.model_validate({"reporting": {"fiscal_year_start_month": 4}})
    with engine.begin() as connection:
        arr.compute(connection, config, as_of)
        retention.compute(connection, config, as_of)
        table = table_of(Retention)
        rows = connection.execute(select(table)).all()
        stored = table_of(ArrMovement)
        movement_sums = {
            (kind, start, movement): total
            for kind, start, movement, total in connection.execute(
                select(
                    stored.c.period_kind,
                    stored.c.period_start,
                    stored.c.kind,
                    func.sum(stored.c.amount),
                ).group_by(stored.c.period_kind, stored.c.period_start, stored.c.kind)
            )
        }
    assert rows
    totals: dict[tuple[str, date, str], list[Decimal]] = defaultdict(lambda: [D(0)] * 7)
    for row in rows:
        start, new, expansion, contraction, churn, reactivation, end = _bridge(row)
        assert start + new + expansion + reactivation - contraction - churn == end, row
        assert (
            row.start_logos + row.new_logos + row.reactivated_logos - row.churned_logos
            == row.end_logos
        )
        if row.grr is not None:
            assert row.grr <= 1.0
        key = (row.period_kind, row.period_start, row.cohort_dim)
        totals[key] = [a + b for a, b in zip(totals[key], _bridge(row), strict=True)]
    for (kind, start, dim), summed in totals.items():
        assert summed == totals[(kind, start, "all")], (kind, start, dim)
        if kind != "ttm":
            names = ("new", "expansion", "contraction", "churn", "reactivation")
            expected = [movement_sums.get((kind, start, name), D(0)) for name in names]
            new, expansion, contraction, churn, reactivation = summed[1:6]
            assert [new, expansion, contraction, churn, reactivation] == expected

    # Every "all" row against a brute-force reading of the ledger, period by period.
    with engine.connect() as connection:
        by_account = ledger(connection)
    every = {(r.period_kind, r.period_start): r for r in rows if r.cohort_dim == "all"}
    for (kind, period_start), row in every.items():
        assert _bridge(row) == _brute_force(by_account, kind, period_start, as_of), (
            kind,
            period_start,
        )


def _index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _brute_force(
    by_account: dict[int, dict[date, Decimal]],
    kind: str,
    period_start: date,
    as_of: date,
) -> tuple[Decimal, ...]:
    """start, new, expansion, contraction, churn, reactivation, end of one period,
    comparing every account's ledger at the two month ends directly."""
    current = _index(as_of)
    first = _index(period_start)
    if kind == "month":
        start_point, end_point = first - 1, first
    elif kind == "quarter":
        start_point, end_point = first - 1, min(first + 2, current)
    else:
        start_point, end_point = first - 1, first + 11
    totals = dict.fromkeys(("start", "new", "exp", "con", "churn", "react", "end"), D(0))
    for months in by_account.values():
        values = {_index(m): v for m, v in months.items()}
        before, after = values.get(start_point, D(0)), values.get(end_point, D(0))
        totals["start"] += before
        totals["end"] += after
        if before == 0 and after > 0:
            seen_before = any(m <= start_point for m in values)
            totals["react" if seen_before else "new"] += after
        elif before > 0 and after == 0:
            totals["churn"] += before
        elif after > before:
            totals["exp"] += after - before
        else:
            totals["con"] += before - after
    return tuple(totals[k] for k in ("start", "new", "exp", "con", "churn", "react", "end"))
