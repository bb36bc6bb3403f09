"""Request counting: every request, by method, route template, status and fault.

Tests assert on API usage ("one composite call per 200 records", "no
second login") through ``GET /_sandbox/requests``; counting by the matched
route's template (``/services/data/{version}/query``) rather than the raw
path keeps the counts readable and bounded. Reading or resetting the
counters (or resetting the whole sandbox) is not itself counted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clghub.sandbox.faults import FAULT_SCOPE_KEY
from clghub.sandbox.state import SandboxState

__all__ = ["NO_ROUTE", "CountingMiddleware", "route_template"]

NO_ROUTE = "(no route)"
_UNCOUNTED = frozenset(
    {
        ("GET", "/_sandbox/requests"),
        ("POST", "/_sandbox/requests/reset"),
        ("POST", "/_sandbox/reset"),
    }
)
_CACHE_SIZE = 4096


def _template_of(route: BaseRoute) -> str:
    path_format = getattr(route, "path_format", None)
    return path_format if isinstance(path_format, str) else NO_ROUTE


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the route that serves ``scope`` (as the router would pick it)."""
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = {**scope, **child}
            inner_path = route.path_format.rstrip("/")
            sub = route_template(route.routes, inner)
            template = inner_path + sub if sub != NO_ROUTE else inner_path
        elif isinstance(route, Route):
            template = route.path_format
        else:
            template = _template_of(route)
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial or NO_ROUTE


class CountingMiddleware:
    def __init__(self, app: ASGIApp, state: SandboxState, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.state = state
        self.routes = routes
        self._templates: OrderedDict[tuple[str, str], str] = OrderedDict()

    def _template(self, scope: Scope) -> str:
        key = (scope["method"], scope["path"])
        cached = self._templates.get(key)
        if cached is not None:
            self._templates.move_to_end(key)
            return cached
        template = route_template(self.routes, scope)
        self._templates[key] = template
        if len(self._templates) > _CACHE_SIZE:
            self._templates.popitem(last=False)
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in _UNCOUNTED:
            await self.app(scope, receive, send)
            return
        # Before the call: routing adds the mount's root_path to the scope.
        template = self._template(scope)
        status = 0

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            self.state.requests.record(
                scope["method"], template, status or 500, scope.get(FAULT_SCOPE_KEY)
            )
