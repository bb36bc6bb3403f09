"""Identity as early as it is safe, so that records are linked when they are written.

The run's final pass (:func:`clghub.sync.runner.finalize_links`) gives account
records their accounts source by source, in priority order, once every source
is read. Doing it for a source earlier gives the very same accounts when

1. every source before it in that order is resolved already, and
2. its own account records are all in (its account streams finished).

Resolution reads only the source's own links and the accounts, and only
resolution writes accounts, so nothing the other streams write in between can
change its answer. The gate resolves each source the moment both hold; its
contacts, deals and tickets that follow then get their account as they are
written, instead of being written once unlinked and rewritten by the final
pass. Whatever the gate could not do (a source whose account stream failed
or stopped, and every source after it) the final pass does, as before.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from sqlalchemy import Connection, select

from clghub.config import ClghubConfig
from clghub.store.models import utcnow
from clghub.sync.identity import LINK, resolve_links
from clghub.sync.store_writer import StoreWriter
from clghub.sync.stream import Stream

__all__ = ["IdentityGate", "identity_gate", "identity_order", "is_account_stream"]

log = logging.getLogger(__name__)


class IdentityGate:
    def __init__(
        self,
        order: Sequence[str],
        account_streams: Mapping[str, int],
        resolve: Callable[[str], list[int]],
    ) -> None:
        """``order``: every source that may hold account links, by priority.
        ``account_streams``: per source synced now, how many account streams it reads.
        ``resolve``: resolves one source's pending links; returns the accounts touched.
        """
        self._order = list(order)
        self._pending = {source: count for source, count in account_streams.items() if count}
        self._failed: set[str] = set()
        self._next = 0
        self._resolve = resolve
        self._lock = threading.Lock()
        self.touched: set[int] = set()
        """Accounts the early resolutions touched (the final pass refreshes them)."""

    def start(self) -> None:
        """Resolve the sources that are ready before anything is read."""
        with self._lock:
            self._advance()

    def stream_finished(self, source: str, ok: bool) -> None:
        """One of ``source``'s account streams ended; ``ok`` if it read everything."""
        with self._lock:
            if not ok:
                self._failed.add(source)  # the final pass resolves it and those after it
                return
            if source in self._pending:
                self._pending[source] -= 1
            self._advance()

    def _advance(self) -> None:
        while self._next < len(self._order):
            source = self._order[self._next]
            if source in self._failed or self._pending.get(source, 0) > 0:
                return  # its account records are incomplete, or still coming
            try:
                self.touched.update(self._resolve(source))
            except Exception as exc:  # the final pass tries again, and reports
                log.warning("identity for %s deferred to the end of the run: %s", source, exc)
                self._failed.add(source)
                return
            self._next += 1


def is_account_stream(stream: Stream) -> bool:
    return stream.mapping.target.name == "account"


def identity_order(
    connection: Connection, config: ClghubConfig, also: Iterable[str] = ()
) -> list[str]:
    """The sources in the order identity resolves them: by priority, then by name."""
    order: list[str] = [*config.identity.source_priority]
    known = set(connection.execute(select(LINK.c.source).distinct()).scalars()) | set(also)
    return order + sorted(known - set(order))


def identity_gate(
    config: ClghubConfig, streams: Sequence[Stream], writer: StoreWriter
) -> IdentityGate:
    """The gate for a run that syncs ``streams``, resolving through ``writer``."""
    account_streams = Counter(s.source for s in streams if is_account_stream(s))
    with writer.transaction() as connection:
        order = identity_order(connection, config, {s.source for s in streams})

    def resolve(source: str) -> list[int]:
        with writer.transaction() as connection:
            touched = resolve_links(connection, source, config, utcnow())
        writer.flush()  # committed, the links are seen by the read-ahead lookups
        return touched

    return IdentityGate(order, account_streams, resolve)
