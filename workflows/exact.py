"""Exact money arithmetic inside SQL.

Money columns hold integer ten-thousandths (:class:`clghub.store.types.Money`).
The revenue workflows compute on those integers directly, so sums are exact
and both backends give the same answer. Multiplying by a configured rate
(an FX rate, the gross margin, the incentive rate, a team's share) uses the
rate's exact decimal value as a fraction and rounds once, half up.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast, func, literal, type_coerce

from clghub.config.models import exact_ratio_fits

__all__ = ["ratio", "scale_units", "sum_units", "units"]


def units(column: Any) -> ColumnElement[int]:
    """A Money column seen as its raw integer units.

    Arithmetic on the Money type itself would bind literals through it
    (``arr * 2`` would multiply by 20,000 units), so it is always done on units.
    """
    return type_coerce(column, BigInteger())


def sum_units(amount: ColumnElement[Any]) -> ColumnElement[int]:
    """``SUM`` of integer units, as a 64-bit integer on every backend.

    PostgreSQL's ``SUM(bigint)`` is ``numeric``, on which ``/`` no longer
    truncates: a sum that feeds :func:`scale_units` must come through here.
    """
    return cast(func.sum(amount), BigInteger())


def ratio(value: Decimal | float | int, *, what: str) -> Fraction:
    """The exact fraction a configured decimal stands for (0.8 -> 4/5).

    Floats come from TOML and are read back through their shortest decimal
    form, which is what the person wrote.
    """
    decimal = value if isinstance(value, Decimal) else Decimal(str(value))
    if not exact_ratio_fits(decimal):
        raise ValueError(f"{what} = {value} has too many digits to compute money exactly")
    return Fraction(decimal)


def scale_units(amount: ColumnElement[Any], factor: Fraction) -> ColumnElement[int]:
    """``amount x factor`` rounded half up to a whole unit, for ``amount >= 0``.

    ``amount`` must be an integer expression (a column of units, or
    :func:`sum_units`).

    Splitting ``amount`` by the denominator keeps every intermediate product
    within 64 bits: ``q = amount // den``, ``r = amount % den``, and
    ``amount x num / den = q x num + r x num / den``.
    """
    if factor < 0:
        raise ValueError("scale factors are never negative")
    if factor.denominator == 1:
        return amount * literal(factor.numerator, BigInteger())
    numerator = literal(factor.numerator, BigInteger())
    denominator = literal(factor.denominator, BigInteger())
    quotient = amount // denominator
    remainder = amount % denominator
    return quotient * numerator + (remainder * numerator * 2 + denominator) // (denominator * 2)
