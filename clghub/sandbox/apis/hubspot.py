"""The emulated HubSpot portal: CRM v3 objects, search, properties,
associations v4, owners, and OAuth.

Paths are HubSpot's (``/crm/v3/...``, ``/crm/v4/...``, ``/oauth/v1/token``),
so hubspot-api-client works against the sandbox with only its host changed.
Every CRM call needs a bearer token (hs_auth.py) and counts against the
token's rate limits (hs_limits.py). A request line longer than
:data:`MAX_REQUEST_TARGET` answers 414 before anything else, as HubSpot's
front end does for a long ``properties`` list: clients have to chunk it or
use a POST (search, batch read).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from clghub.sandbox.apis.hs_associations import AssociationsResource, OwnersResource
from clghub.sandbox.apis.hs_auth import HubSpotAuth
from clghub.sandbox.apis.hs_catalog import Catalog
from clghub.sandbox.apis.hs_http import HubSpotError
from clghub.sandbox.apis.hs_limits import RateLimited, RateLimiter
from clghub.sandbox.apis.hs_objects import ObjectsResource
from clghub.sandbox.apis.hs_properties import PropertiesResource
from clghub.sandbox.apis.hs_records import RecordRenderer
from clghub.sandbox.apis.hs_search import SearchResource
from clghub.sandbox.apis.sf_http import optional_slash
from clghub.sandbox.state import SandboxState

__all__ = ["MAX_REQUEST_TARGET", "HubSpotApi", "routes"]

MAX_REQUEST_TARGET = 8192
"""Longest path + query string served, in bytes. HubSpot does not publish its
limit; 8 KiB is the common front-end default (nginx's large header buffer,
Apache's LimitRequestLine) and is where long property lists start failing."""

Handler = Callable[[Request], Awaitable[Response]]
_TOO_LONG = (
    b"<html><head><title>414 Request-URI Too Large</title></head><body>"
    b"<center><h1>414 Request-URI Too Large</h1></center></body></html>"
)


class HubSpotApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.catalog = Catalog(state)
        self.renderer = RecordRenderer()
        self.auth = HubSpotAuth(state)
        self.limiter = RateLimiter(state)
        self.objects = ObjectsResource(state, self.catalog, self.renderer)
        self.searches = SearchResource(state, self.catalog, self.renderer)
        self.properties = PropertiesResource(state, self.catalog)
        self.associations = AssociationsResource(state, self.catalog)
        self.owners = OwnersResource(state)
        state.add_reset_hook(self.reset)

    def reset(self) -> None:
        """After the sandbox regenerates its data: forget tokens, usage and caches."""
        self.auth.reset()
        self.limiter.reset()
        self.renderer.clear()
        # Tasks are the emulator's own table (not the generator's): start it over too.
        self.state.db.execute("DROP TABLE IF EXISTS hs_tasks")
        self.catalog.invalidate()

    def api(self, handler: Handler, *, search: bool = False) -> Handler:
        """Request-line length, token and rate limits around a handler."""

        async def endpoint(request: Request) -> Response:
            target = (
                len(request.scope.get("raw_path", b"")) + len(request.scope["query_string"]) + 1
            )
            if target > MAX_REQUEST_TARGET:
                return Response(_TOO_LONG, status_code=414, media_type="text/html")
            try:
                caller = self.auth.check(request)
            except HubSpotError as error:
                return error.response()
            try:
                headers = self.limiter.admit(caller, search=search)
            except RateLimited as limited:
                return limited.response()
            try:
                response = await handler(request)
            except HubSpotError as error:
                response = error.response()
            response.headers.update(headers)
            return response

        return endpoint

    async def unknown(self, request: Request) -> Response:
        return HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found").response()

    def routes(self) -> list[BaseRoute]:
        objects, api = self.objects, self.api
        v3 = "/crm/v3/objects/{object}"
        props = "/crm/v3/properties/{object}"
        table: list[tuple[str, Handler, list[str]]] = [
            (v3, objects.list_records, ["GET"]),
            (v3, objects.create, ["POST"]),
            (f"{v3}/batch/read", objects.batch_read, ["POST"]),
            (f"{v3}/batch/update", objects.batch_update, ["POST"]),
            (f"{v3}/batch/upsert", objects.batch_upsert, ["POST"]),
            (f"{v3}/batch/create", objects.batch_create, ["POST"]),
            (f"{v3}/batch/archive", objects.batch_archive, ["POST"]),
            (f"{v3}/{{record_id}}", objects.read, ["GET"]),
            (f"{v3}/{{record_id}}", objects.update, ["PATCH"]),
            (f"{v3}/{{record_id}}", objects.archive, ["DELETE"]),
            (f"{props}/groups", self.properties.list_groups, ["GET"]),
            (f"{props}/groups", self.properties.create_group, ["POST"]),
            (f"{props}/groups/{{name}}", self.properties.read_group, ["GET"]),
            (f"{props}/batch/create", self.properties.batch_create, ["POST"]),
            (props, self.properties.list_properties, ["GET"]),
            (props, self.properties.create_property, ["POST"]),
            (f"{props}/{{name}}", self.properties.read_property, ["GET"]),
            (
                "/crm/v4/objects/{from_object}/{record_id}/associations/{to_object}",
                self.associations.list_links,
                ["GET"],
            ),
            (
                "/crm/v4/objects/{from_object}/{record_id}/associations/default/{to_object}/{to_id}",
                self.associations.create_default,
                ["PUT"],
            ),
            (
                "/crm/v4/associations/{from_object}/{to_object}/batch/read",
                self.associations.batch_read,
                ["POST"],
            ),
            ("/crm/v3/owners", self.owners.list_owners, ["GET"]),
            ("/crm/v3/owners/{owner_id}", self.owners.read_owner, ["GET"]),
        ]
        by_path: dict[str, dict[str, Handler]] = {}
        for path, handler, methods in table:
            for method in methods:
                by_path.setdefault(path, {})[method] = handler
        search = api(self.searches.search, search=True)
        found: list[BaseRoute] = [_route(f"{v3}/search", search, ["POST"])]
        for path, handlers in by_path.items():
            found.append(_route(path, api(_dispatch(handlers)), list(handlers)))
        found.extend(
            [
                _route("/oauth/v1/token", self.auth.token, ["POST"]),
                Route(
                    "/crm/{rest:path}",
                    self.unknown,
                    methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                ),
            ]
        )
        return found


def _route(path: str, endpoint: Handler, methods: list[str]) -> BaseRoute:
    """A route that also matches its path with a trailing slash (the client uses both)."""
    return optional_slash(Route(path, endpoint, methods=methods))


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    async def handler(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return handler


def routes(state: SandboxState) -> list[BaseRoute]:
    """HubSpot's routes over ``state`` (mounted by the sandbox app)."""
    return HubSpotApi(state).routes()
