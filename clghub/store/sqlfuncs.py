"""SQL functions that SQLite and PostgreSQL spell differently, with one meaning.

Each construct compiles per dialect and gives the same answer on both, so a
workflow written once in SQLAlchemy Core computes identical figures on a
laptop's SQLite file and on a PostgreSQL server.

Months are handled as integer *month indexes* (``year * 12 + month - 1``):
month arithmetic becomes integer arithmetic, identical everywhere, and
:class:`month_start` turns an index back into a date. SQLite stores dates as
``YYYY-MM-DD`` text, which the SQLite forms below rely on.

Arguments must be non-negative where noted; integer division (``//`` on
integer expressions) truncates toward zero on both backends, which equals
floor division only for non-negative operands.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = [
    "add_days",
    "add_months",
    "days_between",
    "floor_int",
    "greatest",
    "least",
    "month_index",
    "month_start",
    "round_half_up",
]


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(arg, **kw) for arg in element.clauses]


# --------------------------------------------------------------------------- months


class month_index(FunctionElement[int]):
    """``year * 12 + month - 1`` of a date: consecutive months differ by one."""

    type = Integer()
    inherit_cache = True
    name = "month_index"


@compiles(month_index, "sqlite")
def _month_index_sqlite(element: month_index, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = _args(element, compiler, **kw)
    return f"(CAST(substr({day}, 1, 4) AS INTEGER) * 12 + CAST(substr({day}, 6, 2) AS INTEGER) - 1)"


@compiles(month_index, "postgresql")
def _month_index_pg(element: month_index, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = _args(element, compiler, **kw)
    return (
        f"(CAST(EXTRACT(YEAR FROM {day}) AS INTEGER) * 12"
        f" + CAST(EXTRACT(MONTH FROM {day}) AS INTEGER) - 1)"
    )


class month_start(FunctionElement[Any]):
    """The first day of a month index (a non-negative integer)."""

    type = Date()
    inherit_cache = True
    name = "month_start"


def _month_start_sqlite_sql(index: str) -> str:
    return f"printf('%04d-%02d-01', ({index}) / 12, ({index}) % 12 + 1)"


@compiles(month_start, "sqlite")
def _month_start_sqlite(element: month_start, compiler: SQLCompiler, **kw: Any) -> str:
    (index,) = _args(element, compiler, **kw)
    return _month_start_sqlite_sql(index)


@compiles(month_start, "postgresql")
def _month_start_pg(element: month_start, compiler: SQLCompiler, **kw: Any) -> str:
    (index,) = _args(element, compiler, **kw)
    # mod(), not %: the psycopg driver reads a bare % as a placeholder.
    return f"make_date(CAST(({index}) / 12 AS INTEGER), CAST(mod({index}, 12) + 1 AS INTEGER), 1)"


class add_months(FunctionElement[Any]):
    """A date plus a whole number of months, clamped to the end of a shorter month.

    2024-01-31 plus one month is 2024-02-29, as in PostgreSQL; SQLite's own
    ``date(d, '+1 month')`` would overflow into March, so it is not used.
    """

    type = Date()
    inherit_cache = True
    name = "add_months"


@compiles(add_months, "sqlite")
def _add_months_sqlite(element: add_months, compiler: SQLCompiler, **kw: Any) -> str:
    day, months = _args(element, compiler, **kw)
    target = f"(CAST(substr({day}, 1, 4) AS INTEGER) * 12 + CAST(substr({day}, 6, 2) AS INTEGER) - 1 + ({months}))"
    first = _month_start_sqlite_sql(target)
    following = _month_start_sqlite_sql(f"{target} + 1")
    days_in_month = f"CAST(julianday({following}) - julianday({first}) AS INTEGER)"
    day_of_month = f"CAST(substr({day}, 9, 2) AS INTEGER)"
    return f"date(julianday({first}) + min({day_of_month}, {days_in_month}) - 1)"


@compiles(add_months, "postgresql")
def _add_months_pg(element: add_months, compiler: SQLCompiler, **kw: Any) -> str:
    day, months = _args(element, compiler, **kw)
    return f"CAST({day} + make_interval(months => CAST({months} AS INTEGER)) AS DATE)"


# --------------------------------------------------------------------------- days


class add_days(FunctionElement[Any]):
    """A date plus a (possibly negative) whole number of days."""

    type = Date()
    inherit_cache = True
    name = "add_days"


@compiles(add_days, "sqlite")
def _add_days_sqlite(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    day, days = _args(element, compiler, **kw)
    return f"date(julianday({day}) + ({days}))"


@compiles(add_days, "postgresql")
def _add_days_pg(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    day, days = _args(element, compiler, **kw)
    return f"CAST({day} + CAST({days} AS INTEGER) AS DATE)"


class days_between(FunctionElement[int]):
    """``end - start`` in whole days (negative when end is earlier)."""

    type = Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"CAST(julianday({end}) - julianday({start}) AS INTEGER)"


@compiles(days_between, "postgresql")
def _days_between_pg(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"({end} - {start})"


# --------------------------------------------------------------------------- numbers


class floor_int(FunctionElement[int]):
    """The largest integer not above a number, as a 64-bit integer.

    PostgreSQL's ``CAST(double AS bigint)`` rounds and SQLite's truncates, so
    neither cast is used on its own.
    """

    type = BigInteger()
    inherit_cache = True
    name = "floor_int"


@compiles(floor_int, "sqlite")
def _floor_int_sqlite(element: floor_int, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"(CAST({value} AS INTEGER) - (CAST({value} AS INTEGER) > ({value})))"


@compiles(floor_int, "postgresql")
def _floor_int_pg(element: floor_int, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"CAST(floor({value}) AS BIGINT)"


class round_half_up(FunctionElement[int]):
    """A number rounded to the nearest integer, halves upward (``floor(x + 0.5)``).

    ``round()`` is not used: PostgreSQL rounds double-precision halves to even,
    SQLite away from zero.
    """

    type = BigInteger()
    inherit_cache = True
    name = "round_half_up"


@compiles(round_half_up, "sqlite")
def _round_half_up_sqlite(element: round_half_up, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    shifted = f"(({value}) + 0.5)"
    return f"(CAST({shifted} AS INTEGER) - (CAST({shifted} AS INTEGER) > {shifted}))"


@compiles(round_half_up, "postgresql")
def _round_half_up_pg(element: round_half_up, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"CAST(floor(({value}) + 0.5) AS BIGINT)"


class greatest(FunctionElement[Any]):
    """The largest argument; NULL when any argument is NULL (on both backends).

    PostgreSQL's GREATEST skips NULLs while SQLite's multi-argument MAX
    returns NULL, so PostgreSQL is made to return NULL too.
    """

    inherit_cache = True
    name = "greatest"

    def __init__(self, *args: Any) -> None:
        if len(args) < 2:
            raise TypeError("needs at least two arguments")
        super().__init__(*args)
        self.type = self.clauses.clauses[0].type


class least(FunctionElement[Any]):
    """The smallest argument; NULL when any argument is NULL (on both backends)."""

    inherit_cache = True
    name = "least"

    def __init__(self, *args: Any) -> None:
        if len(args) < 2:
            raise TypeError("needs at least two arguments")
        super().__init__(*args)
        self.type = self.clauses.clauses[0].type


def _extreme_pg(function: str, args: list[str]) -> str:
    any_null = " OR ".join(f"({arg}) IS NULL" for arg in args)
    return f"(CASE WHEN {any_null} THEN NULL ELSE {function}({', '.join(args)}) END)"


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({', '.join(_args(element, compiler, **kw))})"


@compiles(greatest, "postgresql")
def _greatest_pg(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return _extreme_pg("GREATEST", _args(element, compiler, **kw))


@compiles(least, "sqlite")
def _least_sqlite(element: least, compiler: SQLCompiler, **kw: Any) -> str:
    return f"min({', '.join(_args(element, compiler, **kw))})"


@compiles(least, "postgresql")
def _least_pg(element: least, compiler: SQLCompiler, **kw: Any) -> str:
    return _extreme_pg("LEAST", _args(element, compiler, **kw))


# --------------------------------------------------------------------------- value workflows
# Added for time_to_value, value_score and plays.

__all__ += ["date_text", "epoch_seconds", "json_object_agg", "round_half_away"]


class epoch_seconds(FunctionElement[int]):
    """A timestamp as whole seconds since 1970-01-01 UTC (fractions dropped).

    Differences of two of these, divided by 86,400, count whole days between
    instants the same way on both backends: sub-second parts cannot tip a
    day boundary differently.
    """

    type = BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = _args(element, compiler, **kw)
    return f"CAST(strftime('%s', {moment}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_seconds_pg(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = _args(element, compiler, **kw)
    return f"CAST(floor(EXTRACT(EPOCH FROM {moment})) AS BIGINT)"


class json_object_agg(FunctionElement[Any]):
    """Aggregate: one JSON object from the (key, value) pairs of a group."""

    type = JSON()
    inherit_cache = True
    name = "json_object_agg"


@compiles(json_object_agg, "sqlite")
def _json_object_agg_sqlite(element: json_object_agg, compiler: SQLCompiler, **kw: Any) -> str:
    key, value = _args(element, compiler, **kw)
    return f"json_group_object({key}, {value})"


@compiles(json_object_agg, "postgresql")
def _json_object_agg_pg(element: json_object_agg, compiler: SQLCompiler, **kw: Any) -> str:
    key, value = _args(element, compiler, **kw)
    return f"json_object_agg({key}, {value})"


class round_half_away(FunctionElement[int]):
    """A number rounded to the nearest integer, halves away from zero, as a 64-bit integer.

    SQLite's one-argument ``round()`` does exactly this in double precision
    (``trunc(|x| + 0.5)`` with the sign put back) and evaluates its argument
    once, which matters for long expressions; PostgreSQL spells it out.
    """

    type = BigInteger()
    inherit_cache = True
    name = "round_half_away"


@compiles(round_half_away, "sqlite")
def _round_half_away_sqlite(element: round_half_away, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"CAST(round({value}) AS INTEGER)"


@compiles(round_half_away, "postgresql")
def _round_half_away_pg(element: round_half_away, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return (
        f"CAST(CASE WHEN ({value}) < 0 THEN -trunc(-({value}) + 0.5)"
        f" ELSE trunc(({value}) + 0.5) END AS BIGINT)"
    )


class date_text(FunctionElement[str]):
    """A date as ``YYYY-MM-DD`` text, whatever PostgreSQL's ``DateStyle`` says."""

    type = String()
    inherit_cache = True
    name = "date_text"


@compiles(date_text, "sqlite")
def _date_text_sqlite(element: date_text, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = _args(element, compiler, **kw)
    return f"date({day})"


@compiles(date_text, "postgresql")
def _date_text_pg(element: date_text, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = _args(element, compiler, **kw)
    return f"to_char({day}, 'YYYY-MM-DD')"
