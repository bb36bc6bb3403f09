"""Product usage streams: a declarative REST API, files (CSV / JSONL) and SQL.

REST and SQL deliver daily rows (account, metric, day, value): upserting them
is idempotent, so a resumed run may re-read a page safely. Files may also
carry raw events: each file is rolled up to daily totals and added to the
store in one transaction with the file's checkpoint, so it counts exactly once.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import logging
import ssl
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import bindparam, create_engine, text

from clghub.config.models import ClghubConfig, FileUsageConfig, RestUsageConfig, SqlUsageConfig
from clghub.config.refs import SecretRef
from clghub.connectors.product_usage.paginators import dig, make_paginator
from clghub.http import RetryPolicy, check_response, classify_httpx_error, response_json
from clghub.sync.casts import to_datetime
from clghub.sync.mapping import UNREADABLE, StreamMapping
from clghub.sync.stream import Page, StreamState

__all__ = ["FileUsageStream", "RestUsageStream", "SqlUsageStream"]

log = logging.getLogger(__name__)

SQL_PAGE_ROWS = 5000
FILE_PAGE_ROWS = 5000


def _later(a: str | None, b: Any) -> str | None:
    """The later of two cursor values (timestamps compared as instants, else as text)."""
    if b is None:
        return a
    candidate = str(b)
    if a is None:
        return candidate
    if len(a) == len(candidate) and a[-1:] == candidate[-1:] == "Z":
        # Same-format UTC timestamps sort as text; skip parsing every record.
        return candidate if candidate > a else a
    try:
        first, second = to_datetime(a), to_datetime(candidate)
        if first is not None and second is not None:
            return candidate if second > first else a
    except ValueError:
        pass
    return max(a, candidate)


class RestUsageStream:
    source = "product_usage"
    name = "daily"

    def __init__(
        self,
        config: RestUsageConfig,
        mapping: StreamMapping,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.mapping = mapping
        self.warnings: list[str] = []
        headers = {"Accept": "application/json"}
        if config.token is not None:
            token = config.token.reveal()
            headers[config.auth_header] = (
                f"{config.auth_scheme} {token}".strip() if config.auth_scheme else token
            )
        self.http = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            headers=headers,
            timeout=config.timeout_seconds,
            verify=ssl.create_default_context(cafile=config.ca_bundle)
            if config.ca_bundle
            else True,
            transport=transport,
        )
        self.policy = RetryPolicy(
            max_retries=config.max_retries, max_wait=config.max_retry_wait_seconds
        )

    def _get(self, url: str, params: dict[str, Any]) -> tuple[httpx.Response, Any]:
        """One page: the response and its parsed body (a truncated body is retried too)."""

        def send() -> tuple[httpx.Response, Any]:
            try:
                # An empty params dict would wipe the query of a Link-header URL.
                response = self.http.get(url, params=params or None)
            except httpx.HTTPError as exc:
                raise classify_httpx_error(exc, "usage API") from None
            check_response(response, "usage API")
            return response, response_json(response)

        return self.policy.call(send)

    def probe(self) -> int:
        """The status of a one-record request (``clghub check``)."""
        response, _ = self._get(self.config.path, {self.config.limit_param: 1})
        return response.status_code

    def read(self, state: StreamState) -> Iterator[Page]:
        cfg = self.config
        paginator = make_paginator(
            cfg.pagination,
            cursor_param=cfg.cursor_param,
            next_cursor_path=cfg.next_cursor_path,
            page_param=cfg.page_param,
            per_page_param=cfg.per_page_param,
            offset_param=cfg.offset_param,
            limit_param=cfg.limit_param,
            page_size=cfg.page_size,
        )
        position = dict(state.position)
        since = position.get("since", None if state.full_refresh else state.cursor)
        high = position.get("high", since)
        request = paginator.first(position.get("paging", {}))
        while True:
            url = str(request.pop("url", "") or cfg.path)
            params: dict[str, Any] = {} if url != cfg.path else dict(request)
            if url == cfg.path:
                if cfg.pagination == "cursor":
                    params.setdefault(cfg.limit_param, cfg.page_size)
                if since:
                    params[cfg.since_param] = since
            response, body = self._get(url, params)
            records = dig(body, cfg.records_path) if cfg.records_path else body
            if not isinstance(records, list):
                raise ValueError(f"usage API: no list at '{cfg.records_path}' in the response")
            for record in records:
                high = _later(high, record.get(cfg.cursor_field))
            following = paginator.next(body, dict(response.headers), len(records))
            if following is None:
                yield Page(
                    records, cursor=high, position={}, mode="incremental" if since else "full"
                )
                return
            yield Page(
                records,
                cursor=state.cursor,
                position={"since": since, "high": high, "paging": paginator.state()},
                mode="incremental" if since else "full",
            )
            request = following

    def close(self) -> None:
        self.http.close()


def _signature(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


class FileUsageStream:
    """Every CSV / JSONL file in a folder (or matching a glob), read once per file."""

    source = "product_usage"

    def __init__(
        self, config: FileUsageConfig, mapping: StreamMapping, base: ClghubConfig, *, events: bool
    ) -> None:
        self.config = config
        self.mapping = mapping
        self.events = events
        self.name = "events" if events else "daily"
        self.base = base
        self.warnings: list[str] = []

    def files(self) -> list[Path]:
        root = self.base.resolve_path(self.config.path)
        if root.is_dir():
            found = [p for p in root.iterdir() if p.suffix.lower() in (".csv", ".jsonl", ".ndjson")]
        else:
            found = [Path(p) for p in glob.glob(str(root))]
        return sorted(p for p in found if p.is_file())

    def _rows(self, path: Path) -> Iterator[dict[str, Any]]:
        kind = self.config.format or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
        with path.open("r", encoding="utf-8", newline="") as handle:
            if kind == "csv":
                for row in csv.DictReader(handle):
                    yield {k: (v if v != "" else None) for k, v in row.items() if k is not None}
            else:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        try:
                            yield dict(orjson.loads(line))
                        except (orjson.JSONDecodeError, TypeError, ValueError):
                            yield {UNREADABLE: f"{path.name} line {number}: not a JSON object"}

    def read(self, state: StreamState) -> Iterator[Page]:
        done: dict[str, str] = (
            {} if state.full_refresh or not state.cursor else json.loads(state.cursor)
        )
        pending = [p for p in self.files() if done.get(p.name) != _signature(p)]
        for path in pending:
            if path.name in done and self.events:
                message = f"{path.name} changed after it was read; events are counted once, so it is skipped"
                log.warning(message)
                self.warnings.append(message)
                continue
            if self.events:
                # The whole file in one page: its totals and its checkpoint commit together.
                yield Page(
                    self._rolled_up(path),
                    cursor=self._mark(done, path),
                    position={},
                    mode="incremental",
                )
                continue
            batch: list[dict[str, Any]] = []
            for row in self._rows(path):
                batch.append(row)
                if len(batch) >= FILE_PAGE_ROWS:
                    yield Page(
                        batch,
                        cursor=json.dumps(done, sort_keys=True),
                        position={"file": path.name},
                        mode="incremental",
                    )
                    batch = []
            yield Page(batch, cursor=self._mark(done, path), position={}, mode="incremental")
        if not pending:
            yield Page([], cursor=json.dumps(done, sort_keys=True), position={}, mode="incremental")

    def _mark(self, done: dict[str, str], path: Path) -> str:
        done[path.name] = _signature(path)
        return json.dumps(done, sort_keys=True)

    def _rolled_up(self, path: Path) -> list[dict[str, Any]]:
        """Sum a file's events per account, metric and day (mapped names), keeping bad rows as they are."""
        totals: dict[tuple[Any, ...], float] = defaultdict(float)
        passthrough: list[dict[str, Any]] = []
        fields = self.mapping.fields
        key_rule, metric_rule, day_rule, value_rule = (
            fields[k] for k in ("account_key", "metric", "day", "value")
        )
        for row in self._rows(path):
            mapped = self.mapping.map(row, source=self.source)
            if mapped.row is None:
                passthrough.append(row)
                continue
            key = (mapped.row["account_key"], mapped.row["metric"], mapped.row["day"])
            totals[key] += float(mapped.row["value"])
        out = [
            {
                key_rule.source or "account_key": k,
                metric_rule.source or "metric": m,
                day_rule.source or "day": d.isoformat(),
                value_rule.source or "value": v,
            }
            for (k, m, d), v in totals.items()
        ]
        return out + passthrough


class SqlUsageStream:
    """Daily rows from any database: ``query`` with a ``:since`` parameter (NULL on the first run)."""

    source = "product_usage"
    name = "daily"

    def __init__(
        self, config: SqlUsageConfig, mapping: StreamMapping, cursor_field: str = "updated_at"
    ) -> None:
        self.config = config
        self.mapping = mapping
        self.cursor_field = cursor_field
        self.warnings: list[str] = []
        url = config.url.reveal() if isinstance(config.url, SecretRef) else config.url
        self.engine = create_engine(url)

    def read(self, state: StreamState) -> Iterator[Page]:
        since = None if state.full_refresh else state.cursor
        high = since
        statement = text(self.config.query).bindparams(bindparam("since", since))
        with self.engine.connect() as connection:
            result = connection.execution_options(
                stream_results=True, yield_per=SQL_PAGE_ROWS
            ).execute(statement)
            columns = list(result.keys())
            while True:
                rows = result.fetchmany(SQL_PAGE_ROWS)
                records = [dict(zip(columns, row, strict=True)) for row in rows]
                for record in records:
                    high = _later(high, record.get(self.cursor_field))
                if len(rows) < SQL_PAGE_ROWS:
                    yield Page(
                        records, cursor=high, position={}, mode="incremental" if since else "full"
                    )
                    return
                # The cursor moves only when the whole result is in: rows need not be ordered.
                yield Page(
                    records,
                    cursor=state.cursor,
                    position={},
                    mode="incremental" if since else "full",
                )

    def close(self) -> None:
        self.engine.dispose()
