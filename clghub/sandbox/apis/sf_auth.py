"""Salesforce logins: the OAuth 2.0 token endpoint, SOAP login, and session checks.

Credentials. The sandbox org has one integration user, one connected app
and one refresh token (the constants below, public on purpose: they guard
nothing but a local emulator; a config written for the sandbox carries
them). A login that names that user or app must carry its password or
secret, in every mode. With ``strict_auth`` only those credentials log in;
without it any other non-empty username, consumer key or refresh token is
accepted too, so a hand-written config works.

JWT bearer: the assertion must be a well-formed JWT (three base64url parts,
a JSON header with ``alg``, a payload with ``iss``, ``sub``, ``aud`` and an
``exp`` in the future). Its signature is not verified: the sandbox holds no
certificate for the connected app. With ``strict_auth`` ``iss`` and ``sub``
must name the sandbox app and user.

Sessions last ``sf_session_seconds`` of sandbox time. An expired session
(or one expired through ``/_sandbox/tokens/expire``) answers 401
``INVALID_SESSION_ID`` in every mode; with ``strict_auth`` so does any token
the sandbox did not issue (see ``TokenRegistry``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import time
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import Response

from clghub.sandbox.apis.sf_http import SalesforceError, base_url, json_response
from clghub.sandbox.apis.sf_write import INTEGRATION_USER_ID
from clghub.sandbox.state import SandboxState

__all__ = [
    "ORG_ID",
    "SANDBOX_CONSUMER_KEY",
    "SANDBOX_CONSUMER_SECRET",
    "SANDBOX_PASSWORD",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_SECURITY_TOKEN",
    "SANDBOX_USERNAME",
    "TOKEN_KIND",
    "SalesforceAuth",
    "bearer_token",
]

TOKEN_KIND = "salesforce"  # noqa: S105 - a token kind, not a secret
ORG_ID = "00D000000000001AAA"
SANDBOX_USERNAME = "integration@clghub-sandbox.example"
SANDBOX_PASSWORD = "clghub-sandbox-password"  # noqa: S105
SANDBOX_SECURITY_TOKEN = "clghubSandboxToken"  # noqa: S105
SANDBOX_CONSUMER_KEY = "clghub-sandbox-consumer-key"
SANDBOX_CONSUMER_SECRET = "clghub-sandbox-consumer-secret"  # noqa: S105
SANDBOX_REFRESH_TOKEN = "clghub-sandbox-refresh-token"  # noqa: S105

_SIGNING_KEY = b"clghub-sandbox-identity-signature"
_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_SOAP_FIELD_RE = r"<(?:[\w.-]+:)?{name}>(.*?)</(?:[\w.-]+:)?{name}>"


class _OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def bearer_token(request: Request) -> str | None:
    """The session id of ``Authorization: Bearer X`` (or Salesforce's older ``OAuth X``)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


def _b64url_json(part: str) -> object:
    padded = part + "=" * (-len(part) % 4)
    return orjson.loads(base64.urlsafe_b64decode(padded.encode()))


class SalesforceAuth:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # -- sessions --------------------------------------------------------------

    def check_session(self, request: Request) -> str:
        """The request's session id, or the 401 Salesforce answers."""
        token = bearer_token(request)
        if token is None or not self.state.tokens.valid(TOKEN_KIND, token):
            raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return token

    def _issue(self, subject: str) -> str:
        return self.state.tokens.issue(TOKEN_KIND, subject, self.state.options.sf_session_seconds)

    def _token_body(self, request: Request, subject: str) -> dict[str, object]:
        instance = base_url(request)
        identity = f"{instance}/id/{ORG_ID}/{INTEGRATION_USER_ID}"
        issued_at = str(int(time.time() * 1000))
        signature = base64.b64encode(
            hmac.new(_SIGNING_KEY, (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        return {
            "access_token": self._issue(subject),
            "instance_url": instance,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
            "scope": "api",
        }

    # -- credential checks --------------------------------------------------------

    @property
    def strict(self) -> bool:
        return self.state.options.strict_auth

    def _check_user(self, username: str, password: str) -> None:
        if not username or not password:
            raise _OAuthError("invalid_grant", "authentication failure")
        if username == SANDBOX_USERNAME:
            # API logins append the security token to the password (untrusted IPs).
            if password not in (SANDBOX_PASSWORD, SANDBOX_PASSWORD + SANDBOX_SECURITY_TOKEN):
                raise _OAuthError("invalid_grant", "authentication failure")
        elif self.strict:
            raise _OAuthError("invalid_grant", "authentication failure")

    def _check_client(self, client_id: str, client_secret: str | None) -> None:
        if not client_id:
            raise _OAuthError("invalid_client_id", "client identifier invalid")
        if client_id == SANDBOX_CONSUMER_KEY:
            if client_secret is not None and client_secret != SANDBOX_CONSUMER_SECRET:
                raise _OAuthError("invalid_client", "invalid client credentials")
        elif self.strict:
            raise _OAuthError("invalid_client_id", "client identifier invalid")
        elif client_secret == "":
            raise _OAuthError("invalid_client", "invalid client credentials")

    # -- endpoints ------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """POST /services/oauth2/token (form-encoded), every grant clghub uses."""
        form = {
            k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
        }
        try:
            subject = self._grant(request, form)
        except _OAuthError as error:
            return json_response(
                {"error": error.error, "error_description": error.description}, status=error.status
            )
        return json_response(self._token_body(request, subject))

    def _grant(self, request: Request, form: dict[str, str]) -> str:
        grant = form.get("grant_type", "")
        if grant == "password":
            self._check_client(form.get("client_id", ""), form.get("client_secret", ""))
            username = form.get("username", "")
            self._check_user(username, form.get("password", ""))
            return username
        if grant == "client_credentials":
            client_id, client_secret = self._basic_credentials(request, form)
            self._check_client(client_id, client_secret)
            return client_id
        if grant == "refresh_token":
            self._check_client(form.get("client_id", ""), form.get("client_secret"))
            refresh = form.get("refresh_token", "")
            if not refresh or (self.strict and refresh != SANDBOX_REFRESH_TOKEN):
                raise _OAuthError("invalid_grant", "expired access/refresh token")
            return form.get("client_id", "")
        if grant == _JWT_GRANT:
            return self._jwt_subject(form.get("assertion", ""))
        if not grant:
            raise _OAuthError("invalid_request", "grant type not supported")
        raise _OAuthError("unsupported_grant_type", "grant type not supported")

    def _basic_credentials(self, request: Request, form: dict[str, str]) -> tuple[str, str]:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _OAuthError("invalid_client", "invalid client credentials") from None
            client_id, _, client_secret = decoded.partition(":")
            return client_id, client_secret
        return form.get("client_id", ""), form.get("client_secret", "")

    def _jwt_subject(self, assertion: str) -> str:
        parts = assertion.split(".")
        try:
            if len(parts) != 3 or not parts[2]:
                raise ValueError("not a signed JWT")
            header, payload = _b64url_json(parts[0]), _b64url_json(parts[1])
        except (ValueError, binascii.Error):
            raise _OAuthError("invalid_grant", "invalid assertion") from None
        if not isinstance(header, dict) or not header.get("alg") or not isinstance(payload, dict):
            raise _OAuthError("invalid_grant", "invalid assertion")
        issuer, subject, audience = (payload.get(k) for k in ("iss", "sub", "aud"))
        if not all(isinstance(v, str) and v for v in (issuer, subject, audience)):
            raise _OAuthError("invalid_grant", "invalid assertion")
        try:
            expires = float(payload.get("exp", ""))
        except (TypeError, ValueError):
            raise _OAuthError("invalid_grant", "invalid assertion") from None
        if expires < time.time():
            raise _OAuthError("invalid_grant", "expired authorization code")
        if self.strict and (issuer != SANDBOX_CONSUMER_KEY or subject != SANDBOX_USERNAME):
            raise _OAuthError("invalid_grant", "user hasn't approved this consumer")
        return str(subject)

    async def soap_login(self, request: Request) -> Response:
        """POST /services/Soap/u/{version}: the partner WSDL login() call."""
        version = request.path_params["version"]
        text = (await request.body()).decode("utf-8", "replace")
        username = self._soap_field(text, "username")
        password = self._soap_field(text, "password")
        try:
            self._check_user(username, password)
        except _OAuthError:
            return self._soap_fault()
        instance = base_url(request)
        session = self._issue(username)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{instance}/services/Soap/m/{version}/{ORG_ID}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{instance}/services/Soap/u/{version}/{ORG_ID}</serverUrl>"
            f"<sessionId>{html.escape(session)}</sessionId>"
            f"<userId>{INTEGRATION_USER_ID}</userId>"
            "<userInfo>"
            f"<organizationId>{ORG_ID}</organizationId>"
            f"<sessionSecondsValid>{self.state.options.sf_session_seconds}</sessionSecondsValid>"
            f"<userId>{INTEGRATION_USER_ID}</userId>"
            f"<userName>{html.escape(username)}</userName>"
            "</userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(body.encode(), media_type="text/xml; charset=utf-8")

    @staticmethod
    def _soap_field(text: str, name: str) -> str:
        match = re.search(_SOAP_FIELD_RE.format(name=name), text, re.DOTALL)
        return html.unescape(match.group(1)).strip() if match else ""

    @staticmethod
    def _soap_fault() -> Response:
        message = "Invalid username, password, security token; or user locked out."
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><soapenv:Fault>"
            "<faultcode>sf:INVALID_LOGIN</faultcode>"
            f"<faultstring>INVALID_LOGIN: {message}</faultstring>"
            '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
            "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
            f"<sf:exceptionMessage>{message}</sf:exceptionMessage>"
            "</sf:LoginFault></detail>"
            "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        return Response(body.encode(), status_code=500, media_type="text/xml; charset=utf-8")
