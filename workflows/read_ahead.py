"""The value score's usage totals, read on a second connection while the earlier steps run.

The usage table is by far the largest thing the workflows read, and the
value score's totals over it need nothing an earlier step writes: only
``usage_daily`` and the configuration. The steps before the value score
(ARR, retention, time to value) keep one core of the database busy at a
time; read beside them, the usage scan no longer adds its own time to the
run. The value score then takes the rows as they were read (see
:func:`clghub.workflows.value_score.compute`).

PostgreSQL reads beside writers anyway; a SQLite store in a file reads
through its write-ahead log without waiting for the writer (a store in
memory has no second connection to read on, and reads in the step). If the
read fails, the value score reads the usage itself, as it would without
the read-ahead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine, Row, text

from clghub.config.models import ClghubConfig
from clghub.store.engine import create_store_engine
from clghub.workflows.value_drivers import usage_totals

__all__ = ["UsageReadAhead", "cancel_query", "usage_query"]

log = logging.getLogger(__name__)


def cancel_query(driver: Any) -> None:
    """Stop what a driver connection is running, from another thread (best effort)."""
    try:
        if hasattr(driver, "cancel_safe"):  # psycopg 3.2+
            driver.cancel_safe()
        elif hasattr(driver, "cancel"):
            driver.cancel()
        else:
            driver.interrupt()  # sqlite3
    except Exception as exc:  # already finished, or the connection is gone
        log.debug("cancel: %s", exc)


def usage_query(dialect: str, config: ClghubConfig, as_of: date) -> Any:
    """The query the value score stores as ``value_usage`` (one plan per backend)."""
    return usage_totals(config, as_of, one_pass=dialect == "postgresql")


class UsageReadAhead:
    """Reads :func:`usage_query` for ``as_of`` in a thread of its own, from construction on."""

    def __init__(self, engine: Engine, config: ClghubConfig, as_of: date) -> None:
        self.as_of = as_of
        self._dialect = engine.dialect.name
        self._query = usage_query(self._dialect, config, as_of)
        # SQLite: the store's engine begins every transaction as a writer; a
        # reader of its own never queues behind the step writing beside it.
        self._engine = (
            create_store_engine(engine.url, read_only=True) if self._dialect == "sqlite" else engine
        )
        self._rows: Sequence[Row[Any]] | None = None
        self._error: BaseException | None = None
        self._driver: Any = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="usage-read-ahead", daemon=True)
        self._thread.start()

    @staticmethod
    def available(engine: Engine) -> bool:
        """Whether the store can be read beside its writer (not SQLite in memory)."""
        if engine.dialect.name != "sqlite":
            return True
        database = engine.url.database or ""
        in_memory = "mode=memory" in database or engine.url.query.get("mode") == "memory"
        return bool(database) and database != ":memory:" and not in_memory

    def _read(self) -> None:
        try:
            with self._engine.begin() as connection:
                with self._lock:
                    self._driver = connection.connection.driver_connection
                if self._dialect == "postgresql":
                    # As the steps' own transactions do (see workflows.score).
                    connection.execute(text("SET LOCAL jit = off"))
                    connection.execute(text("SET LOCAL work_mem = '64MB'"))
                    # One process: parallel workers would take the cores the
                    # steps running meanwhile need; alone, the read has time.
                    connection.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
                self._rows = connection.execute(self._query).all()
        except Exception as exc:  # the value score reads the usage itself
            self._error = exc
        finally:
            with self._lock:
                self._driver = None

    def rows(self) -> Sequence[Row[Any]] | None:
        """The rows, once read; ``None`` if the read failed (logged)."""
        self._thread.join()
        if self._error is not None:
            log.warning(
                "reading usage ahead failed; the value score reads it itself: %s", self._error
            )
            return None
        return self._rows

    def cancel(self) -> None:
        """Stop the read if it is still running (the run stopped or failed before using it)."""
        with self._lock:
            driver = self._driver
        if driver is not None and self._thread.is_alive():
            cancel_query(driver)

    def close(self) -> None:
        """Cancel the read if still running, wait for the thread, let go of the rows."""
        self.cancel()
        self._thread.join()
        self._rows = None
        if self._dialect == "sqlite":
            self._engine.dispose()
