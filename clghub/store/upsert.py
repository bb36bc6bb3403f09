"""Bulk upsert: one ``INSERT ... ON CONFLICT DO UPDATE`` per batch, both dialects.

Unchanged rows are left alone (the ``DO UPDATE`` has a ``WHERE`` that compares
every column), so ``updated_at`` and ``row_version`` move only when data did,
and the counts say what really happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Table, Text, cast, text
from sqlalchemy.exc import StatementError

from clghub.store.models import utcnow

__all__ = ["UpsertCounts", "dedupe_by_key", "upsert"]

_BOOKKEEPING = ("id", "created_at", "updated_at", "row_version")


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    """Rows dropped because a later row in the same batch had the same key."""

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        return self

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def dedupe_by_key(
    rows: Iterable[dict[str, Any]], key: Sequence[str]
) -> tuple[list[dict[str, Any]], int]:
    """Keep the last row for each key (a page may repeat a record); count the rest."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    total = 0
    for row in rows:
        total += 1
        seen[tuple([row[k] for k in key])] = row
    return list(seen.values()), total - len(seen)


def upsert(
    connection: Connection,
    table: Table,
    rows: Iterable[dict[str, Any]],
    *,
    key: Sequence[str],
    compare: Sequence[str] | None = None,
    now: datetime | None = None,
) -> UpsertCounts:
    """Insert new rows, update changed ones, leave the rest untouched.

    ``compare`` lists the columns whose change counts as an update (default:
    every column the rows carry except the key). Rows must all carry the
    same columns; they are completed in place with the bookkeeping columns.
    Runs inside the caller's transaction.
    """
    batch, duplicates = dedupe_by_key(rows, key)
    counts = UpsertCounts(duplicates=duplicates)
    if not batch:
        return counts
    columns = list(batch[0])
    compared = (
        list(compare)
        if compare is not None
        else [c for c in columns if c not in key and c not in _BOOKKEEPING]
    )
    stamp = now or utcnow()
    tracked = "updated_at" in table.c and "row_version" in table.c
    if tracked:
        for row in batch:
            row["updated_at"] = stamp
            row.setdefault("created_at", stamp)
            row["row_version"] = 1
        columns = list(batch[0])

    _fill_defaults(table, batch)
    if connection.dialect.name == "postgresql":
        returned = _upsert_unnest(connection, table, batch, key, compared, tracked)
    else:
        returned = _upsert_values(connection, table, batch, key, compared, tracked)
    if tracked:
        inserted = sum(1 for v in returned if v == 1)
        counts.inserted += inserted
        counts.updated += len(returned) - inserted
    else:
        counts.updated += len(returned)
    counts.unchanged += len(batch) - len(returned)
    return counts


# SQLite allows 32,766 bound parameters in one statement.
_SQLITE_MAX_PARAMS = 32_000
_SQLITE_STATEMENTS: dict[tuple[Any, ...], str] = {}


def _upsert_values(
    connection: Connection,
    table: Table,
    batch: list[dict[str, Any]],
    key: Sequence[str],
    compared: Sequence[str],
    tracked: bool,
) -> list[Any]:
    """SQLite: multi-row VALUES statements, bind processing done column by column.

    Going through SQLAlchemy's executemany costs a dictionary and a round of
    type processors per row; for pages of thousands of rows that was most of
    a sync's time. The SQL text is cached per table and shape.
    """
    dialect = connection.dialect
    columns = list(batch[0])
    processors = [table.c[c].type.bind_processor(dialect) for c in columns]
    values = [[row[c] for row in batch] for c in columns]
    try:
        for index, process in enumerate(processors):
            if process is None:
                continue
            column = values[index]
            first = column[0]
            if all(v is first for v in column):
                # A constant column (the batch's timestamps): process it once.
                values[index] = [process(first)] * len(column)
            else:
                values[index] = [process(v) for v in column]
    except (TypeError, ValueError) as exc:
        raise StatementError(f"({type(exc).__name__}) {exc}", f"upsert {table.name}", None, exc) from exc
    rows = list(zip(*values, strict=True))
    per_statement = max(1, _SQLITE_MAX_PARAMS // len(columns))
    returned: list[Any] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _sqlite_sql(dialect, table, tuple(columns), tuple(key), tuple(compared), tracked, len(chunk))
        params = tuple(v for row in chunk for v in row)
        result = connection.exec_driver_sql(sql, params)
        returned.extend(r[0] for r in result.fetchall())
    return returned


def _sqlite_sql(
    dialect: Any,
    table: Table,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    compared: tuple[str, ...],
    tracked: bool,
    rows: int,
) -> str:
    cache_key = (table.name, columns, key, compared, tracked, rows)
    cached = _SQLITE_STATEMENTS.get(cache_key)
    if cached is not None:
        return cached
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    placeholder = "(" + ", ".join("?" for _ in columns) + ")"
    sql = [
        f"INSERT INTO {target} ({', '.join(quote(c) for c in columns)}) VALUES "
        + ", ".join(placeholder for _ in range(rows))
    ]
    conflict = ", ".join(quote(k) for k in key)
    if compared:
        sets = [f"{quote(c)} = excluded.{quote(c)}" for c in compared]
        if tracked:
            sets += ["updated_at = excluded.updated_at", f"row_version = {target}.row_version + 1"]
        differs = " OR ".join(f"{target}.{quote(c)} IS NOT excluded.{quote(c)}" for c in compared)
        sql.append(f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(sets)} WHERE {differs}")
    else:
        sql.append(f"ON CONFLICT ({conflict}) DO NOTHING")
    sql.append("RETURNING row_version" if tracked else "RETURNING 1")
    text_sql = "\n".join(sql)
    if len(_SQLITE_STATEMENTS) > 512:
        _SQLITE_STATEMENTS.clear()
    _SQLITE_STATEMENTS[cache_key] = text_sql
    return text_sql


def _upsert_unnest(
    connection: Connection,
    table: Table,
    batch: list[dict[str, Any]],
    key: Sequence[str],
    compared: Sequence[str],
    tracked: bool,
) -> list[Any]:
    """PostgreSQL: one statement whose parameters are one array per column.

    A multi-row VALUES list makes the driver parse tens of thousands of
    placeholders per page; ``unnest`` of column arrays keeps the statement
    short (and its plan cached) however large the batch.
    """
    dialect = connection.dialect
    columns = list(batch[0])
    arrays: dict[str, list[Any]] = {}
    casts = []
    for index, name in enumerate(columns):
        column = table.c[name]
        process = column.type.bind_processor(dialect)
        values = [row[name] for row in batch]
        if isinstance(column.type, JSON):
            # The driver adapts a dict but not a list of dicts: send JSON text.
            arrays[f"p{index}"] = [None if v is None else json.dumps(v, sort_keys=True) for v in values]
            casts.append(f"CAST(CAST(:p{index} AS TEXT[]) AS JSON[])")
            continue
        try:
            arrays[f"p{index}"] = [process(v) for v in values] if process else values
        except (TypeError, ValueError) as exc:
            # The same error SQLAlchemy raises when a bind processor refuses a value.
            raise StatementError(
                f"({type(exc).__name__}) {exc}", f"upsert {table.name}.{name}", None, exc
            ) from exc
        casts.append(f"CAST(:p{index} AS {_array_type(column.type.compile(dialect=dialect))})")
    quoted = [dialect.identifier_preparer.quote(c) for c in columns]
    target = dialect.identifier_preparer.format_table(table)
    conflict = ", ".join(dialect.identifier_preparer.quote(k) for k in key)
    sql = [
        f"INSERT INTO {target} ({', '.join(quoted)})",
        f"SELECT * FROM unnest({', '.join(casts)})",
    ]
    if compared:
        sets = [
            f"{q} = EXCLUDED.{q}" for q in (dialect.identifier_preparer.quote(c) for c in compared)
        ]
        if tracked:
            sets += ["updated_at = EXCLUDED.updated_at", f"row_version = {target}.row_version + 1"]
        differs = " OR ".join(
            (
                f"CAST({target}.{q} AS TEXT) IS DISTINCT FROM CAST(EXCLUDED.{q} AS TEXT)"
                if isinstance(table.c[c].type, JSON)
                else f"{target}.{q} IS DISTINCT FROM EXCLUDED.{q}"
            )
            for c, q in ((c, dialect.identifier_preparer.quote(c)) for c in compared)
        )
        sql.append(f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(sets)} WHERE {differs}")
    else:
        sql.append(f"ON CONFLICT ({conflict}) DO NOTHING")
    sql.append("RETURNING row_version" if tracked else "RETURNING 1")
    return list(connection.execute(text("\n".join(sql)), arrays).scalars().all())


def _fill_defaults(table: Table, batch: list[dict[str, Any]]) -> None:
    """Apply the columns' Python-side defaults to rows that omit them.

    SQLAlchemy does this for its own INSERTs; the unnest statement is ours,
    so both paths fill defaults here and behave alike.
    """
    present = set(batch[0])
    for column in table.columns:
        default = column.default
        if column.name in present or default is None or column.primary_key:
            continue
        if getattr(default, "is_scalar", False):
            value = getattr(default, "arg", None)
            for row in batch:
                row[column.name] = value
        elif getattr(default, "is_callable", False):
            make = getattr(default, "arg")  # noqa: B009 - typed as Any by SQLAlchemy
            for row in batch:
                row[column.name] = make(None)


def _differs(current: Any, incoming: Any) -> Any:
    """IS DISTINCT FROM, comparing JSON as text (PostgreSQL's json has no equality)."""
    if isinstance(current.type, JSON):
        return cast(current, Text).is_distinct_from(cast(incoming, Text))
    return current.is_distinct_from(incoming)


def _array_type(compiled: str) -> str:
    # json[] has no equality operator but unnest does not need one; VARCHAR(n)
    # arrays are fine as they are.
    return f"{compiled}[]"
