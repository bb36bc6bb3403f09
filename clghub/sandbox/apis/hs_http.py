"""HubSpot's wire conventions: JSON responses and its error body.

HubSpot errors are one JSON object:
``{"status": "error", "message", "correlationId", "category"[, "subCategory",
"context", "errors", "links"]}``; batch endpoints list per-input failures in
``errors`` of a 207 answer instead (see hs_objects.py).
"""

from __future__ import annotations

import uuid

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "PORTAL_ID",
    "HubSpotError",
    "base_url",
    "correlation_id",
    "json_response",
    "parse_json_body",
    "raw_json_response",
]

PORTAL_ID = 9_000_001
"""The sandbox portal's (account's) id, as HubSpot reports it in errors."""


def correlation_id() -> str:
    return str(uuid.uuid4())


class HubSpotError(Exception):
    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        sub_category: str | None = None,
        context: dict[str, list[str]] | None = None,
        errors: list[dict[str, object]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.sub_category = sub_category
        self.context = context
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id(),
            "category": self.category,
        }
        if self.sub_category is not None:
            body["subCategory"] = self.sub_category
        if self.context is not None:
            body["context"] = self.context
        if self.errors is not None:
            body["errors"] = self.errors
        return body

    def response(self) -> Response:
        return json_response(self.body(), status=self.status, headers=self.headers)


def json_response(
    content: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content),
        status_code=status,
        media_type="application/json;charset=utf-8",
        headers=headers,
    )


def raw_json_response(body: str | bytes, *, status: int = 200) -> Response:
    """A response whose JSON was assembled already (records rendered by SQLite)."""
    content = body.encode() if isinstance(body, str) else body
    return Response(content, status_code=status, media_type="application/json;charset=utf-8")


async def parse_json_body(request: Request) -> dict[str, object]:
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Invalid input JSON on line 1, column {exc.pos + 1}: {exc.msg}",
        ) from None
    if not isinstance(body, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return body


def base_url(request: Request) -> str:
    url = request.url
    return f"{url.scheme}://{url.netloc}"
