"""One holder at a time per store: ``clghub run`` and the active scheduler.

PostgreSQL: a session-level advisory lock on a connection held open for as
long as the lock is; the server releases it the moment the holder's
connection dies, so a standby can take over at once.

SQLite: a ``run_lock`` row with a heartbeat. A holder refreshes its
heartbeat every few seconds; a row whose heartbeat is older than
``stale_after`` belongs to a dead process and may be taken over. A holder on
this host whose process is gone (killed, crashed) is taken over at once: a
SQLite store is a local file, so its holders are nearly always local.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Connection, Engine, delete, select, text, update

from clghub.errors import ClghubError
from clghub.store.models import RunLock, table_of, utcnow

__all__ = ["LockHeld", "StoreLock", "holding"]

log = logging.getLogger(__name__)
LOCK = table_of(RunLock)


class LockHeld(ClghubError):
    """Another clghub process holds the lock."""


def _advisory_key(name: str) -> int:
    digest = hashlib.sha256(f"clghub:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _process_gone(owner: str) -> bool:
    """Whether ``owner`` (host:pid:nonce) is a process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # another lock object of this very process: it is alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, under another user
    return False


class StoreLock:
    def __init__(
        self, engine: Engine, name: str, *, stale_after: float = 60.0, heartbeat: float = 10.0
    ) -> None:
        self.engine = engine
        self.name = name
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stale_after = stale_after
        self.heartbeat = heartbeat
        self._connection: Connection | None = None
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()
        self.held = False

    # -- acquiring -------------------------------------------------------------

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            self.held = self._try_advisory()
        else:
            self.held = self._try_row()
            if self.held:
                self._start_heartbeat()
        return self.held

    def _try_advisory(self) -> bool:
        connection = self.engine.connect()
        try:
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": _advisory_key(self.name)}
                ).scalar()
            )
            connection.commit()
        except Exception:
            connection.close()
            raise
        if got:
            self._connection = connection
        else:
            connection.close()
        return got

    def _try_row(self) -> bool:
        now = utcnow()
        with self.engine.begin() as connection:
            row = connection.execute(
                select(LOCK.c.owner, LOCK.c.heartbeat_at).where(LOCK.c.name == self.name)
            ).first()
            if row is not None and row.owner != self.owner:
                if _process_gone(row.owner):
                    why = "its process has ended"
                elif now - row.heartbeat_at >= timedelta(seconds=self.stale_after):
                    why = f"no heartbeat since {row.heartbeat_at}"
                else:
                    return False
                log.warning("taking over lock %s from %s (%s)", self.name, row.owner, why)
            connection.execute(delete(LOCK).where(LOCK.c.name == self.name))
            connection.execute(
                LOCK.insert().values(
                    name=self.name, owner=self.owner, acquired_at=now, heartbeat_at=now
                )
            )
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat):
                try:
                    with self.engine.begin() as connection:
                        moved = connection.execute(
                            update(LOCK)
                            .where(LOCK.c.name == self.name, LOCK.c.owner == self.owner)
                            .values(heartbeat_at=utcnow())
                        ).rowcount
                    if not moved:
                        log.error("lock %s was taken over by another process", self.name)
                        self.held = False
                        return
                except Exception as exc:  # keep beating through a transient database error
                    log.warning("lock %s heartbeat failed: %s", self.name, exc)

        self._beat = threading.Thread(target=beat, name=f"clghub-lock-{self.name}", daemon=True)
        self._beat.start()

    def check(self) -> bool:
        """Whether the lock is still held (PostgreSQL: its connection is still alive).

        The server releases an advisory lock when the holder's connection dies, and
        a standby may then take it: the holder must notice and stand down.
        """
        if self.held and self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
            except Exception as exc:  # any failure means the session, and the lock, are gone
                log.error("lock %s: its database connection failed (%s)", self.name, exc)
                self.held = False
        return self.held

    # -- releasing -------------------------------------------------------------

    def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                if self.held:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": _advisory_key(self.name)}
                    )
                    connection.commit()
            except Exception as exc:  # a dead session has released it already
                log.warning("lock %s: could not unlock (%s); its session is gone", self.name, exc)
            finally:
                self.held = False
                connection.close()
            return
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        with self.engine.begin() as connection:
            connection.execute(
                delete(LOCK).where(LOCK.c.name == self.name, LOCK.c.owner == self.owner)
            )

    def holder(self) -> str | None:
        """Who holds the lock now (SQLite), for messages."""
        if self.engine.dialect.name == "postgresql":
            return None
        with self.engine.connect() as connection:
            return connection.execute(select(LOCK.c.owner).where(LOCK.c.name == self.name)).scalar()


@contextmanager
def holding(engine: Engine, name: str = "run") -> Iterator[StoreLock]:
    """Hold ``name`` for the block, or fail at once (LockHeld) if another process does."""
    lock = StoreLock(engine, name)
    if not lock.try_acquire():
        who = lock.holder()
        raise LockHeld(
            f"another clghub process is running against this store{f' ({who})' if who else ''}; try again when it is done"
        )
    try:
        yield lock
    finally:
        lock.release()
