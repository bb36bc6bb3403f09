"""The emulated Salesforce org: REST API, Bulk API 2.0, OAuth and SOAP login.

Paths are Salesforce's (``/services/data/vNN.0/...``, any ``vNN.0``), so
simple-salesforce works against the sandbox with only its instance URL
changed. Every REST call needs a session (see sf_auth.py), counts against
the org's daily API quota and carries ``Sforce-Limit-Info:
api-usage=N/M``; once the quota is used up calls answer 403
``REQUEST_LIMIT_EXCEEDED``. Errors are Salesforce's JSON arrays.

Control surface (the sandbox's own, not Salesforce's):

- ``GET/POST /_sandbox/salesforce/quota`` ``{"max": M, "used": N}`` reads or
  sets the quota, so a test can make it run out mid-sync;
- ``POST /_sandbox/salesforce/lock`` ``{"ids": [...], "locked": true}`` locks
  records: writes to them fail with ``UNABLE_TO_LOCK_ROW``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from clghub.sandbox.apis import soql
from clghub.sandbox.apis.sf_auth import SalesforceAuth
from clghub.sandbox.apis.sf_bulk import BulkResource
from clghub.sandbox.apis.sf_http import (
    NOT_FOUND_MESSAGE,
    SalesforceError,
    json_response,
    optional_slash,
)
from clghub.sandbox.apis.sf_query import QueryResource
from clghub.sandbox.apis.sf_sobjects import SObjectResource
from clghub.sandbox.apis.sf_write import object_for_id
from clghub.sandbox.state import SandboxState

__all__ = ["ApiUsage", "SalesforceApi", "routes"]

Handler = Callable[[Request, str], Awaitable[Response]]

_VERSION_RE = re.compile(r"v(\d{2})\.0")
_RELEASES = {
    55: "Summer '22",
    56: "Winter '23",
    57: "Spring '23",
    58: "Summer '23",
    59: "Winter '24",
    60: "Spring '24",
    61: "Summer '24",
    62: "Winter '25",
}


@dataclass
class ApiUsage:
    """The org's API request allowance over a rolling 24 hours (of sandbox time).

    Calls are counted per hour; those older than 24 hours stop counting, so
    a quota that ran out comes back as the clock moves on, as in Salesforce.
    """

    max: int
    _hours: dict[int, int] = field(default_factory=dict)

    @staticmethod
    def _hour(now: datetime) -> int:
        return int(now.timestamp() // 3600)

    def used(self, now: datetime) -> int:
        current = self._hour(now)
        for hour in [h for h in self._hours if h <= current - 24]:
            del self._hours[hour]
        return sum(self._hours.values())

    def count(self, now: datetime) -> None:
        hour = self._hour(now)
        self._hours[hour] = self._hours.get(hour, 0) + 1

    def set_used(self, used: int, now: datetime) -> None:
        """Make ``used`` calls the whole count, as if all were made this hour."""
        self._hours = {self._hour(now): used} if used else {}

    def header(self, now: datetime) -> str:
        return f"api-usage={self.used(now)}/{self.max}"


def _route(
    path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: Sequence[str]
) -> BaseRoute:
    """A route that also matches its path with a trailing slash (simple-salesforce uses both)."""
    return optional_slash(Route(path, endpoint, methods=list(methods)))


class SalesforceApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.usage = ApiUsage(state.options.sf_daily_quota)
        self.auth = SalesforceAuth(state)
        self.queries = QueryResource(state)
        self.sobjects = SObjectResource(state)
        self.bulk = BulkResource(state)
        state.add_reset_hook(self.reset)

    def reset(self) -> None:
        """After the sandbox regenerates its data: a fresh quota, no cursors, no jobs."""
        self.usage = ApiUsage(self.state.options.sf_daily_quota)
        self.queries.reset()
        self.bulk.reset()

    # -- the REST envelope -------------------------------------------------------

    def api(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Version check, session, quota and the usage header around a handler."""

        async def endpoint(request: Request) -> Response:
            version = request.path_params.get("version", "")
            if not _VERSION_RE.fullmatch(version):
                return SalesforceError(404, "NOT_FOUND", NOT_FOUND_MESSAGE).response()
            try:
                self.auth.check_session(request)
            except SalesforceError as error:
                return error.response()
            now = self.state.now()
            if self.usage.used(now) >= self.usage.max:
                response = SalesforceError(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                ).response()
            else:
                self.usage.count(now)
                try:
                    response = await handler(request, version)
                except SalesforceError as error:
                    response = error.response()
            response.headers["Sforce-Limit-Info"] = self.usage.header(now)
            return response

        return endpoint

    # -- small resources -----------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        return json_response(
            [
                {"label": label, "url": f"/services/data/v{number}.0", "version": f"{number}.0"}
                for number, label in _RELEASES.items()
            ]
        )

    async def resources(self, request: Request, version: str) -> Response:
        base = f"/services/data/{version}"
        names = ("composite", "jobs", "limits", "query", "queryAll", "sobjects")
        return json_response({name: f"{base}/{name}" for name in names})

    async def limits(self, request: Request, version: str) -> Response:
        remaining = max(0, self.usage.max - self.usage.used(self.state.now()))
        return json_response(
            {
                "DailyApiRequests": {"Max": self.usage.max, "Remaining": remaining},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            }
        )

    async def query(self, request: Request, version: str) -> Response:
        return await self.queries.query(request, version, include_deleted=False)

    async def query_all(self, request: Request, version: str) -> Response:
        return await self.queries.query(request, version, include_deleted=True)

    async def unknown(self, request: Request) -> Response:
        return SalesforceError(404, "NOT_FOUND", NOT_FOUND_MESSAGE).response()

    # -- control surface -------------------------------------------------------------

    async def control_quota(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = orjson.loads(await request.body() or b"{}")
            except orjson.JSONDecodeError:
                return json_response({"error": "the body must be JSON"}, status=400)
            for key in ("max", "used"):
                value = body.get(key) if isinstance(body, dict) else None
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    return json_response(
                        {"error": f"{key} must be a non-negative integer"}, status=400
                    )
                if key == "max":
                    self.usage.max = value
                else:
                    self.usage.set_used(value, self.state.now())
        return json_response({"max": self.usage.max, "used": self.usage.used(self.state.now())})

    async def control_lock(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return json_response({"error": "the body must be JSON"}, status=400)
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return json_response({"error": "ids must be a list of record ids"}, status=400)
        locked = 1 if body.get("locked", True) else 0
        changed = 0
        for raw in ids:
            record_id = soql.normalize_id(raw)
            sobject = object_for_id(record_id) if record_id else None
            if sobject is None:
                continue
            cursor = self.state.db.execute(
                f'UPDATE "sf_{sobject}" SET "_locked" = ? WHERE "Id" = ?', (locked, record_id)
            )
            changed += cursor.rowcount
        return json_response({"updated": changed, "locked": bool(locked)})

    # -- routing ------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        data = "/services/data/{version}"
        sobjects, bulk, api = self.sobjects, self.bulk, self.api
        table: list[tuple[str, Handler, Sequence[str]]] = [
            ("", self.resources, ("GET",)),
            ("/limits", self.limits, ("GET",)),
            ("/query", self.query, ("GET",)),
            ("/queryAll", self.query_all, ("GET",)),
            ("/query/{locator}", self.queries.more, ("GET",)),
            ("/queryAll/{locator}", self.queries.more, ("GET",)),
            ("/sobjects", sobjects.describe_global, ("GET",)),
            ("/sobjects/{sobject}", sobjects.basic_info, ("GET",)),
            ("/sobjects/{sobject}", sobjects.create, ("POST",)),
            ("/sobjects/{sobject}/describe", sobjects.describe, ("GET",)),
            ("/sobjects/{sobject}/{record_id}", sobjects.get, ("GET",)),
            ("/sobjects/{sobject}/{record_id}", sobjects.update, ("PATCH",)),
            ("/sobjects/{sobject}/{record_id}", sobjects.delete, ("DELETE",)),
            ("/sobjects/{sobject}/{field}/{value}", sobjects.get_by_external_id, ("GET",)),
            ("/composite/sobjects", sobjects.collection, ("PATCH", "POST")),
            ("/jobs/query", bulk.create_query, ("POST",)),
            ("/jobs/query", bulk.list_query, ("GET",)),
            ("/jobs/query/{job_id}", bulk.get_query, ("GET",)),
            ("/jobs/query/{job_id}", bulk.abort_query, ("PATCH",)),
            ("/jobs/query/{job_id}", bulk.delete_query, ("DELETE",)),
            ("/jobs/query/{job_id}/results", bulk.query_results, ("GET",)),
            ("/jobs/ingest", bulk.create_ingest, ("POST",)),
            ("/jobs/ingest", bulk.list_ingest, ("GET",)),
            ("/jobs/ingest/{job_id}", bulk.get_ingest, ("GET",)),
            ("/jobs/ingest/{job_id}", bulk.set_ingest_state, ("PATCH",)),
            ("/jobs/ingest/{job_id}", bulk.delete_ingest, ("DELETE",)),
            ("/jobs/ingest/{job_id}/batches", bulk.upload, ("PUT",)),
            ("/jobs/ingest/{job_id}/{kind}", bulk.results, ("GET",)),
        ]
        found: list[BaseRoute] = [_route("/services/data", self.versions, ("GET",))]
        # Starlette routes by path then method: handlers sharing a path share one route.
        by_path: dict[str, dict[str, Handler]] = {}
        for suffix, handler, methods in table:
            for method in methods:
                by_path.setdefault(data + suffix, {})[method] = handler
        for path, handlers in by_path.items():
            found.append(_route(path, api(_dispatch(handlers)), tuple(handlers)))
        found.extend(
            [
                _route("/services/oauth2/token", self.auth.token, ("POST",)),
                _route("/services/Soap/u/{version}", self.auth.soap_login, ("POST",)),
                Route("/_sandbox/salesforce/quota", self.control_quota, methods=["GET", "POST"]),
                Route("/_sandbox/salesforce/lock", self.control_lock, methods=["POST"]),
                Route(
                    "/services/{rest:path}",
                    self.unknown,
                    methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"],
                ),
            ]
        )
        return found


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    async def handler(request: Request, version: str) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request, version)

    return handler


def routes(state: SandboxState) -> list[BaseRoute]:
    """Salesforce's routes over ``state`` (mounted by the sandbox app)."""
    return SalesforceApi(state).routes()
