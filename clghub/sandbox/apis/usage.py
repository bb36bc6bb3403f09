"""The product usage API: daily usage per account and metric, four ways to page it.

Rows: ``{"account_key", "metric", "day", "value", "updated_at"}`` in a stable
order (updated_at, account_key, metric, day), so paging is deterministic.
``since`` (an ISO timestamp) keeps rows with ``updated_at >= since``
(inclusive: a reader that saves the last ``updated_at`` it saw re-reads at
most one day). A day's figures appear once final, the next day at 02:00 UTC
of the sandbox clock.

- ``/usage/v1/daily``: ``cursor`` + ``limit`` (at most 5,000), body
  ``{"data": [...], "next_cursor": str | null}``
- ``/usage/v1/daily/pages``: ``page`` (1-based) + ``per_page``, body
  ``{"data", "page", "per_page", "total_pages", "total"}``
- ``/usage/v1/daily/offset``: ``offset`` + ``limit``, body
  ``{"data", "offset", "limit", "total"}``
- ``/usage/v1/daily/link``: ``cursor`` + ``limit``, body a JSON array, the
  next page in an RFC 8288 ``Link: <url>; rel="next"`` header

Auth: ``Authorization: Bearer <token>`` (any non-empty token unless the
sandbox runs with strict auth).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from clghub.sandbox.state import SandboxState
from clghub.sandbox.usage_model import Position, UsageModel, UsageRow, day_text, updated_at_of
from clghub.sandbox.wire import bearer_token, json_response

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "UsageRows", "routes"]

DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000


class _BadRequest(Exception):
    def __init__(self, error: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.status = status


def _render(rows: list[UsageRow]) -> list[dict[str, Any]]:
    days: dict[int, tuple[str, str]] = {}
    out: list[dict[str, Any]] = []
    for key, metric, day, value in rows:
        texts = days.get(day)
        if texts is None:
            texts = (day_text(day), updated_at_of(day).strftime("%Y-%m-%dT%H:%M:%SZ"))
            days[day] = texts
        out.append(
            {
                "account_key": key,
                "metric": metric,
                "day": texts[0],
                "value": value,
                "updated_at": texts[1],
            }
        )
    return out


def _encode_cursor(position: Position) -> str:
    raw = f"{position.day}.{position.account}.{position.metric}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        day, account, metric = (
            int(part) for part in base64.urlsafe_b64decode(padded).decode().split(".")
        )
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest(
            "invalid_cursor", f"cursor {cursor!r} was not issued by this API"
        ) from None
    if day < 0 or account < 0 or metric < 0:
        raise _BadRequest("invalid_cursor", f"cursor {cursor!r} was not issued by this API")
    return Position(day, account, metric)


def _int(request: Request, name: str, default: int, *, low: int, high: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest("invalid_parameter", f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _BadRequest("invalid_parameter", f"{name} must be {bounds}, got {value}")
    return value


def _since(request: Request) -> datetime | None:
    raw = request.query_params.get("since")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise _BadRequest(
            "invalid_parameter", f"since must be an ISO 8601 timestamp, got {raw!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class UsageRows:
    """The usage stream of one sandbox state (the model is loaded once, dropped on reset)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._model: UsageModel | None = None

    def model(self) -> UsageModel:
        if self._model is None:
            options = self.state.options
            self._model = UsageModel(
                self.state.db,
                seed=options.seed,
                anchor=options.anchor,
                usage_days=options.usage_days,
            )
        return self._model

    def reset(self) -> None:
        self._model = None

    def window(self, since: datetime | None) -> tuple[int, int]:
        model = self.model()
        return model.first_day_since(since), model.visible_through(self.state.now())

    def page_at(
        self, since: datetime | None, offset: int, limit: int
    ) -> tuple[list[UsageRow], int]:
        model = self.model()
        first, last = self.window(since)
        total = model.total(first, last)
        position = model.locate(first, last, offset)
        if position is None:
            return [], total
        rows, _ = model.rows_from(position, last, limit)
        return rows, total

    def page_after(
        self, since: datetime | None, cursor: str | None, limit: int
    ) -> tuple[list[UsageRow], Position | None]:
        model = self.model()
        first, last = self.window(since)
        start = _decode_cursor(cursor) if cursor else Position(first, 0, 0)
        return model.rows_from(max(start, Position(first, 0, 0)), last, limit)


def _authorized(state: SandboxState, request: Request) -> Response | None:
    token = bearer_token(request)
    if token is None:
        return json_response(
            {"error": "unauthorized", "message": "Authorization: Bearer <token> is required"},
            status=401,
        )
    if not state.tokens.valid("usage", token):
        return json_response(
            {"error": "unauthorized", "message": "the token is not valid"}, status=401
        )
    return None


def routes(state: SandboxState) -> list[BaseRoute]:
    usage = UsageRows(state)
    state.add_reset_hook(usage.reset)

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            refused = _authorized(state, request)
            if refused is not None:
                return refused
            try:
                response: Response = await handler(request)
            except _BadRequest as exc:
                return json_response(
                    {"error": exc.error, "message": exc.message}, status=exc.status
                )
            return response

        return endpoint

    async def daily(request: Request) -> Response:
        limit = _int(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
        rows, following = usage.page_after(
            _since(request), request.query_params.get("cursor"), limit
        )
        body = {
            "data": _render(rows),
            "next_cursor": _encode_cursor(following) if following else None,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    async def pages(request: Request) -> Response:
        per_page = _int(request, "per_page", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
        page = _int(request, "page", 1, low=1)
        rows, total = usage.page_at(_since(request), (page - 1) * per_page, per_page)
        total_pages = (total + per_page - 1) // per_page
        body = {
            "data": _render(rows),
            "page": page,
            "per_page": per_page,
            "total_pages": total_pages,
            "total": total,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    async def offset(request: Request) -> Response:
        limit = _int(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
        start = _int(request, "offset", 0, low=0)
        rows, total = usage.page_at(_since(request), start, limit)
        body = {"data": _render(rows), "offset": start, "limit": limit, "total": total}
        return Response(orjson.dumps(body), media_type="application/json")

    async def link(request: Request) -> Response:
        limit = _int(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
        since = request.query_params.get("since")
        rows, following = usage.page_after(
            _since(request), request.query_params.get("cursor"), limit
        )
        headers: dict[str, str] = {}
        if following is not None:
            query: dict[str, str] = {"cursor": _encode_cursor(following), "limit": str(limit)}
            if since:
                query["since"] = since
            url = (
                f"{request.url.scheme}://{request.url.netloc}{request.url.path}?{urlencode(query)}"
            )
            headers["Link"] = f'<{url}>; rel="next"'
        return Response(orjson.dumps(_render(rows)), media_type="application/json", headers=headers)

    return [
        Route("/usage/v1/daily", guarded(daily), methods=["GET"]),
        Route("/usage/v1/daily/pages", guarded(pages), methods=["GET"]),
        Route("/usage/v1/daily/offset", guarded(offset), methods=["GET"]),
        Route("/usage/v1/daily/link", guarded(link), methods=["GET"]),
    ]
