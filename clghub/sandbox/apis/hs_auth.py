"""HubSpot authentication: bearer tokens and the OAuth token endpoint.

Two kinds of token reach the API, as in a real portal. OAuth access tokens
come from ``POST /oauth/v1/token`` and last ``hs_token_seconds`` of sandbox
time; an expired one answers 401 ``EXPIRED_AUTHENTICATION`` in every mode
(``/_sandbox/tokens/expire`` expires them at once), and the client
refreshes. Any other bearer is treated as a private-app token: accepted
without ``strict_auth`` (until expired through the control surface); with
it, only the sandbox's own (:data:`SANDBOX_PRIVATE_APP_TOKEN`) is.
Private-app calls have a daily limit and carry its headers; OAuth calls do
not (HubSpot's changelog, "Rate limit headers will now appear for OAuth
authenticated calls").

The token endpoint checks the sandbox app's client id and secret in every
mode; with ``strict_auth`` it refuses other apps and refresh tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from clghub.sandbox.apis.hs_http import HubSpotError, correlation_id, json_response
from clghub.sandbox.state import SandboxState
from clghub.sandbox.wire import bearer_token

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_PRIVATE_APP_TOKEN",
    "SANDBOX_REFRESH_TOKEN",
    "TOKEN_KIND",
    "Caller",
    "HubSpotAuth",
]

# The sandbox portal's credentials: public on purpose, they guard nothing but
# a local emulator (a config written for the sandbox carries them).
TOKEN_KIND = "hubspot"  # noqa: S105 - a token kind, not a secret
SANDBOX_CLIENT_ID = "clghub-sandbox-client-id"
SANDBOX_CLIENT_SECRET = "clghub-sandbox-client-secret"  # noqa: S105
SANDBOX_REFRESH_TOKEN = "clghub-sandbox-hubspot-refresh-token"  # noqa: S105
SANDBOX_PRIVATE_APP_TOKEN = "pat-na1-clghub-sandbox-private-app"  # noqa: S105

_NO_CREDENTIALS = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass(frozen=True)
class Caller:
    token: str
    oauth: bool
    """True for OAuth access tokens: no daily limit, no daily headers."""


class HubSpotAuth:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._oauth_expiry: dict[str, datetime] = {}
        """OAuth access tokens issued here, with when they stop working."""
        self.reset()

    def reset(self) -> None:
        """Forget issued tokens; (re-)register the portal's private-app token."""
        self._oauth_expiry.clear()
        self.state.tokens.register(TOKEN_KIND, SANDBOX_PRIVATE_APP_TOKEN, "private-app")

    def check(self, request: Request) -> Caller:
        token = bearer_token(request)
        if token is None:
            raise HubSpotError(401, "INVALID_AUTHENTICATION", _NO_CREDENTIALS)
        expiry = self._oauth_expiry.get(token)
        if self.state.tokens.valid(TOKEN_KIND, token):
            return Caller(token, oauth=expiry is not None)
        if expiry is None:
            raise HubSpotError(401, "INVALID_AUTHENTICATION", _NO_CREDENTIALS)
        now = self.state.now()
        # A token expired early through the control surface expired "just now".
        expired_at = min(expiry, now)
        ago = int((now - expired_at).total_seconds())
        stamp = expired_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        raise HubSpotError(
            401,
            "EXPIRED_AUTHENTICATION",
            f"The OAuth token used to make this call expired {ago} second(s) ago.",
            context={"expire time": [stamp]},
        )

    async def token(self, request: Request) -> Response:
        """POST /oauth/v1/token: refresh_token and authorization_code grants."""
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        grant = form.get("grant_type", "")
        client_id = form.get("client_id", "")
        secret = form.get("client_secret", "")
        strict = self.state.options.strict_auth
        if grant not in ("refresh_token", "authorization_code"):
            return self._error("BAD_GRANT_TYPE", "missing or unknown grant type")
        if not client_id or (strict and client_id != SANDBOX_CLIENT_ID):
            return self._error("BAD_CLIENT_ID", "missing or unknown client id")
        if not secret or (client_id == SANDBOX_CLIENT_ID and secret != SANDBOX_CLIENT_SECRET):
            return self._error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if grant == "authorization_code":
            if not form.get("code") or not form.get("redirect_uri"):
                return self._error("BAD_AUTH_CODE", "missing or unknown auth code")
            refresh = SANDBOX_REFRESH_TOKEN
        else:
            refresh = form.get("refresh_token", "")
            if not refresh or (strict and refresh != SANDBOX_REFRESH_TOKEN):
                return self._error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        ttl = self.state.options.hs_token_seconds
        access = self.state.tokens.issue(TOKEN_KIND, client_id, ttl)
        self._oauth_expiry[access] = self.state.now() + timedelta(seconds=ttl)
        # HubSpot refresh tokens do not rotate: the same one comes back.
        return json_response(
            {
                "token_type": "bearer",
                "refresh_token": refresh,
                "access_token": access,
                "expires_in": ttl,
            }
        )

    @staticmethod
    def _error(status: str, message: str) -> Response:
        return json_response(
            {"status": status, "message": message, "correlationId": correlation_id()}, status=400
        )
