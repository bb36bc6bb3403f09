"""A resilient Salesforce client: simple-salesforce under clghub's retry policy.

Every call goes through :meth:`SalesforceClient.call`, which retries what is
transient, logs in again on an expired session, reads ``Sforce-Limit-Info``
and stops cleanly (QuotaExhausted) at the configured share of the daily quota.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import orjson
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)

from clghub.config.models import SalesforceSourceConfig
from clghub.config.secrets import REDACTOR
from clghub.connectors.salesforce.auth import Session, login
from clghub.http import ApiError, QuotaExhausted, RetryPolicy, SessionExpired, TransientError

__all__ = ["PinnedSession", "SalesforceClient"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def _error_body(exc: SalesforceError) -> tuple[str | None, str]:
    """``(errorCode, message)`` of a Salesforce error answer.

    simple-salesforce hands over the body already parsed when it was JSON
    (its ``exception_handler``), else as text.
    """
    body: Any = exc.content
    if isinstance(body, str | bytes):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None, str(exc.content)[:300]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode"), str(body[0].get("message", ""))
    if isinstance(body, dict):
        return body.get("errorCode") or body.get("error"), str(
            body.get("message") or body.get("error_description") or body
        )
    return None, str(body)[:300]


class PinnedSession(requests.Session):
    """A session whose ``verify`` setting wins over the environment.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override an
    explicit ``session.verify`` (psf/requests#3829); a configured ca_bundle
    must not be silently replaced.
    """

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(
            url, proxies, stream, verify, cert
        )
        if verify is None and isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings


class SalesforceClient:
    def __init__(
        self, config: SalesforceSourceConfig, *, http: requests.Session | None = None
    ) -> None:
        self.config = config
        self.http = http or PinnedSession()
        if config.ca_bundle:
            self.http.verify = config.ca_bundle
        self.policy = RetryPolicy(
            max_retries=config.max_retries, max_wait=config.max_retry_wait_seconds
        )
        self._lock = threading.Lock()
        self._session: Session | None = None
        self._sf: Salesforce | None = None
        self.api_used: int | None = None
        self.api_max: int | None = None

    # -- session -------------------------------------------------------------

    def _connect(self, *, renew: bool = False) -> Salesforce:
        with self._lock:
            if self._sf is not None and not renew:
                return self._sf
            refresh = self._session.refresh_token if (renew and self._session) else None
            self._session = self.policy.call(
                lambda: login(self.config, self.http, refresh_token=refresh)
            )
            self._sf = Salesforce(
                session_id=self._session.access_token,
                instance_url=self._session.instance_url,
                version=self.config.api_version,
                session=self.http,
                parse_float=Decimal,
                object_pairs_hook=dict,
            )
            return self._sf

    @property
    def sf(self) -> Salesforce:
        return self._connect()

    @property
    def instance_url(self) -> str:
        self._connect()
        assert self._session is not None
        return self._session.instance_url

    # -- calls ---------------------------------------------------------------

    def call(self, fn: Callable[[Salesforce], T], *, what: str) -> T:
        """Run ``fn(sf)`` under the retry policy; log in again once if the session expired."""
        for attempt in (1, 2):
            try:
                result = self.policy.call(lambda: self._translate(fn, what))
            except SessionExpired:
                if attempt == 2:
                    raise ApiError(
                        "Salesforce",
                        401,
                        "session still invalid after logging in again",
                        "INVALID_SESSION_ID",
                    ) from None
                log.info("Salesforce session expired during %s; logging in again", what)
                self._connect(renew=True)
                continue
            self._check_quota()
            return result
        raise AssertionError("unreachable")

    def _translate(self, fn: Callable[[Salesforce], T], what: str) -> T:
        sf = self._connect()
        timeout = self.config.timeout_seconds
        try:
            return fn(sf)
        except SalesforceExpiredSession:
            raise SessionExpired(f"Salesforce session expired ({what})") from None
        except SalesforceRefusedRequest as exc:
            code, message = _error_body(exc)
            self._record_usage(sf)
            if code == "REQUEST_LIMIT_EXCEEDED":
                raise QuotaExhausted(
                    f"Salesforce daily API quota exhausted (REQUEST_LIMIT_EXCEEDED) during {what}: {message}"
                ) from None
            raise ApiError("Salesforce", 403, message, code) from None
        except SalesforceError as exc:
            code, message = _error_body(exc)
            if exc.status == 429 or exc.status >= 500:
                raise TransientError(
                    f"Salesforce answered {exc.status} to {what}", kind=str(exc.status)
                ) from None
            raise ApiError("Salesforce", exc.status, f"{message} ({what})", code) from None
        except requests.exceptions.SSLError as exc:
            raise ApiError(
                "Salesforce",
                0,
                f"TLS verification failed for {what} ({exc.__class__.__name__}); set sources.salesforce.ca_bundle if a private CA signs it",
            ) from None
        except requests.Timeout:
            raise TransientError(
                f"Salesforce {what} timed out after {timeout}s", kind="timeout"
            ) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientError(
                f"Salesforce {what}: connection dropped ({type(exc).__name__})", kind="connection"
            ) from None
        except ValueError as exc:  # a truncated or garbled JSON body
            raise TransientError(
                f"Salesforce {what}: unreadable response ({REDACTOR.redact(str(exc))[:100]})",
                kind="truncated",
            ) from None
        finally:
            self._record_usage(sf)

    def _record_usage(self, sf: Salesforce) -> None:
        usage = sf.api_usage.get("api-usage") if sf.api_usage else None
        if usage is not None:
            self.api_used, self.api_max = int(usage.used), int(usage.total)

    def _check_quota(self) -> None:
        if self.api_used is None or not self.api_max:
            return
        if self.api_used >= self.config.quota_share * self.api_max:
            raise QuotaExhausted(
                f"Salesforce API usage {self.api_used}/{self.api_max} reached the configured share "
                f"({self.config.quota_share:.0%}); stopping cleanly, the next run resumes"
            )

    # -- helpers -------------------------------------------------------------

    def query_page(self, soql: str, *, include_deleted: bool = True) -> dict[str, Any]:
        timeout = self.config.timeout_seconds
        return self.call(
            lambda sf: sf.query(soql, include_deleted=include_deleted, timeout=timeout),
            what="query",
        )

    def query_more(self, next_url: str) -> dict[str, Any]:
        timeout = self.config.timeout_seconds
        return self.call(
            lambda sf: sf.query_more(next_url, identifier_is_url=True, timeout=timeout),
            what="query more",
        )

    def describe(self, sobject: str) -> dict[str, Any]:
        # SFType.describe() takes no timeout; the same resource through restful() does.
        described: dict[str, Any] = self.restful(f"sobjects/{sobject}/describe")
        return described

    def restful(self, path: str, *, method: str = "GET", **kwargs: Any) -> Any:
        timeout = self.config.timeout_seconds
        return self.call(
            lambda sf: sf.restful(path, method=method, timeout=timeout, **kwargs),
            what=f"{method} {path.split('?')[0]}",
        )

    def raw(self, method: str, path: str, *, what: str, **kwargs: Any) -> requests.Response:
        """A request on the client's own session (e.g. Bulk API CSV pages), checked like the others."""
        from simple_salesforce.util import exception_handler

        def send(sf: Salesforce) -> requests.Response:
            url = sf.base_url + path
            response = sf.session.request(
                method, url, headers=sf.headers, timeout=self.config.timeout_seconds, **kwargs
            )
            limit = response.headers.get("Sforce-Limit-Info")
            if limit:
                sf.api_usage = sf.parse_api_usage(limit)
            if response.status_code >= 300:
                exception_handler(response, name=what)
            # Reading the body here makes a dropped connection a retriable error.
            _ = response.content
            return response

        return self.call(send, what=what)

    def close(self) -> None:
        self.http.close()
