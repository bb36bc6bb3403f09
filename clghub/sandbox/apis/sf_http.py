"""Salesforce's wire conventions: JSON responses and the error array.

Salesforce answers every REST error as a JSON array of
``{"message", "errorCode"[, "fields"]}`` objects; simple-salesforce reads
``[0]["errorCode"]`` of a 401 to decide whether to log in again.
"""

from __future__ import annotations

import re

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = [
    "JSON_TYPE",
    "NOT_FOUND_MESSAGE",
    "SalesforceError",
    "base_url",
    "json_response",
    "optional_slash",
    "parse_json_body",
    "raw_json_response",
]

JSON_TYPE = "application/json;charset=UTF-8"
NOT_FOUND_MESSAGE = "The requested resource does not exist"


class SalesforceError(Exception):
    """An error Salesforce answers with its JSON error array."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, object]]:
        entry: dict[str, object] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            entry["fields"] = self.fields
        return [entry]

    def response(self) -> Response:
        return json_response(self.body(), status=self.status)


def json_response(
    content: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, media_type=JSON_TYPE, headers=headers
    )


def raw_json_response(
    body: bytes, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A response whose JSON was assembled already (pages built by SQLite)."""
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


async def parse_json_body(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body is empty.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SalesforceError(
            400,
            "JSON_PARSER_ERROR",
            f"Unexpected character in the request body: {exc}",
        ) from None


def optional_slash(route: Route) -> Route:
    """``route``, also matching its path with a trailing slash.

    One route rather than two keeps the route table short (every request
    is matched against it in order); the template the sandbox counts
    requests by stays the declared path.
    """
    pattern = route.path_regex.pattern
    if pattern.endswith("$") and not pattern.endswith("/$"):
        route.path_regex = re.compile(pattern[:-1] + "/?$")
    return route


def base_url(request: Request) -> str:
    """scheme://host[:port] the request came in on: what instance_url must point back to."""
    url = request.url
    return f"{url.scheme}://{url.netloc}"
