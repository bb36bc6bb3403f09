"""The sandbox's own control surface, ``/_sandbox/*`` (never faulted).

- ``GET /_sandbox/health``: ready, and what org it serves
- ``GET /_sandbox/requests``: counts per method, path template, status and
  injected fault; ``POST /_sandbox/requests/reset`` clears them
- ``POST /_sandbox/reset``: regenerate the data from the seed; posted Slack
  messages, tokens, counters and the clock offset are cleared too
- ``GET|POST /_sandbox/faults``: the fault rate, kinds and seed
  (``{"rate": 0.2, "kinds": [...], "seed": 7}``); a POST restarts the
  per-path request counters, so what follows is reproducible
- ``POST /_sandbox/tokens/expire``: ``{"system": "salesforce"}`` (or
  hubspot, slack, usage, all): the next call with any current token gets 401
- ``POST /_sandbox/clock/advance``: ``{"seconds": 3600}`` moves the sandbox
  clock forward (token lifetimes, rate limits, usage visibility)
- ``GET /_sandbox/writes``: every record field written through the CRM APIs,
  one entry per (system, object, record, field) with the number of writes and
  the distinct values written, oldest first (``?field=NAME``, repeatable,
  narrows it); cleared by a reset
- ``POST /_sandbox/bulk-import``: ``{"object": "companies", "count": 12000,
  "mode": "touch" | "create"}`` gives that many HubSpot records one exact
  last-modified moment (the current sandbox time)
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from clghub.sandbox.faults import validate_kinds
from clghub.sandbox.generator import bulk_import, create_imported, generate
from clghub.sandbox.schema import HS_MODIFIED_PROPERTY
from clghub.sandbox.state import FAULT_KINDS, SandboxState
from clghub.sandbox.wire import json_response

__all__ = ["routes"]

_SYSTEMS = ("salesforce", "hubspot", "slack", "usage")


class _Invalid(Exception):
    pass


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Invalid(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _Invalid("the body must be a JSON object")
    return body


def _faults_body(state: SandboxState) -> dict[str, Any]:
    faults = state.faults
    return {
        "rate": faults.rate,
        "kinds": list(faults.kinds),
        "seed": faults.seed,
        "available": list(FAULT_KINDS),
        "slow_seconds": state.options.slow_seconds,
        "injected": dict(sorted(faults.injected.items())),
    }


def routes(state: SandboxState) -> list[BaseRoute]:
    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except _Invalid as exc:
                return json_response({"error": "invalid_request", "message": str(exc)}, status=400)
            return response

        return endpoint

    async def health(request: Request) -> Response:
        options = state.options
        return json_response(
            {
                "status": "ok",
                "seed": options.seed,
                "accounts": options.accounts,
                "anchor": options.anchor.isoformat(),
                "usage_days": options.usage_days,
                "generated": state.meta("signature") is not None,
                "now": state.timestamp(),
            }
        )

    async def requests(request: Request) -> Response:
        entries = [
            {"method": method, "path": path, "status": status, "fault": fault, "count": count}
            for (method, path, status, fault), count in sorted(
                state.requests.counts.items(),
                key=lambda item: (item[0][1], item[0][0], item[0][2], item[0][3] or ""),
            )
        ]
        total = sum(state.requests.counts.values())
        return json_response({"total": total, "requests": entries})

    async def writes(request: Request) -> Response:
        fields = request.query_params.getlist("field")
        where = f"WHERE field IN ({', '.join('?' for _ in fields)})" if fields else ""
        rows = state.db.execute(
            f"SELECT system, object, record_id, field, value FROM write_log {where} ORDER BY seq",
            fields,
        ).fetchall()
        entries: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for system, obj, record_id, name, value in rows:
            entry = entries.setdefault(
                (system, obj, record_id, name),
                {
                    "system": system,
                    "object": obj,
                    "record_id": record_id,
                    "field": name,
                    "writes": 0,
                    "values": [],
                },
            )
            entry["writes"] += 1
            if value not in entry["values"]:
                entry["values"].append(value)
        return json_response({"writes": list(entries.values())})

    async def requests_reset(request: Request) -> Response:
        cleared = sum(state.requests.counts.values())
        state.requests.clear()
        return json_response({"cleared": cleared})

    async def reset(request: Request) -> Response:
        state.clear()
        summary = generate(state)
        state.after_reset()
        return json_response(
            {"status": "reset", "rows": summary.rows, "seconds": round(summary.seconds, 3)}
        )

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return json_response(_faults_body(state))
        body = await _json_object(request)
        unknown = set(body) - {"rate", "kinds", "seed", "slow_seconds"}
        if unknown:
            raise _Invalid(
                f"unknown field(s) {sorted(unknown)}; expected rate, kinds, seed, slow_seconds"
            )
        settings = state.faults
        if "rate" in body:
            rate = body["rate"]
            if (
                isinstance(rate, bool)
                or not isinstance(rate, int | float)
                or not 0.0 <= rate <= 1.0
            ):
                raise _Invalid("rate must be a number from 0 to 1")
            settings.rate = float(rate)
        if "kinds" in body:
            kinds = body["kinds"]
            if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                raise _Invalid("kinds must be a list of fault kind names")
            try:
                settings.kinds = validate_kinds(kinds)
            except ValueError as exc:
                raise _Invalid(str(exc)) from None
        if "seed" in body:
            if isinstance(body["seed"], bool) or not isinstance(body["seed"], int):
                raise _Invalid("seed must be an integer")
            settings.seed = body["seed"]
        if "slow_seconds" in body:
            slow = body["slow_seconds"]
            if isinstance(slow, bool) or not isinstance(slow, int | float) or slow < 0:
                raise _Invalid("slow_seconds must be a non-negative number")
            state.options.slow_seconds = float(slow)
        settings.counters.clear()
        return json_response(_faults_body(state))

    async def expire_tokens(request: Request) -> Response:
        body = await _json_object(request)
        system = body.get("system")
        if system not in (*_SYSTEMS, "all"):
            raise _Invalid(f"system must be one of {[*_SYSTEMS, 'all']}")
        expired = state.tokens.expire_all(None if system == "all" else str(system))
        return json_response({"system": system, "expired": expired})

    async def advance_clock(request: Request) -> Response:
        body = await _json_object(request)
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise _Invalid("seconds must be a non-negative number")
        state.advance(float(seconds))
        return json_response({"now": state.timestamp()})

    async def import_records(request: Request) -> Response:
        body = await _json_object(request)
        obj = body.get("object", "companies")
        count = body.get("count")
        mode = body.get("mode", "touch")
        if obj not in HS_MODIFIED_PROPERTY:
            raise _Invalid(f"object must be one of {sorted(HS_MODIFIED_PROPERTY)}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
            raise _Invalid("count must be an integer from 1 to 1000000")
        if mode not in ("touch", "create"):
            raise _Invalid("mode must be touch or create")
        moment = state.timestamp()
        if mode == "create":
            ids = create_imported(state, str(obj), count, moment=moment)
            return json_response(
                {
                    "object": obj,
                    "mode": mode,
                    "timestamp": moment,
                    "count": len(ids),
                    "first_id": ids[0],
                    "last_id": ids[-1],
                }
            )
        touched = bulk_import(state, count, moment, obj=str(obj))
        return json_response(
            {"object": obj, "mode": mode, "timestamp": moment, "count": touched.get(str(obj), 0)}
        )

    return [
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/requests", requests, methods=["GET"]),
        Route("/_sandbox/requests/reset", requests_reset, methods=["POST"]),
        Route("/_sandbox/writes", writes, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/faults", guarded(faults), methods=["GET", "POST"]),
        Route("/_sandbox/tokens/expire", guarded(expire_tokens), methods=["POST"]),
        Route("/_sandbox/clock/advance", guarded(advance_clock), methods=["POST"]),
        Route("/_sandbox/bulk-import", guarded(import_records), methods=["POST"]),
    ]
