"""A ``slack_sdk.WebClient`` under clghub's retry rules.

Retries are slack-sdk's pluggable handlers: 429 waits what ``Retry-After``
says (:class:`RateLimitErrorRetryHandler`); 5xx and dropped connections,
timeouts and truncated bodies back off and try again. The last two only
for *idempotent* calls (reads, opening a DM): a message whose answer was
lost may have been posted, so posting clients retry 429 alone and leave the
rest to :class:`~clghub.connectors.slack.messenger.SlackMessenger`, which
looks in the channel before it posts again.
"""

from __future__ import annotations

import json
import random
import ssl
from collections.abc import Callable
from http.client import IncompleteRead, RemoteDisconnected
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from clghub.config.models import SlackConfig
from clghub.config.secrets import REDACTOR

__all__ = ["TRANSIENT_ERRORS", "AnyServerErrorRetryHandler", "CappedBackoff", "web_client"]

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    URLError,
    ConnectionError,  # reset, refused, aborted, broken pipe
    RemoteDisconnected,
    IncompleteRead,
    TimeoutError,
    json.JSONDecodeError,  # a body cut short
    UnicodeDecodeError,  # a body cut short inside a multi-byte character
)
"""What a dropped, stalled or truncated exchange raises through slack-sdk."""


class CappedBackoff(RetryIntervalCalculator):
    """Exponential backoff with full jitter, never longer than ``cap`` seconds.

    slack-sdk's own backoff has no ceiling: with a dozen retries its last
    waits run to minutes, which a run under a short outage should not spend.
    """

    def __init__(
        self,
        *,
        base: float = 0.5,
        cap: float,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return self.jitter(0.0, min(self.cap, self.base * 2**current_attempt))


class AnyServerErrorRetryHandler(ServerErrorRetryHandler):
    """Retries every 5xx answer, not only 500 and 503."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and 500 <= response.status_code <= 599


def _handlers(config: SlackConfig, *, idempotent: bool) -> list[RetryHandler]:
    backoff = CappedBackoff(cap=config.max_retry_wait_seconds)
    handlers: list[RetryHandler] = [RateLimitErrorRetryHandler(max_retry_count=config.max_retries)]
    if idempotent:
        handlers += [
            ConnectionErrorRetryHandler(
                max_retry_count=config.max_retries,
                interval_calculator=backoff,
                error_types=list(TRANSIENT_ERRORS),
            ),
            AnyServerErrorRetryHandler(
                max_retry_count=config.max_retries, interval_calculator=backoff
            ),
        ]
    return handlers


def web_client(config: SlackConfig, *, idempotent: bool = True) -> WebClient:
    """A WebClient for ``config`` (its token registered with the log redactor)."""
    if config.token is None:
        raise ValueError("slack.token is not set")
    token = config.token.reveal()
    REDACTOR.register(token)
    context = ssl.create_default_context(cafile=config.ca_bundle) if config.ca_bundle else None
    base_url = config.base_url if config.base_url.endswith("/") else config.base_url + "/"
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=max(1, int(config.timeout_seconds)),
        ssl=context,
        retry_handlers=_handlers(config, idempotent=idempotent),
    )
