"""The run's writes to the store: one writer at a time, and on SQLite, group commits.

Every stream writes its pages (rows and checkpoint together) through
:meth:`StoreWriter.transaction`. On SQLite, which has one writer anyway, the
streams take turns in a single open transaction: each turn is a savepoint
(a failing page undoes only itself), and the transaction commits every
``commit_rows`` rows or ``commit_seconds`` seconds. A page's rows and its
checkpoint still always commit together; a kill loses at most the last few
seconds, which the next run reads again. Committing large groups matters:
every commit writes each index page the group touched to the WAL, and with
small commits of random keys that rewriting, not the inserts, was most of a
large first load.

On PostgreSQL every turn is its own transaction, and turns run side by side.

:attr:`StoreWriter.reader` reads what is committed without waiting for a
turn (on SQLite, WAL readers never block on the writer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import RootTransaction

from clghub.store.engine import create_store_engine
from clghub.sync.fairlock import FairLock

__all__ = ["StoreWriter"]

log = logging.getLogger(__name__)

_COMMIT_ROWS = 50_000
_COMMIT_SECONDS = 3.0
_GAP_SECONDS = 0.11
"""A pause after each group commit before the next turn begins: SQLite queues
no one, and a writer outside this one (the run lock's heartbeat, another
process) polls for the lock at most every 100 ms, so without a gap it could
wait for the whole run."""
_CACHE_KIB = 32_768
"""SQLite page cache of the writing connection (KiB): the indexes a first load
keeps touching stay in memory. Set back to SQLite's default when the run ends."""
_DEFAULT_CACHE_KIB = 2_000


class StoreWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        commit_rows: int = _COMMIT_ROWS,
        commit_seconds: float = _COMMIT_SECONDS,
    ) -> None:
        self._engine = engine
        self.grouped = engine.dialect.name == "sqlite"
        self._turns: AbstractContextManager[Any] = FairLock() if self.grouped else nullcontext()
        self._commit_rows = commit_rows
        self._commit_seconds = commit_seconds
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._opened = 0.0
        self._rows = 0
        self._broken: BaseException | None = None
        self.reader = _reader_of(engine)
        """Reads committed data beside the writer; None for a store only the writer can
        see (SQLite in memory)."""

    @contextmanager
    def transaction(self, rows: int = 0) -> Iterator[Connection]:
        """A turn at the store, writing about ``rows`` rows; undone as a whole if it raises."""
        if not self.grouped:
            with self._engine.begin() as connection:
                yield connection
            return
        with self._turns:
            connection = self._open()
            savepoint = connection.begin_nested()
            try:
                yield connection
            except BaseException:
                savepoint.rollback()
                raise
            savepoint.commit()
            self._rows += rows
            if (
                self._rows >= self._commit_rows
                or time.monotonic() - self._opened >= self._commit_seconds
            ):
                self._commit()
                time.sleep(_GAP_SECONDS)  # still our turn: the next one waits too

    def flush(self) -> None:
        """Commit what the turns so far wrote (a stream reports success only once it is in)."""
        if self.grouped:
            with self._turns:
                if self._broken is not None:
                    raise self._broken
                self._commit()

    def close(self) -> None:
        """Commit and give the connection back (the end of the run)."""
        if self.reader is not None and self.reader is not self._engine:
            self.reader.dispose()
        if self.grouped:
            with self._turns:
                try:
                    if self._broken is None:
                        self._commit()
                finally:
                    self._release()

    def _open(self) -> Connection:
        if self._broken is not None:
            # A group commit failed: the pages it held are lost, so no stream
            # may commit a checkpoint past them. The next run reads them again.
            raise self._broken
        if self._connection is None:
            self._connection = self._engine.connect()
            _pragma(self._connection, f"cache_size=-{_CACHE_KIB}")
        if self._transaction is None:
            self._transaction = self._connection.begin()
            self._opened = time.monotonic()
            self._rows = 0
        return self._connection

    def _commit(self) -> None:
        if self._transaction is None:
            return
        transaction, self._transaction = self._transaction, None
        try:
            transaction.commit()
        except BaseException as exc:
            log.error("commit failed; the run stops and the next one resumes: %s", exc)
            self._broken = exc
            self._release()
            raise

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        self._transaction = None
        if connection is None:
            return
        if self._broken is not None:
            connection.invalidate()  # never back into the pool in an unknown state
        else:
            _pragma(connection, f"cache_size=-{_DEFAULT_CACHE_KIB}")
        connection.close()


def _reader_of(engine: Engine) -> Engine | None:
    if engine.dialect.name != "sqlite":
        return engine  # PostgreSQL: reads never wait for writers
    database = engine.url.database or ""
    if not database or database == ":memory:":
        return None
    # The store's engine begins every transaction IMMEDIATE (as a writer); a
    # reader must not, or it would queue behind the writer it reads beside.
    return create_store_engine(engine.url, read_only=True)


def _pragma(connection: Connection, setting: str) -> None:
    """A connection setting, sent outside any transaction (no BEGIN, no lock)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA {setting}")
