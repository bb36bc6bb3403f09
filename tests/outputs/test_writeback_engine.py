"""The writeback engine against an in-memory CRM: diffing, state, failures, in-doubt writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from clghub.http import ApiError, TransientError
from clghub.store.models import table_of
from clghub.store.outputs import WritebackState
from clghub.writeback import (
    FieldCheck,
    FieldInfo,
    OwnedFieldError,
    RecordWrite,
    TargetField,
    WritebackSettings,
    WriteOutcome,
    run_crm_writeback,
)
from clghub.writeback.values import VALUE_SPECS, canonical_from_crm
from tests.outputs.builders import Figures, StoreData

FIELDS = {
    "value_score": "Score__c",
    "value_band": "Band__c",
    "value_drivers": "Drivers__c",
    "clv": "CLV__c",
    "computed_at": "Computed__c",
}
STATE = table_of(WritebackState)


@dataclass
class MemoryCrm:
    """A CRM that keeps records in a dict and can refuse, lose answers or fail calls."""

    crm: str = "salesforce"
    owned_fields: frozenset[str] = frozenset(FIELDS.values())
    mode: str = "memory"
    write_requests: int = 0
    needs_total: bool = True
    records: dict[str, dict[str, object]] = field(default_factory=dict)
    refuse: dict[str, str] = field(default_factory=dict)
    lose_answers_for: set[str] = field(default_factory=set)
    fail_call: Exception | None = None
    batches: list[list[str]] = field(default_factory=list)
    reads: int = 0
    size: int = 2

    def check_fields(self, targets: Sequence[TargetField]) -> FieldCheck:
        return FieldCheck(fields={t.name: FieldInfo(t.name, "string", length=40) for t in targets})

    def batch_size(self, changed_records: int | None) -> int:
        return self.size

    def write(self, batch: Sequence[RecordWrite]) -> list[WriteOutcome]:
        self.write_requests += 1
        if self.fail_call is not None:
            raise self.fail_call
        self.batches.append([r.record_id for r in batch])
        outcomes = []
        for record in batch:
            if record.record_id in self.refuse:
                outcomes.append(
                    WriteOutcome(record.record_id, ok=False, error=self.refuse[record.record_id])
                )
                continue
            self.records.setdefault(record.record_id, {}).update(record.values)
            if record.record_id in self.lose_answers_for:
                outcomes.append(WriteOutcome(record.record_id, ok=False, in_doubt=True))
            else:
                outcomes.append(WriteOutcome(record.record_id, ok=True))
        return outcomes

    def read(
        self, record_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, object]]:
        self.reads += 1
        return {
            rid: {f: self.records[rid].get(f) for f in fields}
            for rid in record_ids
            if rid in self.records
        }

    def close(self) -> None:
        pass


def _settings(*, write_nulls: bool = False) -> WritebackSettings:
    return WritebackSettings("salesforce", FIELDS, frozenset(FIELDS.values()), write_nulls)


def _state(engine: Engine) -> dict[tuple[str, str], dict[str, object]]:
    with engine.connect() as connection:
        return {(r.record_id, r.field): dict(r._mapping) for r in connection.execute(select(STATE))}


def _store(engine: Engine, count: int = 3) -> StoreData:
    data = StoreData(engine)
    for n in range(count):
        data.add(f"Account {n}", [("salesforce", f"001{n:015d}")], Figures(score=50.0 + n))
    return data


@pytest.mark.parametrize("needs_total", [True, False], ids=["counted-first", "streamed"])
def test_writes_changes_once_and_an_immediate_rerun_sends_nothing(
    engine: Engine, needs_total: bool
) -> None:
    _store(engine)
    crm = MemoryCrm(needs_total=needs_total)
    first = run_crm_writeback(engine, _settings(), crm)
    assert (first.records, first.changed, first.written, first.failed) == (3, 3, 3, 0)
    assert first.fields == 3 * len(FIELDS)
    assert crm.batches == [["001000000000000000", "001000000000000001"], ["001000000000000002"]]
    assert crm.records["001000000000000001"]["Score__c"] == "51.0"
    assert crm.records["001000000000000001"]["CLV__c"] == "123456.78"
    assert crm.records["001000000000000001"]["Computed__c"] == "2026-11-20T06:30:00Z"
    state = _state(engine)
    assert state[("001000000000000000", "Band__c")]["confirmed_value"] == "yellow"
    assert not any(row["pending"] for row in state.values())

    again = run_crm_writeback(engine, _settings(), crm)
    assert (again.changed, again.written) == (0, 0)
    assert crm.write_requests == 2


def test_formatting_noise_and_a_new_computation_time_alone_send_nothing(engine: Engine) -> None:
    data = _store(engine, 1)
    crm = MemoryCrm()
    run_crm_writeback(engine, _settings(), crm)
    record = "001000000000000000"
    data.set_score(record, score=50.0000001, computed_at=datetime(2026, 11, 21, 6, 0, tzinfo=UTC))
    quiet = run_crm_writeback(engine, _settings(), crm)
    assert quiet.changed == 0

    data.set_score(record, score=61.26)
    moved = run_crm_writeback(engine, _settings(), crm)
    assert moved.changed == 1
    assert crm.batches[-1] == [record]
    # The stamp travels with the real change.
    assert crm.records[record]["Score__c"] == "61.3"
    assert crm.records[record]["Computed__c"] == "2026-11-21T06:00:00Z"


def test_text_is_cut_to_the_field_length(engine: Engine) -> None:
    data = StoreData(engine)
    data.add("Long", [("salesforce", "001000000000000009")], Figures(explanation="word " * 40))
    crm = MemoryCrm()
    run_crm_writeback(engine, _settings(), crm)
    written = str(crm.records["001000000000000009"]["Drivers__c"])
    assert len(written) == 40
    assert written.endswith("…")
    assert run_crm_writeback(engine, _settings(), crm).changed == 0


def test_refused_records_keep_their_error_and_are_retried_alone(engine: Engine) -> None:
    _store(engine)
    crm = MemoryCrm(
        refuse={"001000000000000001": "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access"}
    )
    report = run_crm_writeback(engine, _settings(), crm)
    assert (report.written, report.failed, report.status) == (2, 1, "ok")
    assert report.failures == [
        ("001000000000000001", "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access")
    ]
    state = _state(engine)
    refused = state[("001000000000000001", "Score__c")]
    assert refused["confirmed_at"] is None
    assert refused["attempts"] == 1
    assert not refused["pending"]
    assert "UNABLE_TO_LOCK_ROW" in str(refused["last_error"])

    crm.refuse.clear()
    retry = run_crm_writeback(engine, _settings(), crm)
    assert (retry.changed, retry.written) == (1, 1)
    assert crm.batches[-1] == ["001000000000000001"]
    fixed = _state(engine)[("001000000000000001", "Score__c")]
    assert fixed["last_error"] is None
    assert fixed["attempts"] == 0
    assert fixed["confirmed_value"] == "51.0"


def test_unanswered_writes_are_read_back_not_sent_again(engine: Engine) -> None:
    _store(engine)
    crm = MemoryCrm(lose_answers_for={"001000000000000000", "001000000000000002"})
    first = run_crm_writeback(engine, _settings(), crm)
    assert (first.written, first.in_doubt) == (1, 2)
    assert sum(1 for row in _state(engine).values() if row["pending"]) == 2 * len(FIELDS)

    crm.lose_answers_for.clear()
    calls = crm.write_requests
    second = run_crm_writeback(engine, _settings(), crm)
    assert second.settled == 2
    assert second.changed == 0
    assert crm.write_requests == calls  # nothing written twice
    assert not any(row["pending"] for row in _state(engine).values())


def test_a_write_that_never_arrived_is_sent_again(engine: Engine) -> None:
    _store(engine, 1)
    crm = MemoryCrm(fail_call=TransientError("connection dropped", kind="connection"))
    report = run_crm_writeback(engine, _settings(), crm)
    assert report.status == "failed"
    assert report.in_doubt == 1
    crm.fail_call = None
    again = run_crm_writeback(engine, _settings(), crm)
    # The read found nothing applied, so the diff sends it.
    assert (again.settled, again.changed, again.written) == (0, 1, 1)


def test_a_call_refused_as_a_whole_records_the_reason(engine: Engine) -> None:
    _store(engine, 2)
    crm = MemoryCrm(fail_call=ApiError("Salesforce", 400, "bad request", "INVALID_FIELD"))
    report = run_crm_writeback(engine, _settings(), crm)
    assert report.status == "failed"
    assert "INVALID_FIELD" in str(report.error)
    rows = _state(engine)
    assert all(row["attempts"] == 1 and not row["pending"] for row in rows.values())


def test_empty_values_are_written_only_with_write_nulls(engine: Engine) -> None:
    data = StoreData(engine)
    data.add("Gone", [("salesforce", "001000000000000007")])
    crm = MemoryCrm()
    run_crm_writeback(engine, _settings(), crm)
    data.set_score("001000000000000007", explanation=None)
    assert run_crm_writeback(engine, _settings(), crm).changed == 0
    assert crm.records["001000000000000007"]["Drivers__c"] is not None

    cleared = run_crm_writeback(engine, _settings(write_nulls=True), crm)
    assert cleared.changed == 1
    assert crm.records["001000000000000007"]["Drivers__c"] is None
    assert _state(engine)[("001000000000000007", "Drivers__c")]["confirmed_value"] is None


def test_a_field_outside_owned_fields_is_refused_before_anything_is_sent(engine: Engine) -> None:
    _store(engine, 1)
    crm = MemoryCrm()
    settings = WritebackSettings(
        "salesforce", {**FIELDS, "value_trend_90d": "Name"}, frozenset(FIELDS.values())
    )
    with pytest.raises(OwnedFieldError, match="Name"):
        run_crm_writeback(engine, settings, crm)
    assert crm.write_requests == 0
    assert _state(engine) == {}


def test_dry_run_changes_no_state_and_previews_the_diff(engine: Engine) -> None:
    _store(engine, 2)
    report = run_crm_writeback(engine, _settings(), None, dry_run=True)
    assert (report.records, report.changed, report.fields) == (2, 2, 2 * len(FIELDS))
    assert {c.field for c in report.preview} == set(FIELDS.values())
    assert all(c.first_write for c in report.preview)
    assert _state(engine) == {}


def test_deleted_accounts_and_links_are_skipped(engine: Engine) -> None:
    from sqlalchemy import update

    from tests.outputs.builders import ACCOUNT, LINK

    data = _store(engine, 3)
    with engine.begin() as connection:
        connection.execute(
            update(ACCOUNT)
            .where(ACCOUNT.c.id == data.accounts["001000000000000000"])
            .values(is_deleted=True)
        )
        connection.execute(
            update(LINK).where(LINK.c.source_id == "001000000000000001").values(is_deleted=True)
        )
    crm = MemoryCrm()
    report = run_crm_writeback(engine, _settings(), crm)
    assert report.records == 1
    assert list(crm.records) == ["001000000000000002"]


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("value_score", 71.25, "71.3"),
        ("value_score", "71.2500", "71.3"),
        ("value_score", -0.04, "0.0"),
        ("clv", "1200", "1200.00"),
        ("time_to_first_value_days", 21.0, "21"),
        ("computed_at", "2026-11-20T06:30:00.000+0000", "2026-11-20T06:30:00Z"),
        ("computed_at", "2026-11-20T06:30:00Z", "2026-11-20T06:30:00Z"),
        ("computed_at", "1795156200000", "2026-11-20T06:30:00Z"),
        ("value_drivers", "a\r\nb ", "a\nb"),
        ("value_band", "", None),
    ],
)
def test_values_read_back_from_a_crm_compare_in_canonical_form(
    kind: str, raw: object, expected: str | None
) -> None:
    assert canonical_from_crm(VALUE_SPECS[kind], raw) == expected


def test_more_writes_in_flight_than_one_read_page_are_all_settled(engine: Engine) -> None:
    data = StoreData(engine)
    records = [f"001{n:015d}" for n in range(1300)]
    data.add_many("salesforce", records)  # 1,300 records x 4 fields: 5,200 rows in flight
    crm = MemoryCrm(lose_answers_for=set(records), size=200)
    first = run_crm_writeback(engine, _settings(), crm)
    assert (first.in_doubt, first.fields) == (1300, 1300 * 4)  # no CLV: four fields each
    crm.lose_answers_for.clear()
    calls = crm.write_requests
    second = run_crm_writeback(engine, _settings(), crm)
    assert (second.settled, second.changed) == (1300, 0)
    assert crm.write_requests == calls
    assert not any(row["pending"] for row in _state(engine).values())
