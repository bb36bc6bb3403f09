"""Alerts: each play announced once in Slack (channel or owner DM) and as a CRM task."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from clghub import pipeline
from clghub.config import ClghubConfig
from clghub.connectors.hubspot.client import HubSpotClient
from clghub.connectors.hubspot.writer import HubSpotTaskCreator
from clghub.connectors.salesforce.client import SalesforceClient
from clghub.connectors.salesforce.writer import SalesforceTaskCreator
from clghub.connectors.slack import SlackMessenger
from clghub.sandbox.server import SandboxServer
from clghub.store.models import table_of
from clghub.store.outputs import PlayDelivery
from clghub.store.value import Play
from clghub.workflows.alerts import EVENT_TYPE, deliver_alerts
from clghub.workflows.delivery import TaskCreator
from clghub.workflows.digest import LinkBuilder
from tests.outputs.builders import (
    StoreData,
    hubspot_companies,
    requests_made,
    reset_requests,
    salesforce_accounts,
    slack_messages,
)

PLAY = table_of(Play)
DELIVERY = table_of(PlayDelivery)
CHAT_POST = ("POST", "/api/chat.postMessage")


def _plays(engine: Engine) -> dict[int, Any]:
    with engine.connect() as connection:
        return {row.id: row for row in connection.execute(select(PLAY))}


def _alerts(sandbox: SandboxServer, channel: str) -> list[dict[str, Any]]:
    return [
        m
        for m in slack_messages(sandbox, channel)
        if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
    ]


def _salesforce_user_email(config: ClghubConfig) -> str:
    client = SalesforceClient(config.sources.salesforce)
    try:
        row = client.query_page(
            "SELECT Email FROM User WHERE IsActive = true ORDER BY Id LIMIT 1",
            include_deleted=False,
        )["records"][0]
    finally:
        client.close()
    return str(row["Email"])


def test_plays_go_to_the_alerts_channel_once_escaped(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    data = StoreData(sqlite_engine)
    records = salesforce_accounts(config, 3)
    accounts = [data.add(name, [("salesforce", rid)]) for rid, name in records]
    evil = data.add("<!channel> *Evil* & <https://x|y>", [("salesforce", "001000000000999AAA")])
    for account in [*accounts, evil]:
        data.add_play(account, detail="value score 22 (red): <!here> *renews* soon & fast")
    report = pipeline.alerts(sqlite_engine, config)
    assert (report.plays, report.messages, report.notified, report.failed) == (4, 4, 4, 0)
    posted = _alerts(sandbox, "cs-alerts")
    assert len(posted) == 4
    for message in posted:
        for text in [
            message["text"],
            *(b.get("text", {}).get("text", "") for b in message["blocks"]),
        ]:
            assert "<!here>" not in text
            assert "<!channel>" not in text
            assert "<https://x" not in text
    assert "&lt;!channel&gt; ∗Evil∗ &amp;" in posted[-1]["blocks"][0]["text"]["text"]
    plays = _plays(sqlite_engine)
    assert all(p.notified_at is not None for p in plays.values())
    assert {p.notification_ref.split("/")[1] for p in plays.values()} == {m["ts"] for m in posted}

    reset_requests(sandbox)
    again = pipeline.alerts(sqlite_engine, config)
    assert again.plays == 0
    assert requests_made(sandbox)[CHAT_POST] == 0


def test_owner_delivery_sends_a_direct_message_or_falls_back_to_the_channel(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    config.plays.deliver_to = "owner"
    data = StoreData(sqlite_engine)
    (first, name), (second, other) = salesforce_accounts(config, 2)
    owned = data.add(name, [("salesforce", first)], owner_email=_salesforce_user_email(config))
    stranger = data.add(other, [("salesforce", second)], owner_email="nobody@nowhere.example")
    data.add_play(owned)
    data.add_play(
        stranger,
        condition="no_exec_meeting",
        detail="no meeting with an economic buyer in 120 days",
    )
    report = pipeline.alerts(sqlite_engine, config)
    assert (report.to_owner, report.to_channel, report.notified) == (1, 1, 2)
    plays = sorted(_plays(sqlite_engine).values(), key=lambda p: p.id)
    assert plays[0].notification_ref.startswith("slack:D")
    assert plays[1].notification_ref.startswith("slack:C")
    fallback = _alerts(sandbox, "cs-alerts")
    assert len(fallback) == 1
    assert (
        "nobody@nowhere.example) was not found in Slack"
        in fallback[0]["blocks"][1]["elements"][0]["text"]
    )


class _DiesAfterPosting:
    def __init__(self, inner: SlackMessenger) -> None:
        self.inner = inner
        self.posts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def post(self, channel_id: str, **kwargs: Any) -> str:
        self.inner.post(channel_id, **kwargs)
        raise KeyboardInterrupt


def test_a_run_killed_after_posting_does_not_post_again(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    data = StoreData(sqlite_engine)
    ((record, name),) = salesforce_accounts(config, 1)
    data.add_play(data.add(name, [("salesforce", record)]))
    with pytest.raises(KeyboardInterrupt):
        deliver_alerts(
            sqlite_engine,
            config,
            messenger=_DiesAfterPosting(SlackMessenger(config.slack)),
            tasks={},
            links=LinkBuilder(),
        )
    with sqlite_engine.connect() as connection:
        assert connection.execute(select(DELIVERY.c.message_state)).scalar_one() == "pending"
    report = pipeline.alerts(sqlite_engine, config)
    assert (report.found, report.messages, report.notified) == (1, 0, 1)
    assert len(_alerts(sandbox, "cs-alerts")) == 1


class _DiesAfterCreating:
    def __init__(self, inner: TaskCreator) -> None:
        self.inner = inner
        self.crm = inner.crm

    def create_task(self, **kwargs: Any) -> str:
        self.inner.create_task(**kwargs)
        raise KeyboardInterrupt


def _salesforce_tasks(config: ClghubConfig, record_id: str) -> list[dict[str, Any]]:
    client = SalesforceClient(config.sources.salesforce)
    try:
        soql = f"SELECT Id, Subject, OwnerId FROM Task WHERE WhatId = '{record_id}' AND Subject LIKE '%[clghub %'"
        return list(client.query_page(soql, include_deleted=False)["records"])
    finally:
        client.close()


def _hubspot_tasks(config: ClghubConfig, company_id: str) -> list[str]:
    client = HubSpotClient(config.sources.hubspot)
    body = client.call(
        lambda api: api.crm.associations.v4.basic_api.get_page(
            "companies", company_id, "tasks", _preload_content=False
        ),
        what="tasks of a company",
    ).body
    return [str(r["toObjectId"]) for r in body["results"]]


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_crm_tasks_are_created_once_even_after_a_kill(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine, crm: str
) -> None:
    config.plays.crm_tasks = True
    config.identity.source_priority = [crm, "hubspot" if crm == "salesforce" else "salesforce"]
    data = StoreData(sqlite_engine)
    ((sf_id, name),) = salesforce_accounts(config, 1)
    ((hs_id, _),) = hubspot_companies(config, 1)
    account = data.add(name, [("salesforce", sf_id), ("hubspot", hs_id)])
    data.add_play(account)
    creator: TaskCreator = (
        SalesforceTaskCreator(SalesforceClient(config.sources.salesforce))
        if crm == "salesforce"
        else HubSpotTaskCreator(HubSpotClient(config.sources.hubspot))
    )
    with pytest.raises(KeyboardInterrupt):
        deliver_alerts(
            sqlite_engine,
            config,
            messenger=None,
            tasks={crm: _DiesAfterCreating(creator)},
            links=LinkBuilder(),
        )
    report = pipeline.alerts(sqlite_engine, config)
    assert (report.tasks, report.notified, report.failed) == (1, 1, 0)
    tasks = (
        _salesforce_tasks(config, sf_id) if crm == "salesforce" else _hubspot_tasks(config, hs_id)
    )
    assert len(tasks) == 1
    if crm == "salesforce":
        assert tasks[0]["Subject"].endswith("[clghub red-renewal 2026-11-20]")
    play = next(iter(_plays(sqlite_engine).values()))
    task_id = tasks[0]["Id"] if crm == "salesforce" else tasks[0]
    assert play.crm_task_ref == f"{crm}:{task_id}"
    assert pipeline.alerts(sqlite_engine, config).plays == 0


def test_alerts_dry_run_sends_nothing(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    data = StoreData(sqlite_engine)
    ((record, name),) = salesforce_accounts(config, 1)
    data.add_play(data.add(name, [("salesforce", record)]))
    reset_requests(sandbox)
    report = pipeline.alerts(sqlite_engine, config, dry_run=True)
    assert report.plays == 1
    assert report.preview[0].startswith("#cs-alerts: Red account renewing soon")
    assert sum(requests_made(sandbox).values()) == 0
    assert next(iter(_plays(sqlite_engine).values())).notified_at is None


def test_a_backlog_goes_out_in_grouped_messages_once(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clghub.workflows import alerts

    monkeypatch.setattr(alerts, "GROUP_SIZE", 8)
    config.plays.group_above = 5
    data = StoreData(sqlite_engine)
    records = salesforce_accounts(config, 20)
    assert len(records) == 20
    for record, name in records:
        data.add_play(data.add(name, [("salesforce", record)]))
    with pytest.raises(KeyboardInterrupt):
        # The first grouped post lands, then the run dies before recording it.
        deliver_alerts(
            sqlite_engine,
            config,
            messenger=_DiesAfterPosting(SlackMessenger(config.slack)),
            tasks={},
            links=LinkBuilder(),
        )
    report = pipeline.alerts(sqlite_engine, config)
    # The first group of 8 is found in the channel; the other 12 go out as groups of 8 and 4.
    assert (report.plays, report.found, report.messages, report.notified, report.failed) == (20, 8, 2, 20, 0), report
    posted = _alerts(sandbox, "cs-alerts")
    assert len(posted) == 3
    assert [m["blocks"][0]["text"]["text"] for m in posted] == ["*8 new plays*", "*8 new plays*", "*4 new plays*"]
    plays = _plays(sqlite_engine)
    assert all(p.notified_at is not None for p in plays.values())
    reset_requests(sandbox)
    assert pipeline.alerts(sqlite_engine, config).plays == 0
    assert requests_made(sandbox)[CHAT_POST] == 0
