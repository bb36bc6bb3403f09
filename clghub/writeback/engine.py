"""The writeback engine: diff-only, batched, at most once per confirmed value.

For one CRM:

1. The owned-field guard: every target field must be in ``owned_fields``
   (checked again by the writer right before the wire).
2. The writer checks the target fields (exist, writable, fit their value).
3. Writes a stopped run left in flight (``pending``) are settled by reading
   the records: a value the CRM holds is confirmed, never sent again.
4. Desired values (the latest figures of each live account, for each of its
   live records) are compared, in canonical text, with what the CRM last
   confirmed. Only differing fields of differing records are written; a
   computation stamp travels with real changes but never makes one. Empty
   values are written only with ``write_nulls``.
5. Per batch: the fields are marked in flight, the writer sends them, and
   each record's outcome is recorded: confirmed values advance, refused ones
   keep their error and are tried again on the next run. A refused record
   never fails the batch; a failed call (the CRM unreachable after retries,
   the quota used up) stops this CRM's run and leaves its batch in flight
   for the next run to settle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, tuple_, update

from clghub.errors import ClghubError
from clghub.http import ApiError, QuotaExhausted, TransientError
from clghub.progress import NullProgress, Progress
from clghub.writeback.desired import DesiredRecord, desired_pages
from clghub.writeback.protocol import (
    FieldCheck,
    OwnedFieldError,
    RecordWrite,
    TargetField,
    WritebackError,
    WriteOutcome,
    Writer,
    refuse_unowned,
)
from clghub.writeback.state import STATE, FieldState, StateStore
from clghub.writeback.values import VALUE_SPECS, canonical, canonical_from_crm, truncate_text

__all__ = ["Change", "CrmReport", "WritebackSettings", "plan_targets", "run_crm_writeback"]

log = logging.getLogger(__name__)

_PREVIEW_RECORDS = 25
_KEEP_CHANGES = 100_000
"""Changed records held in memory between the diff and the writes; beyond it the
writes diff again rather than hold them all."""
_FAILURE_SAMPLE = 10
_READ_CHUNK = 200


@dataclass(frozen=True)
class WritebackSettings:
    """One CRM's writeback section, as the engine needs it."""

    crm: str
    fields: Mapping[str, str]
    """clghub value -> CRM field."""
    owned_fields: frozenset[str]
    write_nulls: bool = False


@dataclass(frozen=True)
class Change:
    """One field of one record that a run writes (or, in a dry run, would write)."""

    record_id: str
    account_name: str
    field: str
    old: str | None
    new: str | None
    first_write: bool


@dataclass
class CrmReport:
    crm: str
    status: str = "ok"
    """ok, failed (see error), stopped (quota: resumes next run) or skipped."""
    dry_run: bool = False
    records: int = 0
    """Live CRM records of live accounts considered."""
    changed: int = 0
    """Records with at least one field to write."""
    fields: int = 0
    """Field values to write."""
    written: int = 0
    """Records the CRM confirmed this run."""
    failed: int = 0
    """Records the CRM refused this run (tried again next run)."""
    in_doubt: int = 0
    """Records whose write was sent but not answered (settled next run)."""
    settled: int = 0
    """Records left in flight by an earlier run that the CRM turned out to hold."""
    requests: int = 0
    """API calls that wrote (for Bulk API jobs: every call of the job)."""
    mode: str = ""
    seconds: float = 0.0
    """Wall time of this CRM's run."""
    error: str | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    """A sample of refused records with the CRM's reason."""
    preview: list[Change] = field(default_factory=list)
    to_create: list[str] = field(default_factory=list)
    provisioned: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "changed": self.changed,
            "fields": self.fields,
            "written": self.written,
            "failed": self.failed,
            "in_doubt": self.in_doubt,
            "settled": self.settled,
            "requests": self.requests,
            "seconds": self.seconds,
        }


def plan_targets(settings: WritebackSettings) -> list[TargetField]:
    """The target fields of a CRM's writeback, guarded by ``owned_fields``."""
    targets = [TargetField(VALUE_SPECS[value], target) for value, target in settings.fields.items()]
    refuse_unowned(settings.crm, settings.owned_fields, [t.name for t in targets])
    return targets


def _diff(
    record: DesiredRecord,
    targets: Sequence[TargetField],
    states: Mapping[str, FieldState],
    lengths: Mapping[str, int | None],
    write_nulls: bool,
) -> dict[str, str | None]:
    changes: dict[str, str | None] = {}
    stamps: dict[str, str | None] = {}
    for target in targets:
        value = canonical(target.spec, record.values[target.spec.name])
        if target.spec.kind == "text":
            value = truncate_text(value, lengths.get(target.name))
        if value is None and not write_nulls:
            continue
        state = states.get(target.name)
        if state is not None and state.confirmed and state.value == value:
            continue
        (stamps if target.spec.stamp else changes)[target.name] = value
    if changes:
        changes.update(stamps)
    return changes


@dataclass(frozen=True)
class _Planned:
    record_id: str
    account_id: int
    values: dict[str, str | None]


class _Run:
    def __init__(
        self,
        engine: Engine,
        settings: WritebackSettings,
        writer: Writer | None,
        targets: list[TargetField],
        report: CrmReport,
        progress: Progress,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.writer = writer
        self.targets = targets
        self.report = report
        self.progress = progress
        self.state = StateStore(engine, settings.crm)
        self.lengths: dict[str, int | None] = {}

    # -- planning ----------------------------------------------------------------

    def _diffed(
        self,
    ) -> Iterator[
        tuple[int, list[tuple[DesiredRecord, dict[str, str | None], dict[str, FieldState]]]]
    ]:
        """Per page of desired records: its size and the records that differ."""
        for page in desired_pages(self.engine, self.settings.crm):
            states = self.state.load([r.record_id for r in page])
            differing = []
            for record in page:
                record_states = states.get(record.record_id, {})
                values = _diff(
                    record, self.targets, record_states, self.lengths, self.settings.write_nulls
                )
                if values:
                    differing.append((record, values, record_states))
            yield len(page), differing

    def scan(self, keep: int) -> list[_Planned] | None:
        """Count what differs; keep up to ``keep`` changes (None when there were more)."""
        kept: list[_Planned] | None = []
        report = self.report
        for size, differing in self._diffed():
            report.records += size
            for record, values, _ in differing:
                report.changed += 1
                report.fields += len(values)
                if kept is not None:
                    if len(kept) < keep:
                        kept.append(_Planned(record.record_id, record.account_id, values))
                    else:
                        kept = None  # too many to hold: the write pass diffs again
        return kept

    def planned(self, *, count: bool = False) -> Iterator[_Planned]:
        """The changes, page by page (counted into the report when ``count``)."""
        report = self.report
        for size, differing in self._diffed():
            if count:
                report.records += size
                report.changed += len(differing)
                report.fields += sum(len(values) for _, values, _ in differing)
            for record, values, _ in differing:
                yield _Planned(record.record_id, record.account_id, values)

    # -- settling what an earlier run left in flight -------------------------------

    def settle_pending(self, writer: Writer) -> None:
        specs = {t.name: t.spec for t in self.targets}
        while True:
            pending = self.state.pending()
            if not pending:
                return
            ids = list(pending)
            for start in range(0, len(ids), _READ_CHUNK):
                chunk = ids[start : start + _READ_CHUNK]
                fields = sorted({f for rid in chunk for f in pending[rid]})
                current = writer.read(chunk, fields)
                confirmed: dict[str, dict[str, str | None]] = {}
                unapplied: dict[str, tuple[list[str], str]] = {}
                for record_id in chunk:
                    wanted = pending[record_id]
                    held = current.get(record_id)
                    if held is None:
                        unapplied[record_id] = (list(wanted), "record not found in the CRM")
                        continue
                    matches = {
                        f: v
                        for f, v in wanted.items()
                        if f in specs and canonical_from_crm(specs[f], held.get(f)) == v
                    }
                    if matches:
                        confirmed[record_id] = matches
                    rest = [f for f in wanted if f not in matches]
                    if rest:
                        # Not applied: the diff sends it again. Not an error of the CRM's,
                        # so no attempt is counted.
                        unapplied[record_id] = (rest, "")
                if confirmed:
                    self.report.settled += len(confirmed)
                with self.engine.begin() as connection:
                    if confirmed:
                        self.state.confirm(connection, confirmed)
                    if unapplied:
                        self._clear_pending(connection, unapplied)
            # Every row read was confirmed or cleared: the next read gets the rest.

    def _clear_pending(
        self, connection: Connection, unapplied: Mapping[str, tuple[Sequence[str], str]]
    ) -> None:
        keys = [(rid, f) for rid, (fields, _) in unapplied.items() for f in fields]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            connection.execute(
                update(STATE)
                .where(
                    STATE.c.crm == self.settings.crm,
                    tuple_(STATE.c.record_id, STATE.c.field).in_(chunk),
                )
                .values(pending=False, pending_value=None)
            )
        missing = {rid: v for rid, v in unapplied.items() if v[1]}
        if missing:
            self.state.refuse(connection, missing)

    # -- writing -------------------------------------------------------------------

    def write_all(self, writer: Writer, batch_size: int, changes: Iterable[_Planned]) -> None:
        """Write batch after batch, one call on the wire at a time.

        The store's work for the next batch (marking it in flight) and for the
        last one (recording its outcome) runs while the current call waits on
        the CRM: the call waits on a socket, so a second thread overlaps them.
        """
        prepared: list[_Planned] | None = None
        with ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"clghub-writeback-{self.settings.crm}"
        ) as wire:
            in_flight: tuple[list[_Planned], Future[list[WriteOutcome]]] | None = None
            try:
                for batch in _batches(changes, batch_size):
                    self.state.mark_pending([(p.record_id, p.account_id, p.values) for p in batch])
                    prepared = batch
                    if in_flight is not None:
                        sent, answer = in_flight
                        in_flight = None
                        self.record(writer, sent, answer)
                    in_flight = (
                        batch,
                        wire.submit(
                            writer.write, [RecordWrite(p.record_id, p.values) for p in batch]
                        ),
                    )
                    prepared = None
                if in_flight is not None:
                    sent, answer = in_flight
                    in_flight = None
                    self.record(writer, sent, answer)
            except BaseException:
                if prepared is not None:
                    # Marked in flight, never sent: nothing to find out next run.
                    with self.engine.begin() as connection:
                        self._clear_pending(
                            connection, {p.record_id: (list(p.values), "") for p in prepared}
                        )
                raise

    def record(
        self, writer: Writer, batch: list[_Planned], answer: Future[list[WriteOutcome]]
    ) -> None:
        """Wait for a batch's answer and record each record's outcome."""
        report = self.report
        by_id = {p.record_id: p for p in batch}
        try:
            outcomes = answer.result()
        except QuotaExhausted:
            report.in_doubt += len(batch)
            raise
        except ApiError as exc:
            # The CRM refused the call as a whole: nothing of it was applied.
            failed = {rid: (list(p.values), str(exc)) for rid, p in by_id.items()}
            self.state.settle({}, failed)
            report.failed += len(batch)
            raise
        except TransientError:
            report.in_doubt += len(batch)
            raise
        finally:
            report.requests = writer.write_requests
        confirmed: dict[str, Mapping[str, str | None]] = {}
        failed_records: dict[str, tuple[Sequence[str], str]] = {}
        seen: set[str] = set()
        for outcome in outcomes:
            planned = by_id.get(outcome.record_id)
            if planned is None or outcome.record_id in seen:
                continue
            seen.add(outcome.record_id)
            if outcome.ok:
                confirmed[outcome.record_id] = planned.values
            elif not outcome.in_doubt:
                failed_records[outcome.record_id] = (
                    list(planned.values),
                    outcome.error or "refused",
                )
        self.state.settle(confirmed, failed_records)
        report.written += len(confirmed)
        report.failed += len(failed_records)
        report.in_doubt += len(batch) - len(confirmed) - len(failed_records)
        for record_id, (_, error) in failed_records.items():
            if len(report.failures) < _FAILURE_SAMPLE:
                report.failures.append((record_id, error))
        self.progress.advance(f"writeback {self.settings.crm}", len(batch))

    # -- dry run ---------------------------------------------------------------------

    def preview(self) -> None:
        for _, differing in self._diffed():
            for record, values, states in differing:
                if len(self.report.preview) >= _PREVIEW_RECORDS * len(self.targets):
                    return
                for name, new in values.items():
                    state = states.get(name)
                    confirmed = state is not None and state.confirmed
                    self.report.preview.append(
                        Change(
                            record.record_id,
                            record.account_name,
                            name,
                            state.value if state is not None and confirmed else None,
                            new,
                            first_write=not confirmed,
                        )
                    )


def _batches(changes: Iterable[_Planned], size: int) -> Iterator[list[_Planned]]:
    batch: list[_Planned] = []
    for planned in changes:
        batch.append(planned)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _check(writer: Writer, targets: Sequence[TargetField], crm: str) -> FieldCheck:
    check = writer.check_fields(targets)
    if not check.ok:
        lines = [f"writeback.{crm}: the CRM is not ready for writeback:", *check.problems]
        if check.to_create:
            lines += ["create these fields:", *check.to_create]
        raise WritebackError("\n  ".join(lines))
    return check


def run_crm_writeback(
    engine: Engine,
    settings: WritebackSettings,
    writer: Writer | None,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> CrmReport:
    """Write one CRM's changed value fields (``writer`` may be ``None`` for a dry run).

    A dry run reads only the store: it contacts no CRM and changes no state.
    """
    started = time.monotonic()
    report = CrmReport(settings.crm, dry_run=dry_run)
    progress = progress or NullProgress()
    targets = plan_targets(settings)
    if not targets:
        report.status = "skipped"
        report.error = f"writeback.{settings.crm}.fields is empty"
        return report
    run = _Run(engine, settings, writer, targets, report, progress)
    if dry_run or writer is None:
        report.in_doubt = sum(1 for _ in run.state.pending())
        run.scan(keep=0)
        run.preview()
        return report
    check = _check(writer, targets, settings.crm)
    run.lengths = {name: info.length for name, info in check.fields.items()}
    try:
        run.settle_pending(writer)
        key = f"writeback {settings.crm}"
        changes: Iterable[_Planned] = ()
        size = 1
        if writer.needs_total:
            kept = run.scan(keep=_KEEP_CHANGES)
            if report.changed:
                size = writer.batch_size(report.changed)
                changes = kept if kept is not None else run.planned()
        else:
            # Writing starts with the first changed page; the diff of the next
            # pages overlaps the calls on the wire.
            size = writer.batch_size(None)
            changes = run.planned(count=True)
        report.mode = writer.mode
        progress.start(key, key, total=report.changed or None)
        run.write_all(writer, size, changes)
        progress.finish(key, f"{report.written} written, {report.failed} refused")
    except OwnedFieldError:
        raise
    except QuotaExhausted as exc:
        report.status = "stopped"
        report.error = str(exc)
    except (ApiError, TransientError, ClghubError) as exc:
        report.status = "failed"
        report.error = str(exc)
    report.seconds = round(time.monotonic() - started, 3)
    if report.failed and report.status == "ok":
        log.warning(
            "%s refused %d record(s); they are tried again on the next run (clghub export writeback_state)",
            settings.crm,
            report.failed,
        )
    return report
