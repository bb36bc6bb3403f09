"""HubSpot rate limits: a rolling ten-second window, a daily allowance, and
the search endpoints' own per-second limit, each per token.

Every call but search counts against ``hs_requests_per_10s`` (rolling) and
carries ``X-HubSpot-RateLimit-*`` headers; private-app calls also count
against ``hs_daily_limit`` and carry the ``-Daily`` headers. Search calls
count against ``hs_search_per_second`` and the daily allowance, and carry no
rate-limit headers, as HubSpot's search endpoints do not. Refused calls do
not count.

Over a limit the answer is HubSpot's 429 body with ``policyName``
``TEN_SECONDLY_ROLLING``, ``SECONDLY`` or ``DAILY``. HubSpot does not always
send ``Retry-After``; the sandbox sends it on every second ten-secondly
refusal of a token (the seconds until a slot frees) and never on the
others, so clients meet both cases deterministically.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date

from starlette.responses import Response

from clghub.sandbox.apis.hs_auth import Caller
from clghub.sandbox.apis.hs_http import correlation_id, json_response
from clghub.sandbox.state import SandboxState

__all__ = ["INTERVAL_SECONDS", "RateLimited", "RateLimiter"]

INTERVAL_SECONDS = 10.0
_SEARCH_WINDOW = 1.0


class RateLimited(Exception):
    def __init__(self, policy: str, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.policy = policy
        self.message = message
        self.headers = headers

    def response(self) -> Response:
        body = {
            "status": "error",
            "message": self.message,
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": self.policy,
        }
        return json_response(body, status=429, headers=self.headers)


@dataclass
class _Usage:
    window: deque[float] = field(default_factory=deque)
    searches: deque[float] = field(default_factory=deque)
    day: date | None = None
    daily: int = 0
    refusals: int = 0


class RateLimiter:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._usage: dict[str, _Usage] = {}

    def admit(self, caller: Caller, *, search: bool) -> dict[str, str]:
        """Count one call; the headers to send, or RateLimited."""
        options = self.state.options
        usage = self._usage.setdefault(caller.token, _Usage())
        now = time.monotonic()
        today = self.state.now().date()
        if usage.day != today:
            usage.day, usage.daily = today, 0
        daily_limited = not caller.oauth
        if daily_limited and usage.daily >= options.hs_daily_limit:
            raise RateLimited(
                "DAILY",
                "You have reached your daily limit.",
                {} if search else self._headers(usage, daily_limited),
            )
        if search:
            while usage.searches and now - usage.searches[0] >= _SEARCH_WINDOW:
                usage.searches.popleft()
            if len(usage.searches) >= options.hs_search_per_second:
                raise RateLimited("SECONDLY", "You have reached your secondly limit.", {})
            usage.searches.append(now)
            usage.daily += 1
            return {}
        while usage.window and now - usage.window[0] >= INTERVAL_SECONDS:
            usage.window.popleft()
        if len(usage.window) >= options.hs_requests_per_10s:
            usage.refusals += 1
            headers = self._headers(usage, daily_limited)
            if usage.refusals % 2 == 0:
                wait = INTERVAL_SECONDS - (now - usage.window[0])
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
            raise RateLimited(
                "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", headers
            )
        usage.window.append(now)
        usage.daily += 1
        return self._headers(usage, daily_limited)

    def _headers(self, usage: _Usage, daily_limited: bool) -> dict[str, str]:
        options = self.state.options
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(INTERVAL_SECONDS * 1000)),
            "X-HubSpot-RateLimit-Max": str(options.hs_requests_per_10s),
            "X-HubSpot-RateLimit-Remaining": str(
                max(0, options.hs_requests_per_10s - len(usage.window))
            ),
        }
        if daily_limited:
            headers["X-HubSpot-RateLimit-Daily"] = str(options.hs_daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, options.hs_daily_limit - usage.daily)
            )
        return headers

    def reset(self) -> None:
        self._usage.clear()
