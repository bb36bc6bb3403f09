"""The generated org: deterministic, realistic, dirty on purpose, and worth scoring."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np

from clghub.sandbox.generator import ensure_data, generate
from clghub.sandbox.lifecycle import plan_account
from clghub.sandbox.people import build_staff
from clghub.sandbox.plans import AccountPlan
from clghub.sandbox.state import SandboxOptions, SandboxState
from clghub.sandbox.usage_model import Position, UsageModel
from tests.sandbox.conftest import AS_OF


def _dump(state: SandboxState) -> str:
    """A hash of every table's rows plus a sample of usage pages."""
    digest = hashlib.sha256()
    tables = [
        row[0]
        for row in state.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    for table in tables:
        digest.update(table.encode())
        for row in state.db.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
            digest.update(repr(tuple(row)).encode())
    options = state.options
    model = UsageModel(
        state.db, seed=options.seed, anchor=options.anchor, usage_days=options.usage_days
    )
    for day in (model.first_day, model.first_day + 50, model.last_day):
        rows, _ = model.rows_from(Position(day, 0, 0), day, 2000)
        digest.update(repr(rows).encode())
    return digest.hexdigest()


def _generated(seed: int, accounts: int, *, hs_bulk_import: int = 0) -> SandboxState:
    options = SandboxOptions(
        seed=seed, accounts=accounts, as_of=AS_OF, hs_bulk_import=hs_bulk_import
    )
    state = SandboxState(options)
    generate(state)
    return state


def test_same_seed_same_bytes_different_seed_different() -> None:
    first, second, other = _generated(3, 80), _generated(3, 80), _generated(4, 80)
    try:
        assert _dump(first) == _dump(second)
        assert _dump(first) != _dump(other)
    finally:
        for state in (first, second, other):
            state.close()


def test_an_account_does_not_depend_on_the_org_size() -> None:
    small, large = _generated(9, 40), _generated(9, 130)
    try:
        # Account 17's records: same ids and values whatever the number of accounts.
        query = (
            'SELECT o.* FROM "sf_Opportunity" o JOIN "sf_Account" a ON a."Id" = o."AccountId" '
            'WHERE a."Id" = ? ORDER BY o."Id"'
        )
        account_id = small.db.execute(
            'SELECT "Id" FROM "sf_Account" ORDER BY "Id" LIMIT 1 OFFSET 17'
        ).fetchone()[0]
        assert [tuple(r) for r in small.db.execute(query, (account_id,))] == [
            tuple(r) for r in large.db.execute(query, (account_id,))
        ]
        companies = "SELECT * FROM hs_companies WHERE id < 10000000040 ORDER BY id"
        assert [tuple(r) for r in small.db.execute(companies)] == [
            tuple(r) for r in large.db.execute(companies)
        ]
    finally:
        small.close()
        large.close()


def test_volumes_are_those_of_a_saas_company(small_state: SandboxState) -> None:
    db = small_state.db

    def count(table: str) -> int:
        return int(db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])

    deals = count("sf_Opportunity") + count("hs_deals")
    tickets = count("sf_Case") + count("hs_tickets")
    assert 2.2 <= deals / 150 <= 3.8
    assert 0.5 <= tickets / 150 <= 1.6
    assert count("sf_Task") > 150
    assert count("sf_User") >= 9
    assert count("hs_owners") >= 5
    segments = {row[0] for row in db.execute('SELECT DISTINCT "Segment__c" FROM "sf_Account"')}
    assert segments == {"SMB", "Mid-Market", "Enterprise"}
    stages = {row[0] for row in db.execute('SELECT DISTINCT "StageName" FROM "sf_Opportunity"')}
    assert {"Closed Won", "Closed Lost"} < stages
    assert len(stages) >= 4
    types = {row[0] for row in db.execute('SELECT DISTINCT "Type" FROM "sf_Opportunity"')}
    assert types == {"New Business", "Renewal", "Upsell", "Downsell"}
    dealtypes = {row[0] for row in db.execute("SELECT DISTINCT dealtype FROM hs_deals")}
    assert {"newbusiness", "renewal", "expansion"} <= dealtypes


def test_timestamps_spread_over_history_and_end_before_the_anchor(
    small_state: SandboxState,
) -> None:
    db = small_state.db
    modstamps = [row[0] for row in db.execute('SELECT "SystemModstamp" FROM "sf_Opportunity"')]
    assert len(set(modstamps)) > 0.95 * len(modstamps)
    assert max(modstamps) < AS_OF.isoformat()
    assert min(modstamps) < date(AS_OF.year - 2, 1, 1).isoformat()
    audit = db.execute(
        'SELECT "CreatedDate", "LastModifiedDate", "SystemModstamp" FROM "sf_Account"'
    ).fetchall()
    for created, modified, system in audit:
        assert created <= modified <= system < AS_OF.isoformat()
        assert len(created) == 24
        assert created.endswith("Z")
    # Some records changed only by the system: SystemModstamp moved, LastModifiedDate not.
    assert any(system > modified for _, modified, system in audit)
    assert sum(system == modified for _, modified, system in audit) > 0.8 * len(audit)
    hs = db.execute(
        "SELECT min(created_at), max(updated_at), count(DISTINCT updated_at), count(*) FROM hs_deals"
    ).fetchone()
    assert hs[1] < AS_OF.isoformat()
    assert hs[2] > 0.9 * hs[3]
    assert (
        db.execute(
            "SELECT count(*) FROM hs_deals WHERE updated_at != hs_lastmodifieddate"
        ).fetchone()[0]
        == 0
    )


def test_contract_history_has_every_motion() -> None:
    state = _generated(21, 600)
    try:
        db = state.db
        won = db.execute(
            'SELECT "AccountId", "Type", "CloseDate", "Contract_Start_Date__c", "Contract_End_Date__c", "Amount", "ARR__c" '
            'FROM "sf_Opportunity" WHERE "StageName" = \'Closed Won\''
        ).fetchall()
        renewals = [r for r in won if r[1] == "Renewal"]
        assert any(r[2] > r[3] for r in renewals), "a renewal that closed after the term ended"
        assert any(r[4] is None for r in won), "contracts without an end date"
        assert any(r[5] > r[6] * 1.5 for r in won), "multi-year contracts (ARR = Amount / years)"
        upsells = [r for r in won if r[1] == "Upsell"]
        assert upsells
        assert all(r[4] is None or r[3] < r[4] for r in upsells)
        lost_renewal = {
            r[0]
            for r in db.execute(
                'SELECT "AccountId" FROM "sf_Opportunity" WHERE "Type" = \'Renewal\' AND "StageName" = \'Closed Lost\''
            )
        }
        comebacks = [r for r in won if r[1] == "New Business" and r[0] in lost_renewal]
        assert comebacks, "churned customers that came back (reactivation)"
        currencies = Counter(
            row[0] for row in db.execute('SELECT "CurrencyIsoCode" FROM "sf_Opportunity"')
        )
        assert currencies.most_common(1)[0][0] == "USD"
        assert {"EUR", "GBP"} <= set(currencies)
        assert set(currencies) & {"XYZ", "ZZZ"}, "unknown currency codes as dirty data"
        open_pipeline = db.execute(
            'SELECT count(*) FROM "sf_Opportunity" WHERE "IsClosed" = 0 AND "CloseDate" >= ?',
            (AS_OF.isoformat(),),
        ).fetchone()[0]
        assert open_pipeline > 20
    finally:
        state.close()


def test_people_roles_and_meetings(small_state: SandboxState) -> None:
    db = small_state.db
    roles = Counter(row[0] for row in db.execute('SELECT "Buying_Role__c" FROM "sf_Contact"'))
    assert roles["Economic Buyer"]
    assert roles["Champion"]
    assert roles["User"]
    meetings = db.execute(
        'SELECT t."WhoId", c."AccountId", t."WhatId", t."AccountId", c."Buying_Role__c" FROM "sf_Task" t '
        'JOIN "sf_Contact" c ON c."Id" = t."WhoId" WHERE t."Type" = \'Meeting\''
    ).fetchall()
    assert meetings
    assert all(row[1] == row[2] == row[3] for row in meetings)
    assert all(row[4] == "Economic Buyer" for row in meetings)
    departments = {row[0] for row in db.execute('SELECT DISTINCT "Department" FROM "sf_User"')}
    assert {"Sales", "Customer Success", "Marketing"} <= departments
    # Someone in both CRMs under one email.
    shared = db.execute(
        'SELECT count(*) FROM "sf_User" u JOIN hs_owners o ON o.email = u."Email"'
    ).fetchone()[0]
    assert shared >= 3
    teams = {
        row[0]
        for row in db.execute("SELECT DISTINCT json_extract(teams, '$[0].name') FROM hs_owners")
    }
    assert "Customer Success" in teams


def test_both_crms_identity_and_dirty_names() -> None:
    state = _generated(8, 700)
    try:
        db = state.db
        both = db.execute(
            'SELECT count(*) FROM hs_companies c JOIN "sf_Account" a ON '
            "replace(replace(replace(replace(a.\"Website\", 'https://www.', ''), 'http://', ''), '/', ''), ' ', '') = c.domain"
        ).fetchone()[0]
        assert both >= 20, "customers in both CRMs share a domain"
        # Revenue lives in one CRM only: no company with deals mirrors an account with opportunities.
        double = db.execute(
            "SELECT count(*) FROM hs_companies c JOIN \"sf_Account\" a ON a.\"Website\" LIKE '%' || c.domain || '%' "
            "WHERE EXISTS (SELECT 1 FROM hs_association s WHERE s.from_type = 'companies' AND s.from_id = c.id "
            'AND s.to_type = \'deals\') AND EXISTS (SELECT 1 FROM "sf_Opportunity" o WHERE o."AccountId" = a."Id")'
        ).fetchone()[0]
        assert double == 0
        names = [
            row[0]
            for row in db.execute(
                'SELECT "Name" FROM "sf_Account" UNION ALL SELECT name FROM hs_companies'
            )
        ]
        assert any("'" in n and "&" in n for n in names)
        assert any(n.startswith("<!channel>") or "<https://" in n for n in names)
        assert any(any(ord(ch) > 0x2000 for ch in n) for n in names), "non-Latin scripts"
        assert max(len(n) for n in names) >= 200
        domains = Counter(row[0] for row in db.execute("SELECT domain FROM hs_companies"))
        sf_domains = Counter(
            row[0]
            for row in db.execute(
                "SELECT replace(replace(\"Website\", 'https://www.', ''), 'http://', '') FROM \"sf_Account\""
            )
        )
        assert any(n > 1 for n in (domains + sf_domains).values())
        keyless = db.execute(
            'SELECT count(*) FROM "sf_Account" WHERE "Type" = \'Customer\' AND "Product_Account_Key__c" IS NULL'
        ).fetchone()[0]
        assert keyless >= 1
        # Usage of a keyless customer carries its domain; some usage keys match no account.
        keys = {row[0] for row in db.execute("SELECT key FROM usage_profile")}
        assert any(not key.startswith("pa_") for key in keys)
        crm_keys = {
            row[0]
            for row in db.execute(
                'SELECT "Product_Account_Key__c" FROM "sf_Account" UNION SELECT product_account_key FROM hs_companies'
            )
        }
        assert {k for k in keys if k.startswith("pa_")} - crm_keys, (
            "usage of product accounts no CRM knows"
        )
    finally:
        state.close()


def test_bulk_import_option_shares_one_timestamp() -> None:
    state = _generated(2, 120, hs_bulk_import=60)
    try:
        db = state.db
        stamp, companies = db.execute(
            "SELECT hs_lastmodifieddate, count(*) FROM hs_companies GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        assert (
            companies
            == db.execute("SELECT count(*) FROM hs_companies WHERE archived = 0").fetchone()[0]
        )
        deals = db.execute(
            "SELECT count(*) FROM hs_deals WHERE hs_lastmodifieddate = ? AND updated_at = ?",
            (stamp, stamp),
        ).fetchone()[0]
        assert companies + deals == 60
    finally:
        state.close()


def test_ensure_data_reuses_a_state_directory(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    first = SandboxState(SandboxOptions(seed=1, accounts=30, as_of=AS_OF, state_dir=directory))
    assert not ensure_data(first).reused
    first.db.execute('UPDATE "sf_Account" SET "Name" = \'Renamed through the API\' WHERE rowid = 1')
    first.close()
    again = SandboxState(SandboxOptions(seed=1, accounts=30, as_of=AS_OF, state_dir=directory))
    assert ensure_data(again).reused
    assert (
        again.db.execute('SELECT "Name" FROM "sf_Account" WHERE rowid = 1').fetchone()[0]
        == "Renamed through the API"
    )
    again.close()
    other = SandboxState(SandboxOptions(seed=2, accounts=30, as_of=AS_OF, state_dir=directory))
    assert not ensure_data(other).reused
    assert (
        other.db.execute(
            'SELECT count(*) FROM "sf_Account" WHERE "Name" = \'Renamed through the API\''
        ).fetchone()[0]
        == 0
    )
    other.close()


def test_value_drivers_predict_growth_and_nps_only_weakly() -> None:
    """What the value score should find: outcomes and adoption track revenue growth, NPS barely."""
    seed, accounts = 3, 900
    state = _generated(seed, accounts)
    try:
        model = UsageModel(state.db, seed=seed, anchor=AS_OF, usage_days=120)
        window: dict[str, dict[str, list[float]]] = {}
        for day in range(model.last_day - 29, model.last_day + 1):
            rows, _ = model.rows_from(Position(day, 0, 0), day, 10**7)
            for key, metric, _, value in rows:
                window.setdefault(key, {}).setdefault(metric, []).append(float(value))
        staff = build_staff(seed, accounts, AS_OF)
        anchor = AS_OF.toordinal()
        growth, adoption, outcome, nps = [], [], [], []
        for index in range(accounts):
            plan = plan_account(seed, index, anchor, staff, 120)
            if plan.usage is None or plan.usage.key not in window:
                continue

            def arr_at(day: int, plan: AccountPlan = plan) -> float:
                total = 0.0
                for deal in plan.deals:
                    if deal.stage != "Closed Won" or deal.start_day is None:
                        continue
                    end = deal.end_day or deal.start_day + 364
                    if deal.start_day <= day <= end:
                        total += -deal.arr if deal.kind == "downsell" else deal.arr
                return total

            before, now = arr_at(anchor - 365), arr_at(anchor - 1)
            if before <= 0 or now <= 0:
                continue
            usage = window[plan.usage.key]
            users = max(1.0, float(np.mean(usage["active_users"])))
            growth.append(now / before)
            adoption.append(float(np.mean(usage["automations_run"])) / users)
            outcome.append(float(np.mean(usage["outcome_kpi"])) / plan.usage.outcome_target)
            nps.append(float(np.mean(usage["nps"])) if "nps" in usage else float("nan"))

        def spearman(x: list[float], y: list[float]) -> float:
            a, b = np.array(x), np.array(y)
            keep = ~np.isnan(a) & ~np.isnan(b)
            ra, rb = np.argsort(np.argsort(a[keep])), np.argsort(np.argsort(b[keep]))
            return float(np.corrcoef(ra, rb)[0, 1])

        assert len(growth) > 300
        assert spearman(adoption, growth) > 0.3
        assert spearman(outcome, growth) > 0.3
        assert spearman(nps, growth) < 0.5 * min(
            spearman(adoption, growth), spearman(outcome, growth)
        )
    finally:
        state.close()
