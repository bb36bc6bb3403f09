"""The sync runner: sources in parallel, a page at a time, page + checkpoint in one transaction.

For every stream: read the checkpoint, then for each page the connector
yields, map the records (bad ones go to quarantine with the reason), upsert
the rows, link them to their accounts, and advance the checkpoint — all in
one transaction (several consecutive pages may share one). The next pages
are fetched and mapped while the current ones are written (see
:mod:`clghub.sync.prefetch`). A crash or a kill at any point resumes from the
last committed page.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, bindparam, func, select, tuple_, update

from clghub.config import ClghubConfig
from clghub.config.secrets import REDACTOR
from clghub.http import QuotaExhausted
from clghub.progress import NullProgress, Progress
from clghub.store.models import Quarantine, SyncRun, SyncState, UsageDaily, table_of, utcnow
from clghub.store.upsert import upsert
from clghub.sync.early_identity import (
    IdentityGate,
    identity_gate,
    identity_order,
    is_account_stream,
)
from clghub.sync.identity import LINK, PERSON, refresh_accounts, resolve_links
from clghub.sync.mapping import TARGETS, SourceMapping
from clghub.sync.prefetch import Stopped, read_ahead
from clghub.sync.sinks import (
    LINKED_TARGETS,
    PreparedPage,
    add_usage,
    link_accounts,
    link_ahead,
    link_usage,
    prepare_page,
    quarantine,
    write_prepared,
)
from clghub.sync.store_writer import StoreWriter
from clghub.sync.stream import Connector, Page, Stream, StreamState

__all__ = ["StreamReport", "SyncReport", "run_sync"]

log = logging.getLogger(__name__)

STATE = table_of(SyncState)
RUN = table_of(SyncRun)
QUARANTINE = table_of(Quarantine)
_PAYLOAD_LIMIT = 4000


@dataclass
class StreamReport:
    source: str
    stream: str
    status: str = "running"
    mode: str = "incremental"
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    pages: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class SyncReport:
    run_id: str
    streams: list[StreamReport] = field(default_factory=list)
    unlinked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.status in ("ok", "stopped") for s in self.streams)

    @property
    def stopped(self) -> bool:
        return any(s.status == "stopped" for s in self.streams)

    def totals(self) -> dict[str, int]:
        keys = ("read", "inserted", "updated", "unchanged", "deleted", "quarantined")
        return {k: sum(getattr(s, k) for s in self.streams) for k in keys}

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "streams": [asdict(s) for s in self.streams],
            "unlinked": self.unlinked,
        }


@dataclass
class ReadyPage:
    """One page, mapped and prepared for the store: what the writer needs, nothing more."""

    rows: list[dict[str, Any]]
    prepared: PreparedPage | None
    """The rows ready for the upsert (None for event usage, which is summed instead)."""
    rejected: list[tuple[str, str, str]]
    """``(source id, reason, payload)`` of the records that cannot be stored."""
    read: int
    cursor: str | None
    position: dict[str, Any] = field(default_factory=dict)
    mode: str = "incremental"


def _rows_of(page: ReadyPage) -> int:
    return len(page.rows)


def _load_state(
    connection: Connection, source: str, stream: str, full_refresh: bool
) -> StreamState:
    row = connection.execute(
        select(STATE.c.cursor, STATE.c.state).where(
            STATE.c.source == source, STATE.c.stream == stream
        )
    ).first()
    if full_refresh or row is None:
        return StreamState(full_refresh=full_refresh)
    return StreamState(cursor=row.cursor, position=dict(row.state or {}))


def _payload(record: Mapping[str, Any]) -> str:
    text = orjson.dumps(record, default=str).decode("utf-8", "replace")
    return REDACTOR.redact(text[:_PAYLOAD_LIMIT])


class _StreamSync:
    def __init__(
        self,
        engine: Engine,
        config: ClghubConfig,
        stream: Stream,
        run_id: str,
        progress: Progress,
        stop: threading.Event,
        full_refresh: bool,
        writer: StoreWriter,
    ) -> None:
        self.engine = engine
        self.config = config
        self.stream = stream
        self.run_id = run_id
        self.progress = progress
        self.stop = stop
        self.full_refresh = full_refresh
        self.writer = writer
        self.report = StreamReport(stream.source, stream.name)
        self.open_quarantine = False
        self.key = f"{stream.source}.{stream.name}"
        self.events_mode = (
            stream.mapping.target.name == "usage" and getattr(stream, "events", False) is True
        )

    def run(self) -> StreamReport:
        started = time.monotonic()
        source, name = self.stream.source, self.stream.name
        # Reads go through the writer too: on SQLite a transaction of its own
        # would have to wait for the writer's turn anyway.
        with self._transaction() as connection:
            state = _load_state(connection, source, name, self.full_refresh)
            # Resolving quarantine entries costs a statement per page; skip it
            # for the (usual) stream that has none open.
            self.open_quarantine = (
                connection.execute(
                    select(QUARANTINE.c.id)
                    .where(
                        QUARANTINE.c.source == source,
                        QUARANTINE.c.stream == name,
                        QUARANTINE.c.resolved_at.is_(None),
                    )
                    .limit(1)
                ).first()
                is not None
            )
            run_row = connection.execute(
                RUN.insert()
                .values(
                    run_id=self.run_id,
                    source=self.stream.source,
                    stream=self.stream.name,
                    mode="full" if (self.full_refresh or state.cursor is None) else "incremental",
                )
                .returning(RUN.c.id)
            ).scalar_one()
        self.progress.start(self.key, f"{self.stream.source} {self.stream.name}")
        try:
            pages = self.stream.read(state)
            for batch in read_ahead(pages, self._prepare, _rows_of, self.stop):
                self._write(batch)
            self.writer.flush()  # the stream's last pages are in before it reports success
            self.report.status = "ok"
            warnings = list(getattr(self.stream, "warnings", []) or [])
            if warnings:
                self.report.error = "warning: " + "; ".join(warnings)
        except Stopped:
            self.report.status = "stopped"
            self.report.error = "stopped on request; resumes from the last page"
        except QuotaExhausted as exc:
            self.report.status = "stopped"
            self.report.error = str(exc)
            log.warning("%s: %s", self.key, exc)
        except Exception as exc:
            self.report.status = "failed"
            self.report.error = REDACTOR.redact(f"{type(exc).__name__}: {exc}")[:2000]
            log.error("%s failed: %s", self.key, self.report.error)
        finally:
            self.report.seconds = time.monotonic() - started
            self.progress.finish(self.key, self.report.status)
            self._finish_run(run_row)
        return self.report

    @contextmanager
    def _transaction(self, rows: int = 0) -> Iterator[Connection]:
        """This stream's turn at the store (see :class:`StoreWriter`)."""
        with self.writer.transaction(rows) as connection:
            yield connection

    def _prepare(self, page: Page) -> ReadyPage:
        """Map a page and prepare its rows (in the read-ahead thread); raw records are not kept."""
        mapping = self.stream.mapping
        source = self.stream.source
        mapped = mapping.map_page(page.records, source=source)
        prepared = None
        if mapped.rows and not self.events_mode:
            prepared = prepare_page(
                self.engine.dialect, mapping.target, source, mapped.rows, utcnow()
            )
            reader = self.writer.reader
            if mapping.target.name in LINKED_TARGETS and reader is not None:
                # Off the writer's turn: the lookups overlap the pages being written.
                with reader.connect() as connection:
                    link_ahead(connection, prepared)
        return ReadyPage(
            rows=mapped.rows,
            prepared=prepared,
            rejected=[
                (source_id, reason or "rejected", _payload(record))
                for source_id, reason, record in mapped.rejected
            ],
            read=len(page.records),
            cursor=page.cursor,
            position=page.position,
            mode=page.mode,
        )

    def _write(self, batch: list[ReadyPage]) -> None:
        """Consecutive pages and the last one's checkpoint, in one transaction."""
        mapping = self.stream.mapping
        source = self.stream.source
        now = utcnow()
        with self._transaction(sum(len(page.rows) for page in batch)) as connection:
            for page in batch:
                rows = page.rows
                if page.prepared is not None:
                    counts = write_prepared(connection, page.prepared, self.config)
                    self.report.inserted += counts.inserted
                    self.report.updated += counts.updated
                    self.report.unchanged += counts.unchanged + counts.duplicates
                elif rows:
                    self.report.inserted += add_usage(connection, rows, now)
                if rows and mapping.target.name != "usage" and self.open_quarantine:
                    _resolve_quarantine(
                        connection, source, self.stream.name, [r["source_id"] for r in rows], now
                    )
                if page.rejected:
                    quarantine(connection, source, self.stream.name, page.rejected, now)
                    self.open_quarantine = True
            _save_state(connection, source, self.stream.name, batch[-1])
        for page in batch:
            self.report.read += page.read
            self.report.deleted += sum(1 for r in page.rows if r.get("is_deleted"))
            self.report.quarantined += len(page.rejected)
            self.report.pages += 1
            self.report.mode = page.mode
            self.progress.advance(self.key, page.read)

    def _finish_run(self, run_row: int) -> None:
        values = {
            k: getattr(self.report, k)
            for k in (
                "status",
                "read",
                "inserted",
                "updated",
                "unchanged",
                "deleted",
                "quarantined",
                "error",
                "mode",
            )
        }
        with self._transaction() as connection:
            connection.execute(
                update(RUN).where(RUN.c.id == run_row).values(finished_at=utcnow(), **values)
            )


def _save_state(connection: Any, source: str, stream: str, page: ReadyPage) -> None:
    upsert(
        connection,
        STATE,
        [
            {
                "source": source,
                "stream": stream,
                "cursor": page.cursor,
                "state": page.position or None,
                "updated_at": utcnow(),
            }
        ],
        key=["source", "stream"],
        compare=["cursor", "state", "updated_at"],
    )


def _resolve_quarantine(
    connection: Any, source: str, stream: str, ids: list[str], now: Any
) -> None:
    """A record that maps cleanly now is no longer quarantined."""
    connection.execute(
        update(QUARANTINE)
        .where(
            QUARANTINE.c.source == source,
            QUARANTINE.c.stream == stream,
            QUARANTINE.c.resolved_at.is_(None),
            QUARANTINE.c.source_id.in_(bindparam("ids", expanding=True)),
        )
        .values(resolved_at=now),
        {"ids": ids},
    )


def _sync_source(
    engine: Engine,
    config: ClghubConfig,
    streams: Sequence[Stream],
    run_id: str,
    progress: Progress,
    stop: threading.Event,
    full_refresh: bool,
    writer: StoreWriter,
    gate: IdentityGate,
) -> list[StreamReport]:
    reports = []
    for stream in streams:
        report = _StreamSync(
            engine, config, stream, run_id, progress, stop, full_refresh, writer
        ).run()
        reports.append(report)
        if is_account_stream(stream):
            gate.stream_finished(stream.source, report.status == "ok")
        if report.status == "stopped":
            break  # quota or a stop request: the rest of this source waits for the next run
    return reports


def finalize_links(
    engine: Engine, config: ClghubConfig, started: datetime, resolved_early: Iterable[int] = ()
) -> dict[str, int]:
    """The run's final pass: identity, account attributes, links, orphans.

    Identity runs here over every account record not yet linked, source by
    source in priority order, so the accounts a run produces depend only on
    the data read, never on which source or page came first (sources sync
    concurrently, and faults reorder pages). The sources the run could
    resolve early, with the same outcome, are done already
    (``resolved_early`` holds the accounts that touched).
    """
    now = utcnow()
    unlinked: dict[str, int] = {}
    with engine.begin() as connection:
        # Changes since the last run whose final pass committed, not since this
        # run began: a run killed before its final pass left records and
        # people written but their accounts not refreshed.
        since = min(started, _finalized_through(connection))
        resolved: set[int] = set(resolved_early)
        for source in identity_order(connection, config):
            resolved.update(resolve_links(connection, source, config, now))
        changed = select(LINK.c.account_id).where(
            LINK.c.updated_at >= since, LINK.c.account_id.is_not(None)
        )
        people = select(PERSON.c.source, PERSON.c.source_id).where(PERSON.c.updated_at >= since)
        owned = select(LINK.c.account_id).where(
            tuple_(LINK.c.source, LINK.c.owner_ref).in_(people)
            | tuple_(LINK.c.source, LINK.c.csm_ref).in_(people)
        )
        touched = sorted(
            (set(connection.execute(changed.union(owned)).scalars()) | resolved) - {None}
        )
        refresh_accounts(connection, config, touched, now)
        for name in LINKED_TARGETS:
            table = TARGETS[name].table
            link_accounts(connection, table)
            orphans = connection.execute(
                select(table.c.source, table.c.source_id, table.c.account_ref).where(
                    table.c.account_id.is_(None),
                    table.c.account_ref.is_not(None),
                    table.c.is_deleted.is_(False),
                )
            ).all()
            unlinked[name] = len(orphans)
            rejected: dict[str, list[tuple[str, str, str]]] = {}
            for source, source_id, ref in orphans:
                rejected.setdefault(source, []).append(
                    (source_id, f"references account {ref}, which is not in the store", "")
                )
            for source, items in rejected.items():
                quarantine(connection, source, f"{name}:link", items, now)
            # Checked per open entry (through the record's key), not by listing
            # every linked record of the table.
            linked = (
                select(table.c.id)
                .where(
                    table.c.source == QUARANTINE.c.source,
                    table.c.source_id == QUARANTINE.c.source_id,
                    table.c.account_id.is_not(None),
                )
                .exists()
            )
            connection.execute(
                update(QUARANTINE)
                .where(
                    QUARANTINE.c.stream == f"{name}:link",
                    QUARANTINE.c.resolved_at.is_(None),
                    linked,
                )
                .values(resolved_at=now)
            )
        link_usage(connection, config)
        usage = table_of(UsageDaily)
        unlinked["usage_keys"] = connection.execute(
            select(func.count(func.distinct(usage.c.account_key))).where(
                usage.c.account_id.is_(None)
            )
        ).scalar_one()
        _mark_finalized(connection, started, now)
    return unlinked


_FINALIZED = ("clghub", "final_pass")
"""The :class:`SyncState` row holding the start of the last run whose final pass committed."""
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _finalized_through(connection: Connection) -> datetime:
    """When the last run whose final pass committed began (the epoch before any did)."""
    cursor = _load_state(connection, *_FINALIZED, full_refresh=False).cursor
    return datetime.fromisoformat(cursor) if cursor else _NEVER


def _mark_finalized(connection: Connection, started: datetime, now: datetime) -> None:
    row = {"source": _FINALIZED[0], "stream": _FINALIZED[1], "cursor": started.isoformat()}
    upsert(
        connection,
        STATE,
        [{**row, "state": None, "updated_at": now}],
        key=["source", "stream"],
        compare=["cursor", "updated_at"],
    )


def run_sync(
    engine: Engine,
    config: ClghubConfig,
    connectors: dict[str, tuple[Connector, SourceMapping]],
    *,
    full_refresh: bool = False,
    streams: Sequence[str] | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    run_id: str | None = None,
) -> SyncReport:
    """Sync every given source concurrently; streams of one source in order."""
    report = SyncReport(run_id or str(uuid.uuid4()))
    started = utcnow()
    stop = stop or threading.Event()
    progress = progress or NullProgress()
    if not connectors:
        return report
    plans = {
        name: [s for s in connector.streams(mapping) if not streams or s.name in streams]
        for name, (connector, mapping) in connectors.items()
    }
    writer = StoreWriter(engine)
    try:
        gate = identity_gate(config, [s for plan in plans.values() for s in plan], writer)
        gate.start()
        with ThreadPoolExecutor(
            max_workers=len(connectors), thread_name_prefix="clghub-sync"
        ) as pool:
            futures = [
                pool.submit(
                    _sync_source,
                    engine,
                    config,
                    plan,
                    report.run_id,
                    progress,
                    stop,
                    full_refresh,
                    writer,
                    gate,
                )
                for plan in plans.values()
            ]
            for future in futures:
                report.streams.extend(future.result())
    finally:
        writer.close()
    report.unlinked = finalize_links(engine, config, started, gate.touched)
    return report
