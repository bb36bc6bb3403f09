"""Numbers rounded, and written as words, inside SQL: the same result on both backends.

Rounding is to the nearest at the wanted decimal, halves away from zero, on
the double-precision value both backends compute identically; text is built
from integers, because SQLite writes the float 7.0 as "7.0" and PostgreSQL
as "7".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Float, String, case, cast

from clghub.store.sqlfuncs import epoch_seconds, round_half_away

__all__ = [
    "days_text",
    "decimal_text",
    "integer_text",
    "rounded",
    "signed_text",
    "whole_days_between",
]

_SECONDS_PER_DAY = 86_400


def rounded(value: ColumnElement[Any], digits: int) -> ColumnElement[Any]:
    """``value`` rounded to ``digits`` decimals, as a float."""
    scale = 10.0**digits
    return cast(round_half_away(value * scale), Float) / scale


def integer_text(value: ColumnElement[Any]) -> ColumnElement[str]:
    """A number as whole-number text ("28", "-15")."""
    return cast(round_half_away(value), String)


def signed_text(value: ColumnElement[Any]) -> ColumnElement[str]:
    """A change with its sign ("+5", "-15")."""
    return case((round_half_away(value) > 0, "+"), else_="") + integer_text(value)


def decimal_text(value: ColumnElement[Any]) -> ColumnElement[str]:
    """A number with one decimal ("6.5", "7.0"), for values of at least zero."""
    tenths = round_half_away(value * 10.0)
    return cast(tenths // 10, String) + "." + cast(tenths % 10, String)


def days_text(value: ColumnElement[Any]) -> ColumnElement[str]:
    """A number of days in words ("1 day", "94 days")."""
    return integer_text(value) + case((round_half_away(value) == 1, " day"), else_=" days")


def whole_days_between(start: ColumnElement[Any], end: ColumnElement[Any]) -> ColumnElement[int]:
    """Whole days (rounded down) from the instant ``start`` to the instant ``end >= start``."""
    return (epoch_seconds(end) - epoch_seconds(start)) // _SECONDS_PER_DAY
