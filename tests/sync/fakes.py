"""A scripted in-memory connector for runner unit tests (the sandbox covers the wire)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from clghub.checks import CheckResult
from clghub.sync.mapping import SourceMapping, StreamMapping
from clghub.sync.stream import Page, StreamState


@dataclass
class ListStream:
    source: str
    name: str
    mapping: StreamMapping
    records: list[dict[str, Any]]
    page_size: int = 2
    fail_after_pages: int | None = None
    reads: list[StreamState] = field(default_factory=list)

    def read(self, state: StreamState) -> Iterator[Page]:
        self.reads.append(state)
        start = int(state.position.get("offset", 0)) if state.position else 0
        for emitted, offset in enumerate(range(start, len(self.records), self.page_size)):
            if self.fail_after_pages is not None and emitted >= self.fail_after_pages:
                raise RuntimeError("connection lost mid-stream")
            chunk = self.records[offset : offset + self.page_size]
            done = offset + self.page_size >= len(self.records)
            yield Page(
                chunk,
                cursor="end" if done else state.cursor,
                position={} if done else {"offset": offset + self.page_size},
            )
        if start >= len(self.records):
            yield Page([], cursor="end")


@dataclass
class ListConnector:
    source: str
    streams_by_name: dict[str, ListStream]

    def streams(self, mapping: SourceMapping) -> list[ListStream]:
        return list(self.streams_by_name.values())

    def check(self, mapping: SourceMapping) -> list[CheckResult]:
        return []

    def close(self) -> None:
        pass
