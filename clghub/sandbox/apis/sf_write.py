"""Writing Salesforce records: value checks, derived fields, the audit stamps.

Shared by the sObject row resource, sObject Collections and Bulk API 2.0
ingest, so every write path refuses the same values with the same
``statusCode`` and message Salesforce uses, and every write moves
``LastModifiedDate`` and ``SystemModstamp``.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from clghub.sandbox.apis.soql import NUMBER_TYPES, STRING_TYPES, field_map, normalize_id
from clghub.sandbox.schema import SF_ID_PREFIX, SF_OBJECTS, SfField
from clghub.sandbox.state import log_writes

__all__ = [
    "CSV_NULL",
    "INTEGRATION_USER_ID",
    "PreparedWrite",
    "WriteFailure",
    "apply",
    "checked_id",
    "create_record",
    "delete_record",
    "object_for_id",
    "prepare_create",
    "prepare_delete",
    "prepare_update",
    "update_record",
]

INTEGRATION_USER_ID = "005000000000000AAA"
"""The user the sandbox's API sessions act as (the default owner of new records)."""

CSV_NULL = "#N/A"
"""Bulk API CSV: an empty value leaves a field alone; this one clears it."""

_OBJECT_BY_PREFIX = {prefix: name for name, prefix in SF_ID_PREFIX.items()}
_DEFAULT_LENGTH = {"picklist": 255, "email": 80, "url": 255, "phone": 40, "string": 255}
_STORAGE_TIMESTAMP_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", re.ASCII
)
_CREATE_DEFAULTS: dict[str, dict[str, object]] = {
    "User": {"IsActive": 1},
    "Task": {"Status": "Not Started", "Priority": "Normal"},
}
_CLOSED_STAGES = {"Closed Won": (1, 1), "Closed Lost": (1, 0)}


@dataclass
class WriteFailure(Exception):
    """One record's failure: Salesforce's statusCode, message and fields."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def object_for_id(record_id: str) -> str | None:
    return _OBJECT_BY_PREFIX.get(record_id[:3])


def _value_error(field: SfField, raw: object) -> WriteFailure:
    return WriteFailure(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{field.label}: value not of required type: {raw}",
        (field.name,),
    )


def _max_length(field: SfField) -> int:
    return field.length or _DEFAULT_LENGTH.get(field.type, 0)


def _timestamp(raw: str) -> str | None:
    match = _STORAGE_TIMESTAMP_RE.fullmatch(raw.strip())
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    if ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}.{micros}{zone}").astimezone(UTC)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def coerce(field: SfField, raw: object, *, from_csv: bool = False) -> object:
    """The storage value for ``raw`` (JSON, or a CSV string), or a WriteFailure."""
    if raw is None:
        return None
    kind = field.type
    if kind in STRING_TYPES:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise _value_error(field, raw)
        text = raw if isinstance(raw, str) else str(raw)
        if kind in ("id", "reference"):
            normalized = normalize_id(text)
            if normalized is None:
                raise WriteFailure(
                    "MALFORMED_ID",
                    f"{field.label}: id value of incorrect type: {text}",
                    (field.name,),
                )
            return normalized
        limit = _max_length(field)
        if limit and len(text) > limit:
            raise WriteFailure(
                "STRING_TOO_LONG",
                f"{field.label}: data value too large: {text[:255]} (max length={limit})",
                (field.name,),
            )
        if kind == "picklist" and field.custom and field.picklist and text not in field.picklist:
            # Custom picklists are restricted to their values; standard ones are open.
            raise WriteFailure(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{field.label}: bad value for restricted picklist field: {text}",
                (field.name,),
            )
        return text
    if kind in NUMBER_TYPES:
        number: float
        if isinstance(raw, bool):
            raise _value_error(field, raw)
        if isinstance(raw, int | float):
            number = float(raw)
        elif isinstance(raw, str):
            try:
                number = float(raw.strip())
            except ValueError:
                raise _value_error(field, raw) from None
        else:
            raise _value_error(field, raw)
        if not math.isfinite(number):
            raise _value_error(field, raw)
        if kind == "int":
            if number != int(number):
                raise _value_error(field, raw)
            return int(number)
        return number
    if kind == "boolean":
        if isinstance(raw, bool):
            return 1 if raw else 0
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false") and from_csv:
            return 1 if raw.strip().lower() == "true" else 0
        raise _value_error(field, raw)
    if kind == "date":
        if isinstance(raw, str):
            text = raw.strip()[:10] if "T" in raw else raw.strip()
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                pass
        raise _value_error(field, raw)
    if kind == "datetime":
        stamp = _timestamp(raw) if isinstance(raw, str) else None
        if stamp is None:
            raise _value_error(field, raw)
        return stamp
    raise _value_error(field, raw)


def _resolve_fields(
    sobject: str, values: Mapping[str, object], *, creating: bool, from_csv: bool
) -> dict[str, object]:
    """Storage values by canonical field name; refuses unknown and read-only fields."""
    fields = field_map(sobject)
    resolved: dict[str, object] = {}
    read_only: list[str] = []
    for name, raw in values.items():
        if name in ("attributes",) or name.lower() == "id":
            continue
        field = fields.get(name.lower())
        if field is None:
            raise WriteFailure(
                "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}"
            )
        allowed = field.createable if creating else field.updateable
        if not allowed:
            read_only.append(field.name)
            continue
        if from_csv:
            if raw == "":
                continue
            if raw == CSV_NULL:
                raw = None
        value = coerce(field, raw, from_csv=from_csv)
        if value is None and not field.nillable:
            raise WriteFailure(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{field.name}]",
                (field.name,),
            )
        resolved[field.name] = value
    if read_only:
        raise WriteFailure(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(read_only)}. Please check the security "
            "settings of this field and verify that it is read/write for your profile or "
            "permission set.",
            tuple(read_only),
        )
    return resolved


def _check_references(db: sqlite3.Connection, sobject: str, values: Mapping[str, object]) -> None:
    fields = field_map(sobject)
    for name, value in values.items():
        field = fields[name.lower()]
        if field.type != "reference" or value is None:
            continue
        target = object_for_id(str(value))
        if target is None or target not in field.reference_to:
            raise WriteFailure(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{field.label}: id value of incorrect type: {value}",
                (field.name,),
            )
        if value == INTEGRATION_USER_ID:
            continue
        if db.execute(f'SELECT 1 FROM "sf_{target}" WHERE "Id" = ?', (value,)).fetchone() is None:
            raise WriteFailure(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (field.name,)
            )


def _derive(db: sqlite3.Connection, sobject: str, row: dict[str, object], now: str) -> None:
    """Fields Salesforce computes from others (formula-like system fields)."""
    if sobject in ("Contact", "User") and ("FirstName" in row or "LastName" in row):
        parts = [str(row.get(p) or "") for p in ("FirstName", "LastName")]
        row["Name"] = " ".join(p for p in parts if p) or None
    if sobject == "Opportunity" and "StageName" in row:
        closed, won = _CLOSED_STAGES.get(str(row["StageName"]), (0, 0))
        row["IsClosed"], row["IsWon"] = closed, won
    if sobject == "Case" and "Status" in row:
        closed = 1 if row["Status"] == "Closed" else 0
        if closed and not row.get("IsClosed"):
            row["ClosedDate"] = now
        elif not closed:
            row["ClosedDate"] = None
        row["IsClosed"] = closed
    if sobject == "Task" and "WhatId" in row:
        what = row["WhatId"]
        account: object = None
        if isinstance(what, str) and object_for_id(what) == "Account":
            account = what
        elif isinstance(what, str) and object_for_id(what) == "Opportunity":
            found = db.execute(
                'SELECT "AccountId" FROM "sf_Opportunity" WHERE "Id" = ?', (what,)
            ).fetchone()
            account = found[0] if found else None
        row["AccountId"] = account


def _load(db: sqlite3.Connection, sobject: str, record_id: str) -> dict[str, object]:
    row = db.execute(f'SELECT * FROM "sf_{sobject}" WHERE "Id" = ?', (record_id,)).fetchone()
    if row is None:
        raise WriteFailure("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
    record = {key: row[key] for key in row.keys()}  # noqa: SIM118 - sqlite3.Row has no items()
    if record.get("IsDeleted"):
        raise WriteFailure("ENTITY_IS_DELETED", "entity is deleted")
    if record.get("_locked"):
        raise WriteFailure(
            "UNABLE_TO_LOCK_ROW",
            f"unable to obtain exclusive access to this record or 1 records: {record_id}",
        )
    return record


def checked_id(sobject: str, raw: object) -> str:
    """The 18-character Id of a record of ``sobject``, or MALFORMED_ID."""
    normalized = normalize_id(raw) if isinstance(raw, str) else None
    if normalized is None or normalized[:3] != SF_ID_PREFIX[sobject]:
        raise WriteFailure(
            "MALFORMED_ID", f"{sobject} ID: id value of incorrect type: {raw}", ("Id",)
        )
    return normalized


@dataclass(frozen=True)
class PreparedWrite:
    """A checked write, ready to apply: every failure was raised while preparing.

    Checking every record before writing any is what makes all-or-none hold
    without relying on a rollback (the sandbox's scratch database runs
    without a journal).
    """

    sobject: str
    record_id: str | None
    """None for a record still to be created (its Id is taken when applied)."""
    columns: dict[str, object]


def prepare_update(
    db: sqlite3.Connection,
    sobject: str,
    record_id: str,
    values: Mapping[str, object],
    *,
    now: str,
    from_csv: bool = False,
) -> PreparedWrite:
    record_id = checked_id(sobject, record_id)
    # The request is checked against the field metadata before the record is touched.
    changes = _resolve_fields(sobject, values, creating=False, from_csv=from_csv)
    current = _load(db, sobject, record_id)
    _check_references(db, sobject, changes)
    merged = {**current, **changes}
    _derive(db, sobject, merged, now)
    columns = {
        name: merged[name]
        for name in merged
        if (name in changes or merged[name] != current.get(name)) and name in current
    }
    stamps = {"LastModifiedDate": now, "SystemModstamp": now}
    columns.update({k: v for k, v in stamps.items() if k in current})
    return PreparedWrite(sobject, record_id, columns)


def prepare_create(
    db: sqlite3.Connection,
    sobject: str,
    values: Mapping[str, object],
    *,
    now: str,
    from_csv: bool = False,
) -> PreparedWrite:
    given = _resolve_fields(sobject, values, creating=True, from_csv=from_csv)
    _check_references(db, sobject, given)
    names = {f.name for f in SF_OBJECTS[sobject]}
    row: dict[str, object] = {**_CREATE_DEFAULTS.get(sobject, {}), **given}
    if "OwnerId" in names:
        row.setdefault("OwnerId", INTEGRATION_USER_ID)
    for stamp in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
        if stamp in names:
            row[stamp] = now
    if "IsDeleted" in names:
        row["IsDeleted"] = 0
    _derive(db, sobject, row, now)
    for boolean in (f for f in SF_OBJECTS[sobject] if f.type == "boolean"):
        row.setdefault(boolean.name, 0)
    missing = [
        f.name
        for f in SF_OBJECTS[sobject]
        if not f.nillable and f.name != "Id" and row.get(f.name) is None
    ]
    if missing:
        raise WriteFailure(
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            tuple(missing),
        )
    return PreparedWrite(sobject, None, {k: v for k, v in row.items() if k in names})


def prepare_delete(
    db: sqlite3.Connection, sobject: str, record_id: str, *, now: str
) -> PreparedWrite:
    """Soft delete: the row stays for queryAll with IsDeleted = true."""
    record_id = checked_id(sobject, record_id)
    if not any(f.name == "IsDeleted" for f in SF_OBJECTS[sobject]):
        raise WriteFailure(
            "DELETE_FAILED", f"Records of type {sobject} cannot be deleted; deactivate them instead"
        )
    _load(db, sobject, record_id)
    return PreparedWrite(
        sobject, record_id, {"IsDeleted": 1, "LastModifiedDate": now, "SystemModstamp": now}
    )


def apply(db: sqlite3.Connection, write: PreparedWrite, new_id: Callable[[str], str]) -> str:
    """Write a prepared change; the record's Id (new for a create)."""
    if write.record_id is not None:
        assignments = ", ".join(f'"{name}" = ?' for name in write.columns)
        db.execute(
            f'UPDATE "sf_{write.sobject}" SET {assignments} WHERE "Id" = ?',
            (*write.columns.values(), write.record_id),
        )
        log_writes(db, "salesforce", write.sobject, write.record_id, write.columns)
        return write.record_id
    record_id = new_id(write.sobject)
    row = {**write.columns, "Id": record_id}
    column_list = ", ".join(f'"{c}"' for c in row)
    placeholders = ", ".join("?" for _ in row)
    db.execute(
        f'INSERT INTO "sf_{write.sobject}" ({column_list}) VALUES ({placeholders})',
        tuple(row.values()),
    )
    return record_id


def update_record(
    db: sqlite3.Connection,
    sobject: str,
    record_id: str,
    values: Mapping[str, object],
    *,
    now: str,
    from_csv: bool = False,
) -> str:
    prepared = prepare_update(db, sobject, record_id, values, now=now, from_csv=from_csv)
    return apply(db, prepared, _no_new_id)


def create_record(
    db: sqlite3.Connection,
    sobject: str,
    values: Mapping[str, object],
    *,
    now: str,
    new_id: Callable[[str], str],
    from_csv: bool = False,
) -> str:
    return apply(db, prepare_create(db, sobject, values, now=now, from_csv=from_csv), new_id)


def delete_record(db: sqlite3.Connection, sobject: str, record_id: str, *, now: str) -> str:
    return apply(db, prepare_delete(db, sobject, record_id, now=now), _no_new_id)


def _no_new_id(sobject: str) -> str:
    raise AssertionError(f"an update of {sobject} never needs a new Id")
