"""Bulk upsert: one ``INSERT ... ON CONFLICT DO UPDATE`` per batch, both dialects.

Unchanged rows are left alone (the ``DO UPDATE`` has a ``WHERE`` that compares
every column), so ``updated_at`` and ``row_version`` move only when data did,
and the counts say what really happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, or_, text
from sqlalchemy.dialects import postgresql, sqlite
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
    rows: Iterable[Mapping[str, Any]], key: Sequence[str]
) -> tuple[list[dict[str, Any]], int]:
    """Keep the last row for each key (a page may repeat a record); count the rest."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    total = 0
    for row in rows:
        total += 1
        seen[tuple(row[k] for k in key)] = dict(row)
    return list(seen.values()), total - len(seen)


def upsert(
    connection: Connection,
    table: Table,
    rows: Iterable[Mapping[str, Any]],
    *,
    key: Sequence[str],
    compare: Sequence[str] | None = None,
    now: datetime | None = None,
) -> UpsertCounts:
    """Insert new rows, update changed ones, leave the rest untouched.

    ``compare`` lists the columns whose change counts as an update (default:
    every column the rows carry except the key). Rows must all carry the
    same columns. Runs inside the caller's transaction.
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

    if connection.dialect.name == "postgresql":
        returned = _upsert_unnest(connection, table, batch, key, compared, tracked)
        if tracked:
            inserted = sum(1 for v in returned if v == 1)
            counts.inserted += inserted
            counts.updated += len(returned) - inserted
            counts.unchanged += len(batch) - len(returned)
        else:
            counts.updated += len(returned)
            counts.unchanged += len(batch) - len(returned)
        return counts
    statement = _statement(connection.dialect.name, table, tuple(key), tuple(compared), tracked)
    if tracked:
        # executemany + RETURNING: SQLAlchemy's "insertmanyvalues" sends
        # multi-row VALUES pages from one cached compiled statement.
        versions = connection.execute(statement, batch).scalars().all()
        inserted = sum(1 for v in versions if v == 1)
        counts.inserted += inserted
        counts.updated += len(versions) - inserted
        counts.unchanged += len(batch) - len(versions)
    else:
        result = connection.execute(statement, batch)
        changed = max(result.rowcount, 0)
        counts.updated += changed
        counts.unchanged += len(batch) - changed
    return counts


def _statement(
    dialect: str, table: Table, key: tuple[str, ...], compared: tuple[str, ...], tracked: bool
) -> Any:
    insert_fn: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_fn(table)
    excluded = statement.excluded
    targets = [table.c[k] for k in key]
    if compared:
        assignments: dict[str, Any] = {c: excluded[c] for c in compared}
        if tracked:
            assignments["updated_at"] = excluded["updated_at"]
            assignments["row_version"] = table.c.row_version + 1
        changed = or_(*(table.c[c].is_distinct_from(excluded[c]) for c in compared))
        statement = statement.on_conflict_do_update(
            index_elements=targets, set_=assignments, where=changed
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=targets)
    if tracked:
        statement = statement.returning(table.c.row_version)
    return statement


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
            f"{target}.{q} IS DISTINCT FROM EXCLUDED.{q}"
            for q in (dialect.identifier_preparer.quote(c) for c in compared)
        )
        sql.append(f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(sets)} WHERE {differs}")
    else:
        sql.append(f"ON CONFLICT ({conflict}) DO NOTHING")
    sql.append("RETURNING row_version" if tracked else "RETURNING 1")
    return list(connection.execute(text("\n".join(sql)), arrays).scalars().all())


def _array_type(compiled: str) -> str:
    # json[] has no equality operator but unnest does not need one; VARCHAR(n)
    # arrays are fine as they are.
    return f"{compiled}[]"
