"""The dialect functions and exact money scaling give one answer on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import BigInteger, Date, Engine, Float, Integer, literal, null, select

from clghub.store.sqlfuncs import (
    add_days,
    add_months,
    days_between,
    floor_int,
    greatest,
    least,
    month_index,
    month_start,
    round_half_up,
)
from clghub.workflows.exact import ratio, scale_units
from clghub.workflows.periods import Period, last_closed_month, month_label, period_of


def _value(engine: Engine, expression: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(expression)).scalar_one()


def _day(value: date) -> Any:
    return literal(value, Date())


ADD_MONTHS = [
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2023, 1, 31), 1, date(2023, 2, 28)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2024, 3, 15), -3, date(2023, 12, 15)),
    (date(2024, 12, 31), 2, date(2025, 2, 28)),
    (date(2024, 5, 31), 13, date(2025, 6, 30)),
    (date(2024, 1, 1), 0, date(2024, 1, 1)),
]


def test_add_months_clamps_to_month_end(engine: Engine) -> None:
    for day, months, expected in ADD_MONTHS:
        assert _value(engine, add_months(_day(day), literal(months, Integer()))) == expected, day


def test_days_and_months(engine: Engine) -> None:
    assert _value(engine, add_days(_day(date(2024, 2, 28)), literal(2, Integer()))) == date(
        2024, 3, 1
    )
    assert _value(engine, add_days(_day(date(2024, 1, 1)), literal(-1, Integer()))) == date(
        2023, 12, 31
    )
    assert _value(engine, days_between(_day(date(2024, 1, 1)), _day(date(2025, 1, 1)))) == 366
    assert _value(engine, days_between(_day(date(2024, 3, 1)), _day(date(2024, 2, 1)))) == -29
    assert _value(engine, month_index(_day(date(2024, 1, 17)))) == 2024 * 12
    assert _value(engine, month_index(_day(date(2025, 12, 1)))) == 2025 * 12 + 11
    assert _value(engine, month_start(literal(2024 * 12 + 11, Integer()))) == date(2024, 12, 1)
    assert _value(engine, month_start(literal(2025 * 12, Integer()))) == date(2025, 1, 1)


def test_floor_and_half_up(engine: Engine) -> None:
    cases = [
        (2.5, 2, 3),
        (-2.5, -3, -2),
        (2.4999, 2, 2),
        (-0.5, -1, 0),
        (7.0, 7, 7),
        (-7.0, -7, -7),
    ]
    for value, floor, rounded in cases:
        number = literal(value, Float())
        assert _value(engine, floor_int(number)) == floor, value
        assert _value(engine, round_half_up(number)) == rounded, value


def test_greatest_and_least_are_null_with_a_null(engine: Engine) -> None:
    one, two = literal(1, Integer()), literal(2, Integer())
    assert _value(engine, greatest(one, two)) == 2
    assert _value(engine, least(one, two)) == 1
    assert _value(engine, greatest(one, null())) is None
    assert _value(engine, least(null(), two)) is None
    with pytest.raises(TypeError):
        greatest(one)


SCALINGS = [
    (10_000_000, Fraction(27, 25), 10_800_000),  # 1,000.00 EUR at 1.08
    (5, Fraction(1, 2), 3),  # 2.5 units rounds half up
    (3, Fraction(1, 2), 2),
    (7, Fraction(1, 20), 0),  # 0.35
    (10, Fraction(1, 20), 1),  # 0.5
    (123_456_789_012_345, Fraction(9173, 1_000_000), 1_132_469_125_610),
    (0, Fraction(4, 5), 0),
    (999, Fraction(3), 2997),
]


def test_scale_units_is_exact(engine: Engine) -> None:
    for units, factor, expected in SCALINGS:
        exact = units * factor
        assert expected == int(exact) + (1 if exact - int(exact) >= Fraction(1, 2) else 0)
        assert _value(engine, scale_units(literal(units, BigInteger()), factor)) == expected


def test_ratio_reads_the_decimal_written() -> None:
    assert ratio(0.8, what="x") == Fraction(4, 5)
    assert ratio(Decimal("1.08"), what="x") == Fraction(27, 25)
    with pytest.raises(ValueError, match="too many digits"):
        ratio(Decimal("1.0823456789012345678"), what="reporting.fx_rates.EUR")


def test_fiscal_periods() -> None:
    # Fiscal year from February: FY2027 runs February 2026 to January 2027.
    q1 = period_of("quarter", 2026 * 12 + 1, 2)
    assert (q1.start, q1.end, q1.label) == (date(2026, 2, 1), date(2026, 4, 30), "FY2027-Q1")
    january = period_of("quarter", 2027 * 12, 2)
    assert (january.label, january.start) == ("FY2027-Q4", date(2026, 11, 1))
    assert period_of("year", 2026 * 12 + 1, 2).label == "FY2027"
    calendar = period_of("quarter", 2026 * 12 + 7, 1)
    assert (calendar.label, calendar.start, calendar.end) == (
        "2026-Q3",
        date(2026, 7, 1),
        date(2026, 9, 30),
    )
    assert Period("month", 2026 * 12 + 1, 1).label == "2026-02"
    assert month_label(2026 * 12) == "2026-01"
    assert last_closed_month(date(2026, 3, 31)) == 2026 * 12 + 2
    assert last_closed_month(date(2026, 3, 30)) == 2026 * 12 + 1
