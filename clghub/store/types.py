"""Column types that keep money exact and time zones honest on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["MONEY_SCALE", "Money", "UTCDateTime", "money_units", "to_utc"]

# Money is stored as an integer number of ten-thousandths of a currency unit.
# Integers are exact on SQLite (which has no decimal type; its NUMERIC is a
# float) and on PostgreSQL, and SUM/GROUP BY give the same answer on both.
# Four places cover every ISO 4217 currency (at most three minor digits).
MONEY_SCALE = 10_000
_QUANT = Decimal(1) / MONEY_SCALE


def money_units(value: Decimal | int | str) -> int:
    """Decimal -> stored integer units (rounded half-even at the fourth place)."""
    amount = value if isinstance(value, Decimal) else Decimal(value)
    return int((amount * MONEY_SCALE).to_integral_value(rounding=ROUND_HALF_EVEN))


class Money(TypeDecorator[Decimal]):
    """An exact amount of money: ``Decimal`` in Python, integer units in SQL.

    The currency lives in a sibling column; this type holds only the amount.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be a Decimal, never a float")
        return money_units(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # SUM() over a BIGINT comes back as Decimal on PostgreSQL.
        return (Decimal(value) / MONEY_SCALE).quantize(_QUANT)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


def to_utc(value: datetime) -> datetime:
    """A timezone-aware datetime in UTC; naive input is refused, not guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``. SQLite has no time zones, so the value
    is stored as naive UTC text in a fixed format (which sorts correctly) and
    comes back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        utc = to_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime
