"""SOQL execution with server-side cursors: REST query pages and Bulk API 2.0 results.

A query's matching rows are fixed when it runs: their rowids go, in result
order, into one temporary table (``_sf_cursor_rows``), and every page reads
the next slice of that snapshot joined to the live table. So a client paging
through a result never sees a row twice or misses one, even while records
change underneath; it sees each record as it is when its page is read, and
``query`` (not ``queryAll``) leaves out records deleted since the query ran.
Each page is one SQL statement that renders the records (see sf_wire.py).

Cursors expire after 15 minutes without use, as Salesforce's do, and the
sandbox keeps a bounded number open (the oldest is dropped first).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from clghub.sandbox.apis import soql
from clghub.sandbox.apis.sf_http import SalesforceError, json_response, raw_json_response
from clghub.sandbox.apis.sf_wire import csv_line_sql, record_json_sql
from clghub.sandbox.schema import SfField
from clghub.sandbox.state import SandboxState, sf_id

__all__ = [
    "CURSOR_IDLE",
    "Cursor",
    "CursorStore",
    "QueryResource",
    "Snapshot",
    "csv_page",
    "json_page",
    "plain_rows",
    "release_snapshot",
    "run_count",
    "take_snapshot",
]

CURSOR_IDLE = timedelta(minutes=15)
_ROWS_TABLE = "temp._sf_cursor_rows"


@dataclass
class Snapshot:
    """The rows a query matched, in order: seq base+1 .. base+total of the rows table."""

    sobject: str
    fields: tuple[SfField, ...]
    include_deleted: bool
    base: int
    total: int


@dataclass
class Cursor:
    id: str
    snapshot: Snapshot
    batch_size: int
    last_used: datetime
    extra: dict[str, object] = field(default_factory=dict)


def plain_rows(db: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    """Rows as plain tuples: the connection's Row factory costs time on hot pages."""
    cursor = db.cursor()
    cursor.row_factory = None
    try:
        return cursor.execute(sql, params).fetchall()
    finally:
        cursor.close()


def _ensure_rows_table(db: sqlite3.Connection) -> None:
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {_ROWS_TABLE} (seq INTEGER PRIMARY KEY, rid INTEGER NOT NULL)"
    )


def take_snapshot(
    db: sqlite3.Connection, query: soql.Query, *, include_deleted: bool, now: datetime
) -> Snapshot:
    """Run ``query`` and keep the ordered ids of its rows."""
    where = soql.translate_where(query, include_deleted=include_deleted, now=now)
    _ensure_rows_table(db)
    (base,) = db.execute(f"SELECT coalesce(max(seq), 0) FROM {_ROWS_TABLE}").fetchone()
    limit = -1 if query.limit is None else query.limit
    offset = query.offset or 0
    # Rowids are assigned in insertion order, which follows the ORDER BY:
    # seq base+1 is the first row of the result, base+total the last.
    cursor = db.execute(
        f"INSERT INTO {_ROWS_TABLE} (rid) "
        f'SELECT rowid FROM "sf_{query.sobject}" WHERE {where.sql} '
        f"ORDER BY {soql.order_sql(query)} LIMIT ? OFFSET ?",
        (*where.params, limit, offset),
    )
    return Snapshot(query.sobject, query.fields, include_deleted, int(base), cursor.rowcount)


def release_snapshot(db: sqlite3.Connection, snapshot: Snapshot) -> None:
    if snapshot.total:
        db.execute(
            f"DELETE FROM {_ROWS_TABLE} WHERE seq > ? AND seq <= ?",
            (snapshot.base, snapshot.base + snapshot.total),
        )


def run_count(
    db: sqlite3.Connection, query: soql.Query, *, include_deleted: bool, now: datetime
) -> int:
    """The value of a COUNT() / COUNT(field) query."""
    where = soql.translate_where(query, include_deleted=include_deleted, now=now)
    counted = (
        "*" if query.count is None or query.count.field is None else f'"{query.count.field.name}"'
    )
    sql = f'SELECT count({counted}) FROM "sf_{query.sobject}" WHERE {where.sql}'
    if query.limit is not None or query.offset:
        # LIMIT/OFFSET bound the rows counted, as in Salesforce.
        sql = (
            f'SELECT count({counted}) FROM (SELECT * FROM "sf_{query.sobject}" WHERE {where.sql} '
            "LIMIT ? OFFSET ?)"
        )
        params: tuple[object, ...] = (
            *where.params,
            -1 if query.limit is None else query.limit,
            query.offset or 0,
        )
    else:
        params = where.params
    (value,) = db.execute(sql, params).fetchone()
    return int(value)


class _PageSql:
    """Per-shape page statements, built once and reused."""

    def __init__(self, capacity: int = 256) -> None:
        self._cache: OrderedDict[tuple[object, ...], str] = OrderedDict()
        self._capacity = capacity

    def get(self, key: tuple[object, ...], build: Callable[[], str]) -> str:
        sql = self._cache.get(key)
        if sql is None:
            sql = build()
            self._cache[key] = sql
            if len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return sql


_PAGES = _PageSql()


def _live_filter(snapshot: Snapshot) -> str:
    has_deleted = any(f.name == "IsDeleted" for f in soql.field_map(snapshot.sobject).values())
    return ' AND t."IsDeleted" = 0' if has_deleted and not snapshot.include_deleted else ""


def json_page(
    db: sqlite3.Connection, snapshot: Snapshot, start: int, count: int, version: str
) -> list[bytes]:
    """Records ``start`` .. ``start + count`` of the snapshot as REST JSON (UTF-8).

    Read as BLOBs, the bytes SQLite built go out as they are. Read as text,
    Python would decode every record and, once one holds a character beyond
    the BMP (a name with an emoji), join and re-encode the page as UCS-4:
    three times the work for the same bytes.
    """
    key = (
        "json",
        snapshot.sobject,
        tuple(f.name for f in snapshot.fields),
        version,
        snapshot.include_deleted,
    )

    def build() -> str:
        expression = record_json_sql(snapshot.sobject, snapshot.fields, version, table="t")
        return (
            f"SELECT CAST({expression} AS BLOB) FROM {_ROWS_TABLE} c "
            f'JOIN "sf_{snapshot.sobject}" t ON t.rowid = c.rid '
            f"WHERE c.seq > ? AND c.seq <= ?{_live_filter(snapshot)} ORDER BY c.seq"
        )

    low = snapshot.base + start
    high = min(snapshot.base + snapshot.total, low + count)
    return [row[0] for row in plain_rows(db, _PAGES.get(key, build), (low, high))]


def csv_page(
    db: sqlite3.Connection, snapshot: Snapshot, start: int, count: int, delimiter: str
) -> list[bytes]:
    """Records ``start`` .. ``start + count`` as CSV lines, UTF-8 (Bulk API 2.0 results)."""
    key = (
        "csv",
        snapshot.sobject,
        tuple(f.name for f in snapshot.fields),
        delimiter,
        snapshot.include_deleted,
    )

    def build() -> str:
        expression = csv_line_sql(snapshot.fields, delimiter, table="t")
        return (
            f"SELECT CAST({expression} AS BLOB) FROM {_ROWS_TABLE} c "
            f'JOIN "sf_{snapshot.sobject}" t ON t.rowid = c.rid '
            f"WHERE c.seq > ? AND c.seq <= ?{_live_filter(snapshot)} ORDER BY c.seq"
        )

    low = snapshot.base + start
    high = min(snapshot.base + snapshot.total, low + count)
    return [row[0] for row in plain_rows(db, _PAGES.get(key, build), (low, high))]


class CursorStore:
    """Open query cursors by locator id, least recently used first."""

    def __init__(self, capacity: int) -> None:
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._capacity = capacity

    def add(self, db: sqlite3.Connection, cursor: Cursor) -> None:
        self.expire(db, cursor.last_used)
        self._cursors[cursor.id] = cursor
        while len(self._cursors) > self._capacity:
            _, oldest = self._cursors.popitem(last=False)
            release_snapshot(db, oldest.snapshot)

    def get(self, db: sqlite3.Connection, cursor_id: str, now: datetime) -> Cursor | None:
        self.expire(db, now)
        cursor = self._cursors.get(cursor_id)
        if cursor is not None:
            cursor.last_used = now
            self._cursors.move_to_end(cursor_id)
        return cursor

    def values(self) -> list[Cursor]:
        return list(self._cursors.values())

    def remove(self, db: sqlite3.Connection, cursor_id: str) -> None:
        cursor = self._cursors.pop(cursor_id, None)
        if cursor is not None:
            release_snapshot(db, cursor.snapshot)

    def expire(self, db: sqlite3.Connection, now: datetime) -> None:
        for cursor_id in [c.id for c in self._cursors.values() if now - c.last_used > CURSOR_IDLE]:
            self.remove(db, cursor_id)

    def clear(self) -> None:
        self._cursors.clear()


class QueryResource:
    """``query`` / ``queryAll`` and their ``nextRecordsUrl`` pages."""

    MAX_BATCH = 2000
    MIN_BATCH = 200

    def __init__(self, state: SandboxState, cursor_capacity: int = 50) -> None:
        self.state = state
        self.cursors = CursorStore(cursor_capacity)

    def reset(self) -> None:
        self.cursors.clear()
        _ensure_rows_table(self.state.db)
        self.state.db.execute(f"DELETE FROM {_ROWS_TABLE}")

    def _batch_size(self, request: Request) -> int:
        # Sforce-Query-Options: batchSize=N asks for smaller pages (200..2000).
        options = request.headers.get("sforce-query-options", "")
        for part in options.split(","):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == "batchsize" and value.strip().isdigit():
                return max(self.MIN_BATCH, min(self.MAX_BATCH, int(value.strip())))
        return self.MAX_BATCH

    async def query(self, request: Request, version: str, *, include_deleted: bool) -> Response:
        text = request.query_params.get("q")
        if text is None:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        now = self.state.now()
        try:
            parsed = soql.parse(text)
            if parsed.count is not None:
                value = run_count(self.state.db, parsed, include_deleted=include_deleted, now=now)
                return _count_response(parsed.count, value)
            snapshot = take_snapshot(
                self.state.db, parsed, include_deleted=include_deleted, now=now
            )
        except soql.SoqlError as error:
            raise SalesforceError(400, error.code, error.render(text)) from None
        cursor = Cursor(_locator_id(self.state), snapshot, self._batch_size(request), now)
        cursor.extra["endpoint"] = "queryAll" if include_deleted else "query"
        self.cursors.add(self.state.db, cursor)
        return self._page(cursor, 0, version)

    async def more(self, request: Request, version: str) -> Response:
        locator = request.path_params["locator"]
        cursor_id, _, start_text = locator.rpartition("-")
        cursor = self.cursors.get(self.state.db, cursor_id, self.state.now()) if cursor_id else None
        if cursor is None or not start_text.isdigit() or int(start_text) > cursor.snapshot.total:
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, int(start_text), version)

    def _page(self, cursor: Cursor, start: int, version: str) -> Response:
        snapshot = cursor.snapshot
        records = json_page(self.state.db, snapshot, start, cursor.batch_size, version)
        end = min(snapshot.total, start + cursor.batch_size)
        done = end >= snapshot.total
        head = f'{{"totalSize":{snapshot.total},"done":{"true" if done else "false"},'
        if not done:
            endpoint = cursor.extra.get("endpoint", "query")
            head += f'"nextRecordsUrl":"/services/data/{version}/{endpoint}/{cursor.id}-{end}",'
        body = b"".join((head.encode(), b'"records":[', b",".join(records), b"]}"))
        return raw_json_response(body)


def _count_response(count: soql.CountItem, value: int) -> Response:
    """COUNT() answers a size and no records; COUNT(field) one AggregateResult."""
    if count.field is None:
        return json_response({"totalSize": value, "done": True, "records": []})
    record = {"attributes": {"type": "AggregateResult"}, count.alias or "expr0": value}
    return json_response({"totalSize": 1, "done": True, "records": [record]})


def _locator_id(state: SandboxState) -> str:
    return sf_id("01g", state.next_number("sf:query-locator"))
