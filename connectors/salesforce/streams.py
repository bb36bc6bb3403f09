"""Salesforce streams: ``queryAll`` on a ``SystemModstamp`` cursor, Bulk API 2.0 for big first loads.

The incremental pattern of mature connectors: read the window
``[cursor - lookback, sync start)`` through ``queryAll`` (so deletes arrive as
rows with ``IsDeleted``), ordered by ``SystemModstamp, Id``. A page's
checkpoint is the last ``(SystemModstamp, Id)`` committed, so a resumed run
continues with ``(SystemModstamp, Id) > (ts, id)``: rows that share a
timestamp are neither lost nor read twice. The cursor moves to the window's
end only when the window is complete.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from clghub.config.models import SalesforceSourceConfig
from clghub.connectors.salesforce.client import SalesforceClient
from clghub.http import ApiError
from clghub.sync.casts import to_datetime
from clghub.sync.mapping import StreamMapping
from clghub.sync.stream import Page, StreamState

__all__ = ["SalesforceStream", "soql_datetime", "soql_string"]

log = logging.getLogger(__name__)

BULK_PAGE_RECORDS = 10_000
BULK_PART_RECORDS = 2_000
"""A bulk result page is parsed and handed on in parts of this many records
(the REST page size), so a large page never sits in memory whole as records.
Every part but the page's last resumes at that same page: a kill re-reads
rows already written, never skips any."""
_BULK_POLL_MAX_SECONDS = 10.0


def soql_string(value: str) -> str:
    """A SOQL string literal: quotes and backslashes escaped, never interpolated raw."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace('"', '\\"')
    )
    return f"'{escaped}'"


def soql_datetime(moment: datetime) -> str:
    """SOQL datetime literal with milliseconds (SystemModstamp has millisecond precision)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def _now_ms() -> datetime:
    """Now, to the millisecond: the precision of the APIs' modification stamps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


class SalesforceStream:
    source = "salesforce"

    def __init__(
        self,
        client: SalesforceClient,
        sobject: str,
        mapping: StreamMapping,
        config: SalesforceSourceConfig,
    ) -> None:
        self.client = client
        self.name = sobject
        self.mapping = mapping
        self.config = config
        self.warnings: list[str] = []
        self._fields: list[str] | None = None

    # -- schema --------------------------------------------------------------

    def fields(self) -> list[str]:
        """The mapped fields that exist in this org (schema drift drops the rest, with a warning)."""
        if self._fields is not None:
            return self._fields
        describe = self.client.describe(self.name)
        available = {f["name"] for f in describe.get("fields", [])}
        wanted = self.mapping.source_fields()
        missing = {f for f in wanted if f not in available}
        essential = {self.mapping.id_field, self.mapping.modified_field} & missing
        if essential:
            raise ApiError(
                "Salesforce",
                400,
                f"{self.name} has no field {sorted(f for f in essential if f)[0]}",
                "INVALID_FIELD",
            )
        if missing:
            message = (
                f"{self.name}: mapped fields missing in Salesforce, skipped: {', '.join(sorted(missing))} "
                f"(see {self.mapping.label}); their columns keep their last values"
            )
            log.warning(message)
            self.warnings.append(message)
            self.mapping = self.mapping.without(missing)
        self._fields = [f for f in wanted if f not in missing]
        return self._fields

    # -- reading -------------------------------------------------------------

    def read(self, state: StreamState) -> Iterator[Page]:
        fields = self.fields()
        modstamp = self.mapping.modified_field or "SystemModstamp"
        position = dict(state.position)
        if position.get("window_end"):
            window_end = datetime.fromisoformat(position["window_end"])
            start = datetime.fromisoformat(position["start"]) if position.get("start") else None
        else:
            window_end = _now_ms()
            cursor = None if state.full_refresh else state.cursor
            start = (
                datetime.fromisoformat(cursor) - timedelta(minutes=self.config.lookback_minutes)
                if cursor
                else None
            )
            position = {"window_end": _iso(window_end), "start": _iso(start) if start else None}
        first_load = start is None
        if position.get("bulk_job") or (
            first_load and not position.get("ts") and self._large(window_end)
        ):
            yield from self._read_bulk(fields, modstamp, window_end, position)
            return
        yield from self._read_rest(fields, modstamp, start, window_end, position, state.cursor)

    def _where(
        self, modstamp: str, start: datetime | None, end: datetime, after: tuple[str, str] | None
    ) -> str:
        clauses = [f"{modstamp} < {soql_datetime(end)}"]
        if start is not None:
            clauses.insert(0, f"{modstamp} >= {soql_datetime(start)}")
        if after is not None:
            stamp = soql_datetime(datetime.fromisoformat(after[0]))
            clauses.append(
                f"({modstamp} > {stamp} OR ({modstamp} = {stamp} AND Id > {soql_string(after[1])}))"
            )
        return " AND ".join(clauses)

    def _large(self, window_end: datetime) -> bool:
        if self.config.bulk_threshold <= 0:
            return False
        modstamp = self.mapping.modified_field or "SystemModstamp"
        soql = (
            f"SELECT COUNT() FROM {self.name} WHERE {self._where(modstamp, None, window_end, None)}"
        )
        total = int(self.client.query_page(soql).get("totalSize", 0))
        return total > self.config.bulk_threshold

    def _read_rest(
        self,
        fields: list[str],
        modstamp: str,
        start: datetime | None,
        window_end: datetime,
        position: dict[str, Any],
        cursor: str | None,
    ) -> Iterator[Page]:
        after = (position["ts"], position["id"]) if position.get("ts") else None
        soql = (
            f"SELECT {', '.join(fields)} FROM {self.name} WHERE {self._where(modstamp, start, window_end, after)} "
            f"ORDER BY {modstamp} ASC, Id ASC"
        )
        mode = "full" if start is None else "incremental"
        result = self.client.query_page(soql)
        while True:
            records = [_flatten(r) for r in result.get("records", [])]
            done = bool(result.get("done", True)) or not result.get("nextRecordsUrl")
            if done:
                yield Page(records, cursor=_iso(window_end), position={}, mode=mode)
                return
            last = records[-1]
            stamp = to_datetime(last.get(modstamp))
            checkpoint = {
                **position,
                "ts": _iso(stamp) if stamp else position.get("ts"),
                "id": last.get("Id"),
            }
            yield Page(records, cursor=cursor, position=checkpoint, mode=mode)
            result = self.client.query_more(str(result["nextRecordsUrl"]))

    # -- Bulk API 2.0 ----------------------------------------------------------

    def _read_bulk(
        self, fields: list[str], modstamp: str, window_end: datetime, position: dict[str, Any]
    ) -> Iterator[Page]:
        job_id = position.get("bulk_job")
        locator = position.get("locator") or ""
        if job_id and not self._job_usable(str(job_id)):
            log.info("%s: bulk job %s is gone; starting a new one", self.name, job_id)
            job_id, locator = None, ""
        if not job_id:
            soql = f"SELECT {', '.join(fields)} FROM {self.name} WHERE {self._where(modstamp, None, window_end, None)}"
            job = self.client.restful(
                "jobs/query", method="POST", json={"operation": "queryAll", "query": soql}
            )
            job_id = str(job["id"])
            self._wait(job_id)
        while True:
            text, next_locator = self._bulk_page(job_id, locator)
            this_page = {**position, "bulk_job": job_id, "locator": locator}
            parts = _csv_parts(text, BULK_PART_RECORDS)
            part = next(parts, [])
            for following in parts:
                yield Page(part, cursor=None, position=this_page, mode="bulk")
                part = following
            if not next_locator or next_locator == "null":
                yield Page(part, cursor=_iso(window_end), position={}, mode="bulk")
                return
            locator = next_locator
            yield Page(
                part,
                cursor=None,
                position={**position, "bulk_job": job_id, "locator": locator},
                mode="bulk",
            )

    def _bulk_page(self, job_id: str, locator: str) -> tuple[str, str]:
        """One page of a bulk job's results: its CSV text and the next page's locator."""
        params: dict[str, Any] = {"maxRecords": BULK_PAGE_RECORDS}
        if locator:
            params["locator"] = locator
        response = self.client.raw(
            "GET", f"jobs/query/{job_id}/results", what="bulk results", params=params
        )
        return response.content.decode("utf-8"), response.headers.get("Sforce-Locator", "null")

    def _job_usable(self, job_id: str) -> bool:
        try:
            job = self.client.restful(f"jobs/query/{job_id}")
        except ApiError:
            return False
        return bool(job) and job.get("state") == "JobComplete"

    def _wait(self, job_id: str) -> None:
        delay = 0.2
        while True:
            job = self.client.restful(f"jobs/query/{job_id}")
            state = job.get("state")
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                raise ApiError(
                    "Salesforce",
                    500,
                    f"bulk query job {job_id} {state}: {job.get('errorMessage', '')}",
                )
            time.sleep(delay)
            delay = min(delay * 2, _BULK_POLL_MAX_SECONDS)


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "attributes"}


def _csv_parts(text: str, size: int) -> Iterator[list[dict[str, Any]]]:
    """Bulk CSV as records, ``size`` at a time (null is an empty field).

    The same records csv.DictReader gives, without building each one twice.
    """
    reader = csv.reader(io.StringIO(text.replace("\x00", "")))
    header = next(reader, None)
    if header is None:
        return
    width = len(header)
    part: list[dict[str, Any]] = []
    for row in reader:
        if not row:
            continue  # DictReader skips blank lines too
        if len(row) != width:
            part.append(_ragged(header, row))
        else:
            part.append(dict(zip(header, [v or None for v in row], strict=True)))
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def _ragged(header: list[str], row: list[str]) -> dict[str, Any]:
    """A row with too few or too many fields, as DictReader reads it (then empty -> None)."""
    record: dict[Any, Any] = dict(zip(header, row, strict=False))
    for name in header[len(row) :]:
        record[name] = None
    if len(row) > len(header):
        record[None] = row[len(header) :]
    return {k: (v if v != "" else None) for k, v in record.items()}
