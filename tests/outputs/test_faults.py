"""Lost answers, dropped connections and 429s: retried, and still nothing written or posted twice."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from clghub import pipeline
from clghub.config import ClghubConfig
from clghub.connectors.hubspot.client import HubSpotClient
from clghub.connectors.hubspot.writer import HubSpotWriter
from clghub.sandbox.server import SandboxServer
from clghub.writeback import TargetField
from clghub.writeback.values import VALUE_SPECS
from tests.outputs.builders import (
    Figures,
    StoreData,
    fault_seed,
    faults_off,
    hubspot_companies,
    inject_faults,
    requests_made,
    salesforce_accounts,
    slack_messages,
)

VERSION = "v62.0"
SF_PATCH = ("PATCH", "/services/data/{version}/composite/sobjects")
HS_UPDATE = ("POST", "/crm/v3/objects/{object}/batch/update")
CHAT_POST = ("POST", "/api/chat.postMessage")


def _accounts(engine: Engine, config: ClghubConfig, count: int) -> StoreData:
    data = StoreData(engine)
    sf = salesforce_accounts(config, count)
    hs = hubspot_companies(config, count)
    for n, (sf_id, name) in enumerate(sf):
        links = [("salesforce", sf_id)] + ([("hubspot", hs[n][0])] if n < len(hs) else [])
        data.add(name, links, Figures(score=30.0 + n))
    return data


def test_a_write_whose_answer_was_lost_is_read_back_not_sent_again(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    _accounts(sqlite_engine, config, 4)
    # Properties first, so the faulted run below only writes.
    HubSpotWriter(HubSpotClient(config.sources.hubspot), config.writeback.hubspot).provision(
        [TargetField(VALUE_SPECS[v], f) for v, f in config.writeback.hubspot.fields.items()]
    )
    seed = fault_seed(
        {
            ("PATCH", f"/services/data/{VERSION}/composite/sobjects"): {1},
            ("POST", "/crm/v3/objects/companies/batch/update"): {1},
        },
        kind="drop_connection",
        clean={
            ("POST", "/services/oauth2/token"): 2,
            ("GET", f"/services/data/{VERSION}/sobjects/Account/describe"): 2,
            ("GET", f"/services/data/{VERSION}/query"): 3,
            ("GET", "/crm/v3/properties/companies"): 2,
            ("POST", "/crm/v3/objects/companies/batch/read"): 2,
        },
    )
    inject_faults(sandbox, seed=seed, kind="drop_connection")
    report = {r.crm: r for r in pipeline.writeback(sqlite_engine, config).crms}
    injected = faults_off(sandbox)
    assert injected == {"drop_connection": 2}
    counts = requests_made(sandbox)
    assert counts[SF_PATCH] == 1  # the dropped one; the retry read the records instead
    assert counts[HS_UPDATE] == 1
    for crm in ("salesforce", "hubspot"):
        assert (report[crm].status, report[crm].written, report[crm].failed) == ("ok", 4, 0)
    assert all(r.changed == 0 for r in pipeline.writeback(sqlite_engine, config).crms)


@pytest.mark.parametrize("kind", ["drop_connection", "truncated_body", "rate_limit", "unavailable"])
def test_a_post_whose_answer_was_lost_or_refused_lands_once(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine, kind: str
) -> None:
    data = StoreData(sqlite_engine)
    for rid, name in salesforce_accounts(config, 2):
        data.add_play(data.add(name, [("salesforce", rid)]))
    seed = fault_seed(
        {("POST", "/api/chat.postMessage"): {1}},
        kind=kind,
        clean={("POST", "/api/conversations.history"): 3, ("POST", "/api/conversations.list"): 2},
    )
    inject_faults(sandbox, seed=seed, kind=kind)
    report = pipeline.alerts(sqlite_engine, config)
    assert faults_off(sandbox) == {kind: 1}
    assert (report.notified, report.failed) == (2, 0)
    posted = [m for m in slack_messages(sandbox, "cs-alerts") if m.get("metadata")]
    assert len(posted) == 2
    assert len({m["metadata"]["event_payload"]["key"] for m in posted}) == 2
    # A refused post (429, 503) was not applied and was sent again; a lost answer was found.
    expected = 3 if kind in ("rate_limit", "unavailable") else 2
    assert requests_made(sandbox)[CHAT_POST] == expected


def test_messages_to_one_channel_are_paced_under_slacks_limit(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    data = StoreData(sqlite_engine)
    for rid, name in salesforce_accounts(config, 4):
        data.add_play(data.add(name, [("salesforce", rid)]))
    pipeline.alerts(sqlite_engine, config)
    answered = {
        status for (method, path, status) in _statuses(sandbox) if (method, path) == CHAT_POST
    }
    assert answered == {200}  # never a 429: the pacer kept to one a second


def _statuses(sandbox: SandboxServer) -> set[tuple[str, str, int]]:
    import httpx

    body = httpx.get(sandbox.http_url + "/_sandbox/requests").json()
    return {(e["method"], e["path"], e["status"]) for e in body["requests"]}
