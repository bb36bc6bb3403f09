"""A resilient, paced HubSpot client over hubspot-api-client.

Calls go through the official client (its request building, auth headers
and endpoints) with ``_preload_content=False``: clghub parses the body itself
(orjson; the generated models are slow and drop headers) and reads the
``X-HubSpot-RateLimit-*`` headers to pace itself under the rolling 10-second
policy and the separate search limit, instead of living on 429s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import orjson
import urllib3
from hubspot import HubSpot
from urllib3.util.retry import Retry

from clghub.config.models import HubSpotSourceConfig
from clghub.config.secrets import REDACTOR
from clghub.errors import ClghubError
from clghub.http import (
    ApiError,
    Pacer,
    QuotaExhausted,
    RetryPolicy,
    SessionExpired,
    TransientError,
    parse_retry_after,
)

__all__ = ["HubSpotAuthError", "HubSpotClient", "Response"]

log = logging.getLogger(__name__)

_DEFAULT_PER_10S = 100  # the lowest tier, until the headers say otherwise
_TEN_SECONDS = 10.0


class HubSpotAuthError(ClghubError):
    """HubSpot refused the credentials (fix the config)."""


class Response:
    """Status, headers and parsed JSON body of one call."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: Any) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class HubSpotClient:
    def __init__(self, config: HubSpotSourceConfig) -> None:
        self.config = config
        self.policy = RetryPolicy(
            max_retries=config.max_retries, max_wait=config.max_retry_wait_seconds
        )
        per_10s = config.requests_per_10s or _DEFAULT_PER_10S
        self.pacer = Pacer(
            per_10s, _TEN_SECONDS, margin=0.9 if config.requests_per_10s is None else 1.0
        )
        self.search_pacer = Pacer(max(1, int(config.search_requests_per_second)), 1.0, margin=1.0)
        self._learn_limits = config.requests_per_10s is None
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_token: str | None = (
            config.refresh_token.reveal() if config.refresh_token else None
        )
        self._api: HubSpot | None = None
        self.daily_remaining: int | None = None
        self.calls = 0

    # -- auth ------------------------------------------------------------------

    def _client(self, *, renew: bool = False) -> HubSpot:
        with self._lock:
            if self._api is not None and not renew:
                return self._api
            if self.config.auth == "private_app":
                if renew:
                    raise HubSpotAuthError(
                        "HubSpot rejected the private app token (401): check sources.hubspot.access_token"
                    )
                assert self.config.access_token is not None
                self._token = self.config.access_token.reveal()
            else:
                self._token = self._oauth_refresh()
            options: dict[str, Any] = {
                "access_token": self._token,
                "retry": Retry(total=0, connect=0, read=0, redirect=0, status=0),
                "host": self.config.base_url.rstrip("/"),
            }
            if self.config.ca_bundle:
                options["ssl_ca_cert"] = self.config.ca_bundle
            self._release()
            self._api = _Cached(HubSpot(**options))
            assert self._api is not None
            return self._api

    def _oauth_refresh(self) -> str:
        api = HubSpot(host=self.config.base_url.rstrip("/"), retry=Retry(total=0))
        secret = self.config.client_secret.reveal() if self.config.client_secret else ""

        def refresh() -> Any:
            try:
                response = api.oauth.tokens_api.create(
                    grant_type="refresh_token",
                    client_id=self.config.client_id,
                    client_secret=secret,
                    refresh_token=self._refresh_token,
                    _preload_content=False,
                    _request_timeout=self.config.timeout_seconds,
                )
            except Exception as exc:
                status = getattr(exc, "status", 0) or 0
                if status in (0, 429) or status >= 500:
                    raise TransientError(
                        f"HubSpot token refresh failed ({status})", kind=str(status or "connection")
                    ) from None
                raise HubSpotAuthError(
                    REDACTOR.redact(
                        f"HubSpot OAuth refresh failed ({status}): {getattr(exc, 'body', '')}"
                    )
                ) from None
            return orjson.loads(response.data)

        body = self.policy.call(refresh)
        token = str(body["access_token"])
        REDACTOR.register_issued(token)
        if body.get("refresh_token"):
            self._refresh_token = str(body["refresh_token"])
            REDACTOR.register_issued(self._refresh_token)
        log.info("HubSpot access token refreshed")
        return token

    # -- calls -----------------------------------------------------------------

    def call(self, fn: Callable[[HubSpot], Any], *, what: str, search: bool = False) -> Response:
        """Run one API call paced, retried, with a token refresh on 401."""
        for attempt in (1, 2):
            try:
                return self.policy.call(lambda: self._once(fn, what, search))
            except SessionExpired:
                if attempt == 2:
                    raise ApiError(
                        "HubSpot", 401, "still unauthorized after refreshing the token"
                    ) from None
                log.info("HubSpot token expired during %s; refreshing", what)
                self._client(renew=True)
        raise AssertionError("unreachable")

    def _once(self, fn: Callable[[HubSpot], Any], what: str, search: bool) -> Response:
        api = self._client()
        (self.search_pacer if search else self.pacer).acquire()
        if search:
            self.pacer.acquire()
        self.calls += 1
        try:
            raw = fn(api)
            data = raw.data
            status, headers = raw.status, dict(raw.headers)
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(
                f"HubSpot {what}: connection failed ({type(exc).__name__})", kind=_kind(exc)
            ) from None
        except Exception as exc:
            if not hasattr(
                exc, "status"
            ):  # the client's own argument errors: a bug, not the network
                raise
            status = int(getattr(exc, "status", 0) or 0)
            if status == 0:
                reason = str(getattr(exc, "reason", exc))
                kind = (
                    "timeout"
                    if "timeout" in reason.lower() or "timed out" in reason.lower()
                    else "connection"
                )
                raise TransientError(
                    f"HubSpot {what}: {kind} ({REDACTOR.redact(reason)[:120]})", kind=kind
                ) from None
            headers = dict(getattr(exc, "headers", None) or {})
            data = getattr(exc, "body", b"") or b""
        self._learn(headers)
        if status >= 400:
            self._raise(status, headers, data, what)
        try:
            body = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            raise TransientError(
                f"HubSpot {what}: truncated or unreadable body", kind="truncated"
            ) from None
        return Response(status, headers, body)

    def _learn(self, headers: dict[str, str]) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        if self._learn_limits and lowered.get("x-hubspot-ratelimit-max"):
            try:
                interval = (
                    float(lowered.get("x-hubspot-ratelimit-interval-milliseconds", "10000")) / 1000
                )
                self.pacer.update(int(lowered["x-hubspot-ratelimit-max"]), interval)
            except ValueError:
                pass
        daily = lowered.get("x-hubspot-ratelimit-daily-remaining")
        if daily and daily.isdigit():
            self.daily_remaining = int(daily)

    def _raise(self, status: int, headers: dict[str, str], data: bytes | str, what: str) -> None:
        try:
            body = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            body = {"message": str(data)[:300]}
        if not isinstance(body, dict):
            body = {"message": str(body)[:300]}
        message = str(body.get("message", ""))
        lowered = {k.lower(): v for k, v in headers.items()}
        if status == 429:
            if body.get("policyName") == "DAILY":
                raise QuotaExhausted(
                    f"HubSpot daily API limit reached during {what}; the next run resumes"
                )
            retry_after = parse_retry_after(lowered.get("retry-after"))
            raise TransientError(
                f"HubSpot rate limited {what} ({body.get('policyName', '429')})",
                retry_after=retry_after,
                kind="429",
            )
        if status >= 500:
            raise TransientError(f"HubSpot answered {status} to {what}", kind=str(status))
        if status == 401:
            raise SessionExpired(f"HubSpot 401 during {what}")
        raise ApiError(
            "HubSpot", status, f"{message} ({what})", str(body.get("category") or "") or None
        )

    # -- endpoints ----------------------------------------------------------------

    def list_page(
        self,
        object_type: str,
        *,
        after: str | None,
        properties: list[str],
        archived: bool,
        associations: list[str] | None = None,
        limit: int = 100,
    ) -> Response:
        kwargs: dict[str, Any] = {"limit": limit, "archived": archived, "properties": properties}
        if after:
            kwargs["after"] = after
        if associations:
            kwargs["associations"] = associations
        return self.call(
            lambda api: api.crm.objects.basic_api.get_page(
                object_type,
                _preload_content=False,
                _request_timeout=self.config.timeout_seconds,
                **kwargs,
            ),
            what=f"list {object_type}",
        )

    def search(self, object_type: str, request: dict[str, Any]) -> Response:
        return self.call(
            lambda api: api.crm.objects.search_api.do_search(
                object_type,
                request,
                _preload_content=False,
                _request_timeout=self.config.timeout_seconds,
            ),
            what=f"search {object_type}",
            search=True,
        )

    def batch_read(self, object_type: str, ids: list[str], properties: list[str]) -> Response:
        request = {"inputs": [{"id": i} for i in ids], "properties": properties}
        return self.call(
            lambda api: api.crm.objects.batch_api.read(
                object_type,
                request,
                archived=False,
                _preload_content=False,
                _request_timeout=self.config.timeout_seconds,
            ),
            what=f"batch read {object_type}",
        )

    def associations(self, from_type: str, to_type: str, ids: list[str]) -> Response:
        request = {"inputs": [{"id": i} for i in ids]}
        return self.call(
            lambda api: api.crm.associations.v4.batch_api.get_page(
                from_type,
                to_type,
                request,
                _preload_content=False,
                _request_timeout=self.config.timeout_seconds,
            ),
            what=f"associations {from_type}->{to_type}",
        )

    def owners_page(self, *, after: str | None, archived: bool) -> Response:
        kwargs: dict[str, Any] = {"limit": 100, "archived": archived}
        if after:
            kwargs["after"] = after
        return self.call(
            lambda api: api.crm.owners.owners_api.get_page(
                _preload_content=False, _request_timeout=self.config.timeout_seconds, **kwargs
            ),
            what="list owners",
        )

    def properties(self, object_type: str) -> Response:
        return self.call(
            lambda api: api.crm.properties.core_api.get_all(
                object_type,
                archived=False,
                _preload_content=False,
                _request_timeout=self.config.timeout_seconds,
            ),
            what=f"properties of {object_type}",
        )

    def close(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        if isinstance(self._api, _Cached):
            self._api.close()
        self._api = None


class _Cached:
    """The HubSpot client with its API objects kept.

    hubspot-api-client builds a new API client (and a new connection pool)
    on every ``api.crm.objects.basic_api`` access: no keep-alive, and
    sockets left for the garbage collector. This proxy builds each one once
    and closes their pools on :meth:`close`.
    """

    def __init__(self, target: Any) -> None:
        self._target = target
        self._children: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._children:
            return self._children[name]
        value = getattr(self._target, name)
        if callable(value) and not hasattr(value, "api_client"):
            return value
        wrapped = value if hasattr(value, "api_client") else _Cached(value)
        self._children[name] = wrapped
        return wrapped

    def close(self) -> None:
        for child in self._children.values():
            if isinstance(child, _Cached):
                child.close()
            else:
                rest = getattr(getattr(child, "api_client", None), "rest_client", None)
                pool = getattr(rest, "pool_manager", None)
                if pool is not None:
                    pool.clear()
        self._children.clear()


def _kind(exc: Exception) -> str:
    name = type(exc).__name__.lower()
    return "timeout" if "timeout" in name else "connection"
