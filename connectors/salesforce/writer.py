"""Writing value fields to Salesforce Accounts, and tasks for plays.

- Up to ``bulk_threshold`` changed records: sObject Collections,
  ``PATCH composite/sobjects`` with ``allOrNone: false``, 200 records a
  request; each record's result (in request order) says whether it was saved.
- Above it: one Bulk API 2.0 ingest job (``update``) per 100,000 records:
  create, upload the CSV, close, poll, then read ``successfulResults`` and
  ``failedResults``; a record in neither is in doubt and read back next run.
- Before writing, ``describe`` checks every target field exists, is
  updateable and fits its value, and names the custom fields to create.
- Tasks for plays: ``POST sobjects/Task`` on the account, with a key in the
  subject; every try first looks the key up, so a retried or repeated
  creation never makes a second task.

All calls go through :class:`~clghub.connectors.salesforce.client.SalesforceClient`
(retries, re-login, the API quota).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import orjson
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.util import exception_handler

from clghub.config.models import SalesforceWritebackConfig
from clghub.connectors.salesforce.client import SalesforceClient
from clghub.http import ApiError
from clghub.writeback.protocol import (
    FieldCheck,
    FieldInfo,
    RecordWrite,
    TargetField,
    WriteOutcome,
    refuse_unowned,
)
from clghub.writeback.values import ValueSpec, canonical_from_crm, crm_number

__all__ = ["BULK_JOB_RECORDS", "COLLECTION_SIZE", "SalesforceTaskCreator", "SalesforceWriter"]

log = logging.getLogger(__name__)

COLLECTION_SIZE = 200  # sObject Collections' limit per request
BULK_JOB_RECORDS = 100_000  # well under the 150 MB upload limit for value fields
BULK_NULL = "#N/A"  # Bulk API CSV: clears a field (an empty cell leaves it alone)
_SUBJECT_LENGTH = 255
_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_FINAL_JOB_STATES = {"JobComplete", "Failed", "Aborted"}
_NUMBER_TYPES = {"double", "currency", "percent", "int", "long"}
_TEXT_TYPES = {"string", "textarea"}
_COMPATIBLE: dict[str, set[str]] = {
    "number": _NUMBER_TYPES | _TEXT_TYPES,
    "text": _TEXT_TYPES,
    "choice": {"picklist"} | _TEXT_TYPES,
    "datetime": {"datetime", "date"} | _TEXT_TYPES,
}


def _soql_ids(ids: Sequence[str]) -> str:
    return ", ".join(f"'{i}'" for i in ids)


def _error_text(errors: object) -> str:
    if not isinstance(errors, list) or not errors:
        return "refused without a reason"
    parts = []
    for error in errors:
        if isinstance(error, dict):
            fields = error.get("fields") or []
            where = f" ({', '.join(map(str, fields))})" if fields else ""
            parts.append(f"{error.get('statusCode', 'ERROR')}: {error.get('message', '')}{where}")
    return "; ".join(parts) or str(errors)[:300]


class SalesforceWriter:
    """The Salesforce writer of :mod:`clghub.writeback` (see the protocol there)."""

    crm = "salesforce"
    needs_total = True  # above bulk_threshold changed records, Bulk API 2.0

    def __init__(
        self,
        client: SalesforceClient,
        settings: SalesforceWritebackConfig,
        *,
        poll_seconds: float = 0.5,
        max_poll_seconds: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.settings = settings
        self.object = settings.object
        self.owned_fields = frozenset(settings.owned_fields)
        self.mode = ""
        self.write_requests = 0
        self.poll_seconds = poll_seconds
        self.max_poll_seconds = max_poll_seconds
        self._sleep = sleep
        self._types: dict[str, FieldInfo] = {}
        self._specs: dict[str, ValueSpec] = {}
        self._bulk = False

    # -- fields ----------------------------------------------------------------------

    def check_fields(self, targets: Sequence[TargetField]) -> FieldCheck:
        described = self.client.restful(f"sobjects/{self.object}/describe")
        if not isinstance(described, dict):
            raise ApiError("Salesforce", 500, f"describe {self.object} answered {described!r}")
        by_name = {str(f["name"]).lower(): f for f in described.get("fields", [])}
        check = FieldCheck()
        for target in targets:
            found = by_name.get(target.name.lower())
            if found is None:
                check.problems.append(f"{self.object}.{target.name} does not exist")
                check.to_create.append(
                    f"{self.object}.{target.name}: {target.spec.salesforce_type}, "
                    f"label '{target.spec.label}' (Setup > Object Manager > {self.object} > "
                    "Fields & Relationships > New)"
                )
                continue
            info = FieldInfo(
                name=target.name,
                type=str(found.get("type")),
                updateable=bool(found.get("updateable")),
                length=int(found.get("length") or 0) or None,
                options=tuple(
                    str(v.get("value"))
                    for v in found.get("picklistValues") or []
                    if isinstance(v, dict) and v.get("active", True)
                ),
            )
            problem = self._misfit(target.spec, info)
            if problem:
                check.problems.append(f"{self.object}.{target.name}: {problem}")
                continue
            check.fields[target.name] = info
        self._types = dict(check.fields)
        self._specs = {t.name: t.spec for t in targets}
        return check

    @staticmethod
    def _misfit(spec: ValueSpec, info: FieldInfo) -> str | None:
        if not info.updateable:
            return "is not updateable by the integration user (check field-level security)"
        if info.type not in _COMPATIBLE[spec.kind]:
            return f"is a {info.type} field; {spec.name} needs {spec.salesforce_type}"
        if info.type == "picklist" and spec.choices and info.options:
            missing = [c for c in spec.choices if c not in info.options]
            if missing:
                return f"picklist lacks the values {', '.join(missing)}"
        return None

    # -- writing ---------------------------------------------------------------------

    def batch_size(self, changed_records: int | None) -> int:
        self._bulk = changed_records is not None and changed_records > self.settings.bulk_threshold
        self.mode = "bulk" if self._bulk else "collections"
        return BULK_JOB_RECORDS if self._bulk else COLLECTION_SIZE

    def write(self, batch: Sequence[RecordWrite]) -> list[WriteOutcome]:
        if not self._types:
            raise RuntimeError("check_fields must run before write")
        refuse_unowned(self.crm, self.owned_fields, frozenset(f for r in batch for f in r.values))
        if self._bulk:
            return self._bulk_write(batch)
        outcomes: list[WriteOutcome] = []
        for start in range(0, len(batch), COLLECTION_SIZE):
            outcomes += self._collection(batch[start : start + COLLECTION_SIZE])
        return outcomes

    def _json_value(self, field: str, text: str | None) -> object:
        if text is None:
            return None
        kind = self._types[field].type
        if kind in ("int", "long"):
            return int(crm_number(text))
        if kind in _NUMBER_TYPES:
            return crm_number(text)
        if kind == "date":
            return text[:10]
        return text

    def _collection(self, chunk: Sequence[RecordWrite]) -> list[WriteOutcome]:
        """One sObject Collections update; a retry first reads which records already hold
        their values (an answer lost on the way back), so no record is written twice."""
        timeout = self.client.config.timeout_seconds
        held: set[str] = set()
        tries = 0

        def send(sf: Salesforce) -> list[tuple[RecordWrite, object]]:
            nonlocal tries
            tries += 1
            if tries > 1:
                held.update(self._holding(sf, [r for r in chunk if r.record_id not in held]))
            todo = [r for r in chunk if r.record_id not in held]
            if not todo:
                return []
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": self.object},
                        "id": record.record_id,
                        **{f: self._json_value(f, v) for f, v in record.values.items()},
                    }
                    for record in todo
                ],
            }
            self.write_requests += 1
            results = sf.restful(
                "composite/sobjects",
                method="PATCH",
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            )
            if not isinstance(results, list) or len(results) != len(todo):
                # The answer does not say record by record: read them back next run.
                return [(record, None) for record in todo]
            return list(zip(todo, results, strict=True))

        answered = self.client.call(send, what="update records (composite/sobjects)")
        outcomes = [
            WriteOutcome(record.record_id, ok=True) for record in chunk if record.record_id in held
        ]
        for record, result in answered:
            if result is None:
                outcomes.append(WriteOutcome(record.record_id, ok=False, in_doubt=True))
            elif isinstance(result, dict) and result.get("success") is True:
                outcomes.append(WriteOutcome(record.record_id, ok=True))
            else:
                errors = result.get("errors") if isinstance(result, dict) else None
                outcomes.append(WriteOutcome(record.record_id, ok=False, error=_error_text(errors)))
        return outcomes

    def _holding(self, sf: Salesforce, records: Sequence[RecordWrite]) -> set[str]:
        """The records that hold every value they were about to be sent."""
        ids = [r.record_id for r in records if _ID.match(r.record_id)]
        if not ids:
            return set()
        fields = sorted({f for r in records for f in r.values})
        soql = f"SELECT Id, {', '.join(fields)} FROM {self.object} WHERE Id IN ({_soql_ids(ids)})"
        rows = sf.query_all(soql, timeout=self.client.config.timeout_seconds).get("records") or []
        current = {str(row["Id"]): row for row in rows}
        return {
            record.record_id
            for record in records
            if record.record_id in current
            and all(
                canonical_from_crm(self._specs[f], current[record.record_id].get(f)) == v
                for f, v in record.values.items()
            )
        }

    # -- Bulk API 2.0 ingest -------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> requests.Response:
        """One request on the client's session with our own content type, checked and retried."""
        timeout = self.client.config.timeout_seconds

        def send(sf: Salesforce) -> requests.Response:
            headers = {**sf.headers, "Content-Type": content_type, "Accept": accept}
            response = sf.session.request(
                method, sf.base_url + path, headers=headers, data=body, timeout=timeout
            )
            limit = response.headers.get("Sforce-Limit-Info")
            if limit:
                sf.api_usage = sf.parse_api_usage(limit)
            if response.status_code >= 300:
                exception_handler(response, name=what)
            _ = response.content  # a dropped body is a retriable error here
            return response

        self.write_requests += 1
        return self.client.call(send, what=what)

    def _csv(self, batch: Sequence[RecordWrite], fields: list[str]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["Id", *fields])
        for record in batch:
            row = [record.record_id]
            for field in fields:
                if field not in record.values:
                    row.append("")  # not part of this record's change: left alone
                    continue
                text = record.values[field]
                if text is None:
                    row.append(BULK_NULL)
                elif self._types[field].type == "date":
                    row.append(text[:10])
                else:
                    row.append(text)
            writer.writerow(row)
        return out.getvalue().encode("utf-8")

    def _bulk_write(self, batch: Sequence[RecordWrite]) -> list[WriteOutcome]:
        fields = sorted({f for record in batch for f in record.values})
        created = self._send(
            "POST",
            "jobs/ingest",
            what="create ingest job",
            body=orjson.dumps(
                {
                    "object": self.object,
                    "operation": "update",
                    "contentType": "CSV",
                    "lineEnding": "LF",
                    "columnDelimiter": "COMMA",
                }
            ),
        ).json()
        job_id = str(created["id"])
        try:
            self._send(
                "PUT",
                f"jobs/ingest/{job_id}/batches",
                what="upload ingest data",
                body=self._csv(batch, fields),
                content_type="text/csv",
            )
        except ApiError as exc:
            # A retry after a dropped answer finds the data already there.
            if exc.code != "INVALIDJOBSTATE":
                raise
        try:
            self._send(
                "PATCH",
                f"jobs/ingest/{job_id}",
                what="close ingest job",
                body=orjson.dumps({"state": "UploadComplete"}),
            )
        except ApiError as exc:
            if exc.code != "INVALIDJOBSTATE":
                raise
        info = self._poll(job_id)
        state = str(info.get("state"))
        outcomes: dict[str, WriteOutcome] = {}
        if state in ("JobComplete", "Failed"):
            for row in self._results(job_id, "successfulResults"):
                record_id = row.get("Id") or row.get("sf__Id") or ""
                outcomes[record_id] = WriteOutcome(record_id, ok=True)
            for row in self._results(job_id, "failedResults"):
                record_id = row.get("Id") or row.get("sf__Id") or ""
                error = (row.get("sf__Error") or "refused").removesuffix(" --")
                outcomes[record_id] = WriteOutcome(record_id, ok=False, error=error)
        if state != "JobComplete":
            log.warning(
                "Salesforce ingest job %s ended %s: %s", job_id, state, info.get("errorMessage")
            )
        # Records the job reports on neither list: in doubt, read back next run.
        return [
            outcomes.get(r.record_id) or WriteOutcome(r.record_id, ok=False, in_doubt=True)
            for r in batch
        ]

    def _poll(self, job_id: str) -> dict[str, Any]:
        waited = 0.0
        pause = self.poll_seconds
        while True:
            info: dict[str, Any] = self._send(
                "GET", f"jobs/ingest/{job_id}", what="ingest job status"
            ).json()
            if info.get("state") in _FINAL_JOB_STATES:
                return info
            if waited >= self.max_poll_seconds:
                raise ApiError(
                    "Salesforce",
                    504,
                    f"ingest job {job_id} still {info.get('state')} after {waited:.0f}s; the next run reads its records back",
                )
            self._sleep(pause)
            waited += pause
            pause = min(pause * 2, 10.0)

    def _results(self, job_id: str, kind: str) -> list[dict[str, str]]:
        response = self._send(
            "GET", f"jobs/ingest/{job_id}/{kind}/", what=f"ingest {kind}", accept="text/csv"
        )
        text = response.content.decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(text, newline="")))

    # -- reading back ----------------------------------------------------------------------

    def read(
        self, record_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, object]]:
        ids = [i for i in record_ids if _ID.match(i)]
        found: dict[str, dict[str, object]] = {}
        columns = ", ".join(["Id", *fields])
        for start in range(0, len(ids), COLLECTION_SIZE):
            chunk = ids[start : start + COLLECTION_SIZE]
            soql = f"SELECT {columns} FROM {self.object} WHERE Id IN ({_soql_ids(chunk)})"
            page = self.client.query_page(soql, include_deleted=False)
            while True:
                for record in page.get("records", []):
                    found[str(record["Id"])] = {f: record.get(f) for f in fields}
                if page.get("done", True) or not page.get("nextRecordsUrl"):
                    break
                page = self.client.query_more(str(page["nextRecordsUrl"]))
        # Salesforce answers 18-character ids; a 15-character one is their prefix.
        by_prefix = {rid[:15]: values for rid, values in found.items()}
        return {
            rid: found.get(rid) or by_prefix[rid[:15]]
            for rid in record_ids
            if rid in found or rid[:15] in by_prefix
        }

    def close(self) -> None:
        self.client.close()


class SalesforceTaskCreator:
    """Tasks on Salesforce Accounts, created at most once per key."""

    crm = "salesforce"

    def __init__(self, client: SalesforceClient, *, object_name: str = "Account") -> None:
        self.client = client
        self.object_name = object_name

    def create_task(
        self,
        *,
        record_id: str,
        key: str,
        subject: str,
        body: str,
        owner_ref: str | None,
        due: date,
    ) -> str:
        """The id of the task carrying ``key`` on the record, created if there is none.

        The lookup runs inside every try, so a try whose answer was lost is
        found by the next one instead of creating a second task.
        """
        if not _ID.match(record_id):
            raise ApiError(
                "Salesforce", 400, f"'{record_id}' is not a Salesforce id", "MALFORMED_ID"
            )
        room = _SUBJECT_LENGTH - len(key) - 1
        full_subject = f"{subject[: max(0, room)].rstrip()} {key}"
        payload: dict[str, object] = {
            "WhatId": record_id,
            "Subject": full_subject,
            "Description": body,
            "ActivityDate": due.isoformat(),
            "Priority": "High",
            "Status": "Not Started",
        }
        if owner_ref and _ID.match(owner_ref) and owner_ref.startswith("005"):
            payload["OwnerId"] = owner_ref
        pattern = (
            key.replace("\\", "\\\\").replace("'", "\\'").replace("%", "\\%").replace("_", "\\_")
        )
        soql = f"SELECT Id FROM Task WHERE WhatId = '{record_id}' AND Subject LIKE '%{pattern}' ORDER BY CreatedDate LIMIT 1"
        timeout = self.client.config.timeout_seconds

        def find_or_create(sf: Salesforce) -> str:
            existing = sf.query_all(soql, include_deleted=True, timeout=timeout)
            records = existing.get("records") or []
            if records:
                return str(records[0]["Id"])
            created = sf.restful(
                "sobjects/Task", method="POST", data=orjson.dumps(payload), timeout=timeout
            )
            if not isinstance(created, dict) or not created.get("id"):
                raise ApiError("Salesforce", 500, f"task creation answered {created!r}")
            return str(created["id"])

        return self.client.call(find_or_create, what="create task")

    def close(self) -> None:
        self.client.close()
