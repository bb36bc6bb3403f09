"""Fault injection: the failures connectors must survive, on demand and repeatable.

With a fault rate above zero, each request (except the sandbox's own
``/_sandbox/*``) is a candidate. The decision is deterministic: the n-th
request with a given method and path faults when
``unit(seed, hash(method path), n) < rate``, and the kind is chosen the same
way among the enabled kinds (n counts requests while the rate is above zero
and restarts whenever the settings change). The same sequence of requests
against the same seed therefore meets the same faults, and a retry of a
faulted request (it is the next n) usually passes.

Kinds (clghub.sandbox.state.FAULT_KINDS):

- ``rate_limit``: 429 with Retry-After; ``rate_limit_no_retry_after``: 429
  without it; ``server_error``: 500; ``unavailable``: 503 (with
  Retry-After). These answer before the handler runs: nothing is applied.
- ``drop_connection``: the handler runs (a write is applied), then the
  response declares its full Content-Length, sends half and the connection
  is closed.
- ``slow``: the handler runs, the response waits ``slow_seconds`` (longer
  than a client's timeout) before it is sent.
- ``truncated_body``: the handler runs; a 200 answer arrives cut in half,
  with a Content-Length that matches the cut body (invalid JSON). Other
  answers go out whole and count as no fault.

Bodies and headers follow the API the path belongs to: Salesforce's error
array under ``/services``, HubSpot's error object and rate-limit headers
under ``/crm``, Slack's ``{"ok": false}`` under ``/api``, plain JSON under
``/usage``.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clghub.sandbox.rng import mix, unit
from clghub.sandbox.state import FAULT_KINDS, FaultSettings, SandboxState

__all__ = ["FAULT_SCOPE_KEY", "FaultMiddleware", "choose_fault", "validate_kinds"]

FAULT_SCOPE_KEY = "sandbox.fault"
"""Where the middleware notes the injected fault in the ASGI scope (for counting)."""

_BEFORE_HANDLER = frozenset(
    {"rate_limit", "rate_limit_no_retry_after", "server_error", "unavailable"}
)
_STATUS = {
    "rate_limit": 429,
    "rate_limit_no_retry_after": 429,
    "server_error": 500,
    "unavailable": 503,
}
_KIND_STREAM = 7


def validate_kinds(kinds: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {unknown}; known: {list(FAULT_KINDS)}")
    return tuple(dict.fromkeys(kinds))


def _path_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


def choose_fault(settings: FaultSettings, method: str, path: str) -> str | None:
    """Count this request and say which fault it gets, if any."""
    if settings.rate <= 0 or not settings.kinds:
        return None
    key = f"{method} {path}"
    settings.counters[key] += 1
    number = settings.counters[key]
    digest = _path_hash(key)
    if unit(settings.seed, digest, number) >= settings.rate:
        return None
    return settings.kinds[mix(settings.seed, digest, number, _KIND_STREAM) % len(settings.kinds)]


class FaultMiddleware:
    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        settings = self.state.faults
        kind = choose_fault(settings, scope["method"], scope["path"])
        if kind is None:
            await self.app(scope, receive, send)
            return
        if kind in _BEFORE_HANDLER:
            self._note(scope, kind)
            await self._refuse(scope, send, kind)
            return
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None:
            return
        status = int(start["status"])
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if kind == "truncated_body" and (status != 200 or len(body) < 2):
            # Nothing worth cutting: the answer goes out whole, and no fault is counted.
            await _send(send, status, headers, body)
            return
        self._note(scope, kind)
        if kind == "slow":
            await asyncio.sleep(self.state.options.slow_seconds)
            await _send(send, status, headers, body)
        elif kind == "drop_connection":
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            # Returning mid-body makes the server close the connection.
        else:
            await _send(send, status, headers, body[: len(body) // 2])

    def _note(self, scope: Scope, kind: str) -> None:
        scope[FAULT_SCOPE_KEY] = kind
        self.state.faults.injected[kind] += 1

    async def _refuse(self, scope: Scope, send: Send, kind: str) -> None:
        path: str = scope["path"]
        status = _STATUS[kind]
        retry_after = str(self.state.options.retry_after_seconds)
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json;charset=UTF-8")]
        if kind in ("rate_limit", "unavailable"):
            headers.append((b"retry-after", retry_after.encode()))
        serial = sum(self.state.faults.injected.values())
        high = mix(self.state.faults.seed, _path_hash(path), serial)
        correlation = str(uuid.UUID(int=(high << 64) | mix(high, serial)))
        if path.startswith("/services/oauth2"):
            body: object = {"error": "unknown_error", "error_description": "retry your request"}
        elif path.startswith("/services"):
            code, message = {
                429: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
                500: (
                    "UNKNOWN_EXCEPTION",
                    f"An unexpected error occurred. Please include this ErrorId if you contact support: {correlation[:8]}",
                ),
                503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable, please retry."),
            }[status]
            body = [{"message": message, "errorCode": code}]
        elif path.startswith(("/crm", "/oauth")):
            if status == 429:
                body = {
                    "status": "error",
                    "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": correlation,
                    "policyName": "TEN_SECONDLY_ROLLING",
                }
                limit = str(self.state.options.hs_requests_per_10s).encode()
                headers.extend(
                    [
                        (b"x-hubspot-ratelimit-interval-milliseconds", b"10000"),
                        (b"x-hubspot-ratelimit-max", limit),
                        (b"x-hubspot-ratelimit-remaining", b"0"),
                    ]
                )
            else:
                body = {
                    "status": "error",
                    "message": "internal error" if status == 500 else "Service unavailable",
                    "correlationId": correlation,
                    "category": "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE",
                }
        elif path.startswith("/api"):
            error = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}[status]
            body = {"ok": False, "error": error}
        else:
            error = {429: "rate_limited", 500: "internal_error", 503: "unavailable"}[status]
            body = {"error": error, "message": f"injected fault: {kind}"}
        await _send(send, status, headers, orjson.dumps(body))


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
