"""Store rows for output tests, and the sandbox's records and counters read through its APIs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Engine, update

from clghub.config import ClghubConfig
from clghub.connectors.hubspot.client import HubSpotClient
from clghub.connectors.salesforce.client import SalesforceClient
from clghub.sandbox.server import SandboxServer
from clghub.store.models import Account, Person, SourceLink, table_of
from clghub.store.revenue import Clv
from clghub.store.value import Play, TimeToValue, ValueScore

ACCOUNT = table_of(Account)
LINK = table_of(SourceLink)
PERSON = table_of(Person)
SCORE = table_of(ValueScore)
CLV = table_of(Clv)
TTV = table_of(TimeToValue)
PLAY = table_of(Play)
COMPUTED = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)


def salesforce_accounts(config: ClghubConfig, limit: int) -> list[tuple[str, str]]:
    """(Id, Name) of live sandbox Accounts, through the REST API."""
    client = SalesforceClient(config.sources.salesforce)
    try:
        page = client.query_page(
            f"SELECT Id, Name FROM Account ORDER BY Id LIMIT {limit}", include_deleted=False
        )
    finally:
        client.close()
    return [(str(r["Id"]), str(r["Name"])) for r in page["records"]]


def hubspot_companies(config: ClghubConfig, limit: int) -> list[tuple[str, str]]:
    """(id, name) of live sandbox companies, through the CRM API."""
    client = HubSpotClient(config.sources.hubspot)
    found: list[tuple[str, str]] = []
    after: str | None = None
    while len(found) < limit:
        body = client.list_page("companies", after=after, properties=["name"], archived=False).body
        found += [(str(r["id"]), str(r["properties"].get("name") or "")) for r in body["results"]]
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            break
    return found[:limit]


@dataclass
class Figures:
    score: float | None = 55.0
    band: str | None = "yellow"
    trend_30d: float | None = 2.5
    trend_90d: float | None = -1.0
    explanation: str | None = "adoption depth 48 (+6 in 30 days); outcome progress 62% of target"
    clv: Decimal | None = Decimal("123456.78")
    clv_growth_pct: float | None = 0.125
    ttv_days: int | None = 21


@dataclass
class StoreData:
    """Accounts with CRM links and value figures, inserted straight into the store."""

    engine: Engine
    as_of: date = date(2026, 11, 20)
    accounts: dict[str, int] = field(default_factory=dict)
    """CRM record id -> account id."""

    def add(
        self,
        name: str,
        links: list[tuple[str, str]],
        figures: Figures | None = None,
        *,
        owner_email: str | None = None,
    ) -> int:
        figures = figures or Figures()
        with self.engine.begin() as connection:
            owner_id = None
            if owner_email:
                owner_id = connection.execute(
                    PERSON.insert()
                    .values(
                        source="salesforce",
                        source_id=f"005{len(self.accounts):015d}",
                        name="Owner",
                        email=owner_email,
                    )
                    .returning(PERSON.c.id)
                ).scalar_one()
            origin, origin_id = links[0]
            account_id = int(
                connection.execute(
                    ACCOUNT.insert()
                    .values(
                        name=name,
                        origin_source=origin,
                        origin_source_id=origin_id,
                        owner_id=owner_id,
                    )
                    .returning(ACCOUNT.c.id)
                ).scalar_one()
            )
            for crm, record_id in links:
                connection.execute(
                    LINK.insert().values(
                        source=crm, object="account", source_id=record_id, account_id=account_id
                    )
                )
                self.accounts[record_id] = account_id
            if figures.score is not None:
                connection.execute(
                    SCORE.insert().values(
                        account_id=account_id,
                        as_of=self.as_of,
                        score=figures.score,
                        band=figures.band or "yellow",
                        trend_30d=figures.trend_30d,
                        trend_90d=figures.trend_90d,
                        explanation=figures.explanation,
                        computed_at=COMPUTED,
                    )
                )
            if figures.clv is not None:
                connection.execute(
                    CLV.insert().values(
                        account_id=account_id,
                        as_of=self.as_of,
                        clv=figures.clv,
                        clv_growth_pct=figures.clv_growth_pct,
                        computed_at=COMPUTED,
                    )
                )
            if figures.ttv_days is not None:
                connection.execute(
                    TTV.insert().values(
                        account_id=account_id,
                        as_of=self.as_of,
                        contract_start=date(2025, 1, 1),
                        days=figures.ttv_days,
                        activated=True,
                        computed_at=COMPUTED,
                    )
                )
        return account_id

    def add_many(self, crm: str, record_ids: list[str]) -> None:
        """Many accounts with default figures, one CRM record each, in one transaction."""
        figures = Figures()
        with self.engine.begin() as connection:
            ids = [
                int(
                    connection.execute(
                        ACCOUNT.insert()
                        .values(name=rid, origin_source=crm, origin_source_id=rid)
                        .returning(ACCOUNT.c.id)
                    ).scalar_one()
                )
                for rid in record_ids
            ]
            connection.execute(
                LINK.insert(),
                [
                    {"source": crm, "object": "account", "source_id": rid, "account_id": aid}
                    for rid, aid in zip(record_ids, ids, strict=True)
                ],
            )
            connection.execute(
                SCORE.insert(),
                [
                    {"account_id": aid, "as_of": self.as_of, "score": figures.score, "band": figures.band, "trend_30d": figures.trend_30d,
                     "explanation": figures.explanation, "computed_at": COMPUTED}
                    for aid in ids
                ],
            )  # fmt: skip
        self.accounts.update(zip(record_ids, ids, strict=True))

    def set_score(self, record_id: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(SCORE).where(SCORE.c.account_id == self.accounts[record_id]).values(**values)
            )

    def add_play(
        self,
        account_id: int,
        condition: str = "red_renewal",
        detail: str = "value score 22 (red) and the contract renews in 40 days",
    ) -> int:
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    PLAY.insert()
                    .values(
                        account_id=account_id,
                        condition=condition,
                        opened_as_of=self.as_of,
                        detail=detail,
                    )
                    .returning(PLAY.c.id)
                ).scalar_one()
            )


def requests_made(sandbox: SandboxServer) -> Counter[tuple[str, str]]:
    """(method, path template) -> requests served, from the sandbox's counters."""
    body = httpx.get(sandbox.http_url + "/_sandbox/requests").json()
    counts: Counter[tuple[str, str]] = Counter()
    for entry in body["requests"]:
        counts[(entry["method"], entry["path"])] += entry["count"]
    return counts


def reset_requests(sandbox: SandboxServer) -> None:
    httpx.post(sandbox.http_url + "/_sandbox/requests/reset")


def writes(counts: Counter[tuple[str, str]]) -> int:
    """Requests that can change CRM or Slack data (everything but reads and logins)."""
    reads = ("GET",)
    total = 0
    for (method, path), count in counts.items():
        if method in reads or path.endswith(
            ("/query", "/queryAll", "/batch/read", "/oauth2/token", "/search")
        ):
            continue
        if "conversations." in path or "users." in path or "auth.test" in path:
            continue
        total += count
    return total


def slack_messages(sandbox: SandboxServer, channel: str) -> list[dict[str, Any]]:
    body = httpx.get(
        sandbox.http_url + "/_sandbox/slack/messages", params={"channel": channel}
    ).json()
    return list(body["messages"])


def fault_seed(
    faulted: dict[tuple[str, str], set[int]],
    *,
    kind: str,
    rate: float = 0.15,
    clean: dict[tuple[str, str], int] | None = None,
) -> int:
    """A fault seed under which exactly the numbered requests of ``faulted`` fail with ``kind``
    and the first requests of ``clean`` pass (the sandbox decides faults deterministically)."""
    from clghub.sandbox.faults import choose_fault
    from clghub.sandbox.state import FaultSettings

    for seed in range(50_000):
        settings = FaultSettings(rate=rate, kinds=(kind,), seed=seed)
        fits = all(
            (choose_fault(settings, method, path) is not None) == (n in numbers)
            for (method, path), numbers in faulted.items()
            for n in range(1, max(numbers) + 3)
        ) and all(
            choose_fault(settings, method, path) is None
            for (method, path), first in (clean or {}).items()
            for _ in range(first)
        )
        if fits:
            return seed
    raise AssertionError("no seed fits the fault plan")


def inject_faults(sandbox: SandboxServer, *, seed: int, kind: str, rate: float = 0.15) -> None:
    """Turn faults on from now (the sandbox restarts its per-path request counts)."""
    httpx.post(
        sandbox.http_url + "/_sandbox/faults", json={"rate": rate, "kinds": [kind], "seed": seed}
    ).raise_for_status()


def faults_off(sandbox: SandboxServer) -> dict[str, int]:
    body = httpx.post(sandbox.http_url + "/_sandbox/faults", json={"rate": 0.0}).json()
    return dict(body["injected"])
