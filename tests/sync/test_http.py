"""The shared resilience policy: Retry-After, backoff, fail-fast 4xx, pacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from clghub.config.secrets import REDACTOR
from clghub.http import (
    METRICS,
    ApiError,
    Pacer,
    RetryPolicy,
    SessionExpired,
    TransientError,
    check_response,
    parse_retry_after,
    response_json,
)


def test_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now)
        == 30.0
    )
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


def test_policy_honours_retry_after_capped_and_backs_off_otherwise() -> None:
    slept: list[float] = []
    policy = RetryPolicy(
        max_retries=4,
        max_wait=10.0,
        base_wait=1.0,
        sleep=slept.append,
        jitter=lambda low, high: high,
    )
    errors = [
        TransientError("429", retry_after=3.0),
        TransientError("429", retry_after=99.0),
        TransientError("503"),
        TransientError("503"),
    ]

    def flaky() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    assert policy.call(flaky) == "ok"
    assert slept == [3.0, 10.0, 4.0, 8.0]


def test_policy_gives_up_after_max_retries_and_counts() -> None:
    METRICS.reset()
    policy = RetryPolicy(max_retries=2, sleep=lambda s: None)
    calls = []

    def always() -> None:
        calls.append(1)
        raise TransientError("boom", kind="500")

    with pytest.raises(TransientError):
        policy.call(always)
    assert len(calls) == 3
    assert METRICS.snapshot() == {"500": 2}


def test_other_errors_fail_fast() -> None:
    policy = RetryPolicy(sleep=lambda s: None)
    calls = []

    def bad() -> None:
        calls.append(1)
        raise ApiError("X", 400, "nope")

    with pytest.raises(ApiError):
        policy.call(bad)
    assert calls == [1]


def _response(
    status: int, body: bytes = b"{}", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status, content=body, headers=headers, request=httpx.Request("GET", "https://api.example/x")
    )


def test_check_response_classifies() -> None:
    with pytest.raises(TransientError) as info:
        check_response(_response(429, headers={"Retry-After": "2"}), "usage API")
    assert info.value.retry_after == 2.0
    with pytest.raises(TransientError):
        check_response(_response(503), "usage API")
    with pytest.raises(SessionExpired):
        check_response(_response(401), "usage API")
    with pytest.raises(ApiError, match="usage API answered 404: no such thing"):
        check_response(_response(404, b'{"message": "no such thing"}'), "usage API")
    assert check_response(_response(200), "usage API").status_code == 200


def test_truncated_json_is_transient() -> None:
    with pytest.raises(TransientError) as info:
        response_json(_response(200, b'{"data": [1, 2'))
    assert info.value.kind == "truncated"


def test_errors_never_carry_secrets() -> None:
    REDACTOR.register("sk-live-0123456789")
    error = ApiError("X", 400, "bad token sk-live-0123456789")
    assert "sk-live" not in str(error)
    assert "sk-live" not in str(TransientError("Bearer sk-live-0123456789 refused"))


def test_pacer_keeps_a_rolling_window() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    pacer = Pacer(10, 10.0, margin=1.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(25):
        pacer.acquire()
        clock[0] += 0.01
    # 25 requests under 10 per 10 s need two waits of almost 10 s.
    assert len(slept) == 2
    assert clock[0] >= 20.0
    pacer.update(190, 10.0)
    assert pacer.limit == 190
