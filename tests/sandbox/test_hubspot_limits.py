"""HubSpot rate limits (ten-secondly, daily, search secondly) and authentication
(private-app tokens, OAuth access tokens, expiry and refresh)."""

from __future__ import annotations

import orjson
import pytest
from hubspot import HubSpot
from hubspot.crm.companies import ApiException, PublicObjectSearchRequest

from clghub.sandbox.apis.hs_auth import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_PRIVATE_APP_TOKEN,
    SANDBOX_REFRESH_TOKEN,
)
from clghub.sandbox.server import SandboxServer
from tests.sandbox.crm_fixtures import control, crm_sandbox, http, hubspot, insert_companies

RATE_HEADERS = (
    "x-hubspot-ratelimit-interval-milliseconds",
    "x-hubspot-ratelimit-max",
    "x-hubspot-ratelimit-remaining",
)


def oauth_token(server: SandboxServer) -> str:
    client = HubSpot(host=server.http_url)
    answer = client.oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        refresh_token=SANDBOX_REFRESH_TOKEN,
    )
    assert answer.token_type == "bearer"
    assert answer.expires_in == server.state.options.hs_token_seconds
    assert answer.refresh_token == SANDBOX_REFRESH_TOKEN
    return str(answer.access_token)


def test_ten_secondly_window() -> None:
    with crm_sandbox(hs_requests_per_10s=3) as server, http(server, "pat-na1-burst") as client:
        insert_companies(server.state, 1)
        remaining = []
        for _ in range(3):
            response = client.get("/crm/v3/objects/companies")
            assert response.status_code == 200
            remaining.append(response.headers["x-hubspot-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        assert response.headers["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
        assert response.headers["x-hubspot-ratelimit-max"] == "3"
        refused = [client.get("/crm/v3/objects/companies") for _ in range(2)]
        for answer in refused:
            assert answer.status_code == 429
            body = answer.json()
            assert body["message"] == "You have reached your ten_secondly_rolling limit."
            assert body["errorType"] == "RATE_LIMIT"
            assert body["policyName"] == "TEN_SECONDLY_ROLLING"
            assert body["correlationId"]
            assert answer.headers["x-hubspot-ratelimit-remaining"] == "0"
        # Retry-After comes on some refusals only, as with HubSpot.
        assert "retry-after" not in refused[0].headers
        assert 1 <= int(refused[1].headers["retry-after"]) <= 10
        with http(server, "pat-na1-another-app") as other:
            assert other.get("/crm/v3/objects/companies").status_code == 200


def test_daily_limit_applies_to_private_apps_only() -> None:
    with crm_sandbox(hs_daily_limit=2) as server:
        with http(server, "pat-na1-daily") as private:
            first = private.get("/crm/v3/objects/companies")
            assert first.headers["x-hubspot-ratelimit-daily"] == "2"
            assert first.headers["x-hubspot-ratelimit-daily-remaining"] == "1"
            assert private.get("/crm/v3/objects/companies").status_code == 200
            refused = private.get("/crm/v3/objects/companies")
            assert refused.status_code == 429
            assert refused.json()["policyName"] == "DAILY"
        with http(server, oauth_token(server)) as oauth:
            for _ in range(3):
                answer = oauth.get("/crm/v3/objects/companies")
                assert answer.status_code == 200
                assert "x-hubspot-ratelimit-daily" not in answer.headers
                assert "x-hubspot-ratelimit-max" in answer.headers


def test_search_has_its_own_secondly_limit_and_no_headers() -> None:
    with crm_sandbox(hs_search_per_second=2) as server:
        client = hubspot(server)
        request = PublicObjectSearchRequest(limit=1)
        for _ in range(2):
            client.crm.companies.search_api.do_search(public_object_search_request=request)
        with pytest.raises(ApiException) as raised:
            client.crm.companies.search_api.do_search(public_object_search_request=request)
        assert raised.value.status == 429
        body = orjson.loads(raised.value.body)
        assert (body["policyName"], body["message"]) == (
            "SECONDLY",
            "You have reached your secondly limit.",
        )
        with http(server) as raw:
            answer = raw.post("/crm/v3/objects/companies/search", json={})
        assert not any(name in answer.headers for name in RATE_HEADERS)


def test_strict_auth_accepts_only_the_portal_tokens() -> None:
    with crm_sandbox(strict_auth=True) as server:
        with http(server, "pat-na1-stranger") as stranger:
            refused = stranger.get("/crm/v3/objects/companies")
        assert refused.status_code == 401
        assert refused.json()["category"] == "INVALID_AUTHENTICATION"
        assert refused.json()["message"].startswith("Authentication credentials not found.")
        with http(server, SANDBOX_PRIVATE_APP_TOKEN) as own:
            assert own.get("/crm/v3/objects/companies").status_code == 200
        with http(server, oauth_token(server)) as oauth:
            assert oauth.get("/crm/v3/objects/companies").status_code == 200


def test_expired_oauth_token_answers_401_until_refreshed() -> None:
    with crm_sandbox() as server:
        insert_companies(server.state, 1)
        token = oauth_token(server)
        client = hubspot(server, token)
        assert len(client.crm.companies.basic_api.get_page().results) == 1
        control(server, "tokens/expire", {"system": "hubspot"})
        with pytest.raises(ApiException) as raised:
            client.crm.companies.basic_api.get_page()
        assert raised.value.status == 401
        body = orjson.loads(raised.value.body)
        assert body["category"] == "EXPIRED_AUTHENTICATION"
        assert body["message"].startswith("The OAuth token used to make this call expired")
        fresh = hubspot(server, oauth_token(server))
        assert len(fresh.crm.companies.basic_api.get_page().results) == 1
        server.state.advance(server.state.options.hs_token_seconds + 5)
        with http(server, fresh.access_token) as raw:
            late = raw.get("/crm/v3/objects/companies")
        assert late.status_code == 401
        assert "expired 5 second(s) ago" in late.json()["message"]


def test_token_endpoint_errors() -> None:
    with crm_sandbox() as server, http(server) as client:
        wrong = client.post(
            "/oauth/v1/token",
            data={
                "grant_type": "refresh_token",
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": "nope",
                "refresh_token": SANDBOX_REFRESH_TOKEN,
            },
        )
        assert wrong.status_code == 400
        assert wrong.json()["status"] == "BAD_CLIENT_SECRET"
        missing = client.post(
            "/oauth/v1/token",
            data={"grant_type": "refresh_token", "client_id": "x", "client_secret": "y"},
        )
        assert missing.json()["status"] == "BAD_REFRESH_TOKEN"
