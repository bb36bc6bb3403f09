"""Bulk API 2.0: query jobs (CSV result pages by locator) and ingest jobs.

Job lifecycle as Salesforce reports it. A query job is created
``UploadComplete`` (its rows are fixed then, like a REST query cursor),
reports ``InProgress`` on the first status poll and ``JobComplete`` after.
An ingest job is created ``Open``, takes one CSV upload, and processes it
when the client sets ``UploadComplete``; it too reports ``InProgress`` once
before ``JobComplete``. Clients therefore have to poll, as they must with
the real service. Ingest rows are independent: a bad row fails alone and
lands in ``failedResults`` with ``sf__Error`` = ``CODE:message:fields --``.
"""

from __future__ import annotations

import base64
import csv
import io
from collections import OrderedDict
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from clghub.sandbox.apis import soql
from clghub.sandbox.apis.sf_http import (
    NOT_FOUND_MESSAGE,
    SalesforceError,
    json_response,
    parse_json_body,
)
from clghub.sandbox.apis.sf_query import Snapshot, csv_page, release_snapshot, take_snapshot
from clghub.sandbox.apis.sf_sobjects import transaction
from clghub.sandbox.apis.sf_wire import CSV_DELIMITERS, LINE_ENDINGS, csv_header
from clghub.sandbox.apis.sf_write import (
    INTEGRATION_USER_ID,
    WriteFailure,
    create_record,
    delete_record,
    update_record,
)
from clghub.sandbox.state import SandboxState, sf_id

__all__ = ["BulkResource"]

CSV_TYPE = "text/csv"
DEFAULT_MAX_RECORDS = 50_000
_JOB_CAPACITY = 200
_INGEST_OPERATIONS = ("insert", "update", "upsert", "delete")


def _wire_time(storage: str) -> str:
    return storage[:23] + "+0000"


@dataclass
class _Job:
    id: str
    operation: str
    sobject: str
    created: str
    line_ending: str
    column_delimiter: str
    state: str
    api_version: str
    polls: int = 0
    processed: bool = False
    """The job's work is done; status polls move it on to JobComplete."""
    extra: dict[str, object] = field(default_factory=dict)

    def info(self, *, detailed: bool) -> dict[str, object]:
        body: dict[str, object] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.sobject,
            "createdById": INTEGRATION_USER_ID,
            "createdDate": _wire_time(self.created),
            "systemModstamp": _wire_time(self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version.lstrip("v")),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        body.update(self.extra)
        if not detailed:
            for key in ("numberRecordsProcessed", "numberRecordsFailed", "retries", "errorMessage"):
                body.pop(key, None)
        return body

    @property
    def delimiter(self) -> str:
        return CSV_DELIMITERS[self.column_delimiter]

    @property
    def newline(self) -> str:
        return LINE_ENDINGS[self.line_ending]


@dataclass
class _QueryJob(_Job):
    snapshot: Snapshot | None = None


@dataclass
class _IngestJob(_Job):
    external_id: str | None = None
    upload: str | None = None
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)


def _not_found() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)


def _encode_locator(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _csv_text(rows: list[list[str]], delimiter: str, newline: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_ALL)
    writer.writerows(rows)
    return buffer.getvalue()


class BulkResource:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.query_jobs: OrderedDict[str, _QueryJob] = OrderedDict()
        self.ingest_jobs: OrderedDict[str, _IngestJob] = OrderedDict()

    def reset(self) -> None:
        """Forget every job (their snapshot rows go with the query cursors' reset)."""
        self.query_jobs.clear()
        self.ingest_jobs.clear()

    # -- shared ----------------------------------------------------------------

    async def _options(self, request: Request) -> dict[str, object]:
        body = await parse_json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(400, "INVALIDJOB", "The job definition must be a JSON object")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in CSV_DELIMITERS:
            raise SalesforceError(400, "INVALIDJOB", f"Invalid columnDelimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise SalesforceError(400, "INVALIDJOB", f"Invalid lineEnding: {line_ending}")
        if body.get("contentType", "CSV") != "CSV":
            raise SalesforceError(400, "INVALIDJOB", "Only contentType CSV is supported")
        return body

    def _new_id(self) -> str:
        return sf_id("750", self.state.next_number("sf:bulk-job"))

    @staticmethod
    def _advance(job: _Job) -> None:
        """A status poll: jobs report InProgress once, then JobComplete."""
        if job.state in ("UploadComplete", "InProgress") and job.processed:
            job.polls += 1
            job.state = "InProgress" if job.polls == 1 else "JobComplete"

    def _remember(self, jobs: OrderedDict[str, _QueryJob] | OrderedDict[str, _IngestJob]) -> None:
        while len(jobs) > _JOB_CAPACITY:
            _, oldest = jobs.popitem(last=False)
            if isinstance(oldest, _QueryJob) and oldest.snapshot is not None:
                release_snapshot(self.state.db, oldest.snapshot)

    # -- query jobs -------------------------------------------------------------

    async def create_query(self, request: Request, version: str) -> Response:
        body = await self._options(request)
        operation = body.get("operation", "query")
        if operation not in ("query", "queryAll"):
            raise SalesforceError(
                400, "INVALIDJOB", f"Invalid operation for a query job: {operation}"
            )
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise SalesforceError(400, "INVALIDJOB", "A query job needs a query")
        try:
            parsed = soql.parse(text)
            if parsed.count is not None:
                raise SalesforceError(
                    400, "API_ERROR", "Aggregate queries are not supported by Bulk API 2.0"
                )
            snapshot = take_snapshot(
                self.state.db, parsed, include_deleted=operation == "queryAll", now=self.state.now()
            )
        except soql.SoqlError as error:
            raise SalesforceError(400, error.code, error.render(text)) from None
        job = _QueryJob(
            id=self._new_id(),
            operation=str(operation),
            sobject=parsed.sobject,
            created=self.state.timestamp(),
            line_ending=str(body.get("lineEnding", "LF")),
            column_delimiter=str(body.get("columnDelimiter", "COMMA")),
            state="UploadComplete",
            api_version=version,
            processed=True,
            snapshot=snapshot,
        )
        job.extra.update(
            {
                "jobType": "V2Query",
                "numberRecordsProcessed": snapshot.total,
                "retries": 0,
            }
        )
        self.query_jobs[job.id] = job
        self._remember(self.query_jobs)
        return json_response(job.info(detailed=False))

    def _query_job(self, request: Request) -> _QueryJob:
        job = self.query_jobs.get(request.path_params["job_id"])
        if job is None:
            raise _not_found()
        return job

    async def get_query(self, request: Request, version: str) -> Response:
        job = self._query_job(request)
        self._advance(job)
        return json_response(job.info(detailed=True))

    async def list_query(self, request: Request, version: str) -> Response:
        records = [job.info(detailed=False) for job in self.query_jobs.values()]
        return json_response({"done": True, "records": records, "nextRecordsUrl": None})

    async def abort_query(self, request: Request, version: str) -> Response:
        job = self._query_job(request)
        body = await parse_json_body(request)
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            raise SalesforceError(400, "INVALIDJOBSTATE", "A query job can only be set to Aborted")
        if job.state == "JobComplete":
            raise SalesforceError(400, "INVALIDJOBSTATE", "The job is already complete")
        job.state = "Aborted"
        return json_response(job.info(detailed=False))

    async def delete_query(self, request: Request, version: str) -> Response:
        job = self._query_job(request)
        del self.query_jobs[job.id]
        if job.snapshot is not None:
            release_snapshot(self.state.db, job.snapshot)
        return Response(status_code=204)

    async def query_results(self, request: Request, version: str) -> Response:
        job = self._query_job(request)
        if job.state != "JobComplete" or job.snapshot is None:
            raise SalesforceError(
                400, "INVALIDJOBSTATE", f"The job is {job.state}: its results are not ready"
            )
        locator = request.query_params.get("locator") or ""
        start = 0 if locator in ("", "null") else _decode_locator(locator)
        if start is None or start > job.snapshot.total:
            raise SalesforceError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
        raw_max = request.query_params.get("maxRecords", str(DEFAULT_MAX_RECORDS))
        if not raw_max.isdigit() or int(raw_max) < 1:
            raise SalesforceError(400, "INVALIDREQUEST", f"Invalid maxRecords: {raw_max}")
        count = int(raw_max)
        lines = csv_page(self.state.db, job.snapshot, start, count, job.delimiter)
        end = min(job.snapshot.total, start + count)
        newline = job.newline.encode()
        parts = [csv_header(job.snapshot.fields, job.delimiter).encode(), *lines]
        body = newline.join(parts) + newline
        headers = {
            "Sforce-Locator": _encode_locator(end) if end < job.snapshot.total else "null",
            "Sforce-NumberOfRecords": str(len(lines)),
        }
        return Response(body, media_type=CSV_TYPE, headers=headers)

    # -- ingest jobs --------------------------------------------------------------

    async def create_ingest(self, request: Request, version: str) -> Response:
        body = await self._options(request)
        operation = body.get("operation")
        if operation not in _INGEST_OPERATIONS:
            raise SalesforceError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        sobject = soql.canonical_object(str(body.get("object", "")))
        if sobject is None:
            raise SalesforceError(400, "INVALIDJOB", f"Invalid object: {body.get('object')}")
        external_id = body.get("externalIdFieldName")
        if operation == "upsert":
            found = soql.field_map(sobject).get(str(external_id or "").lower())
            if found is None or not (found.external_id or found.name == "Id"):
                raise SalesforceError(
                    400, "INVALIDJOB", f"Invalid externalIdFieldName: {external_id}"
                )
            external_id = found.name
        job = _IngestJob(
            id=self._new_id(),
            operation=str(operation),
            sobject=sobject,
            created=self.state.timestamp(),
            line_ending=str(body.get("lineEnding", "LF")),
            column_delimiter=str(body.get("columnDelimiter", "COMMA")),
            state="Open",
            api_version=version,
            external_id=str(external_id) if external_id else None,
        )
        job.extra.update(
            {
                "contentUrl": f"services/data/{version}/jobs/ingest/{job.id}/batches",
                "jobType": "V2Ingest",
                "numberRecordsProcessed": 0,
                "numberRecordsFailed": 0,
                "retries": 0,
            }
        )
        if job.external_id:
            job.extra["externalIdFieldName"] = job.external_id
        self.ingest_jobs[job.id] = job
        self._remember(self.ingest_jobs)
        return json_response(job.info(detailed=False))

    def _ingest_job(self, request: Request) -> _IngestJob:
        job = self.ingest_jobs.get(request.path_params["job_id"])
        if job is None:
            raise _not_found()
        return job

    async def get_ingest(self, request: Request, version: str) -> Response:
        job = self._ingest_job(request)
        self._advance(job)
        return json_response(job.info(detailed=True))

    async def list_ingest(self, request: Request, version: str) -> Response:
        records = [job.info(detailed=False) for job in self.ingest_jobs.values()]
        return json_response({"done": True, "records": records, "nextRecordsUrl": None})

    async def upload(self, request: Request, version: str) -> Response:
        job = self._ingest_job(request)
        if job.state != "Open" or job.upload is not None:
            raise SalesforceError(
                400, "INVALIDJOBSTATE", "Data can be uploaded once, to an Open job"
            )
        raw = await request.body()
        try:
            job.upload = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SalesforceError(400, "INVALIDREQUEST", "The CSV data must be UTF-8") from None
        return Response(status_code=201)

    async def set_ingest_state(self, request: Request, version: str) -> Response:
        job = self._ingest_job(request)
        body = await parse_json_body(request)
        wanted = body.get("state") if isinstance(body, dict) else None
        if wanted == "Aborted":
            if job.state not in ("Open", "UploadComplete"):
                raise SalesforceError(400, "INVALIDJOBSTATE", f"The job is {job.state}")
            job.state = "Aborted"
            return json_response(job.info(detailed=False))
        if wanted != "UploadComplete":
            raise SalesforceError(400, "INVALIDJOBSTATE", f"Invalid state: {wanted}")
        if job.state != "Open":
            raise SalesforceError(400, "INVALIDJOBSTATE", f"The job is {job.state}")
        job.state = "UploadComplete"
        reply = job.info(detailed=False)
        self._process(job)
        return json_response(reply)

    async def delete_ingest(self, request: Request, version: str) -> Response:
        job = self._ingest_job(request)
        del self.ingest_jobs[job.id]
        return Response(status_code=204)

    async def results(self, request: Request, version: str) -> Response:
        job = self._ingest_job(request)
        kind = request.path_params["kind"]
        if job.state != "JobComplete":
            raise SalesforceError(
                400, "INVALIDJOBSTATE", f"The job is {job.state}: its results are not ready"
            )
        if kind == "successfulResults":
            rows = [["sf__Id", "sf__Created", *job.header], *job.successes]
        elif kind == "failedResults":
            rows = [["sf__Id", "sf__Error", *job.header], *job.failures]
        elif kind == "unprocessedrecords":
            rows = [job.header]
        else:
            raise _not_found()
        return Response(_csv_text(rows, job.delimiter, job.newline).encode(), media_type=CSV_TYPE)

    # -- processing ----------------------------------------------------------------

    def _fail_job(self, job: _IngestJob, message: str) -> None:
        job.state = "Failed"
        job.extra["errorMessage"] = message

    def _process(self, job: _IngestJob) -> None:
        if not job.upload or not job.upload.strip():
            self._fail_job(job, "InvalidBatch : Found no data in the uploaded CSV")
            return
        reader = csv.reader(io.StringIO(job.upload, newline=""), delimiter=job.delimiter)
        try:
            rows = list(reader)
        except csv.Error as exc:
            self._fail_job(job, f"InvalidBatch : Failed to parse CSV: {exc}")
            return
        header, data = rows[0], [row for row in rows[1:] if row]
        fields = soql.field_map(job.sobject)
        unknown = [name for name in header if name.lower() not in fields]
        if unknown:
            self._fail_job(job, f"InvalidBatch : Field name not found : {unknown[0]}")
            return
        key = "Id" if job.operation in ("update", "delete") else job.external_id
        if key is not None and key.lower() not in (name.lower() for name in header):
            self._fail_job(job, f"InvalidBatch : Field name not found : {key}")
            return
        job.header = header
        now = self.state.timestamp()
        with transaction(self.state.db):
            for row in data:
                values = dict(zip(header, row, strict=False))
                try:
                    record_id, created = self._apply(job, values, now)
                except WriteFailure as failure:
                    given = next((v for k, v in values.items() if k.lower() == "id"), "")
                    error = f"{failure.code}:{failure.message}:{','.join(failure.fields)} --"
                    job.failures.append([given, error, *row])
                    continue
                job.successes.append([record_id, "true" if created else "false", *row])
        job.extra["numberRecordsProcessed"] = len(data)
        job.extra["numberRecordsFailed"] = len(job.failures)
        job.processed = True

    def _apply(self, job: _IngestJob, values: dict[str, str], now: str) -> tuple[str, bool]:
        db = self.state.db
        by_lower = {k.lower(): v for k, v in values.items()}
        if job.operation == "insert":
            return create_record(
                db, job.sobject, values, now=now, new_id=self.state.new_sf_id, from_csv=True
            ), True
        if job.operation == "delete":
            record_id = by_lower.get("id", "")
            delete_record(db, job.sobject, record_id, now=now)
            return soql.normalize_id(record_id) or record_id, False
        if job.operation == "update":
            record_id = by_lower.get("id", "")
            update_record(db, job.sobject, record_id, values, now=now, from_csv=True)
            return soql.normalize_id(record_id) or record_id, False
        # upsert: match on the external id field; create when nothing matches.
        if job.external_id is None:
            raise WriteFailure("INVALIDJOB", "An upsert job needs an externalIdFieldName")
        key_value = by_lower.get(job.external_id.lower(), "")
        if job.external_id == "Id":
            if key_value:
                update_record(db, job.sobject, key_value, values, now=now, from_csv=True)
                return soql.normalize_id(key_value) or key_value, False
            return create_record(
                db, job.sobject, values, now=now, new_id=self.state.new_sf_id, from_csv=True
            ), True
        matches = db.execute(
            f'SELECT "Id" FROM "sf_{job.sobject}" WHERE "{job.external_id}" = ? LIMIT 2',
            (key_value,),
        ).fetchall()
        if len(matches) > 1:
            raise WriteFailure(
                "DUPLICATE_EXTERNAL_ID",
                f"{job.external_id}: more than one record found for external id field",
                (job.external_id,),
            )
        if matches:
            record_id = str(matches[0][0])
            changes = {k: v for k, v in values.items() if k.lower() != "id"}
            update_record(db, job.sobject, record_id, changes, now=now, from_csv=True)
            return record_id, False
        return create_record(
            db, job.sobject, values, now=now, new_id=self.state.new_sf_id, from_csv=True
        ), True
