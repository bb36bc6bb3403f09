"""Every Salesforce login flow, through clghub's own login code, against the sandbox.

Each flow is configured as a user would (secrets by reference), logs in, and
runs a query on the session it got; a wrong secret is refused with a message
that names the flow and never the secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clghub.config.models import SalesforceSourceConfig
from clghub.config.refs import SecretRef
from clghub.connectors.salesforce.auth import SalesforceAuthError, login
from clghub.connectors.salesforce.client import PinnedSession, SalesforceClient
from clghub.sandbox.apis.sf_auth import (
    SANDBOX_CONSUMER_KEY,
    SANDBOX_CONSUMER_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_SECURITY_TOKEN,
    SANDBOX_USERNAME,
)
from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import SandboxOptions

WRONG = "wrong-secret-3f9a"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxOptions(accounts=6, seed=3, as_of=date(2026, 6, 30))) as running:
        yield running


def _secret(value: str) -> SecretRef:
    return SecretRef.of_value(value, "TEST_SECRET")


def _private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _flow(server: SandboxServer, auth: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "enabled": True,
        "auth": auth,
        "login_url": server.https_url,
        "ca_bundle": str(server.ca_path),
    }
    if auth == "password":
        return base | {
            "username": SANDBOX_USERNAME,
            "password": _secret(SANDBOX_PASSWORD),
            "consumer_key": _secret(SANDBOX_CONSUMER_KEY),
            "consumer_secret": _secret(SANDBOX_CONSUMER_SECRET),
        }
    if auth == "soap":
        return base | {
            "username": SANDBOX_USERNAME,
            "password": _secret(SANDBOX_PASSWORD),
            "security_token": _secret(SANDBOX_SECURITY_TOKEN),
        }
    if auth == "jwt":
        return base | {
            "username": SANDBOX_USERNAME,
            "consumer_key": _secret(SANDBOX_CONSUMER_KEY),
            "private_key": _secret(_private_key()),
        }
    if auth == "client_credentials":
        return base | {
            "consumer_key": _secret(SANDBOX_CONSUMER_KEY),
            "consumer_secret": _secret(SANDBOX_CONSUMER_SECRET),
        }
    if auth == "refresh_token":
        return base | {
            "consumer_key": _secret(SANDBOX_CONSUMER_KEY),
            "consumer_secret": _secret(SANDBOX_CONSUMER_SECRET),
            "refresh_token": _secret(SANDBOX_REFRESH_TOKEN),
        }
    raise AssertionError(auth)


@pytest.mark.parametrize("auth", ["password", "soap", "jwt", "client_credentials", "refresh_token"])
def test_each_flow_logs_in_and_queries(server: SandboxServer, auth: str) -> None:
    client = SalesforceClient(SalesforceSourceConfig(**_flow(server, auth)))
    try:
        answer = client.query_page("SELECT COUNT() FROM Account", include_deleted=False)
    finally:
        client.close()
    assert answer["totalSize"] > 0
    assert client.instance_url == server.https_url


def test_a_session_id_from_elsewhere_is_used_as_it_is(server: SandboxServer) -> None:
    http = PinnedSession()
    http.verify = str(server.ca_path)
    session = login(SalesforceSourceConfig(**_flow(server, "password")), http)
    config = SalesforceSourceConfig(
        enabled=True,
        auth="session",
        session_id=_secret(session.access_token),
        instance_url=server.https_url,
        ca_bundle=str(server.ca_path),
    )
    client = SalesforceClient(config)
    try:
        assert client.query_page("SELECT COUNT() FROM User", include_deleted=False)["totalSize"] > 0
    finally:
        client.close()
        http.close()


@pytest.mark.parametrize(
    ("auth", "secret"),
    [("password", "password"), ("soap", "security_token"), ("refresh_token", "consumer_secret")],
)
def test_a_wrong_secret_is_refused_without_showing_it(
    server: SandboxServer, auth: str, secret: str
) -> None:
    config = SalesforceSourceConfig(**(_flow(server, auth) | {secret: _secret(WRONG)}))
    http = PinnedSession()
    http.verify = str(server.ca_path)
    try:
        with pytest.raises(SalesforceAuthError) as refused:
            login(config, http)
    finally:
        http.close()
    message = str(refused.value)
    assert "login failed" in message
    assert WRONG not in message
