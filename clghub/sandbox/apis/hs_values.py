"""HubSpot property values: checking what clients write, rendering what they read.

On the wire every property value is a string (or null): numbers as
``"1200"`` / ``"0.5"``, datetimes as ``2024-05-01T12:00:00.000Z``, dates as
``2024-05-01``, booleans as ``"true"``/``"false"``. Writes accept the same,
plus epoch milliseconds for dates and datetimes, as HubSpot does; an empty
string clears a value. Records are rendered to JSON by SQLite (one statement
per page) from expressions built here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import orjson

from clghub.sandbox.apis.hs_catalog import ObjectCatalog, PropertyDef
from clghub.sandbox.apis.hs_http import PORTAL_ID, HubSpotError
from clghub.sandbox.apis.sf_wire import MAX_PAIRS, json_object_sql

__all__ = [
    "PropertyProblem",
    "coerce",
    "invalid_properties_error",
    "parse_datetime",
    "record_json_sql",
    "storage_values",
    "value_sql",
]

_OWNER_PROPERTIES = ("hubspot_owner_id", "csm_owner_id")
_ISO_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?", re.ASCII
)


@dataclass(frozen=True)
class PropertyProblem:
    """One invalid property of a write, as HubSpot lists it."""

    name: str
    error: str
    message: str

    def to_json(self) -> dict[str, object]:
        return {
            "isValid": False,
            "message": self.message,
            "error": self.error,
            "name": self.name,
            "localizedErrorMessage": self.message,
            "portalId": PORTAL_ID,
        }


def invalid_properties_error(problems: Sequence[PropertyProblem]) -> HubSpotError:
    listing = orjson.dumps([p.to_json() for p in problems]).decode()
    return HubSpotError(
        400,
        "VALIDATION_ERROR",
        f"Property values were not valid: {listing}",
        errors=[
            {"message": p.message, "code": p.error, "context": {"propertyName": [p.name]}}
            for p in problems
        ],
    )


def parse_datetime(text: str) -> datetime | None:
    """Epoch milliseconds or ISO 8601 (a bare date means midnight UTC)."""
    text = text.strip()
    if re.fullmatch(r"-?\d{1,15}", text):
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    match = _ISO_RE.fullmatch(text)
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    clock = clock or "00:00:00"
    if clock.count(":") == 1:
        clock += ":00"
    zone = "+00:00" if zone in (None, "Z") else zone
    if ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    try:
        return datetime.fromisoformat(f"{day}T{clock}.{micros}{zone}").astimezone(UTC)
    except ValueError:
        return None


def _storage_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def coerce(prop: PropertyDef, raw: object) -> object:
    """The storage value of ``raw`` for ``prop``; raises PropertyProblem-carrying ValueError."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, int | float | str):
        text = str(raw)
    else:
        raise _Invalid(prop.name, "INVALID_TYPE", f"{raw!r} is not a valid property value.")
    if text == "":
        return None
    kind = prop.type
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _Invalid(prop.name, "INVALID_FLOAT", f"{text} was not a valid number.")
        return number
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise _Invalid(prop.name, "INVALID_BOOLEAN", f"{text} was not a valid boolean.")
        return 1 if lowered == "true" else 0
    if kind == "datetime":
        moment = parse_datetime(text)
        if moment is None:
            raise _Invalid(prop.name, "INVALID_DATETIME", f"{text} was not a valid datetime.")
        return _storage_timestamp(moment)
    if kind == "date":
        return _date_value(prop, text)
    if kind == "enumeration":
        if prop.name in _OWNER_PROPERTIES:
            if not text.isdigit():
                raise _Invalid(
                    prop.name, "INVALID_INTEGER", f"{text} was not a valid integer (for owner ID)."
                )
            return text
        allowed = [value for value, _ in prop.options]
        if allowed:
            chosen = text.split(";") if prop.field_type == "checkbox" else [text]
            for value in chosen:
                if value not in allowed:
                    labels = ", ".join(label for _, label in prop.options)
                    raise _Invalid(
                        prop.name,
                        "INVALID_OPTION",
                        f"{value} was not one of the allowed options: [{labels}]",
                    )
        return text
    return text


def _date_value(prop: PropertyDef, text: str) -> str:
    stripped = text.strip()
    if re.fullmatch(r"-?\d{1,15}", stripped):
        moment = datetime.fromtimestamp(int(stripped) / 1000, tz=UTC)
        if (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
            raise _Invalid(
                prop.name,
                "INVALID_DATE",
                f"{text} is not a valid date: date values must be midnight UTC.",
            )
        return moment.date().isoformat()
    try:
        return date.fromisoformat(stripped[:10]).isoformat()
    except ValueError:
        raise _Invalid(prop.name, "INVALID_DATE", f"{text} was not a valid date.") from None


class _Invalid(ValueError):
    def __init__(self, name: str, error: str, message: str) -> None:
        super().__init__(message)
        self.problem = PropertyProblem(name, error, message)


def storage_values(
    catalog: ObjectCatalog, properties: object, *, allow_read_only: bool = False
) -> dict[str, object]:
    """Checked storage values for a write's ``properties``, or VALIDATION_ERROR listing every problem."""
    if not isinstance(properties, dict):
        raise HubSpotError(
            400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object"
        )
    values: dict[str, object] = {}
    problems: list[PropertyProblem] = []
    for name, raw in properties.items():
        prop = catalog.properties.get(str(name))
        if prop is None:
            message = f'Property "{name}" does not exist'
            problems.append(PropertyProblem(str(name), "PROPERTY_DOESNT_EXIST", message))
            continue
        if prop.read_only and not allow_read_only:
            message = f'"{name}" is a read only property; its value cannot be set.'
            problems.append(PropertyProblem(prop.name, "READ_ONLY_VALUE", message))
            continue
        try:
            values[prop.name] = coerce(prop, raw)
        except _Invalid as invalid:
            problems.append(invalid.problem)
    if problems:
        raise invalid_properties_error(problems)
    return values


def value_sql(prop: PropertyDef, table: str = "") -> str:
    """An expression giving the property's wire string (NULL when unset)."""
    prefix = f"{table}." if table else ""
    if prop.name == "hs_object_id":
        return f"CAST({prefix}id AS TEXT)"
    column = f'{prefix}"{prop.name}"'
    if prop.type == "number":
        # Whole numbers without a ".0", as HubSpot writes them; NULL stays NULL.
        return (
            f"(CASE WHEN {column} = CAST({column} AS INTEGER) "
            f"THEN CAST(CAST({column} AS INTEGER) AS TEXT) ELSE CAST({column} AS TEXT) END)"
        )
    if prop.type == "bool":
        return (
            f"(CASE WHEN {column} IS NULL THEN NULL WHEN {column} IN (1, '1', 'true') "
            "THEN 'true' ELSE 'false' END)"
        )
    # Text-affinity columns: SQLite stored every value as text already.
    return column


def record_json_sql(
    catalog: ObjectCatalog,
    properties: Sequence[str],
    *,
    archived_at: bool = False,
    table: str = "",
) -> str:
    """An expression giving one record's JSON (without associations)."""
    prefix = f"{table}." if table else ""
    values = json_object_sql(
        [(name, value_sql(catalog.properties[name], table)) for name in properties]
    )
    if len(properties) > MAX_PAIRS:
        # Joined from several json_object() calls: plain text until json() marks it JSON.
        values = f"json({values})"
    pairs = [
        ("id", f"CAST({prefix}id AS TEXT)"),
        ("properties", values),
        ("createdAt", f"{prefix}created_at"),
        ("updatedAt", f"{prefix}updated_at"),
        ("archived", f"CASE WHEN {prefix}archived THEN json('true') ELSE json('false') END"),
    ]
    if archived_at:
        pairs.append(("archivedAt", f"{prefix}archived_at"))
    return json_object_sql(pairs)
