"""Fault injection: deterministic, shaped like each API's own errors, and counted."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from clghub.sandbox.faults import choose_fault
from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import FAULT_KINDS, FaultSettings

SLACK = {"Authorization": "Bearer xoxb-test"}
BEARER = {"Authorization": "Bearer some-token"}


@pytest.fixture
def faults(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A client to a sandbox whose faults the test sets; faults are off again afterwards."""
    with httpx.Client(base_url=sandbox.http_url, timeout=10) as client:
        yield client
        client.post("/_sandbox/faults", json={"rate": 0.0, "kinds": list(FAULT_KINDS)})


def _set(client: httpx.Client, kind: str, rate: float = 1.0) -> None:
    response = client.post("/_sandbox/faults", json={"rate": rate, "kinds": [kind], "seed": 3})
    assert response.status_code == 200


def test_decisions_are_deterministic_per_seed_and_path() -> None:
    def run(seed: int) -> list[str | None]:
        settings = FaultSettings(rate=0.3, seed=seed)
        return [choose_fault(settings, "GET", f"/crm/v3/objects/{n % 3}") for n in range(300)]

    first, again, other = run(1), run(1), run(2)
    assert first == again
    assert first != other
    share = sum(kind is not None for kind in first) / len(first)
    assert 0.2 < share < 0.4
    assert {kind for kind in first if kind} == set(FAULT_KINDS)
    assert all(choose_fault(FaultSettings(rate=0.0), "GET", "/x") is None for _ in range(50))


def test_salesforce_hubspot_slack_and_usage_shapes(faults: httpx.Client) -> None:
    _set(faults, "rate_limit")
    salesforce = faults.get("/services/data/v62.0/limits", headers=BEARER)
    assert salesforce.status_code == 429
    assert salesforce.headers["retry-after"] == "1"
    assert salesforce.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    hubspot = faults.get("/crm/v3/objects/companies", headers=BEARER)
    assert hubspot.status_code == 429
    body = hubspot.json()
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["correlationId"]
    assert hubspot.headers["x-hubspot-ratelimit-remaining"] == "0"
    slack = faults.post("/api/auth.test", headers=SLACK)
    assert slack.status_code == 429
    assert slack.json() == {"ok": False, "error": "ratelimited"}
    usage = faults.get("/usage/v1/daily", headers=BEARER)
    assert usage.status_code == 429
    assert usage.json()["error"] == "rate_limited"

    _set(faults, "rate_limit_no_retry_after")
    no_header = faults.get("/crm/v3/objects/companies", headers=BEARER)
    assert no_header.status_code == 429
    assert "retry-after" not in no_header.headers

    _set(faults, "server_error")
    assert (
        faults.get("/services/data/v62.0/limits", headers=BEARER).json()[0]["errorCode"]
        == "UNKNOWN_EXCEPTION"
    )
    _set(faults, "unavailable")
    unavailable = faults.get("/services/data/v62.0/limits", headers=BEARER)
    assert unavailable.status_code == 503
    assert unavailable.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_refusals_apply_nothing_and_control_is_never_faulted(faults: httpx.Client) -> None:
    _set(faults, "server_error")
    refused = faults.post(
        "/api/chat.postMessage", json={"channel": "#support", "text": "lost"}, headers=SLACK
    )
    assert refused.status_code == 500
    assert faults.get("/_sandbox/health").status_code == 200
    faults.post("/_sandbox/faults", json={"rate": 0.0})
    dump = faults.get("/_sandbox/slack/messages", params={"channel": "support"}).json()
    assert all(message["text"] != "lost" for message in dump["messages"])


def test_truncated_body_has_a_matching_length(faults: httpx.Client) -> None:
    _set(faults, "truncated_body")
    response = faults.get("/usage/v1/daily", params={"limit": 50}, headers=BEARER)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)
    # An error answer is not cut, and no fault is counted for it.
    before = faults.get("/_sandbox/faults").json()["injected"]["truncated_body"]
    refused = faults.get("/usage/v1/daily")
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"
    assert faults.get("/_sandbox/faults").json()["injected"]["truncated_body"] == before


def test_dropped_connection_after_the_write(faults: httpx.Client) -> None:
    _set(faults, "drop_connection")
    with pytest.raises(httpx.RemoteProtocolError):
        faults.post(
            "/api/chat.postMessage",
            json={"channel": "#product", "text": "applied, then cut"},
            headers=SLACK,
        )
    faults.post("/_sandbox/faults", json={"rate": 0.0})
    dump = faults.get("/_sandbox/slack/messages", params={"channel": "product"}).json()
    assert dump["messages"][-1]["text"] == "applied, then cut"


def test_slow_response_outlasts_the_client_timeout(
    sandbox: SandboxServer, faults: httpx.Client
) -> None:
    faults.post("/_sandbox/faults", json={"rate": 1.0, "kinds": ["slow"], "slow_seconds": 0.6})
    try:
        with pytest.raises(httpx.ReadTimeout):
            faults.get("/usage/v1/daily", params={"limit": 5}, headers=BEARER, timeout=0.2)
        patient = faults.get("/usage/v1/daily", params={"limit": 5}, headers=BEARER, timeout=5)
        assert patient.status_code == 200
        assert len(patient.json()["data"]) == 5
    finally:
        faults.post("/_sandbox/faults", json={"slow_seconds": 6.0})


def test_faults_are_counted(faults: httpx.Client) -> None:
    before = faults.get("/_sandbox/faults").json()["injected"].get("unavailable", 0)
    _set(faults, "unavailable")
    for _ in range(3):
        assert faults.get("/usage/v1/daily/pages", headers=BEARER).status_code == 503
    settings = faults.get("/_sandbox/faults").json()
    assert settings["injected"]["unavailable"] == before + 3
    assert settings["kinds"] == ["unavailable"]
    entries = faults.get("/_sandbox/requests").json()["requests"]
    counted = [
        e
        for e in entries
        if e["path"] == "/usage/v1/daily/pages"
        and e["fault"] == "unavailable"
        and e["status"] == 503
    ]
    assert counted
    assert counted[0]["count"] >= 3


def test_fault_settings_reject_bad_input(faults: httpx.Client) -> None:
    for body in ({"rate": 2}, {"rate": "high"}, {"kinds": ["fire"]}, {"seed": 1.5}, {"rte": 0.1}):
        response = faults.post("/_sandbox/faults", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"] == "invalid_request"
    assert faults.post("/_sandbox/faults", content=b"{oops").status_code == 400


def test_a_partial_rate_replays_identically(sandbox: SandboxServer, faults: httpx.Client) -> None:
    def statuses() -> list[int]:
        faults.post("/_sandbox/faults", json={"rate": 0.3, "kinds": ["server_error"], "seed": 99})
        return [
            faults.get("/usage/v1/daily", params={"limit": 1}, headers=BEARER).status_code
            for _ in range(40)
        ]

    first, second = statuses(), statuses()
    assert first == second
    assert 500 in first
    assert 200 in first
