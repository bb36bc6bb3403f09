"""Writeback through the real clients against the sandbox's Salesforce and HubSpot."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, delete, select

from clghub import pipeline
from clghub.config import ClghubConfig, ConfigError, load_config
from clghub.connectors.hubspot.client import HubSpotClient
from clghub.connectors.hubspot.writer import HubSpotWriter
from clghub.connectors.salesforce.client import SalesforceClient
from clghub.connectors.salesforce.writer import SalesforceWriter
from clghub.sandbox.server import SandboxServer
from clghub.store.models import table_of
from clghub.store.outputs import WritebackState
from clghub.writeback import (
    FieldCheck,
    OwnedFieldError,
    RecordWrite,
    TargetField,
    WritebackSettings,
    WriteOutcome,
    run_crm_writeback,
)
from clghub.writeback.values import VALUE_SPECS
from tests.outputs.builders import (
    CLV,
    Figures,
    StoreData,
    hubspot_companies,
    requests_made,
    reset_requests,
    salesforce_accounts,
    writes,
)

STATE = table_of(WritebackState)
COMPOSITE = ("PATCH", "/services/data/{version}/composite/sobjects")
HS_BATCH_UPDATE = ("POST", "/crm/v3/objects/{object}/batch/update")


def _sf_values(
    config: ClghubConfig, ids: Sequence[str], fields: Sequence[str]
) -> dict[str, dict[str, object]]:
    client = SalesforceClient(config.sources.salesforce)
    try:
        soql = f"SELECT Id, {', '.join(fields)} FROM Account WHERE Id IN ({', '.join(repr(i) for i in ids)})"
        return {str(r["Id"]): r for r in client.query_page(soql, include_deleted=False)["records"]}
    finally:
        client.close()


def _hs_values(
    config: ClghubConfig, ids: Sequence[str], fields: Sequence[str]
) -> dict[str, dict[str, object]]:
    client = HubSpotClient(config.sources.hubspot)
    body = client.batch_read("companies", list(ids), list(fields)).body
    return {str(r["id"]): r["properties"] for r in body["results"]}


def _populate(
    engine: Engine, config: ClghubConfig, count: int
) -> tuple[StoreData, list[str], list[str]]:
    """``count`` accounts in Salesforce, the first of them also in HubSpot (as many as it has)."""
    data = StoreData(engine)
    sf = salesforce_accounts(config, count)
    hs = hubspot_companies(config, count)
    assert len(sf) == count
    for n, (sf_id, name) in enumerate(sf):
        links = [("salesforce", sf_id)] + ([("hubspot", hs[n][0])] if n < len(hs) else [])
        data.add(name, links, Figures(score=40.0 + n, trend_30d=n - 2.0))
    return data, [i for i, _ in sf], [i for i, _ in hs]


def test_both_crms_are_written_in_their_formats_and_a_rerun_writes_nothing(
    sandbox: SandboxServer, config: ClghubConfig, engine: Engine
) -> None:
    data, sf_ids, hs_ids = _populate(engine, config, 5)
    first = pipeline.writeback(engine, config, provision=True)
    by_crm = {r.crm: r for r in first.crms}
    assert first.ok
    assert by_crm["hubspot"].provisioned[0] == "created property group companies.clghub"
    assert len(by_crm["hubspot"].provisioned) == 1 + len(config.writeback.hubspot.fields)
    for report in by_crm.values():
        assert (report.records, report.changed, report.written, report.failed) == (5, 5, 5, 0)
    counts = requests_made(sandbox)
    assert counts[COMPOSITE] == 1
    assert counts[HS_BATCH_UPDATE] == 1

    sf = _sf_values(
        config,
        sf_ids,
        [
            "Value_Score__c",
            "Value_Band__c",
            "CLV__c",
            "CLV_Growth__c",
            "Value_Computed_At__c",
            "Time_To_First_Value_Days__c",
        ],
    )
    assert sf[sf_ids[2]]["Value_Score__c"] == Decimal("42.0")
    assert sf[sf_ids[2]]["CLV__c"] == Decimal("123456.78")
    assert sf[sf_ids[2]]["CLV_Growth__c"] == Decimal("12.5")
    assert sf[sf_ids[2]]["Value_Band__c"] == "yellow"
    assert str(sf[sf_ids[2]]["Value_Computed_At__c"]).startswith("2026-11-20T06:30:00")
    hs = _hs_values(
        config,
        hs_ids,
        ["clghub_value_score", "clghub_clv", "clghub_computed_at", "clghub_value_drivers"],
    )
    assert hs[hs_ids[2]]["clghub_value_score"] in ("42", "42.0")
    assert hs[hs_ids[2]]["clghub_clv"] == "123456.78"
    assert str(hs[hs_ids[2]]["clghub_computed_at"]).startswith("2026-11-20T06:30:00")
    assert hs[hs_ids[2]]["clghub_value_drivers"] == Figures().explanation

    reset_requests(sandbox)
    again = pipeline.writeback(engine, config)
    assert all(r.changed == 0 and r.written == 0 for r in again.crms)
    assert writes(requests_made(sandbox)) == 0
    assert data.accounts  # the records stay linked


def test_refused_records_do_not_fail_the_batch_and_are_retried_next_run(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    engine = sqlite_engine
    data, sf_ids, hs_ids = _populate(engine, config, 6)
    pipeline.writeback(engine, config, provision=True, dry_run=False)
    locked, deleted, bad = sf_ids[1], sf_ids[2], sf_ids[3]
    for record in (locked, deleted, bad):
        data.set_score(record, score=90.0, band="green")
    data.set_score(bad, band="purple")  # a restricted picklist value Salesforce refuses
    httpx.post(
        sandbox.http_url + "/_sandbox/salesforce/lock", json={"ids": [locked]}
    ).raise_for_status()
    client = SalesforceClient(config.sources.salesforce)
    client.restful(f"sobjects/Account/{deleted}", method="DELETE")
    client.close()
    archived_company = hs_ids[2]
    HubSpotClient(config.sources.hubspot).call(
        lambda api: api.crm.companies.basic_api.archive(archived_company, _preload_content=False),
        what="archive a company",
    )

    reset_requests(sandbox)
    report = {r.crm: r for r in pipeline.writeback(engine, config).crms}
    sf = report["salesforce"]
    assert (sf.status, sf.changed, sf.written, sf.failed) == ("ok", 3, 0, 3)
    reasons = dict(sf.failures)
    assert reasons[locked].startswith("UNABLE_TO_LOCK_ROW")
    assert reasons[deleted].startswith("ENTITY_IS_DELETED")
    assert reasons[bad].startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    hs = report["hubspot"]
    assert (hs.status, hs.changed, hs.failed) == ("ok", 3, 2)
    hs_reasons = dict(hs.failures)
    assert "OBJECT_NOT_FOUND" in hs_reasons[archived_company]
    assert "VALIDATION_ERROR" in hs_reasons[hs_ids[3]]
    counts = requests_made(sandbox)
    assert counts[COMPOSITE] == 1  # one request for the batch, partial failure and all
    with engine.connect() as connection:
        errors = dict(
            connection.execute(
                select(STATE.c.record_id, STATE.c.attempts).where(
                    STATE.c.crm == "salesforce", STATE.c.last_error.is_not(None)
                )
            ).all()
        )
    assert errors == {locked: 1, deleted: 1, bad: 1}

    httpx.post(
        sandbox.http_url + "/_sandbox/salesforce/lock", json={"ids": [locked], "locked": False}
    ).raise_for_status()
    data.set_score(bad, band="green")
    retry = {r.crm: r for r in pipeline.writeback(engine, config).crms}["salesforce"]
    assert (retry.changed, retry.written, retry.failed) == (3, 2, 1)
    assert dict(retry.failures).keys() == {deleted}
    values = _sf_values(config, [locked, bad], ["Value_Score__c", "Value_Band__c"])
    assert values[locked]["Value_Score__c"] == Decimal("90.0")
    assert values[bad]["Value_Band__c"] == "green"


class _StopsAfterWriting:
    """Writes for real, then dies before the engine can record the outcome."""

    def __init__(self, writer: SalesforceWriter | HubSpotWriter) -> None:
        self.inner = writer
        self.crm = writer.crm
        self.owned_fields = writer.owned_fields
        self.needs_total = writer.needs_total
        self.mode = ""

    @property
    def write_requests(self) -> int:
        return self.inner.write_requests

    def check_fields(self, targets: Sequence[TargetField]) -> FieldCheck:
        return self.inner.check_fields(targets)

    def batch_size(self, changed_records: int | None) -> int:
        return self.inner.batch_size(changed_records)

    def write(self, batch: Sequence[RecordWrite]) -> list[WriteOutcome]:
        self.inner.write(batch)
        raise KeyboardInterrupt  # killed between the CRM's answer and the state commit

    def read(
        self, record_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, object]]:
        return self.inner.read(record_ids, fields)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_killed_after_the_crm_answered_a_rerun_writes_nothing_twice(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine, crm: str
) -> None:
    engine = sqlite_engine
    _populate(engine, config, 4)
    pipeline.writeback(engine, config, provision=True, dry_run=True)
    section = getattr(config.writeback, crm)
    settings = WritebackSettings(crm, dict(section.fields), frozenset(section.owned_fields))
    if crm == "hubspot":
        HubSpotWriter(HubSpotClient(config.sources.hubspot), section).provision(
            [TargetField(VALUE_SPECS[v], f) for v, f in section.fields.items()]
        )
        real: SalesforceWriter | HubSpotWriter = HubSpotWriter(
            HubSpotClient(config.sources.hubspot), section
        )
    else:
        real = SalesforceWriter(SalesforceClient(config.sources.salesforce), section)
    with pytest.raises(KeyboardInterrupt):
        run_crm_writeback(engine, settings, _StopsAfterWriting(real))
    with engine.connect() as connection:
        pending = connection.execute(select(STATE).where(STATE.c.pending.is_(True))).all()
    assert len(pending) == 4 * len(section.fields)

    reset_requests(sandbox)
    report = {r.crm: r for r in pipeline.writeback(engine, config).crms}[crm]
    assert (report.settled, report.changed, report.written) == (4, 0, 0)
    counts = requests_made(sandbox)
    assert counts[COMPOSITE if crm == "salesforce" else HS_BATCH_UPDATE] == 0
    with engine.connect() as connection:
        assert connection.execute(select(STATE).where(STATE.c.pending.is_(True))).all() == []


def test_above_the_threshold_salesforce_writes_through_one_bulk_job(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    engine = sqlite_engine
    data, sf_ids, _ = _populate(engine, config, 8)
    data.set_score(sf_ids[5], band="purple")
    config.writeback.salesforce.bulk_threshold = 3
    config.writeback.hubspot.enabled = False
    report = pipeline.writeback(engine, config).crms[0]
    assert (report.mode, report.changed, report.written, report.failed) == ("bulk", 8, 7, 1)
    assert dict(report.failures)[sf_ids[5]].startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    counts = requests_made(sandbox)
    ingest = {key: n for key, n in counts.items() if "/jobs/ingest" in key[1]}
    assert ingest[("POST", "/services/data/{version}/jobs/ingest")] == 1
    assert ingest[("PUT", "/services/data/{version}/jobs/ingest/{job_id}/batches")] == 1
    assert ingest[("PATCH", "/services/data/{version}/jobs/ingest/{job_id}")] == 1
    assert report.requests == sum(ingest.values())
    assert counts[COMPOSITE] == 0
    values = _sf_values(config, sf_ids[:2], ["Value_Score__c", "CLV__c"])
    assert values[sf_ids[1]]["Value_Score__c"] == Decimal("41.0")
    assert values[sf_ids[1]]["CLV__c"] == Decimal("123456.78")


def test_dry_run_contacts_nothing_and_changes_no_state(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    _populate(sqlite_engine, config, 3)
    reset_requests(sandbox)
    report = pipeline.writeback(sqlite_engine, config, dry_run=True)
    assert [r.changed for r in report.crms] == [3, 3]
    assert sum(requests_made(sandbox).values()) == 0
    with sqlite_engine.connect() as connection:
        assert connection.execute(select(STATE)).all() == []


def test_empty_values_overwrite_only_with_write_nulls(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    engine = sqlite_engine
    config.writeback.hubspot.enabled = False
    _, sf_ids, _ = _populate(engine, config, 2)
    pipeline.writeback(engine, config)
    with engine.begin() as connection:
        connection.execute(delete(CLV))
    reset_requests(sandbox)
    quiet = pipeline.writeback(engine, config).crms[0]
    assert quiet.changed == 0
    assert writes(requests_made(sandbox)) == 0
    assert _sf_values(config, sf_ids, ["CLV__c"])[sf_ids[0]]["CLV__c"] == Decimal("123456.78")

    config.writeback.salesforce.write_nulls = True
    cleared = pipeline.writeback(engine, config).crms[0]
    assert (cleared.changed, cleared.written) == (2, 2)
    after = _sf_values(config, sf_ids, ["CLV__c", "CLV_Growth__c", "Value_Score__c"])[sf_ids[0]]
    assert (after["CLV__c"], after["CLV_Growth__c"]) == (None, None)
    assert after["Value_Score__c"] == Decimal("40.0")


def test_owned_field_guard_refuses_at_config_time_and_at_write_time(
    sandbox: SandboxServer, config: ClghubConfig, config_path: Path, sqlite_engine: Engine
) -> None:
    text = config_path.read_text()
    config_path.write_text(
        text.replace('owned_fields = ["Value_Score__c", ', "owned_fields = [", 1)
    )
    with pytest.raises(ConfigError, match="Value_Score__c"):
        load_config(config_path)

    _populate(sqlite_engine, config, 2)
    reset_requests(sandbox)
    config.writeback.salesforce.fields["value_trend_90d"] = "Name"  # slipped past validation
    with pytest.raises(OwnedFieldError, match="Name"):
        pipeline.writeback(sqlite_engine, config)
    assert sum(requests_made(sandbox).values()) == 0

    writer = SalesforceWriter(
        SalesforceClient(config.sources.salesforce), config.writeback.salesforce
    )
    writer.check_fields([TargetField(VALUE_SPECS["value_score"], "Value_Score__c")])
    reset_requests(sandbox)
    with pytest.raises(OwnedFieldError, match="Name"):
        writer.write(
            [RecordWrite("001000000000001AAA", {"Value_Score__c": "1.0", "Name": "pwned"})]
        )
    assert requests_made(sandbox)[COMPOSITE] == 0
    writer.close()


def test_check_names_missing_fields_with_their_types(
    sandbox: SandboxServer, config: ClghubConfig
) -> None:
    config.writeback.salesforce.fields["value_trend_90d"] = "Value_Trend_90_Days__c"
    config.writeback.salesforce.owned_fields.append("Value_Trend_90_Days__c")
    results = {r.name: r for r in pipeline.output_checks(config)}
    salesforce = results["writeback salesforce"]
    assert not salesforce.ok
    assert "Account.Value_Trend_90_Days__c does not exist" in salesforce.detail
    assert any("Value_Trend_90_Days__c: Number(4, 1)" in hint for hint in salesforce.hints)
    hubspot = results["writeback hubspot"]
    assert not hubspot.ok  # not provisioned yet
    assert any("clghub writeback --provision" in hint for hint in hubspot.hints)
    assert results["slack digest channel"].ok
    assert results["slack alerts channel"].ok
