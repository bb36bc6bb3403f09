"""The sync runner with a scripted connector: pages, checkpoints, quarantine, identity, links."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from clghub.config import parse_config
from clghub.store.models import (
    Account,
    IdentityConflict,
    Opportunity,
    Quarantine,
    SourceLink,
    SyncRun,
    SyncState,
    table_of,
)
from clghub.sync.mapping import load_mapping
from clghub.sync.runner import run_sync
from tests.sync.fakes import ListConnector, ListStream

CONFIG = parse_config({})
SF = load_mapping("salesforce")
HS = load_mapping("hubspot")


def sf_account(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "Id": f"001{i:015d}",
        "Name": f"Account {i}",
        "Website": f"https://www.account{i}.com",
        "Segment__c": "SMB",
        "SystemModstamp": f"2026-01-0{1 + i % 9}T10:00:00.000+0000",
        "IsDeleted": False,
        **extra,
    }


def sf_opportunity(i: int, account: int, **extra: Any) -> dict[str, Any]:
    return {
        "Id": f"006{i:015d}",
        "AccountId": f"001{account:015d}",
        "Name": f"Deal {i}",
        "Type": "New Business",
        "StageName": "Closed Won",
        "Amount": 12000,
        "CurrencyIsoCode": "USD",
        "CloseDate": "2025-01-15",
        "Contract_Start_Date__c": "2025-02-01",
        "Contract_End_Date__c": "2026-01-31",
        "SystemModstamp": "2026-01-02T10:00:00.000+0000",
        "IsDeleted": False,
        **extra,
    }


def salesforce(
    accounts: list[dict[str, Any]], opportunities: list[dict[str, Any]], **kw: Any
) -> tuple[ListConnector, Any]:
    streams = {
        "Account": ListStream("salesforce", "Account", SF.streams["Account"], accounts, **kw),
        "Opportunity": ListStream(
            "salesforce", "Opportunity", SF.streams["Opportunity"], opportunities, **kw
        ),
    }
    return ListConnector("salesforce", streams), SF


def count(engine: Engine, model: Any, *where: Any) -> int:
    table = table_of(model)
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
        )


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The store's content, without clghub's own clock columns."""
    out = {}
    for model in (Account, SourceLink, Opportunity, Quarantine):
        table = table_of(model)
        skip = {
            "id",
            "created_at",
            "updated_at",
            "row_version",
            "first_seen_at",
            "last_seen_at",
            "account_id",
            "owner_id",
            "csm_id",
            "seen_count",
            "resolved_at",
        }
        columns = [c for c in table.columns if c.name not in skip]
        with engine.connect() as connection:
            out[table.name] = sorted(
                tuple(str(v) for v in row) for row in connection.execute(select(*columns))
            )
    return out


def test_first_load_links_and_counts(engine: Engine) -> None:
    accounts = [sf_account(i) for i in range(5)]
    opportunities = [sf_opportunity(i, i % 5) for i in range(7)]
    report = run_sync(engine, CONFIG, {"salesforce": salesforce(accounts, opportunities)})
    assert report.ok
    by_stream = {s.stream: s for s in report.streams}
    assert by_stream["Account"].inserted == 5
    assert by_stream["Opportunity"].inserted == 7
    assert count(engine, Account) == 5
    opp = table_of(Opportunity)
    assert count(engine, Opportunity, opp.c.account_id.is_(None)) == 0
    with engine.connect() as connection:
        amount = connection.execute(select(opp.c.amount).limit(1)).scalar_one()
        runs = connection.execute(select(func.count()).select_from(table_of(SyncRun))).scalar_one()
        cursor = connection.execute(
            select(table_of(SyncState).c.cursor).where(table_of(SyncState).c.stream == "Account")
        ).scalar_one()
    assert amount == Decimal("12000")
    assert runs == 2
    assert cursor == "end"

    again = run_sync(
        engine, CONFIG, {"salesforce": salesforce(accounts, opportunities)}, full_refresh=True
    )
    totals = again.totals()
    assert totals["inserted"] == 0
    assert totals["updated"] == 0
    assert totals["unchanged"] == 12


def test_bad_records_are_quarantined_and_the_sync_goes_on(engine: Engine) -> None:
    accounts = [sf_account(0), sf_account(1, Name=None), sf_account(2, NumberOfEmployees="lots")]
    opportunities = [
        sf_opportunity(0, 0, Amount=-5),
        sf_opportunity(1, 0, Type="Barter"),
        sf_opportunity(2, 0),
    ]
    report = run_sync(engine, CONFIG, {"salesforce": salesforce(accounts, opportunities)})
    assert report.ok
    quarantine = table_of(Quarantine)
    with engine.connect() as connection:
        reasons = dict(
            connection.execute(select(quarantine.c.source_id, quarantine.c.reason)).all()
        )
    assert reasons[f"001{1:015d}"] == "name: Name is required but empty"
    assert (
        reasons[f"001{2:015d}"]
        == "employees: expected a number, got 'lots' (from NumberOfEmployees)"
    )
    assert "below the minimum" in reasons[f"006{0:015d}"]
    assert "unknown value 'Barter'" in reasons[f"006{1:015d}"]
    assert count(engine, Account) == 1
    assert count(engine, Opportunity) == 1

    # Fixed at the source: the record flows through and its quarantine entry resolves.
    fixed = [sf_account(0), sf_account(1, Name="Now Named"), sf_account(2)]
    run_sync(engine, CONFIG, {"salesforce": salesforce(fixed, [])}, full_refresh=True)
    assert (
        count(
            engine, Quarantine, quarantine.c.resolved_at.is_(None), quarantine.c.stream == "Account"
        )
        == 0
    )


def test_crash_mid_stream_resumes_to_the_same_store(engine: Engine, sqlite_url: str) -> None:
    accounts = [sf_account(i) for i in range(9)]
    opportunities = [sf_opportunity(i, i % 9) for i in range(11)]
    broken = run_sync(
        engine, CONFIG, {"salesforce": salesforce(accounts, opportunities, fail_after_pages=2)}
    )
    assert not broken.ok
    assert count(engine, Account) == 4  # two pages of two committed
    resumed_connector, mapping = salesforce(accounts, opportunities)
    resumed = run_sync(engine, CONFIG, {"salesforce": (resumed_connector, mapping)})
    assert resumed.ok
    assert resumed_connector.streams_by_name["Account"].reads[0].position == {"offset": 4}

    from clghub.store.engine import create_store_engine
    from clghub.store.migrate import upgrade

    clean = create_store_engine(sqlite_url)
    upgrade(clean)
    run_sync(clean, CONFIG, {"salesforce": salesforce(accounts, opportunities)})
    assert snapshot(engine) == snapshot(clean)
    clean.dispose()


def test_one_customer_in_two_crms_is_one_account(engine: Engine) -> None:
    sf = salesforce([sf_account(1, Product_Account_Key__c="key-1"), sf_account(2)], [])
    companies = [
        {
            "id": "9001",
            "name": "Account 1 (HubSpot)",
            "domain": "account1.com",
            "hs_lastmodifieddate": "2026-01-01T00:00:00Z",
            "archived": False,
        },
        {
            "id": "9002",
            "name": "Third",
            "domain": "third.io",
            "hs_lastmodifieddate": "2026-01-01T00:00:00Z",
            "archived": False,
            "product_account_key": "key-3",
        },
    ]
    hubspot = ListConnector(
        "hubspot",
        {"companies": ListStream("hubspot", "companies", HS.streams["companies"], companies)},
    )
    run_sync(engine, CONFIG, {"salesforce": sf})
    run_sync(engine, CONFIG, {"hubspot": (hubspot, HS)})
    assert count(engine, Account) == 3
    link = table_of(SourceLink)
    account = table_of(Account)
    with engine.connect() as connection:
        rules = dict(connection.execute(select(link.c.source_id, link.c.match_rule)).all())
        merged = connection.execute(
            select(account.c.name).where(account.c.domain == "account1.com")
        ).scalar_one()
    assert rules["9001"] == "domain"
    assert rules["9002"] == "origin"
    # Salesforce wins by source priority.
    assert merged == "Account 1"


def test_two_accounts_claiming_one_domain_are_reported_not_merged(engine: Engine) -> None:
    accounts = [sf_account(1), sf_account(2, Website="http://account1.com/about")]
    run_sync(engine, CONFIG, {"salesforce": salesforce(accounts, [])})
    assert count(engine, Account) == 2
    conflict = table_of(IdentityConflict)
    with engine.connect() as connection:
        rows = connection.execute(
            select(conflict.c.kind, conflict.c.value, conflict.c.account_ids)
        ).all()
    assert len(rows) == 1
    assert rows[0][:2] == ("domain", "account1.com")
    assert len(rows[0][2]) == 2
    # A HubSpot company with that domain is ambiguous: it gets its own account.
    hubspot = ListConnector(
        "hubspot",
        {
            "companies": ListStream(
                "hubspot",
                "companies",
                HS.streams["companies"],
                [{"id": "7", "name": "X", "domain": "account1.com", "archived": False}],
            )
        },
    )
    run_sync(engine, CONFIG, {"hubspot": (hubspot, HS)})
    assert count(engine, Account) == 3


def test_records_referencing_missing_accounts_wait_in_quarantine(engine: Engine) -> None:
    run_sync(engine, CONFIG, {"salesforce": salesforce([], [sf_opportunity(1, 42)])})
    quarantine = table_of(Quarantine)
    open_ = (quarantine.c.resolved_at.is_(None), quarantine.c.stream == "opportunity:link")
    assert count(engine, Quarantine, *open_) == 1
    run_sync(engine, CONFIG, {"salesforce": salesforce([sf_account(42)], [])})
    assert count(engine, Quarantine, *open_) == 0
    opp = table_of(Opportunity)
    assert count(engine, Opportunity, opp.c.account_id.is_not(None)) == 1


def test_deleted_source_records_become_soft_deletes(engine: Engine) -> None:
    run_sync(engine, CONFIG, {"salesforce": salesforce([sf_account(1), sf_account(2)], [])})
    report = run_sync(
        engine,
        CONFIG,
        {"salesforce": salesforce([sf_account(2, IsDeleted=True)], [])},
        full_refresh=True,
    )
    assert report.streams[0].deleted == 1
    account = table_of(Account)
    with engine.connect() as connection:
        deleted = dict(
            connection.execute(select(account.c.origin_source_id, account.c.is_deleted)).all()
        )
    assert deleted == {f"001{1:015d}": False, f"001{2:015d}": True}
