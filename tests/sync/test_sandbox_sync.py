"""Sync against the sandbox over real HTTP with the real clients.

First load, increments after changes made through the APIs, deletes, schema
drift, the 10k same-timestamp import, quota exhaustion and resume, session
expiry, 20% injected faults, and SIGKILL at random points: in every case the
store ends identical, row for row, to a clean run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from clghub.config import ClghubConfig
from clghub.pipeline import build_connectors, close_all
from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade
from clghub.store.models import Account, Opportunity, SourceLink, table_of
from clghub.sync.runner import run_sync
from tests.support.sandbox import Sandbox, running_sandbox
from tests.support.snapshot import store_snapshot

CRM_ONLY = {"sources__product_usage__enabled": False}


@pytest.fixture
def sandbox(tmp_path: Path) -> Any:
    with running_sandbox(tmp_path / "sandbox", accounts=40) as running:
        yield running


def new_store(url: str) -> Engine:
    engine = create_store_engine(url)
    upgrade(engine)
    return engine


def sync(engine: Engine, config: ClghubConfig, **kw: Any) -> Any:
    connectors = build_connectors(config)
    try:
        return run_sync(engine, config, connectors, **kw)
    finally:
        close_all(connectors.values())


def count(engine: Engine, model: Any, *where: Any) -> int:
    table = table_of(model)
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
        )


def test_first_load_then_increments_after_api_changes(sandbox: Sandbox, store_url: str) -> None:
    config = sandbox.config()
    engine = new_store(store_url)
    first = sync(engine, config)
    assert first.ok, [(s.stream, s.error) for s in first.streams]
    streams = {(s.source, s.stream): s for s in first.streams}
    assert streams[("salesforce", "Account")].inserted > 0
    assert streams[("hubspot", "companies")].inserted > 0
    assert streams[("product_usage", "daily")].inserted > 1000
    assert first.unlinked["opportunity"] == 0
    accounts = count(engine, Account)

    # Change records through the real APIs, as users would in the CRMs.
    sf_connector, _ = build_connectors(config, ["salesforce"])["salesforce"]
    client = sf_connector.client  # type: ignore[attr-defined]
    account_id = client.query_page(
        "SELECT Id FROM Account WHERE IsDeleted = false ORDER BY Id LIMIT 1", include_deleted=False
    )["records"][0]["Id"]
    client.restful(
        f"sobjects/Account/{account_id}", method="PATCH", json={"Name": "Renamed Through The API"}
    )
    opportunity_id = client.query_page(
        "SELECT Id FROM Opportunity WHERE IsDeleted = false ORDER BY Id LIMIT 1",
        include_deleted=False,
    )["records"][0]["Id"]
    client.restful(f"sobjects/Opportunity/{opportunity_id}", method="DELETE")
    hs_connector, _ = build_connectors(config, ["hubspot"])["hubspot"]
    hs = hs_connector.client  # type: ignore[attr-defined]
    company = hs.list_page(
        "companies", after=None, properties=["name"], archived=False, limit=1
    ).body["results"][0]
    hs.call(
        lambda api: api.crm.objects.basic_api.update(
            "companies",
            company["id"],
            {"properties": {"name": "HubSpot Rename"}},
            _preload_content=False,
        ),
        what="update company",
    )

    sf_connector.close()
    hs_connector.close()
    second = sync(engine, sandbox.config(**CRM_ONLY))
    assert second.ok
    streams = {(s.source, s.stream): s for s in second.streams}
    assert streams[("salesforce", "Account")].mode == "incremental"
    assert streams[("salesforce", "Account")].updated == 1
    assert streams[("salesforce", "Opportunity")].deleted == 1
    assert streams[("hubspot", "companies")].updated == 1
    assert count(engine, Account) == accounts
    link = table_of(SourceLink)
    opportunity = table_of(Opportunity)
    with engine.connect() as connection:
        assert (
            connection.execute(
                select(link.c.name).where(link.c.source_id == account_id)
            ).scalar_one()
            == "Renamed Through The API"
        )
        assert (
            connection.execute(
                select(opportunity.c.is_deleted).where(opportunity.c.source_id == opportunity_id)
            ).scalar_one()
            is True
        )
    engine.dispose()


def test_a_large_first_load_reads_through_bulk_api_2(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.config(sources__hubspot__enabled=False, **CRM_ONLY)
    rest = new_store(f"sqlite:///{tmp_path / 'rest.db'}")
    assert sync(rest, config).ok
    sandbox.control("POST", "/_sandbox/requests/reset")
    config.sources.salesforce.bulk_threshold = 10
    bulk = new_store(f"sqlite:///{tmp_path / 'bulk.db'}")
    report = sync(bulk, config)
    assert report.ok, [(s.stream, s.error) for s in report.streams]
    modes = {s.stream: s.mode for s in report.streams}
    assert modes["Opportunity"] == "bulk", modes
    paths = {e["path"] for e in sandbox.control("GET", "/_sandbox/requests")["requests"]}
    assert any("/jobs/query" in path for path in paths), paths
    # Deleted rows come through the bulk queryAll too: the same store as over REST.
    assert store_snapshot(bulk) == store_snapshot(rest)
    # The next sync is incremental, over REST.
    again = sync(bulk, config)
    assert {s.mode for s in again.streams} == {"incremental"}


def test_an_archived_hubspot_record_becomes_a_soft_delete(
    sandbox: Sandbox, sqlite_url: str
) -> None:
    config = sandbox.config(sources__salesforce__enabled=False, **CRM_ONLY)
    engine = new_store(sqlite_url)
    assert sync(engine, config).ok
    opportunity = table_of(Opportunity)
    with engine.connect() as connection:
        deal_id = connection.execute(
            select(opportunity.c.source_id)
            .where(opportunity.c.source == "hubspot", opportunity.c.is_deleted.is_(False))
            .order_by(opportunity.c.source_id)
            .limit(1)
        ).scalar_one()
    import httpx

    archived = httpx.delete(
        f"{sandbox.http_url}/crm/v3/objects/deals/{deal_id}",
        headers={"Authorization": "Bearer sandbox"},
        timeout=30,
    )
    assert archived.status_code == 204
    report = sync(engine, config)
    assert report.ok
    deals = next(s for s in report.streams if s.stream == "deals")
    assert deals.deleted == 1
    with engine.connect() as connection:
        assert (
            connection.execute(
                select(opportunity.c.is_deleted).where(opportunity.c.source_id == deal_id)
            ).scalar_one()
            is True
        )
    engine.dispose()


def test_schema_drift_skips_the_missing_field(
    sandbox: Sandbox, tmp_path: Path, sqlite_url: str
) -> None:
    mapping = tmp_path / "mine.toml"
    mapping.write_text('[Account.extra]\nghost = "Ghost_Field__c"\n')
    config = sandbox.config(sources__salesforce__mapping=str(mapping), **CRM_ONLY)
    engine = new_store(sqlite_url)
    report = sync(engine, config, streams=["Account"])
    account = next(s for s in report.streams if s.stream == "Account")
    assert account.status == "ok"
    assert account.inserted > 0
    assert "Ghost_Field__c" in (account.error or "")


def test_hubspot_import_of_10k_records_sharing_one_timestamp(
    sandbox: Sandbox, sqlite_url: str
) -> None:
    config = sandbox.config(sources__salesforce__enabled=False, **CRM_ONLY)
    config.sources.hubspot.objects = ["companies"]
    engine = new_store(sqlite_url)
    assert sync(engine, config).ok
    sandbox.control("POST", "/_sandbox/requests/reset")
    imported = sandbox.control(
        "POST", "/_sandbox/bulk-import", {"object": "companies", "count": 10_050, "mode": "create"}
    )
    assert imported["count"] == 10_050
    report = sync(engine, config)
    companies = next(s for s in report.streams if s.stream == "companies")
    assert companies.status == "ok", companies.error
    assert companies.inserted == 10_050
    counts = sandbox.control("GET", "/_sandbox/requests")
    searches = sum(e["count"] for e in counts["requests"] if e["path"].endswith("/search"))
    # Windowed on hs_object_id: ceil(10,050 / 200) pages, never the 10k cap (no 400s).
    assert searches == 51
    assert not any(e["status"] == 400 for e in counts["requests"])


def test_quota_exhaustion_stops_cleanly_and_the_next_run_completes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = sandbox.config(**CRM_ONLY)
    engine = new_store(f"sqlite:///{tmp_path / 'quota.db'}")
    used = sandbox.control("GET", "/_sandbox/salesforce/quota")["used"]
    sandbox.control("POST", "/_sandbox/salesforce/quota", {"max": used + 12})
    stopped = sync(engine, config)
    salesforce = [s for s in stopped.streams if s.source == "salesforce"]
    assert any(s.status == "stopped" for s in salesforce), [
        (s.stream, s.status, s.error) for s in salesforce
    ]
    assert all(s.status in ("ok", "stopped") for s in stopped.streams)
    sandbox.control("POST", "/_sandbox/salesforce/quota", {"max": 5_000_000})
    resumed = sync(engine, config)
    assert resumed.ok
    assert all(s.status == "ok" for s in resumed.streams)
    clean = new_store(f"sqlite:///{tmp_path / 'clean.db'}")
    assert sync(clean, config).ok
    assert store_snapshot(engine) == store_snapshot(clean)


def test_a_quota_other_apps_used_up_stops_the_sync_cleanly(
    sandbox: Sandbox, sqlite_url: str
) -> None:
    # No margin left to stop at: the org answers 403 REQUEST_LIMIT_EXCEEDED.
    config = sandbox.config(sources__hubspot__enabled=False, **CRM_ONLY)
    config.sources.salesforce.quota_share = 1.0
    used = sandbox.control("GET", "/_sandbox/salesforce/quota")["used"]
    sandbox.control("POST", "/_sandbox/salesforce/quota", {"max": used})
    report = sync(new_store(sqlite_url), config)
    assert {s.status for s in report.streams} == {"stopped"}, [
        (s.stream, s.error) for s in report.streams
    ]
    assert all(
        "REQUEST_LIMIT_EXCEEDED" in (s.error or "") or "quota" in (s.error or "")
        for s in report.streams
    )


def test_session_expiry_mid_run_logs_in_again(sandbox: Sandbox, sqlite_url: str) -> None:
    config = sandbox.config(sources__hubspot__enabled=False, **CRM_ONLY)
    engine = new_store(sqlite_url)
    connectors = build_connectors(config)
    try:
        assert run_sync(engine, config, connectors).ok
        sandbox.control("POST", "/_sandbox/tokens/expire", {"system": "salesforce"})
        again = run_sync(engine, config, connectors, full_refresh=True)
    finally:
        close_all(connectors.values())
    assert again.ok, [(s.stream, s.error) for s in again.streams]
    assert again.totals()["unchanged"] > 0


def test_twenty_percent_faults_end_in_the_same_store(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.config()
    for section in (config.sources.salesforce, config.sources.hubspot):
        section.timeout_seconds = 1.0
        section.max_retries = 12
        section.max_retry_wait_seconds = 0.5
    assert config.sources.product_usage.rest is not None
    config.sources.product_usage.rest.timeout_seconds = 1.0
    config.sources.product_usage.rest.max_retries = 12
    config.sources.product_usage.rest.max_retry_wait_seconds = 0.5
    clean = new_store(f"sqlite:///{tmp_path / 'clean.db'}")
    assert sync(clean, config).ok
    sandbox.control("POST", "/_sandbox/faults", {"rate": 0.2, "seed": 5, "slow_seconds": 1.5})
    faulty = new_store(f"sqlite:///{tmp_path / 'faulty.db'}")
    report = sync(faulty, config)
    faults = sandbox.control("GET", "/_sandbox/faults")
    sandbox.control("POST", "/_sandbox/faults", {"rate": 0.0})
    assert report.ok, [(s.stream, s.error) for s in report.streams if s.status != "ok"]
    assert sum(faults["injected"].values()) >= 5
    assert store_snapshot(faulty) == store_snapshot(clean)


def test_sigkill_at_random_points_then_rerun_converges(sandbox: Sandbox, tmp_path: Path) -> None:
    config_path = sandbox.config_path
    text = config_path.read_text().replace(
        'url = "sqlite:///clghub.db"', f'url = "sqlite:///{tmp_path / "killed.db"}"'
    )
    killed_config = tmp_path / "killed.toml"
    killed_config.write_text(text)
    secrets = config_path.with_name(config_path.stem + "-secrets.env")
    (tmp_path / "clghub-secrets.env").write_text(secrets.read_text())
    environment = {**os.environ, "CLGHUB_CONFIG": str(killed_config)}
    rng = random.Random(20261122)
    kills = 0
    for _ in range(4):
        process = subprocess.Popen(
            [sys.executable, "-m", "clghub", "sync"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 4.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    final = subprocess.run(
        [sys.executable, "-m", "clghub", "sync"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 2
    clean = new_store(f"sqlite:///{tmp_path / 'clean.db'}")
    assert sync(clean, sandbox.config()).ok
    killed = create_store_engine(f"sqlite:///{tmp_path / 'killed.db'}")
    assert store_snapshot(killed) == store_snapshot(clean)


def test_hubspot_sync_stays_under_the_rate_limit_without_429s(
    tmp_path: Path, sqlite_url: str
) -> None:
    # A tight policy: 8 requests per 10 s. The client learns it from the headers and paces.
    with running_sandbox(tmp_path / "sandbox", accounts=40, hs_requests_per_10s=8) as tight:
        config = tight.config(sources__salesforce__enabled=False, **CRM_ONLY)
        engine = new_store(sqlite_url)
        report = sync(engine, config)
        assert report.ok, [(s.stream, s.error) for s in report.streams]
        counts = tight.control("GET", "/_sandbox/requests")
        hubspot = [e for e in counts["requests"] if e["path"].startswith("/crm")]
        assert sum(e["count"] for e in hubspot) > 8
        assert not [e for e in hubspot if e["status"] == 429]


def test_long_hubspot_property_lists_never_hit_414(
    sandbox: Sandbox, tmp_path: Path, sqlite_url: str
) -> None:
    config = sandbox.config(sources__salesforce__enabled=False, **CRM_ONLY)
    config.sources.hubspot.objects = ["companies"]
    headers = {"Authorization": "Bearer sandbox"}
    # 100 names of 95 characters: a list request naming them all would be a 10 KB URL.
    names = [
        f"custom_metric_with_a_rather_long_internal_name_{i:03d}".ljust(95, "x") for i in range(100)
    ]
    import httpx

    with httpx.Client(base_url=sandbox.http_url, headers=headers, timeout=30) as client:
        for name in names:
            response = client.post(
                "/crm/v3/properties/companies",
                json={
                    "name": name,
                    "label": name,
                    "type": "string",
                    "fieldType": "text",
                    "groupName": "companyinformation",
                },
            )
            assert response.status_code == 201, response.text
    mapping = tmp_path / "wide.toml"
    mapping.write_text("[companies.extra]\n" + "".join(f'{name} = "{name}"\n' for name in names))
    config.sources.hubspot.mapping = str(mapping)
    engine = new_store(sqlite_url)
    report = sync(engine, config)
    assert report.ok, [(s.stream, s.error) for s in report.streams]
    counts = sandbox.control("GET", "/_sandbox/requests")
    assert not [e for e in counts["requests"] if e["status"] == 414]
    assert report.streams[0].inserted > 0


@pytest.mark.parametrize(
    ("style", "path"),
    [
        ("cursor", "/usage/v1/daily"),
        ("page", "/usage/v1/daily/pages"),
        ("offset", "/usage/v1/daily/offset"),
        ("link", "/usage/v1/daily/link"),
    ],
)
def test_every_usage_pagination_style_reads_the_same_rows(
    sandbox: Sandbox, tmp_path: Path, style: str, path: str
) -> None:
    config = sandbox.config(sources__salesforce__enabled=False, sources__hubspot__enabled=False)
    rest = config.sources.product_usage.rest
    assert rest is not None
    rest.pagination = style  # type: ignore[assignment]
    rest.path = path
    rest.page_size = 700
    rest.records_path = "" if style == "link" else "data"
    engine = new_store(f"sqlite:///{tmp_path / f'{style}.db'}")
    report = sync(engine, config)
    assert report.ok, [(s.stream, s.error) for s in report.streams]
    usage = store_snapshot(engine)["usage_daily"]
    reference = new_store(f"sqlite:///{tmp_path / 'reference.db'}")
    assert sync(
        reference,
        sandbox.config(sources__salesforce__enabled=False, sources__hubspot__enabled=False),
    ).ok
    expected = store_snapshot(reference)["usage_daily"]
    assert len(usage) > 1000
    assert [row[:5] for row in usage] == [row[:5] for row in expected]
