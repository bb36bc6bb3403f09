"""The Salesforce daily quota runs out mid-run; tokens and sessions expire mid-run.

The run stops (or logs in again) cleanly; the next run completes, and the
end state is the clean run's, with nothing lost, nothing published twice and
nothing published from a half-finished sync.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete

from clghub.sandbox.apis.hs_auth import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
)
from clghub.store.engine import create_store_engine
from clghub.store.models import table_of
from clghub.store.value import Play
from tests.resilience.conftest import ACCOUNTS, Org
from tests.support.chaos import (
    capture_outcome,
    chaos_sandbox,
    cli,
    control,
    fresh_org,
    write_run_config,
)
from tests.support.crm_state import CrmReader, requests_by_route
from tests.support.snapshot import ENTITY_MODELS
from tests.support.store_state import LINK_PROVENANCE, SOURCE_CLOCK, summarize

PLAY = table_of(Play)


def _stages(output: str) -> dict[str, tuple[str, str | None]]:
    report = json.loads(output)
    return {stage["name"]: (stage["status"], stage["error"]) for stage in report["stages"]}


@pytest.mark.parametrize(
    ("share", "calls_left", "stopped_by"),
    [
        # clghub reads Sforce-Limit-Info and stops at its share of the quota...
        (0.8, 8, "reached the configured share (80%)"),
        # ...and when other apps used it up first, the org refuses: 403.
        (1.0, 0, "REQUEST_LIMIT_EXCEEDED"),
    ],
)
def test_the_salesforce_quota_runs_out_and_the_next_run_completes(
    org: Org, share: float, calls_left: int, stopped_by: str
) -> None:
    config, store = org.fresh_run(f"quota-{share}")
    text = config.read_text().replace(
        "[sources.salesforce]\n", f"[sources.salesforce]\nquota_share = {share}\n", 1
    )
    config.write_text(text)
    used = control(org.server, "GET", "/_sandbox/salesforce/quota")["used"]
    control(org.server, "POST", "/_sandbox/salesforce/quota", {"max": used + calls_left})
    stopped = cli(config, "run", "--json")
    stages = _stages(stopped.stdout)
    assert stages["sync"][0] == "stopped", stages
    assert stopped_by in str(stages["sync"][1]), stages["sync"]
    # Once-only outputs never go out on a half-finished sync.
    assert stages["digest"][0] == "skipped"
    assert stages["alerts"][0] == "skipped"
    assert "held until a run's sync completes" in str(stages["digest"][1])
    assert requests_by_route(org.server)[("POST", "/api/chat.postMessage")] == 0

    control(org.server, "POST", "/_sandbox/salesforce/quota", {"max": 5_000_000})
    resumed = cli(config, "run", "--json")
    assert resumed.code == 0, resumed.stderr[-3000:]
    assert {status for status, _ in _stages(resumed.stdout).values()} == {"ok"}
    # The stopped run scored what it had (the first load, half done): plays such
    # as "no executive meeting" opened where meetings were not synced yet, and the
    # complete run cleared them. They were held, never announced, and are all
    # that sets this store apart from the clean run's.
    engine = create_store_engine(f"sqlite:///{store}")
    with engine.begin() as connection:
        transient = connection.execute(
            delete(PLAY).where(PLAY.c.cleared_at.is_not(None), PLAY.c.notified_at.is_(None))
        ).rowcount
    engine.dispose()
    assert transient > 0
    # Which CRM's record created an account is history too: here HubSpot's came first.
    clocks = SOURCE_CLOCK | LINK_PROVENANCE
    differences = org.echoed_reference(clocks).differences(org.outcome(store, clocks=clocks))
    assert not differences, summarize(differences)


def test_tokens_and_sessions_that_expire_mid_run_are_renewed(org: Org, tmp_path: Path) -> None:
    # Strict auth: only tokens the token endpoints issued. HubSpot through OAuth
    # (refresh on 401), Salesforce through the password flow (log in again on
    # INVALID_SESSION_ID). Every live token is expired a few times during the run.
    with chaos_sandbox(ACCOUNTS, strict_auth=True) as server:
        config = write_run_config(server, tmp_path)
        text = config.read_text()
        private_app = (
            'auth = "private_app"\naccess_token = { env = "CLGHUB_SANDBOX_HUBSPOT_TOKEN" }\n'
        )
        assert private_app in text
        config.write_text(
            text.replace(
                private_app,
                'auth = "oauth"\n'
                f'client_id = "{SANDBOX_CLIENT_ID}"\n'
                'client_secret = { env = "HUBSPOT_CLIENT_SECRET" }\n'
                'refresh_token = { env = "HUBSPOT_REFRESH_TOKEN" }\n',
            )
        )
        secrets = config.with_name("clghub-secrets.env")
        secrets.write_text(
            secrets.read_text()
            + f"HUBSPOT_CLIENT_SECRET={SANDBOX_CLIENT_SECRET}\n"
            + f"HUBSPOT_REFRESH_TOKEN={SANDBOX_REFRESH_TOKEN}\n"
        )
        fresh_org(server, config)
        done = threading.Event()

        def reading_both() -> bool:
            paths = [e["path"] for e in control(server, "GET", "/_sandbox/requests")["requests"]]
            return any(p.startswith("/crm/") for p in paths) and any(
                p.startswith("/services/data") for p in paths
            )

        def expire_now_and_then() -> None:
            # Only once the run reads from both CRMs: on a loaded machine its
            # start-up alone can outlast a schedule counted from launch.
            while not reading_both():
                if done.wait(0.1):
                    return
            for pause in (0.5, 1.0, 1.5, 2.0):
                if done.wait(pause):
                    return
                for system in ("salesforce", "hubspot"):
                    control(server, "POST", "/_sandbox/tokens/expire", {"system": system})

        expirer = threading.Thread(target=expire_now_and_then)
        expirer.start()
        try:
            result = cli(config, "run", "--json")
        finally:
            done.set()
            expirer.join()
        assert result.code == 0, result.stderr[-3000:]
        assert {status for status, _ in _stages(result.stdout).values()} == {"ok"}
        served = requests_by_route(server)
        answers = control(server, "GET", "/_sandbox/requests")["requests"]
        # Tokens did expire under the run, and were renewed each time.
        assert any(e["status"] == 401 and e["path"].startswith("/crm/") for e in answers)
        assert any(e["status"] == 401 and e["path"].startswith("/services/data") for e in answers)
        assert served[("POST", "/oauth/v1/token")] >= 2
        assert served[("POST", "/services/oauth2/token")] >= 2
        # The portal's own token was expired with the rest: read through OAuth too.
        token = httpx.post(
            server.http_url + "/oauth/v1/token",
            data={
                "grant_type": "refresh_token",
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SANDBOX_CLIENT_SECRET,
                "refresh_token": SANDBOX_REFRESH_TOKEN,
            },
            timeout=30,
        ).json()["access_token"]
        outcome = capture_outcome(
            server,
            f"sqlite:///{tmp_path / 'clghub.db'}",
            reader=CrmReader(server, hubspot_token=token),
        )
    # Same seed, same org: the same records synced, the same value fields written,
    # as many messages posted as in the clean run (their links name another port).
    entities = {model.__tablename__ for model in ENTITY_MODELS}
    reference = org.reference.outcome
    for table in entities:
        assert outcome.store[table] == reference.store[table], table
    assert outcome.crm == reference.crm
    assert len(outcome.slack) == len(reference.slack)
