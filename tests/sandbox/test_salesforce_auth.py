"""Salesforce logins (OAuth grants, SOAP), session expiry and the API quota."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import escape

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import soap_login, token_login

from clghub.sandbox.apis.sf_auth import (
    SANDBOX_CONSUMER_KEY,
    SANDBOX_CONSUMER_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_SECURITY_TOKEN,
    SANDBOX_USERNAME,
)
from clghub.sandbox.server import SandboxServer
from tests.sandbox.crm_fixtures import (
    control,
    crm_sandbox,
    https_session,
    insert_accounts,
    salesforce,
    sf_error,
    sf_login,
)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with crm_sandbox() as running:
        insert_accounts(running.state, 3)
        yield running


@pytest.fixture
def session(server: SandboxServer) -> Iterator[requests.Session]:
    client = https_session(server)
    yield client
    client.close()


def token_url(server: SandboxServer) -> str:
    return f"{server.https_url}/services/oauth2/token"


def test_password_grant_answers_a_session_on_this_instance(
    server: SandboxServer, session: requests.Session
) -> None:
    response = session.post(
        token_url(server),
        data={
            "grant_type": "password",
            "client_id": SANDBOX_CONSUMER_KEY,
            "client_secret": SANDBOX_CONSUMER_SECRET,
            "username": SANDBOX_USERNAME,
            "password": SANDBOX_PASSWORD + SANDBOX_SECURITY_TOKEN,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert body["instance_url"] == server.https_url
    assert body["token_type"] == "Bearer"
    assert body["id"].startswith(f"{server.https_url}/id/00D")
    assert "refresh_token" not in body


@pytest.mark.parametrize(
    ("form", "error", "description"),
    [
        (
            {"username": SANDBOX_USERNAME, "password": "wrong"},
            "invalid_grant",
            "authentication failure",
        ),
        ({"client_secret": "wrong"}, "invalid_client", "invalid client credentials"),
        ({"grant_type": "implicit"}, "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_failed_logins_answer_oauth_errors(
    server: SandboxServer,
    session: requests.Session,
    form: dict[str, str],
    error: str,
    description: str,
) -> None:
    data = {
        "grant_type": "password",
        "client_id": SANDBOX_CONSUMER_KEY,
        "client_secret": SANDBOX_CONSUMER_SECRET,
        "username": SANDBOX_USERNAME,
        "password": SANDBOX_PASSWORD,
        **form,
    }
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        token_login(token_url(server), data, "login", SANDBOX_CONSUMER_KEY, None, None, session)
    assert raised.value.code == error
    assert raised.value.auth_message == description


def test_client_credentials_with_basic_auth(
    server: SandboxServer, session: requests.Session
) -> None:
    credentials = base64.b64encode(f"{SANDBOX_CONSUMER_KEY}:{SANDBOX_CONSUMER_SECRET}".encode())
    token, instance = token_login(
        token_url(server),
        {"grant_type": "client_credentials"},
        "login",
        SANDBOX_CONSUMER_KEY,
        {"Authorization": f"Basic {credentials.decode()}"},
        None,
        session,
    )
    assert token
    assert instance == server.https_url.removeprefix("https://")


def test_jwt_bearer_grant(server: SandboxServer, session: requests.Session) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    expires = datetime.now(UTC) + timedelta(minutes=3)
    # simple-salesforce sends exp as a string; the sandbox must take that too.
    claims = {
        "iss": SANDBOX_CONSUMER_KEY,
        "sub": SANDBOX_USERNAME,
        "aud": "https://login.salesforce.com",
        "exp": f"{expires.timestamp():.0f}",
    }
    assertion = jwt.encode(claims, pem, algorithm="RS256")
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    token, _ = token_login(
        token_url(server), grant, "login", SANDBOX_CONSUMER_KEY, None, None, session
    )
    assert token
    expired = jwt.encode({**claims, "exp": int(expires.timestamp()) - 3600}, pem, algorithm="RS256")
    for bad in ("not-a-jwt", expired):
        with pytest.raises(SalesforceAuthenticationFailed) as raised:
            token_login(
                token_url(server),
                {**grant, "assertion": bad},
                "login",
                SANDBOX_CONSUMER_KEY,
                None,
                None,
                session,
            )
        assert raised.value.code == "invalid_grant"


def _soap_body(username: str, password: str) -> str:
    # The envelope simple-salesforce's SalesforceLogin sends with a security token.
    return f"""<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
    <env:Header><urn:CallOptions><urn:client>simple-salesforce</urn:client>
    <urn:defaultNamespace>sf</urn:defaultNamespace></urn:CallOptions></env:Header>
    <env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">
        <n1:username>{escape(username)}</n1:username>
        <n1:password>{escape(password)}</n1:password>
    </n1:login></env:Body>
</env:Envelope>"""


def test_soap_login(server: SandboxServer, session: requests.Session) -> None:
    url = f"{server.https_url}/services/Soap/u/59.0"
    headers = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}
    body = _soap_body(SANDBOX_USERNAME, SANDBOX_PASSWORD + SANDBOX_SECURITY_TOKEN)
    session_id, instance = soap_login(url, body, headers, None, session)
    assert instance == server.https_url.removeprefix("https://")
    with salesforce(server, session_id) as sf:
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 3
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        soap_login(url, _soap_body(SANDBOX_USERNAME, "wrong"), headers, None, session)
    assert raised.value.code == "INVALID_LOGIN"


def test_refresh_token_grant(server: SandboxServer, session: requests.Session) -> None:
    grant = {
        "grant_type": "refresh_token",
        "client_id": SANDBOX_CONSUMER_KEY,
        "client_secret": SANDBOX_CONSUMER_SECRET,
        "refresh_token": SANDBOX_REFRESH_TOKEN,
    }
    token, _ = token_login(
        token_url(server), grant, "login", SANDBOX_CONSUMER_KEY, None, None, session
    )
    with salesforce(server, token) as sf:
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 3


@pytest.mark.parametrize("strict", [False, True])
def test_expired_session_answers_401_and_a_new_login_works(strict: bool) -> None:
    with crm_sandbox(strict_auth=strict) as server:
        insert_accounts(server.state, 2)
        session_id = sf_login(server)
        with salesforce(server, session_id) as sf:
            assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 2
            control(server, "tokens/expire", {"system": "salesforce"})
            status, errors = sf_error(lambda: sf.query("SELECT COUNT() FROM Account"))
        assert status == 401
        assert errors == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
        with salesforce(server, sf_login(server)) as fresh:
            assert fresh.query("SELECT COUNT() FROM Account")["totalSize"] == 2


def test_sessions_end_after_their_lifetime_and_strict_mode_refuses_strangers() -> None:
    with crm_sandbox(strict_auth=True, sf_session_seconds=600) as server:
        with salesforce(server, "00Dforged!session") as forged:
            status, _ = sf_error(lambda: forged.query("SELECT COUNT() FROM Account"))
        assert status == 401
        with salesforce(server) as sf:
            assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
            server.state.advance(601)
            status, errors = sf_error(lambda: sf.query("SELECT COUNT() FROM Account"))
        assert (status, errors[0]["errorCode"]) == (401, "INVALID_SESSION_ID")


def test_quota_runs_out_with_403_and_usage_headers() -> None:
    with crm_sandbox() as server, salesforce(server) as sf:
        insert_accounts(server.state, 1)
        control(server, "salesforce/quota", {"max": 10, "used": 7})
        sf.query("SELECT Id FROM Account")
        assert sf.api_usage["api-usage"].used == 8
        assert sf.api_usage["api-usage"].total == 10
        sf.query("SELECT Id FROM Account")
        limits = sf.limits()
        assert limits["DailyApiRequests"] == {"Max": 10, "Remaining": 0}
        status, errors = sf_error(lambda: sf.query("SELECT Id FROM Account"))
        assert status == 403
        assert errors == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
        control(server, "salesforce/quota", {"used": 0})
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 1


def test_the_quota_is_a_rolling_day() -> None:
    with crm_sandbox(sf_session_seconds=3 * 86_400) as server, salesforce(server) as sf:
        control(server, "salesforce/quota", {"max": 3, "used": 3})
        status, _ = sf_error(lambda: sf.query("SELECT COUNT() FROM Account"))
        assert status == 403
        server.state.advance(23 * 3600)
        status, _ = sf_error(lambda: sf.query("SELECT COUNT() FROM Account"))
        assert status == 403
        server.state.advance(3600)
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
        assert sf.api_usage["api-usage"].used == 1


def test_versions_list_needs_no_session(server: SandboxServer, session: requests.Session) -> None:
    versions = session.get(f"{server.https_url}/services/data/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    unknown = session.get(f"{server.https_url}/services/data/v59.0/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]


def test_a_token_from_a_config_expires_too_without_strict_auth() -> None:
    with crm_sandbox() as server:
        with salesforce(server, "00Dconfigured!token") as sf:
            assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
            control(server, "tokens/expire", {"system": "salesforce"})
            status, errors = sf_error(lambda: sf.query("SELECT COUNT() FROM Account"))
        assert (status, errors[0]["errorCode"]) == (401, "INVALID_SESSION_ID")


def test_sandbox_reset_gives_a_fresh_quota_and_drops_cursors() -> None:
    with crm_sandbox() as server:
        insert_accounts(server.state, 2100)
        with salesforce(server) as sf:
            first = sf.query("SELECT Id FROM Account")
        control(server, "salesforce/quota", {"max": 100, "used": 99})
        control(server, "reset", {})
        with salesforce(server) as fresh:
            assert fresh.limits()["DailyApiRequests"]["Remaining"] == (
                server.state.options.sf_daily_quota - 1
            )
            status, errors = sf_error(
                lambda: fresh.query_more(first["nextRecordsUrl"], identifier_is_url=True)
            )
        assert (status, errors[0]["errorCode"]) == (400, "INVALID_QUERY_LOCATOR")
