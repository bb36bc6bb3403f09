"""The one HTTP resilience policy every connector and writer shares.

- 429: wait what ``Retry-After`` says (seconds or an HTTP date, capped), else back off.
- 5xx, timeouts, dropped connections and truncated bodies: exponential backoff with
  full jitter, up to ``max_retries`` times.
- Other 4xx: fail at once with the API's own message.
- Credentials never appear in what this module logs or raises: every message goes
  through the secret redactor.

Connectors translate their client library's exceptions into :class:`TransientError`,
:class:`ApiError`, :class:`QuotaExhausted` or :class:`SessionExpired`; the policy
only knows those.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from clghub.config.secrets import REDACTOR
from clghub.errors import ClghubError

__all__ = [
    "METRICS",
    "ApiError",
    "Pacer",
    "QuotaExhausted",
    "RetryPolicy",
    "SessionExpired",
    "TransientError",
    "classify_httpx_error",
    "parse_retry_after",
    "response_json",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class TransientError(Exception):
    """Worth another try: 429, 5xx, a timeout, a dropped connection, a truncated body."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, kind: str = "transient"
    ) -> None:
        super().__init__(REDACTOR.redact(message))
        self.retry_after = retry_after
        self.kind = kind


class ApiError(ClghubError):
    """The API refused the request for a reason a retry will not fix."""

    def __init__(self, service: str, status: int, message: str, code: str | None = None) -> None:
        text = f"{service} answered {status}" + (f" {code}" if code else "") + f": {message}"
        super().__init__(REDACTOR.redact(text))
        self.service = service
        self.status = status
        self.code = code
        self.api_message = REDACTOR.redact(message)


class QuotaExhausted(ClghubError):
    """A daily quota is (nearly) used up: stop cleanly, keep the checkpoint, resume next run."""


class SessionExpired(Exception):
    """The session or token expired: log in again (or refresh) and retry once."""


@dataclass
class Metrics:
    """Process-wide counters of retries by kind (the chaos benchmark prints them)."""

    retries: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count_retry(self, kind: str) -> None:
        with self._lock:
            self.retries[kind] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.retries)

    def reset(self) -> None:
        with self._lock:
            self.retries.clear()


METRICS = Metrics()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass
class RetryPolicy:
    max_retries: int = 6
    max_wait: float = 60.0
    base_wait: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[float, float], float] = random.uniform

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, self.max_wait)
        ceiling = min(self.max_wait, self.base_wait * (2 ** (state.attempt_number - 1)))
        return self.jitter(0.0, ceiling)

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        kind = error.kind if isinstance(error, TransientError) else "transient"
        METRICS.count_retry(kind)
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "retrying after %s (attempt %d of %d, waiting %.1fs): %s",
            kind,
            state.attempt_number,
            self.max_retries + 1,
            wait,
            error,
        )

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; retry it on :class:`TransientError` as the policy says."""
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=self._wait,
            stop=stop_after_attempt(self.max_retries + 1),
            sleep=self.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(fn)


def response_json(response: httpx.Response) -> Any:
    """Parse a JSON body; a truncated or garbled body is transient (the next try is whole)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise TransientError(
            f"unreadable JSON body from {response.request.method} {response.request.url.path} ({exc})",
            kind="truncated",
        ) from None


def classify_httpx_error(exc: Exception, service: str) -> Exception:
    """Map an httpx failure to the policy's error types."""
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"{service}: timed out ({type(exc).__name__})", kind="timeout")
    if isinstance(exc, httpx.TransportError):
        return TransientError(
            f"{service}: connection failed ({type(exc).__name__}: {exc})", kind="connection"
        )
    return exc


def check_response(response: httpx.Response, service: str) -> httpx.Response:
    """Raise the policy's error for a failed response; return it unchanged otherwise."""
    status = response.status_code
    if status < 400:
        return response
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        raise TransientError(f"{service} rate limited (429)", retry_after=retry_after, kind="429")
    if status >= 500 or status == 408:
        raise TransientError(
            f"{service} answered {status}", retry_after=retry_after, kind=f"{status}"
        )
    message = response.text[:500]
    try:
        body = orjson.loads(response.content)
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("error") or body)
        elif isinstance(body, list) and body and isinstance(body[0], dict):
            message = str(body[0].get("message") or body[0])
    except orjson.JSONDecodeError:
        pass
    if status == 401:
        raise SessionExpired(f"{service} answered 401: {REDACTOR.redact(message)}")
    raise ApiError(service, status, message)


class Pacer:
    """Keeps a client under a rolling-window rate limit instead of living on 429s.

    ``limit`` requests per ``interval`` seconds (rolling), learned from the
    API's headers when it sends them (``update``); a safety margin leaves room
    for other clients of the same app.
    """

    def __init__(
        self,
        limit: int,
        interval: float,
        *,
        margin: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = max(1, int(limit * margin))
        self.interval = interval
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def update(self, limit: int | None, interval: float | None = None) -> None:
        with self._lock:
            if limit:
                self.limit = max(1, int(limit * self.margin))
            if interval:
                self.interval = interval

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self.interval:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = self.interval - (now - self._sent[0]) + 0.001
            self.waited += wait
            self._sleep(wait)
