"""The stream protocol: what a connector implements for the sync runner.

A stream yields pages of raw records, each with the checkpoint to persist
once that page is in the store. The runner commits a page's rows and its
checkpoint in one transaction, so a crash at any point resumes from the
last committed page: nothing lost, nothing duplicated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from clghub.checks import CheckResult
from clghub.sync.mapping import SourceMapping, StreamMapping

__all__ = ["Connector", "Page", "Stream", "StreamState"]


@dataclass
class StreamState:
    """What the store remembers of a stream between runs."""

    cursor: str | None = None
    """Where the last complete run got to (e.g. an ISO timestamp)."""
    position: dict[str, Any] = field(default_factory=dict)
    """Where an unfinished run stopped (empty once a run completes)."""
    full_refresh: bool = False


@dataclass
class Page:
    records: list[dict[str, Any]]
    cursor: str | None
    """The stream's cursor after this page."""
    position: dict[str, Any] = field(default_factory=dict)
    """Where to resume if the run stops after this page; empty on the last page."""
    mode: str = "incremental"
    """incremental, full or bulk: how the page was read (for the run log)."""


class Stream(Protocol):
    source: str
    name: str
    mapping: StreamMapping

    def read(self, state: StreamState) -> Iterator[Page]:
        """Pages from ``state`` on; the last page carries the new cursor and no position."""
        ...


class Connector(Protocol):
    source: str

    def streams(self, mapping: SourceMapping) -> Sequence[Stream]:
        """The streams to sync, in dependency order (owners before accounts before deals)."""
        ...

    def check(self, mapping: SourceMapping) -> list[CheckResult]:
        """Connection, credentials and the mapped fields against the live schema."""
        ...

    def close(self) -> None: ...
