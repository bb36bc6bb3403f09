"""Shared CLV-based incentives: credits, contraction, clawbacks, the split, and traceability."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from clghub.config.models import ClghubConfig
from clghub.export import export_rows
from clghub.store.models import table_of, utcnow
from clghub.store.revenue import ClvModel, Incentive, IncentiveDetail
from clghub.workflows import arr, clv, incentives
from clghub.workflows.sbg import SbgFit
from tests.workflows.ledger_builders import Book, config_with

AS_OF = date(2025, 3, 20)  # 2025-Q1 is open; 2024-Q4 is the one closed period reported
MODEL = SbgFit.from_parameters(1.0, 3.0)


def _config(**incentive_settings: Any) -> ClghubConfig:
    settings = {"history_periods": 1, "clawback_months": 9, "rate": 0.05} | incentive_settings
    return config_with(incentives=settings)


def _clv_units(arr_value: int, renewals: int, config: ClghubConfig) -> int:
    """The documented CLV formula, in money units (ten-thousandths)."""
    discount = clv.period_discount(config)
    margin = math.floor(arr_value * 10_000 * Fraction(4, 5) + Fraction(1, 2))
    return margin + math.floor(margin * (MODEL.derl(discount, renewals) / (1 + discount)) + 0.5)


def _half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def _scaled(units: int, factor: Fraction) -> int:
    sign = 1 if units >= 0 else -1
    return sign * _half_up(abs(units) * factor)


def _build(engine: Engine, config: ClghubConfig) -> dict[str, int]:
    with engine.begin() as connection:
        book = Book(connection)
        sam = book.person("Sam", team="sales")
        cat = book.person("Cat", team="cs")
        people = {"owner": sam, "csm": cat}
        ids = {
            "n": book.account("N"),
            "g": book.account("G", lead_source="web", **people),
            "c": book.account("C", lead_source="event", **people),
            "k": book.account("K", lead_source="web", **people),
            "l": book.account("L", **people),
            "x": book.account("X", lead_source="web", owner=sam),
        }
        book.deal(ids["n"], "12000", date(2024, 11, 1))
        for year in (2023, 2024, 2025):
            book.deal(
                ids["g"], "10000", date(year, 1, 1), type="new" if year == 2023 else "renewal"
            )
        book.deal(ids["g"], "5000", date(2025, 2, 1), date(2025, 12, 31), type="expansion")
        book.deal(ids["c"], "20000", date(2024, 6, 1))
        book.deal(ids["c"], "5000", date(2025, 1, 15), type="contraction")
        book.deal(ids["k"], "8000", date(2024, 4, 1), date(2025, 1, 31))
        book.deal(ids["l"], "6000", date(2023, 1, 1))
        book.deal(ids["l"], "6000", date(2024, 1, 1), type="renewal")
        book.deal(ids["x"], "4000", date(2024, 4, 1), date(2024, 7, 31))
        book.deal(ids["x"], "5000", date(2024, 11, 1), date(2025, 1, 31), type="new")
        ids.update(sam=sam, cat=cat)
        now = utcnow()
        connection.execute(
            insert(table_of(ClvModel)),
            [
                {"as_of": AS_OF, "segment": s, "alpha": 1.0, "beta": 3.0, "computed_at": now}
                for s in ("all", "smb", "mid_market", "enterprise")
            ],
        )
    with engine.begin() as connection:
        arr.compute(connection, config, AS_OF)
    return ids


def _expected_pool(ids: dict[str, int], config: ClghubConfig) -> dict[tuple[str, int, str], int]:
    """{(period, account, kind): pool delta in units}, derived by hand.

    CLV arguments are (ARR, renewals at the valuation day)."""
    rate = Fraction(1, 20)
    value = _clv_units
    pool = {
        # 2024-Q4: N is a new logo; X is back (churned in Q3) from zero.
        ("2024-Q4", ids["n"], "new_logo"): _scaled(value(12000, 0, config), rate),
        ("2024-Q4", ids["x"], "clv_growth"): _scaled(value(5000, 0, config), rate),
        # 2025-Q1: G renewed (1 -> 2 renewals) and expanded to 15,000.
        ("2025-Q1", ids["g"], "clv_growth"): _scaled(
            value(15000, 2, config) - value(10000, 1, config), rate
        ),
        # K churned in February 2025, 8 months after its new-logo credit (2024-Q2).
        ("2025-Q1", ids["k"], "clawback"): _scaled(-value(8000, 0, config), rate),
        # X gives back only what was credited since its previous churn (2024-Q4);
        # its 2024-Q2 credit was clawed back when it churned in 2024-Q3.
        ("2025-Q1", ids["x"], "clawback"): _scaled(-value(5000, 0, config), rate),
        # L churned in January 2025, 10 months after its last credit (2024-Q1): none.
    }
    if config.incentives.contraction_nets:
        pool[("2025-Q1", ids["c"], "contraction")] = _scaled(
            value(15000, 0, config) - value(20000, 0, config), rate
        )
    return pool


def _split(pool_delta: int) -> dict[str, int]:
    marketing = _scaled(pool_delta, Fraction(1, 5))
    sales = _scaled(pool_delta, Fraction(1, 2))
    return {"marketing": marketing, "sales": sales, "cs": pool_delta - marketing - sales}


def _units(value: Decimal) -> int:
    return int(value * 10_000)


@pytest.mark.parametrize("nets", [True, False])
def test_pool_credits_contraction_and_clawbacks(engine: Engine, nets: bool) -> None:
    config = _config(contraction_nets=nets)
    ids = _build(engine, config)
    with engine.begin() as connection:
        counts = incentives.compute(connection, config, AS_OF)
        details = connection.execute(select(table_of(IncentiveDetail))).all()
        totals = connection.execute(select(table_of(Incentive))).all()
    expected = _expected_pool(ids, config)
    found = {(d.period, d.account_id, d.kind): _units(d.pool_delta) for d in details}
    assert found == expected
    owners = {
        "marketing": {ids["g"]: "web", ids["c"]: "event", ids["k"]: "web", ids["x"]: "web"},
        "sales": {a: str(ids["sam"]) for a in (ids["g"], ids["c"], ids["k"], ids["x"])},
        "cs": {a: str(ids["cat"]) for a in (ids["g"], ids["c"], ids["k"])},
    }
    expected_detail = set()
    for (period, account, kind), pool_delta in expected.items():
        for team, amount in _split(pool_delta).items():
            person = owners[team].get(account, "(unassigned)")
            expected_detail.add((period, account, kind, team, person, amount))
    assert {
        (d.period, d.account_id, d.kind, d.team, d.person_key, _units(d.amount)) for d in details
    } == expected_detail

    pools = {t.period: _units(t.amount) for t in totals if t.team == "pool"}
    assert pools == {
        period: sum(v for (p, _, _), v in expected.items() if p == period)
        for period in ("2024-Q4", "2025-Q1")
    }
    assert counts["pool_current"] == pools["2025-Q1"] / 10_000
    # Every figure adds up: people to their team, teams to the pool.
    team_rows = {(t.period, t.team): t for t in totals if t.person_key == "(team)"}
    people_sums: dict[tuple[str, str], int] = defaultdict(int)
    for t in totals:
        if t.team != "pool" and t.person_key != "(team)":
            people_sums[(t.period, t.team)] += _units(t.amount)
    assert {key: _units(row.amount) for key, row in team_rows.items()} == dict(people_sums)
    for period, pool in pools.items():
        assert sum(_units(r.amount) for (p, _), r in team_rows.items() if p == period) == pool
    names = {(t.team, t.person_key): t.person_name for t in totals}
    assert names[("sales", str(ids["sam"]))] == "Sam"
    assert names[("cs", "(unassigned)")] is None
    assert names[("marketing", "web")] == "web"
    q1_accounts = {t.team: t.accounts for t in totals if t.period == "2025-Q1"}
    assert q1_accounts["pool"] == (4 if nets else 3)


def test_rerun_replaces_only_the_reported_periods(engine: Engine) -> None:
    config = _config()
    _build(engine, config)
    table = table_of(Incentive)
    with engine.begin() as connection:
        # A period closed before the reported ones keeps what it was paid on.
        connection.execute(
            insert(table),
            [
                {
                    "period": "2024-Q3",
                    "period_start": date(2024, 7, 1),
                    "period_end": date(2024, 9, 30),
                    "team": "pool",
                    "person_key": "(pool)",
                    "amount": Decimal("123.4500"),
                    "accounts": 1,
                    "computed_at": utcnow(),
                }
            ],
        )
        first = incentives.compute(connection, config, AS_OF)
    columns = [c for c in table.c if c.name not in ("id", "computed_at")]
    detail = table_of(IncentiveDetail)
    detail_columns = [c for c in detail.c if c.name not in ("id", "computed_at")]
    with engine.connect() as connection:
        before = sorted(connection.execute(select(*columns)).all())
        before_detail = sorted(connection.execute(select(*detail_columns)).all())
    with engine.begin() as connection:
        second = incentives.compute(connection, config, AS_OF)
    with engine.connect() as connection:
        after = sorted(connection.execute(select(*columns)).all())
        after_detail = sorted(connection.execute(select(*detail_columns)).all())
    assert before == after
    assert before_detail == after_detail
    assert first == second
    kept = [row for row in after if row.period == "2024-Q3"]
    assert [(r.team, r.amount) for r in kept] == [("pool", Decimal("123.4500"))]


def test_a_later_run_keeps_the_periods_it_no_longer_reports(engine: Engine) -> None:
    config = _config()
    _build(engine, config)
    later = date(2025, 6, 20)  # reports 2025-Q1 and 2025-Q2; 2024-Q4 is history now
    with engine.begin() as connection:
        incentives.compute(connection, config, AS_OF)
        connection.execute(
            insert(table_of(ClvModel)),
            [
                {"as_of": later, "segment": s, "alpha": 1.0, "beta": 3.0, "computed_at": utcnow()}
                for s in ("all", "smb", "mid_market", "enterprise")
            ],
        )
        arr.compute(connection, config, later)
    table = table_of(Incentive)
    columns = [c for c in table.c if c.name not in ("id", "computed_at")]
    with engine.connect() as connection:
        before = sorted(connection.execute(select(*columns).where(table.c.period == "2024-Q4")))
    with engine.begin() as connection:
        counts = incentives.compute(connection, config, later)
    with engine.connect() as connection:
        after = sorted(connection.execute(select(*columns).where(table.c.period == "2024-Q4")))
        periods = set(connection.execute(select(table.c.period)).scalars())
    assert before == after
    assert before
    assert periods == {"2024-Q4", "2025-Q1", "2025-Q2"}
    assert counts["periods"] == 2


def test_export_gives_the_accounts_behind_every_figure(engine: Engine) -> None:
    config = _config()
    ids = _build(engine, config)
    with engine.begin() as connection:
        incentives.compute(connection, config, AS_OF)
    with engine.connect() as connection:
        columns, rows = export_rows(connection, "incentives", {"detail": True, "config": config})
        detail = list(rows)
        totals_columns, totals = export_rows(connection, "incentives", {"detail": False})
        summary = list(totals)
    assert {"account_id", "kind", "clv_start", "clv_end", "clv_delta", "pool_delta"} <= set(columns)
    assert {row["account_id"] for row in detail} == {
        ids[name] for name in ("n", "g", "c", "k", "x")
    }
    assert "person_name" in totals_columns
    assert {row["team"] for row in summary} == {"pool", "marketing", "sales", "cs"}
    growth = next(row for row in detail if row["account_id"] == ids["g"])
    assert growth["clv_delta"] == growth["clv_end"] - growth["clv_start"]
    assert growth["note"] == "CLV on 2025-03-20 minus CLV on 2024-12-31"


def test_nothing_without_models(engine: Engine) -> None:
    with engine.begin() as connection:
        assert incentives.compute(connection, _config(), AS_OF) == {"periods": 0, "detail_rows": 0}
