"""Salesforce login: every flow simple-salesforce supports, against a configurable login URL.

simple-salesforce's own OAuth helpers build ``https://{domain}.salesforce.com``
URLs; clghub logs in against ``login_url`` (login.salesforce.com, a sandbox,
a My Domain, or the clghub sandbox) and hands the session to the client.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from simple_salesforce.login import SalesforceLogin

from clghub.config.models import SalesforceSourceConfig
from clghub.config.secrets import REDACTOR
from clghub.errors import ClghubError
from clghub.http import TransientError

__all__ = ["SalesforceAuthError", "Session", "login"]


class SalesforceAuthError(ClghubError):
    """Salesforce refused the credentials (fix the config; retrying will not help)."""


@dataclass(frozen=True)
class Session:
    access_token: str
    instance_url: str
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return f"Session(instance_url={self.instance_url!r})"


def _reveal(value: Any) -> str:
    return "" if value is None else str(value.reveal())


def login(
    config: SalesforceSourceConfig, http: requests.Session, *, refresh_token: str | None = None
) -> Session:
    """Log in with the configured flow; ``refresh_token`` re-uses one handed out earlier."""
    if config.auth == "session":
        return Session(_reveal(config.session_id), (config.instance_url or "").rstrip("/"))
    if config.auth == "soap":
        return _soap(config, http)
    token_url = config.login_url.rstrip("/") + "/services/oauth2/token"
    headers: dict[str, str] = {}
    if refresh_token or config.auth == "refresh_token":
        data = {
            "grant_type": "refresh_token",
            "client_id": _reveal(config.consumer_key),
            "refresh_token": refresh_token or _reveal(config.refresh_token),
        }
        if config.consumer_secret is not None:
            data["client_secret"] = _reveal(config.consumer_secret)
    elif config.auth == "password":
        data = {
            "grant_type": "password",
            "client_id": _reveal(config.consumer_key),
            "client_secret": _reveal(config.consumer_secret),
            "username": config.username or "",
            "password": _reveal(config.password) + _reveal(config.security_token),
        }
    elif config.auth == "client_credentials":
        pair = f"{_reveal(config.consumer_key)}:{_reveal(config.consumer_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        data = {"grant_type": "client_credentials"}
    else:  # jwt
        claims = {
            "iss": _reveal(config.consumer_key),
            "sub": config.username or "",
            "aud": _audience(config.login_url),
            "exp": int(time.time()) + 180,
        }
        assertion = jwt.encode(claims, _reveal(config.private_key), algorithm="RS256")
        data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    try:
        response = http.post(token_url, data=data, headers=headers, timeout=config.timeout_seconds)
    except requests.exceptions.SSLError:
        raise SalesforceAuthError(
            f"TLS verification of {token_url} failed; set sources.salesforce.ca_bundle if a private CA signs it"
        ) from None
    except requests.RequestException as exc:
        raise TransientError(
            f"Salesforce login at {token_url} failed: {type(exc).__name__}", kind="connection"
        ) from None
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(
            f"Salesforce login answered {response.status_code}", kind=str(response.status_code)
        )
    try:
        body = response.json()
    except ValueError:
        raise TransientError(
            "Salesforce login answered with an unreadable body", kind="truncated"
        ) from None
    if response.status_code != 200 or "access_token" not in body:
        reason = body.get("error_description") or body.get("error") or response.status_code
        raise SalesforceAuthError(
            REDACTOR.redact(
                f"Salesforce login failed ({config.auth} flow at {token_url}): {reason}"
            )
        )
    token = str(body["access_token"])
    REDACTOR.register_issued(token)
    if body.get("refresh_token"):
        REDACTOR.register_issued(str(body["refresh_token"]))
    return Session(
        token, str(body["instance_url"]).rstrip("/"), body.get("refresh_token") or refresh_token
    )


def _audience(login_url: str) -> str:
    parts = urlsplit(login_url)
    return f"{parts.scheme}://{parts.netloc}"


def _soap(config: SalesforceSourceConfig, http: requests.Session) -> Session:
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed

    try:
        session_id, instance = SalesforceLogin(
            username=config.username,
            password=_reveal(config.password),
            security_token=_reveal(config.security_token),
            sf_version=config.api_version,
            session=http,
            scratch_url=config.login_url.rstrip("/"),
        )
    except SalesforceAuthenticationFailed as exc:
        raise SalesforceAuthError(REDACTOR.redact(f"Salesforce SOAP login failed: {exc}")) from None
    except requests.RequestException as exc:
        raise TransientError(
            f"Salesforce SOAP login failed: {type(exc).__name__}", kind="connection"
        ) from None
    REDACTOR.register_issued(session_id)
    scheme = urlsplit(config.login_url).scheme or "https"
    return Session(session_id, f"{scheme}://{instance}")
