"""What the sandbox's CRMs and Slack hold, read through their public APIs.

The resilience tests judge clghub by what it left in the systems it talks
to, so these readers do not use clghub's own clients: plain httpx calls to
the Salesforce REST API (password login), the HubSpot CRM API (the
portal's private-app token) and the sandbox's Slack message dump.
"""

from __future__ import annotations

import ssl
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from clghub.sandbox.apis.hs_auth import SANDBOX_PRIVATE_APP_TOKEN
from clghub.sandbox.apis.sf_auth import (
    SANDBOX_CONSUMER_KEY,
    SANDBOX_CONSUMER_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
)
from clghub.sandbox.server import SandboxServer

__all__ = [
    "CLOCK_FIELDS",
    "HS_VALUE_FIELDS",
    "SF_API",
    "SF_VALUE_FIELDS",
    "CrmReader",
    "SlackMessage",
    "requests_by_route",
    "slack_messages",
]

SF_API = "/services/data/v62.0"
SF_VALUE_FIELDS = (
    "Value_Score__c",
    "Value_Band__c",
    "Value_Trend_30d__c",
    "Value_Drivers__c",
    "CLV__c",
    "CLV_Growth__c",
    "Time_To_First_Value_Days__c",
    "Value_Computed_At__c",
)
HS_VALUE_FIELDS = (
    "clghub_value_score",
    "clghub_value_band",
    "clghub_value_trend_30d",
    "clghub_value_drivers",
    "clghub_clv",
    "clghub_clv_growth",
    "clghub_time_to_first_value_days",
    "clghub_computed_at",
)
CLOCK_FIELDS = frozenset({"Value_Computed_At__c", "clghub_computed_at"})
"""When clghub computed the figures: differs between two runs by nature."""


@dataclass
class CrmReader:
    """Reads records of the sandbox's Salesforce org and HubSpot portal."""

    server: SandboxServer
    hubspot_token: str = SANDBOX_PRIVATE_APP_TOKEN
    """The portal's private-app token, or an OAuth access token (strict auth)."""
    _sf_token: str | None = None
    _sf_instance: str | None = None

    def _sf(self) -> httpx.Client:
        return httpx.Client(
            verify=ssl.create_default_context(cafile=str(self.server.ca_path)), timeout=30
        )

    def _sf_login(self, client: httpx.Client) -> tuple[str, str]:
        if self._sf_token is None or self._sf_instance is None:
            answer = client.post(
                self.server.https_url + "/services/oauth2/token",
                data={
                    "grant_type": "password",
                    "client_id": SANDBOX_CONSUMER_KEY,
                    "client_secret": SANDBOX_CONSUMER_SECRET,
                    "username": SANDBOX_USERNAME,
                    "password": SANDBOX_PASSWORD,
                },
            )
            answer.raise_for_status()
            body = answer.json()
            self._sf_token, self._sf_instance = str(body["access_token"]), str(body["instance_url"])
        return self._sf_token, self._sf_instance

    def soql(self, query: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every row of a SOQL query (following nextRecordsUrl)."""
        with self._sf() as client:
            token, instance = self._sf_login(client)
            headers = {"Authorization": f"Bearer {token}"}
            endpoint = "queryAll" if include_deleted else "query"
            answer = client.get(
                f"{instance}{SF_API}/{endpoint}", params={"q": query}, headers=headers
            )
            rows: list[dict[str, Any]] = []
            while True:
                answer.raise_for_status()
                body = orjson.loads(answer.content)
                rows.extend(body["records"])
                if body.get("done", True):
                    return rows
                answer = client.get(instance + body["nextRecordsUrl"], headers=headers)

    def sf_call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """One Salesforce REST call under ``/services/data/v62.0`` (the answer is not checked)."""
        with self._sf() as client:
            token, instance = self._sf_login(client)
            return client.request(
                method,
                f"{instance}{SF_API}{path}",
                headers={"Authorization": f"Bearer {token}"},
                content=None if body is None else orjson.dumps(body),
            )

    def hs_call(
        self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None
    ) -> httpx.Response:
        """One HubSpot call with the portal's private-app token (the answer is not checked)."""
        with httpx.Client(timeout=30) as client:
            return client.request(
                method,
                self.server.http_url + path,
                params=params,
                headers={
                    "Authorization": f"Bearer {self.hubspot_token}",
                    "Content-Type": "application/json",
                },
                content=None if body is None else orjson.dumps(body),
            )

    def hs_records(
        self, object_type: str, properties: tuple[str, ...], *, archived: bool = False
    ) -> list[dict[str, Any]]:
        """Every record of a HubSpot object with the given properties (following paging)."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = {
                "limit": "100",
                "properties": ",".join(properties),
                "archived": "true" if archived else "false",
            }
            if after:
                params["after"] = after
            answer = self.hs_call("GET", f"/crm/v3/objects/{object_type}", params=params)
            answer.raise_for_status()
            body = orjson.loads(answer.content)
            found.extend(body["results"])
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return found

    def value_fields(self) -> dict[str, list[tuple[str, ...]]]:
        """The written-back value fields of every Salesforce Account and HubSpot company.

        Clock fields are reduced to whether they are set; everything else is
        compared as the text the CRM returns.
        """
        accounts = self.soql(f"SELECT Id, {', '.join(SF_VALUE_FIELDS)} FROM Account ORDER BY Id")
        companies = self.hs_records("companies", HS_VALUE_FIELDS)
        return {
            "salesforce Account": sorted(
                (str(row["Id"]), *(_field_text(f, row.get(f)) for f in SF_VALUE_FIELDS))
                for row in accounts
            ),
            "hubspot companies": sorted(
                (
                    str(row["id"]),
                    *(_field_text(f, row["properties"].get(f)) for f in HS_VALUE_FIELDS),
                )
                for row in companies
            ),
        }


def _field_text(name: str, value: object) -> str:
    if name in CLOCK_FIELDS:
        return "(set)" if value not in (None, "") else "(empty)"
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class SlackMessage:
    channel: str
    text: str
    blocks: str
    key: str | None
    """The clghub key in the message's metadata (what makes a repost detectable)."""
    event_type: str | None
    files: int


def slack_messages(server: SandboxServer) -> list[SlackMessage]:
    """Every message posted in the sandbox's Slack, oldest first."""
    body = httpx.get(server.http_url + "/_sandbox/slack/messages", timeout=30).json()
    found = []
    for message in body["messages"]:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        found.append(
            SlackMessage(
                channel=str(message["channel_name"]),
                text=str(message["text"] or ""),
                blocks=orjson.dumps(message.get("blocks"), option=orjson.OPT_SORT_KEYS).decode(),
                key=payload.get("key"),
                event_type=metadata.get("event_type"),
                files=len(message.get("files") or []),
            )
        )
    return found


def requests_by_route(server: SandboxServer) -> Counter[tuple[str, str]]:
    """(method, route template) -> requests the sandbox served (all statuses)."""
    body = httpx.get(server.http_url + "/_sandbox/requests", timeout=30).json()
    counts: Counter[tuple[str, str]] = Counter()
    for entry in body["requests"]:
        counts[(entry["method"], entry["path"])] += entry["count"]
    return counts
