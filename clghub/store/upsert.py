"""Bulk upsert: one ``INSERT ... ON CONFLICT DO UPDATE`` per batch, both dialects.

Unchanged rows are left alone (the ``DO UPDATE`` has a ``WHERE`` that compares
every column), so ``updated_at`` and ``row_version`` move only when data did,
and the counts say what really happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, Date, Table, Text, cast, text
from sqlalchemy.exc import StatementError
from sqlalchemy.types import TypeEngine

from clghub.store.models import utcnow
from clghub.store.types import UTCDateTime

__all__ = [
    "PreparedUpsert",
    "UpsertCounts",
    "dedupe_by_key",
    "execute_upsert",
    "prepare_upsert",
    "upsert",
]

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
    batch = rows if isinstance(rows, list) else list(rows)
    key_of = itemgetter(*key)  # a tuple for several columns, the value for one
    seen = {key_of(row): row for row in batch}
    return list(seen.values()), len(batch) - len(seen)


@dataclass
class PreparedUpsert:
    """An upsert whose rows are checked and processed for the database ahead of time.

    Preparing (deduplicating, completing, converting every value for the
    driver) is most of an upsert's Python work and needs no connection, so
    the sync does it while the pages before are still being written; what
    is left for the transaction is the statements themselves.
    """

    table: Table
    key: tuple[str, ...]
    compared: tuple[str, ...]
    tracked: bool
    rows: list[dict[str, Any]]
    """The rows to write: deduplicated, completed with bookkeeping and defaults."""
    duplicates: int
    params: list[Any] | None = None
    """SQLite: every row's values as the driver takes them, in one flat list."""

    def set_column(self, name: str, values: Sequence[Any], dialect: Any) -> None:
        """Fill a column known only at write time (account ids), in row order."""
        for row, value in zip(self.rows, values, strict=True):
            row[name] = value
        if self.params is not None:
            columns = list(self.rows[0])
            convert = _sqlite_column(self.table.c[name].type, dialect)
            converted = convert(list(values)) if convert is not None else list(values)
            self.params[columns.index(name) :: len(columns)] = converted


def prepare_upsert(
    dialect: Any,
    table: Table,
    rows: Iterable[dict[str, Any]],
    *,
    key: Sequence[str],
    compare: Sequence[str] | None = None,
    now: datetime | None = None,
) -> PreparedUpsert:
    """The first half of :func:`upsert`: everything but the statements."""
    batch, duplicates = dedupe_by_key(rows, key)
    columns = list(batch[0]) if batch else []
    compared = (
        list(compare)
        if compare is not None
        else [c for c in columns if c not in key and c not in _BOOKKEEPING]
    )
    tracked = "updated_at" in table.c and "row_version" in table.c
    prepared = PreparedUpsert(table, tuple(key), tuple(compared), tracked, batch, duplicates)
    if not batch:
        return prepared
    stamp = now or utcnow()
    if tracked:
        for row in batch:
            row["updated_at"] = stamp
            row.setdefault("created_at", stamp)
            row["row_version"] = 1
    _fill_defaults(table, batch)
    if dialect.name != "postgresql":
        prepared.params = _sqlite_params(dialect, table, batch)
    return prepared


def execute_upsert(connection: Connection, prepared: PreparedUpsert) -> UpsertCounts:
    """The second half of :func:`upsert`: run the statements, count what happened."""
    counts = UpsertCounts(duplicates=prepared.duplicates)
    batch = prepared.rows
    if not batch:
        return counts
    if connection.dialect.name == "postgresql":
        returned = _upsert_unnest(
            connection, prepared.table, batch, prepared.key, prepared.compared, prepared.tracked
        )
    else:
        returned = _upsert_values(connection, prepared)
    if prepared.tracked:
        inserted = sum(1 for v in returned if v == 1)
        counts.inserted += inserted
        counts.updated += len(returned) - inserted
    else:
        counts.updated += len(returned)
    counts.unchanged += len(batch) - len(returned)
    return counts


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
    prepared = prepare_upsert(connection.dialect, table, rows, key=key, compare=compare, now=now)
    return execute_upsert(connection, prepared)


# SQLite allows 32,766 bound parameters in one statement.
_SQLITE_MAX_PARAMS = 32_000
_SQLITE_STATEMENT_ROWS = 256
"""Rows per statement. A prepared multi-row statement costs ~1 KB of memory a
row in sqlite3's statement cache, kept for the whole connection; and a page
of any size is written with full statements plus power-of-two remainders, so
only a handful of shapes are ever prepared. Larger statements are no faster."""
_SQLITE_STATEMENTS: dict[tuple[Any, ...], str] = {}


def _sqlite_params(dialect: Any, table: Table, batch: list[dict[str, Any]]) -> list[Any]:
    """Every value of the batch as sqlite3 takes it, row after row, in one flat list.

    Going through SQLAlchemy's executemany costs a dictionary and a round of
    type processors per row; here the processing goes column by column and
    the list is filled by slice assignment, with no per-row tuples.
    """
    columns = list(batch[0])
    width = len(columns)
    flat: list[Any] = [None] * (len(batch) * width)
    try:
        for index, name in enumerate(columns):
            values = [row[name] for row in batch]
            convert = _sqlite_column(table.c[name].type, dialect)
            if convert is not None:
                first = values[0]
                if all(v is first for v in values):
                    # A constant column (the batch's timestamps): convert it once.
                    values = convert([first]) * len(values)
                else:
                    values = convert(values)
            flat[index::width] = values
    except (TypeError, ValueError) as exc:
        raise StatementError(
            f"({type(exc).__name__}) {exc}", f"upsert {table.name}", None, exc
        ) from exc
    return flat


def _upsert_values(connection: Connection, prepared: PreparedUpsert) -> list[Any]:
    """SQLite: multi-row VALUES statements over the prepared values (SQL text cached by shape).

    The statements go to the DBAPI cursor directly: the RETURNING rows are
    only counted, and a result object per row cost more than the counting.
    """
    assert prepared.params is not None
    dialect = connection.dialect
    columns = tuple(prepared.rows[0])
    width = len(columns)
    per_statement = max(1, min(_SQLITE_STATEMENT_ROWS, _SQLITE_MAX_PARAMS // width))
    returned: list[Any] = []
    if not connection.in_transaction():
        connection.begin()  # what SQLAlchemy's autobegin would do on a first statement
    cursor = connection.connection.cursor()
    try:
        start = 0
        for count in _statement_sizes(len(prepared.rows), per_statement):
            sql = _sqlite_sql(
                dialect,
                prepared.table,
                columns,
                prepared.key,
                prepared.compared,
                prepared.tracked,
                count,
            )
            cursor.execute(sql, tuple(prepared.params[start * width : (start + count) * width]))
            returned.extend(value for (value,) in cursor.fetchall())
            start += count
    finally:
        cursor.close()
    return returned


def _statement_sizes(total: int, largest: int) -> Iterator[int]:
    """``total`` rows as full statements of ``largest`` rows, then powers of two."""
    full, rest = divmod(total, largest)
    yield from (largest,) * full
    size = 1 << max(rest.bit_length() - 1, 0)
    while rest:
        if size <= rest:
            yield size
            rest -= size
        size >>= 1


def _sqlite_column(
    column_type: TypeEngine[Any], dialect: Any
) -> Callable[[list[Any]], list[Any]] | None:
    """The column type's bind processing for a whole column, ending in what sqlite3 stores.

    Dates and times end as the text sqlite3's default adapters write
    (``isoformat``), byte for byte: stored values are compared as text by the
    upsert, so the format must not move. The common values (UTC datetimes,
    dates, booleans) are converted inline, without a call per value; anything
    else takes the type's own processing.
    """
    process = column_type.bind_processor(dialect)
    if isinstance(column_type, UTCDateTime) and process is not None:
        to_store = process

        def utc_text(value: Any) -> Any:
            value = to_store(value)  # other zones, errors: the type's own rules
            return value.isoformat(" ") if isinstance(value, datetime) else value

        def utc_texts(values: list[Any]) -> list[Any]:
            # isoformat of a UTC datetime ends in "+00:00": the naive UTC text without it.
            return [
                None
                if v is None
                else v.isoformat(" ")[:-6]
                if v.__class__ is datetime and v.tzinfo is UTC
                else utc_text(v)
                for v in values
            ]

        return utc_texts
    if process is None and isinstance(column_type, Date):
        return _date_texts
    if process is not None and isinstance(column_type, Boolean):
        to_int = process
        return lambda values: [1 if v is True else 0 if v is False else to_int(v) for v in values]
    if process is not None:
        convert = process
        return lambda values: [convert(v) for v in values]
    return None


def _date_texts(values: list[Any]) -> list[Any]:
    return [v.isoformat() if v.__class__ is date else v for v in values]


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
            arrays[f"p{index}"] = [
                None if v is None else json.dumps(v, sort_keys=True) for v in values
            ]
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
