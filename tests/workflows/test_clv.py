"""CLV from the ledger: renewal cohorts, fits per segment, values per account, growth."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy import Engine, select

from clghub.config.models import ClghubConfig
from clghub.errors import ClghubError
from clghub.store.models import table_of
from clghub.store.revenue import Clv, ClvModel
from clghub.workflows import arr, clv
from clghub.workflows.sbg import SbgFit, fit_sbg_counts
from tests.workflows.ledger_builders import Book, config_with

AS_OF = date(2025, 3, 15)  # last closed month: February 2025
CONFIG = config_with(clv={"min_cohort_accounts": 5})


def _yearly(book: Book, account: int, arr_value: str, first: date, years: int) -> None:
    for n in range(years):
        start = first.replace(year=first.year + n)
        book.deal(account, arr_value, start, type="new" if n == 0 else "renewal")


def _build(engine: Engine) -> dict[str, int]:
    with engine.begin() as connection:
        book = Book(connection)
        ids = {
            name: book.account(name.upper(), segment="enterprise" if name == "d" else "smb")
            for name in "abcdefgh"
        }
        _yearly(book, ids["a"], "12000", date(2021, 1, 1), 5)  # renewed 4 times, active
        _yearly(book, ids["b"], "1000", date(2021, 1, 1), 1)  # churned after period 1
        _yearly(book, ids["c"], "1000", date(2021, 1, 1), 2)  # churned after period 2
        _yearly(book, ids["d"], "24000", date(2023, 6, 1), 2)  # renewed once, active
        _yearly(book, ids["e"], "1000", date(2023, 6, 1), 1)  # churned after period 1
        _yearly(book, ids["f"], "6000", date(2024, 9, 1), 1)  # not a full period yet
        _yearly(book, ids["g"], "1000", date(2022, 3, 1), 1)  # churned after period 1 ...
        book.deal(ids["g"], "10000", date(2024, 5, 1), type="new")  # ... and came back
        book.deal(ids["h"], "1000", date(2023, 3, 1))
        # Ends in the open month: not a full period of its second term.
        book.deal(ids["h"], "1000", date(2024, 3, 1), date(2025, 3, 10), type="renewal")
    return ids


def _run(engine: Engine, as_of: date, config: ClghubConfig = CONFIG) -> dict[str, int | float]:
    with engine.begin() as connection:
        arr.compute(connection, config, as_of)
        return clv.compute(connection, config, as_of)


def _expected_clv(arr_value: str, model: SbgFit, renewals: int) -> tuple[Decimal, Decimal, float]:
    """(margin, CLV, DERL) as the documented formula gives them, in exact money."""
    discount = clv.period_discount(CONFIG)
    margin_exact = int(Decimal(arr_value) * 10_000) * Fraction(4, 5)
    margin_units = math.floor(margin_exact + Fraction(1, 2))
    derl = model.derl(discount, renewals)
    clv_units = margin_units + math.floor(margin_units * (derl / (1 + discount)) + 0.5)
    return Decimal(margin_units) / 10_000, Decimal(clv_units) / 10_000, derl


# Hand-derived renewal histories as of 2025-03-15 (first unbroken run of ARR):
# a: observed 4 periods, alive; b, e, g: churned in period 1; c: churned in period 2;
# d, h: observed 1 period, alive; f: acquired 2024-09, no full period yet.
ALL = fit_sbg_counts({1: 3, 2: 1}, {4: 1, 1: 2})
SMB = fit_sbg_counts({1: 3, 2: 1}, {4: 1, 1: 1})


def test_models_per_segment(engine: Engine) -> None:
    _build(engine)
    counts = _run(engine, AS_OF)
    table = table_of(ClvModel)
    with engine.connect() as connection:
        rows = {r.segment: r for r in connection.execute(select(table))}
    assert set(rows) == {"all", "smb", "mid_market", "enterprise"}
    assert (rows["all"].alpha, rows["all"].beta) == (ALL.alpha, ALL.beta)
    assert (rows["all"].accounts, rows["all"].cohorts) == (7, 3)  # 2021, 2022, 2023
    assert rows["all"].log_likelihood == pytest.approx(ALL.log_likelihood)
    assert (rows["smb"].alpha, rows["smb"].beta, rows["smb"].accounts) == (SMB.alpha, SMB.beta, 6)
    assert rows["smb"].borrowed_from is None
    for segment, customers in (("enterprise", 1), ("mid_market", 0)):
        row = rows[segment]
        assert (row.alpha, row.beta, row.borrowed_from) == (ALL.alpha, ALL.beta, "all")
        assert row.accounts == customers
        assert "fewer than clv.min_cohort_accounts = 5" in row.diagnostics["borrowed"]
    survival = rows["all"].diagnostics["survival"]
    assert [point["observed"] for point in survival] == pytest.approx(
        [4 / 7, 2 / 7, 2 / 7, 2 / 7], abs=1e-6
    )
    assert rows["all"].diagnostics["converged"] is True
    assert counts["models"] == 4
    assert counts["models_borrowed"] == 2


def test_clv_per_account(engine: Engine) -> None:
    ids = _build(engine)
    counts = _run(engine, AS_OF)
    table = table_of(Clv)
    with engine.connect() as connection:
        rows = {r.account_id: r for r in connection.execute(select(table))}
    # Active on as_of: a (4 renewals), d (1, enterprise: the overall fit),
    # f (0) and g (back since 2024-05: a new run, 0 renewals). h ended 2025-03-10.
    expected = {
        "a": ("12000", SMB, 4, "smb"),
        "d": ("24000", ALL, 1, "all"),
        "f": ("6000", SMB, 0, "smb"),
        "g": ("10000", SMB, 0, "smb"),
    }
    assert set(rows) == {ids[name] for name in expected}
    for name, (arr_value, model, renewals, model_segment) in expected.items():
        row = rows[ids[name]]
        margin, value, derl = _expected_clv(arr_value, model, renewals)
        assert (row.arr, row.margin, row.renewals) == (Decimal(arr_value), margin, renewals)
        assert row.derl == derl
        assert row.clv == value, name
        assert row.model_segment == model_segment
        assert (row.clv_previous, row.clv_growth, row.clv_growth_pct) == (None, None, None)
    assert counts["clv_rows"] == 4
    # A just-acquired customer's CLV is Fader & Hardie's E(CLV) = m x DEL.
    f_row = rows[ids["f"]]
    discounted_lifetime = sum(SMB.survival(t) / 1.1**t for t in range(3000))
    assert float(f_row.clv) == pytest.approx(float(f_row.margin) * discounted_lifetime, rel=1e-9)


def test_growth_against_the_previous_snapshot(engine: Engine) -> None:
    ids = _build(engine)
    _run(engine, date(2024, 12, 31))
    _run(engine, AS_OF)
    table = table_of(Clv)
    with engine.connect() as connection:
        earlier = {
            r.account_id: r.clv
            for r in connection.execute(select(table).where(table.c.as_of == date(2024, 12, 31)))
        }
        now = {
            r.account_id: r for r in connection.execute(select(table).where(table.c.as_of == AS_OF))
        }
    a = now[ids["a"]]
    assert a.clv_previous == earlier[ids["a"]]
    assert a.clv_growth == a.clv - earlier[ids["a"]]
    assert a.clv_growth_pct == pytest.approx(float(a.clv_growth / earlier[ids["a"]]))
    # h had CLV on 2024-12-31 and no ARR now: a zero row shows the loss.
    h = now[ids["h"]]
    assert (h.arr, h.clv, h.clv_previous, h.clv_growth) == (
        Decimal(0),
        Decimal(0),
        earlier[ids["h"]],
        -earlier[ids["h"]],
    )
    assert (h.segment, h.model_segment, h.clv_growth_pct) == ("smb", None, -1.0)


def test_rerun_gives_the_same_rows(engine: Engine) -> None:
    _build(engine)
    first = _run(engine, AS_OF)
    table = table_of(Clv)
    columns = [c for c in table.c if c.name != "computed_at"]
    with engine.connect() as connection:
        before = sorted(connection.execute(select(*columns)).all())
    second = _run(engine, AS_OF)
    with engine.connect() as connection:
        after = sorted(connection.execute(select(*columns)).all())
        models = connection.execute(select(table_of(ClvModel).c.segment)).scalars().all()
    assert before == after
    assert first == second
    assert sorted(models) == ["all", "enterprise", "mid_market", "smb"]


def test_ledger_of_another_day_is_refused(engine: Engine) -> None:
    _build(engine)
    with engine.begin() as connection:
        arr.compute(connection, CONFIG, AS_OF)
    with engine.begin() as connection, pytest.raises(ClghubError, match="run the ARR workflow"):
        clv.compute(connection, CONFIG, date(2024, 6, 30))


def test_no_full_period_yet_means_no_clv(engine: Engine) -> None:
    with engine.begin() as connection:
        book = Book(connection)
        book.deal(book.account("Young"), "1000", date(2025, 1, 1))
    counts = _run(engine, AS_OF)
    assert counts == {"models": 0, "clv_rows": 0}
    with engine.connect() as connection:
        assert connection.execute(select(table_of(Clv))).all() == []
