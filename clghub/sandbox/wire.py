"""HTTP helpers every emulated API shares: JSON bodies (orjson) and bearer tokens."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["JSON_TYPE", "bearer_token", "json_response"]

JSON_TYPE = "application/json; charset=utf-8"


def json_response(
    content: object,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    media_type: str = JSON_TYPE,
) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, media_type=media_type, headers=headers
    )


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
