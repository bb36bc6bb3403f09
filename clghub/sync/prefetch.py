"""Read ahead: a stream's next pages are fetched and mapped while the current ones are written.

A producer thread runs the stream's reader, maps each page (the CPU-heavy
half of a sync) and hands it over through a buffer bounded by rows, so memory
stays flat however large the source. The writer takes every page that is
ready, up to a row budget, and commits them in one transaction with the last
page's checkpoint: a checkpoint still never runs ahead of the rows it covers,
and small pages (HubSpot lists 100 records a page) do not cost a commit each.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from clghub.sync.stream import Page

__all__ = ["Stopped", "read_ahead"]

T = TypeVar("T")

_BUFFER_ROWS = 4_000
"""Rows mapped ahead of the writer (at least one page, however large)."""
_BATCH_ROWS = 4_000
"""Rows the writer commits in one transaction (at least one page)."""
_POLL_SECONDS = 0.2


class _Buffer(Generic[T]):
    """A FIFO of ready pages bounded by rows, closed by the end of the stream or an error."""

    def __init__(self, max_rows: int, rows_of: Callable[[T], int]) -> None:
        self._items: deque[T] = deque()
        self._rows_of = rows_of
        self._rows = 0
        self._max_rows = max_rows
        self._changed = threading.Condition()
        self._end: BaseException | None = None
        self._ended = False
        self.cancelled = False

    def put(self, page: T) -> bool:
        """Queue a page; False once the reader has gone away."""
        with self._changed:
            while self._items and self._rows >= self._max_rows and not self.cancelled:
                self._changed.wait(_POLL_SECONDS)
            if self.cancelled:
                return False
            self._items.append(page)
            self._rows += self._rows_of(page)
            self._changed.notify_all()
            return True

    def close(self, error: BaseException | None = None) -> None:
        with self._changed:
            self._ended, self._end = True, error
            self._changed.notify_all()

    def cancel(self) -> None:
        with self._changed:
            self.cancelled = True
            self._changed.notify_all()

    def take(self, max_rows: int, stop: threading.Event) -> list[T] | None:
        """The pages ready now (waiting for one), up to ``max_rows``; None at the end.

        Raises the reader's error once the pages read before it are taken, and
        :class:`Stopped` when ``stop`` is set.
        """
        with self._changed:
            while not self._items and not self._ended:
                if stop.is_set():
                    raise Stopped
                self._changed.wait(_POLL_SECONDS)
            if stop.is_set():
                raise Stopped
            if not self._items:
                if self._end is not None:
                    raise self._end
                return None
            taken = [self._items.popleft()]
            rows = self._rows_of(taken[0])
            while self._items and rows + self._rows_of(self._items[0]) <= max_rows:
                page = self._items.popleft()
                taken.append(page)
                rows += self._rows_of(page)
            self._rows -= rows
            self._changed.notify_all()
            return taken


class Stopped(Exception):
    """The run was asked to stop (SIGTERM); what was committed stays committed."""


def read_ahead(
    pages: Iterator[Page],
    prepare: Callable[[Page], T],
    rows_of: Callable[[T], int],
    stop: threading.Event,
    *,
    buffer_rows: int = _BUFFER_ROWS,
    batch_rows: int = _BATCH_ROWS,
) -> Iterator[list[T]]:
    """Batches of consecutive prepared pages, in order, read and prepared in a background thread.

    ``prepare`` runs in the reader's thread: mapping and getting rows ready
    for the database is CPU work that then overlaps the writer's time in
    the database. ``rows_of`` sizes a prepared page for the buffer. An error
    of the reader is raised here after the pages read before it, so they
    are still written.
    """
    buffer: _Buffer[T] = _Buffer(buffer_rows, rows_of)

    def produce() -> None:
        try:
            for page in pages:
                if not buffer.put(prepare(page)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            buffer.close(exc)
        else:
            buffer.close()

    worker = threading.Thread(target=produce, name="clghub-prefetch", daemon=True)
    worker.start()
    try:
        while (batch := buffer.take(batch_rows, stop)) is not None:
            yield batch
    finally:
        buffer.cancel()
