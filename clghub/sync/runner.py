"""The sync runner: sources in parallel, a page at a time, page + checkpoint in one transaction.

For every stream: read the checkpoint, then for each page the connector
yields, map the records (bad ones go to quarantine with the reason), upsert
the rows, resolve identity and account links, and advance the checkpoint —
all in one transaction. The next page is fetched while this one is written.
A crash or a kill at any point resumes from the last committed page.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, bindparam, func, select, tuple_, update

from clghub.config import ClghubConfig
from clghub.config.secrets import REDACTOR
from clghub.http import QuotaExhausted
from clghub.progress import NullProgress, Progress
from clghub.store.models import Quarantine, SyncRun, SyncState, UsageDaily, table_of, utcnow
from clghub.store.upsert import upsert
from clghub.sync.identity import LINK, PERSON, refresh_accounts, resolve_links
from clghub.sync.mapping import TARGETS, SourceMapping
from clghub.sync.sinks import (
    LINKED_TARGETS,
    add_usage,
    link_accounts,
    link_usage,
    quarantine,
    write_page,
)
from clghub.sync.stream import Connector, Page, Stream, StreamState

__all__ = ["StreamReport", "SyncReport", "run_sync"]

log = logging.getLogger(__name__)

STATE = table_of(SyncState)
RUN = table_of(SyncRun)
QUARANTINE = table_of(Quarantine)
_PAYLOAD_LIMIT = 4000
_PREFETCH_PAGES = 2


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


class _Stopped(Exception):
    """The run was asked to stop (SIGTERM); the last page is committed."""


def _prefetch(pages: Iterator[Page], stop: threading.Event) -> Iterator[Page]:
    """Read the next pages in a background thread while the current one is written."""
    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_PREFETCH_PAGES)
    cancelled = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not cancelled.is_set():
                    try:
                        buffer.put(("page", page), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if cancelled.is_set():
                    return
            buffer.put(("done", None))
        except BaseException as exc:  # handed to the consumer, raised there
            buffer.put(("error", exc))

    worker = threading.Thread(target=produce, name="clghub-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            if stop.is_set():
                raise _Stopped
            try:
                kind, item = buffer.get(timeout=0.2)
            except queue.Empty:
                continue
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        cancelled.set()


def _load_state(engine: Engine, source: str, stream: str, full_refresh: bool) -> StreamState:
    with engine.connect() as connection:
        row = connection.execute(
            select(STATE.c.cursor, STATE.c.state).where(
                STATE.c.source == source, STATE.c.stream == stream
            )
        ).first()
    if full_refresh or row is None:
        return StreamState(full_refresh=full_refresh)
    return StreamState(cursor=row.cursor, position=dict(row.state or {}))


def _payload(record: dict[str, Any]) -> str:
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
    ) -> None:
        self.engine = engine
        self.config = config
        self.stream = stream
        self.run_id = run_id
        self.progress = progress
        self.stop = stop
        self.full_refresh = full_refresh
        self.report = StreamReport(stream.source, stream.name)
        # Resolving quarantine entries costs a statement per page; skip it
        # for the (usual) stream that has none open.
        with engine.connect() as connection:
            self.open_quarantine = (
                connection.execute(
                    select(QUARANTINE.c.id)
                    .where(
                        QUARANTINE.c.source == stream.source,
                        QUARANTINE.c.stream == stream.name,
                        QUARANTINE.c.resolved_at.is_(None),
                    )
                    .limit(1)
                ).first()
                is not None
            )
        self.key = f"{stream.source}.{stream.name}"
        self.events_mode = (
            stream.mapping.target.name == "usage" and getattr(stream, "events", False) is True
        )

    def run(self) -> StreamReport:
        started = time.monotonic()
        state = _load_state(self.engine, self.stream.source, self.stream.name, self.full_refresh)
        with self.engine.begin() as connection:
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
            for page in _prefetch(self.stream.read(state), self.stop):
                self._write(page)
            self.report.status = "ok"
            warnings = list(getattr(self.stream, "warnings", []) or [])
            if warnings:
                self.report.error = "warning: " + "; ".join(warnings)
        except _Stopped:
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

    def _write(self, page: Page) -> None:
        mapping = self.stream.mapping
        source = self.stream.source
        rows: list[dict[str, Any]] = []
        rejected: list[tuple[str, str, str]] = []
        for record in page.records:
            mapped = mapping.map(record, source=source)
            if mapped.row is None:
                rejected.append((mapped.source_id, mapped.error or "rejected", _payload(record)))
            else:
                rows.append(mapped.row)
        now = utcnow()
        with self.engine.begin() as connection:
            if rows:
                if self.events_mode:
                    counts_written = add_usage(connection, rows, now)
                    self.report.inserted += counts_written
                else:
                    counts = write_page(connection, mapping.target, source, rows, self.config, now)
                    self.report.inserted += counts.inserted
                    self.report.updated += counts.updated
                    self.report.unchanged += counts.unchanged + counts.duplicates
                if mapping.target.name != "usage" and self.open_quarantine:
                    _resolve_quarantine(
                        connection, source, self.stream.name, [r["source_id"] for r in rows], now
                    )
            if rejected:
                quarantine(connection, source, self.stream.name, rejected, now)
                self.open_quarantine = True
            _save_state(connection, source, self.stream.name, page)
        self.report.read += len(page.records)
        self.report.deleted += sum(1 for r in rows if r.get("is_deleted"))
        self.report.quarantined += len(rejected)
        self.report.pages += 1
        self.report.mode = page.mode
        self.progress.advance(self.key, len(page.records))

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
        with self.engine.begin() as connection:
            connection.execute(
                update(RUN).where(RUN.c.id == run_row).values(finished_at=utcnow(), **values)
            )


def _save_state(connection: Any, source: str, stream: str, page: Page) -> None:
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
    connector: Connector,
    mapping: SourceMapping,
    run_id: str,
    progress: Progress,
    stop: threading.Event,
    full_refresh: bool,
    only: Sequence[str] | None,
) -> list[StreamReport]:
    reports = []
    for stream in connector.streams(mapping):
        if only and stream.name not in only:
            continue
        report = _StreamSync(engine, config, stream, run_id, progress, stop, full_refresh).run()
        reports.append(report)
        if report.status == "stopped":
            break  # quota or a stop request: the rest of this source waits for the next run
    return reports


def finalize_links(engine: Engine, config: ClghubConfig, started: datetime) -> dict[str, int]:
    """The run's final pass: identity, account attributes, links, orphans.

    Identity runs here, once, over every account record not yet linked,
    source by source in priority order, so the accounts a run produces
    depend only on the data read, never on which source or page came first
    (sources sync concurrently, and faults reorder pages).
    """
    now = utcnow()
    unlinked: dict[str, int] = {}
    with engine.begin() as connection:
        order: list[str] = [*config.identity.source_priority]
        order += sorted(
            {s for s in connection.execute(select(LINK.c.source).distinct()).scalars()} - set(order)
        )
        resolved: set[int] = set()
        for source in order:
            resolved.update(resolve_links(connection, source, config, now))
        changed = select(LINK.c.account_id).where(
            LINK.c.updated_at >= started, LINK.c.account_id.is_not(None)
        )
        people = select(PERSON.c.source, PERSON.c.source_id).where(PERSON.c.updated_at >= started)
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
            linked_ids = select(table.c.source_id).where(table.c.account_id.is_not(None))
            connection.execute(
                update(QUARANTINE)
                .where(
                    QUARANTINE.c.stream == f"{name}:link",
                    QUARANTINE.c.resolved_at.is_(None),
                    QUARANTINE.c.source_id.in_(linked_ids),
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
    return unlinked


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
    with ThreadPoolExecutor(max_workers=len(connectors), thread_name_prefix="clghub-sync") as pool:
        futures = [
            pool.submit(
                _sync_source,
                engine,
                config,
                connector,
                mapping,
                report.run_id,
                progress,
                stop,
                full_refresh,
                streams,
            )
            for connector, mapping in connectors.values()
        ]
        for future in futures:
            report.streams.extend(future.result())
    report.unlinked = finalize_links(engine, config, started)
    return report
