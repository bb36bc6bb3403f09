"""The value fields clghub writes, and their canonical text forms.

Every value is compared in one canonical text form, whatever a CRM makes of
it on the wire: a number with a fixed number of decimals (``71.3``), a UTC
timestamp to the second (``2026-11-22T08:00:00Z``), text with ``\\n`` line
ends. The same forms are kept in ``writeback_state``, and what a CRM reads
back is brought to them too, so formatting never looks like a change and
nothing is sent again because a CRM wrote ``71.30`` or ``+0000``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from clghub.config.models import VALUE_FIELDS

__all__ = [
    "BANDS",
    "VALUE_SPECS",
    "ValueKind",
    "ValueSpec",
    "canonical",
    "canonical_from_crm",
    "crm_number",
    "parse_crm_datetime",
    "truncate_text",
]

ValueKind = Literal["number", "text", "choice", "datetime"]

BANDS: tuple[str, ...] = ("green", "yellow", "red")
# Marks text cut to fit a CRM field.
_ELLIPSIS = "…"


@dataclass(frozen=True)
class ValueSpec:
    """One value clghub can write: its kind, precision, and how to create its field."""

    name: str
    kind: ValueKind
    label: str
    description: str
    places: int = 0
    """Decimals of the canonical form (numbers only)."""
    stamp: bool = False
    """Travels with the record's other changes but never makes a change on its own:
    a new computation time alone is not worth a write."""
    choices: tuple[str, ...] = ()
    salesforce_type: str = ""
    """How to create the Salesforce custom field (Setup > Object Manager > Account > Fields)."""


VALUE_SPECS: Mapping[str, ValueSpec] = {
    spec.name: spec
    for spec in (
        ValueSpec(
            "value_score",
            "number",
            "Value Score",
            "clghub value score (0-100): outcomes, adoption depth, breadth, time to value, executive engagement, support friction, sentiment",
            places=1,
            salesforce_type="Number(4, 1)",
        ),
        ValueSpec(
            "value_band",
            "choice",
            "Value Band",
            "clghub value band: green, yellow or red",
            choices=BANDS,
            salesforce_type="Picklist (values: green, yellow, red)",
        ),
        ValueSpec(
            "value_trend_30d",
            "number",
            "Value Trend (30 days)",
            "Change of the clghub value score over 30 days, in points",
            places=1,
            salesforce_type="Number(4, 1)",
        ),
        ValueSpec(
            "value_trend_90d",
            "number",
            "Value Trend (90 days)",
            "Change of the clghub value score over 90 days, in points",
            places=1,
            salesforce_type="Number(4, 1)",
        ),
        ValueSpec(
            "value_drivers",
            "text",
            "Value Drivers",
            "What moves the clghub value score most, in words",
            salesforce_type="Long Text Area(32768)",
        ),
        ValueSpec(
            "clv",
            "number",
            "Customer Lifetime Value",
            "Customer lifetime value (shifted-beta-geometric model), reporting currency",
            places=2,
            salesforce_type="Currency(16, 2)",
        ),
        ValueSpec(
            "clv_growth",
            "number",
            "CLV Growth (%)",
            "Growth of the customer lifetime value since the previous computation, in percent",
            places=1,
            salesforce_type="Percent(5, 1)",
        ),
        ValueSpec(
            "time_to_first_value_days",
            "number",
            "Time to First Value (days)",
            "Days from contract start to the first day of real value",
            places=0,
            salesforce_type="Number(5, 0)",
        ),
        ValueSpec(
            "computed_at",
            "datetime",
            "Value Computed At",
            "When clghub computed these values",
            stamp=True,
            salesforce_type="Date/Time",
        ),
    )
}

if tuple(VALUE_SPECS) != VALUE_FIELDS:  # pragma: no cover - a developer's mistake
    raise RuntimeError("VALUE_SPECS and config VALUE_FIELDS disagree")


def _number(value: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    if rounded.is_zero():
        rounded = abs(rounded)  # never "-0.0"
    return f"{rounded:.{places}f}"


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def canonical(spec: ValueSpec, value: object) -> str | None:
    """The canonical text of a value clghub computed (``None`` stays empty)."""
    if value is None:
        return None
    if spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise TypeError(f"{spec.name}: expected a number, got {type(value).__name__}")
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            return None
        return _number(number, spec.places)
    if spec.kind == "datetime":
        if not isinstance(value, datetime):
            raise TypeError(f"{spec.name}: expected a datetime, got {type(value).__name__}")
        return _timestamp(value)
    text = _text(str(value))
    return text or None


def canonical_from_crm(spec: ValueSpec, raw: object) -> str | None:
    """A value as a CRM returned it, in canonical text (for comparing with what was sent).

    CRMs answer numbers as JSON numbers or strings, timestamps as ISO text
    (``+0000``, ``Z``, with or without milliseconds) or epoch milliseconds,
    and empty values as null or "". Unreadable values give a text that
    matches nothing clghub sends, so they count as different.
    """
    if raw is None or raw == "":
        return None
    if spec.kind == "number":
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            return f"unreadable:{raw}"
        return _number(number, spec.places) if number.is_finite() else f"unreadable:{raw}"
    if spec.kind == "datetime":
        moment = parse_crm_datetime(raw)
        return _timestamp(moment) if moment is not None else f"unreadable:{raw}"
    return _text(str(raw)) or None


def parse_crm_datetime(raw: object) -> datetime | None:
    """ISO 8601 text (``Z``, ``+0000`` or ``+00:00``), a date, or epoch milliseconds."""
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day, tzinfo=UTC)
    text = str(raw).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]  # +0000 -> +00:00
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def truncate_text(text: str | None, limit: int | None) -> str | None:
    """Cut text to a CRM field's length (marked with an ellipsis)."""
    if text is None or not limit or len(text) <= limit:
        return text
    return text[: max(0, limit - len(_ELLIPSIS))].rstrip() + _ELLIPSIS


def crm_number(text: str) -> int | float:
    """A canonical number as a JSON number (integers stay integers)."""
    number = Decimal(text)
    if number == number.to_integral_value() and "." not in text:
        return int(number)
    return float(number)
