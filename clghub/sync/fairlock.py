"""A lock granted first come, first served: the sync's writers take turns at the store.

SQLite has one writer at a time. Left to its busy handler, a waiting writer
sleeps and polls (up to 100 ms a try), and a writer that commits and begins
again at once can keep the lock for long stretches: one source starves while
the other writes. Queueing the writers in-process instead hands the store
over the moment it is free, in the order they asked for it.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType

__all__ = ["FairLock"]


class FairLock:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._held = False

    def acquire(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by release(), which hands the lock over to us

    def release(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._held = False

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
