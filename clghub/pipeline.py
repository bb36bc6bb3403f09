"""The one place that knows which connector and workflow serve which configured job.

The engine modules never import a connector or a workflow; this module wires
them: a new connector is one folder plus one entry in :func:`build_connectors`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from clghub.checks import CheckResult, config_check, store_check
from clghub.config import ClghubConfig, ConfigError
from clghub.errors import ClghubError, UsageError
from clghub.http import QuotaExhausted, TransientError
from clghub.jobs import record_job
from clghub.lock import holding
from clghub.progress import NullProgress, Progress
from clghub.sync.mapping import SourceMapping, load_mapping
from clghub.sync.runner import SyncReport, run_sync
from clghub.sync.stream import Connector
from clghub.workflows.alerts import AlertsReport
from clghub.workflows.digest import LinkBuilder
from clghub.writeback import (
    CrmReport,
    OwnedFieldError,
    TargetField,
    WritebackSettings,
    Writer,
    plan_targets,
    run_crm_writeback,
)

__all__ = [
    "CRMS",
    "SOURCES",
    "STAGES",
    "DigestReport",
    "RunReport",
    "StageResult",
    "WritebackReport",
    "alerts",
    "build_connectors",
    "connection_checks",
    "digest",
    "mapping_checks",
    "output_checks",
    "provision_hubspot",
    "run",
    "run_checks",
    "run_job",
    "sync",
    "writeback",
]

SOURCES = ("salesforce", "hubspot", "product_usage")
CRMS = ("salesforce", "hubspot")
log = logging.getLogger(__name__)


def enabled_sources(config: ClghubConfig) -> list[str]:
    return [name for name in SOURCES if getattr(config.sources, name).enabled]


def build_connectors(
    config: ClghubConfig, sources: Sequence[str] | None = None
) -> dict[str, tuple[Connector, SourceMapping]]:
    """Connectors (with their mappings) for the enabled sources, or the ones named."""
    chosen = list(sources) if sources else enabled_sources(config)
    for name in chosen:
        if name not in SOURCES:
            raise UsageError(f"unknown source '{name}'; choose from {', '.join(SOURCES)}")
        if not getattr(config.sources, name).enabled:
            raise UsageError(
                f"source '{name}' is not enabled (sources.{name}.enabled = false in {config.source_path})"
            )
    built: dict[str, tuple[Connector, SourceMapping]] = {}
    for name in chosen:
        mapping = load_mapping(name, config)
        built[name] = (_connector(name, config), mapping)
    return built


def _connector(name: str, config: ClghubConfig) -> Connector:
    if name == "salesforce":
        from clghub.connectors.salesforce import SalesforceConnector

        return SalesforceConnector(config.sources.salesforce)
    if name == "hubspot":
        from clghub.connectors.hubspot import HubSpotConnector

        return HubSpotConnector(config.sources.hubspot)
    from clghub.connectors.product_usage import ProductUsageConnector

    return ProductUsageConnector(config)


def close_all(connectors: Iterable[tuple[Connector, Any]]) -> None:
    for connector, _ in connectors:
        connector.close()


def sync(
    engine: Engine,
    config: ClghubConfig,
    *,
    sources: Sequence[str] | None = None,
    full_refresh: bool = False,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    run_id: str | None = None,
    trigger: str = "cli",
) -> SyncReport:
    """The sync stage: every enabled (or named) source, recorded as one job_run."""
    run_id = run_id or str(uuid.uuid4())
    connectors = build_connectors(config, sources)
    try:
        with record_job(engine, "sync", run_id=run_id, trigger=trigger) as job:
            report = run_sync(
                engine,
                config,
                connectors,
                full_refresh=full_refresh,
                progress=progress or NullProgress(),
                stop=stop,
                run_id=run_id,
            )
            job.counts = {
                **report.totals(),
                "streams": len(report.streams),
                "unlinked": report.unlinked,
            }
            failed = [s for s in report.streams if s.status == "failed"]
            if failed:
                job.status = "failed"
                job.error = "; ".join(f"{s.source}.{s.stream}: {s.error}" for s in failed)[:2000]
            elif report.stopped:
                job.status = "stopped"
                job.error = "; ".join(
                    f"{s.source}.{s.stream}: {s.error}"
                    for s in report.streams
                    if s.status == "stopped"
                )[:2000]
    finally:
        close_all(connectors.values())
    return report


# --------------------------------------------------------------------------- checks


def mapping_checks(config: ClghubConfig) -> list[CheckResult]:
    results = []
    for name in enabled_sources(config):
        try:
            mapping = load_mapping(name, config)
        except ConfigError as exc:
            results.append(
                CheckResult(
                    f"mapping {name}",
                    False,
                    str(exc.problems[0]),
                    [str(p) for p in exc.problems[1:]],
                )
            )
            continue
        streams = ", ".join(mapping.streams)
        results.append(
            CheckResult(f"mapping {name}", True, f"{' + '.join(mapping.files)}: {streams}")
        )
    return results


def connection_checks(config: ClghubConfig) -> list[CheckResult]:
    results: list[CheckResult] = []
    for name in enabled_sources(config):
        try:
            mapping = load_mapping(name, config)
        except ConfigError:
            continue  # reported by mapping_checks
        connector = _connector(name, config)
        try:
            results.extend(connector.check(mapping))
        finally:
            connector.close()
    return results


def run_checks(config: ClghubConfig, *, offline: bool = False) -> list[CheckResult]:
    """Everything ``clghub check`` verifies, one result a line; ``offline`` contacts nothing."""
    results = [config_check(config), store_check(config), *mapping_checks(config)]
    if not offline:
        results.extend(connection_checks(config))
        results.extend(output_checks(config))
    return results


# =========================================================================== outputs
# Writeback to the CRMs, the leadership digest and alerts in Slack (and CRM tasks).


@dataclass
class WritebackReport:
    dry_run: bool
    crms: list[CrmReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(report.status in ("ok", "skipped") for report in self.crms)

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "crms": [asdict(report) for report in self.crms]}


@dataclass
class DigestReport:
    period: str
    channel: str
    dry_run: bool
    status: str
    """posted, found, already posted, or written (a dry run's files)."""
    message_ts: str | None = None
    chart: str = "none"
    files: list[str] = field(default_factory=list)
    preview: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _writeback_settings(config: ClghubConfig, crm: str) -> WritebackSettings:
    section = getattr(config.writeback, crm)
    return WritebackSettings(
        crm, dict(section.fields), frozenset(section.owned_fields), section.write_nulls
    )


def _needs_source(config: ClghubConfig, crm: str, purpose: str) -> None:
    if not getattr(config.sources, crm).enabled:
        raise UsageError(
            f"{purpose} needs the {crm} connection: set sources.{crm}.enabled = true with its "
            f"credentials in {config.source_path}"
        )


def _crm_writer(config: ClghubConfig, crm: str) -> Writer:
    if crm == "salesforce":
        from clghub.connectors.salesforce.client import SalesforceClient
        from clghub.connectors.salesforce.writer import SalesforceWriter

        return SalesforceWriter(
            SalesforceClient(config.sources.salesforce), config.writeback.salesforce
        )
    from clghub.connectors.hubspot.client import HubSpotClient
    from clghub.connectors.hubspot.writer import HubSpotWriter

    return HubSpotWriter(HubSpotClient(config.sources.hubspot), config.writeback.hubspot)


def _provision(writer: Writer, targets: list[TargetField]) -> list[str]:
    provision = getattr(writer, "provision", None)
    if provision is not None:
        done: list[str] = provision(targets)
        return done
    # Salesforce custom fields are made in Setup (metadata), not through the data API.
    check = writer.check_fields(targets)
    return [f"create in Setup: {line}" for line in check.to_create]


def provision_hubspot(config: ClghubConfig) -> list[str]:
    """Create the HubSpot property group and properties writeback needs (idempotent)."""
    if not (config.writeback.hubspot.enabled and config.sources.hubspot.enabled):
        return []
    writer = _crm_writer(config, "hubspot")
    try:
        return _provision(writer, plan_targets(_writeback_settings(config, "hubspot")))
    finally:
        writer.close()


def writeback(
    engine: Engine,
    config: ClghubConfig,
    *,
    dry_run: bool = False,
    provision: bool = False,
    progress: Progress | None = None,
    run_id: str | None = None,
    trigger: str = "cli",
) -> WritebackReport:
    """The writeback stage: changed value fields to every CRM with writeback enabled.

    ``dry_run`` reads the store only and sends nothing; ``provision`` first
    creates the HubSpot property group and properties (and lists the
    Salesforce custom fields to create).
    """
    crms = [crm for crm in CRMS if getattr(config.writeback, crm).enabled]
    if not crms:
        raise UsageError(
            f"no CRM has writeback enabled (writeback.salesforce.enabled, writeback.hubspot.enabled in {config.source_path})"
        )
    settings = {crm: _writeback_settings(config, crm) for crm in crms}
    # The owned-field guard, before anything is contacted.
    targets = {crm: plan_targets(settings[crm]) for crm in crms}
    report = WritebackReport(dry_run=dry_run)
    if dry_run:
        for crm in crms:
            report.crms.append(run_crm_writeback(engine, settings[crm], None, dry_run=True))
        return report
    for crm in crms:
        _needs_source(config, crm, f"writeback.{crm}")
    run_id = run_id or str(uuid.uuid4())
    with (
        record_job(engine, "writeback", run_id=run_id, trigger=trigger) as job,
        holding(engine, "writeback"),
    ):
        for crm in crms:
            writer = _crm_writer(config, crm)
            try:
                provisioned = _provision(writer, targets[crm]) if provision else []
                crm_report = run_crm_writeback(engine, settings[crm], writer, progress=progress)
                crm_report.provisioned = provisioned
            except OwnedFieldError:
                raise
            except (ClghubError, TransientError) as exc:
                # One CRM failing (login, describe, quota) does not keep the other from its run.
                crm_report = CrmReport(
                    crm,
                    status="stopped" if isinstance(exc, QuotaExhausted) else "failed",
                    error=str(exc),
                )
            finally:
                writer.close()
            report.crms.append(crm_report)
        job.counts = {f"{r.crm}_{k}": v for r in report.crms for k, v in r.counts().items()}
        problems = [f"{r.crm}: {r.error}" for r in report.crms if r.status in ("failed", "stopped")]
        if problems:
            job.status = "failed" if any(r.status == "failed" for r in report.crms) else "stopped"
            job.error = "; ".join(problems)[:2000]
    return report


def _salesforce_ui(config: ClghubConfig, *, contact: bool) -> str | None:
    """Where Salesforce records open: slack.salesforce_ui_url, else the org's instance URL."""
    if config.slack.salesforce_ui_url:
        return config.slack.salesforce_ui_url
    source = config.sources.salesforce
    if source.instance_url:
        return source.instance_url
    if not (contact and source.enabled):
        return None
    from clghub.connectors.salesforce.client import SalesforceClient

    client = SalesforceClient(source)
    try:
        return client.instance_url
    except (ClghubError, TransientError) as exc:
        log.warning("digest links to Salesforce left out: cannot log in (%s)", exc)
        return None
    finally:
        client.close()


def _links(config: ClghubConfig, *, contact: bool) -> LinkBuilder:
    return LinkBuilder(
        salesforce_base=_salesforce_ui(config, contact=contact),
        hubspot_portal=config.slack.hubspot_portal_id,
        priority=tuple(config.identity.source_priority),
    )


def digest(
    engine: Engine,
    config: ClghubConfig,
    *,
    period: str | None = None,
    dry_run: bool = False,
    out_dir: Path | None = None,
    run_id: str | None = None,
    trigger: str = "cli",
) -> DigestReport:
    """The digest stage: build the week's digest and post it once to slack.digest_channel.

    ``dry_run`` writes the Block Kit JSON and the chart to ``out_dir``
    (default: the working directory) and sends nothing.
    """
    from clghub.workflows.digest import build_digest, preview_text
    from clghub.workflows.digest_data import DigestPeriod, load_digest_data
    from clghub.workflows.digest_post import previous_digest, publish_digest
    from clghub.workflows.score import resolve_as_of

    as_of = resolve_as_of(config)
    try:
        week = DigestPeriod.parse(period) if period else DigestPeriod.of(as_of)
    except ValueError as exc:
        raise UsageError(f"--period: {exc}") from None
    if not dry_run and not config.slack.enabled:
        raise UsageError(
            f"slack is not enabled (slack.enabled in {config.source_path}); try clghub digest --dry-run"
        )
    channel = config.slack.digest_channel
    with engine.connect() as connection:
        data = load_digest_data(connection, config, week, as_of)
    chart = None
    if config.slack.digest.chart and data.bridge is not None:
        from clghub.workflows.digest_chart import bridge_chart

        chart = bridge_chart(
            data.bridge,
            data.currency,
            title=f"ARR bridge, {data.bridge.period_start} to {data.bridge.period_end}",
        )
    message = build_digest(
        data,
        config,
        links=_links(config, contact=not dry_run),
        previous=previous_digest(engine, channel, week.label),
        chart_png=chart,
    )
    report = DigestReport(week.label, channel, dry_run, "written" if dry_run else "posted")
    if dry_run:
        folder = out_dir or Path.cwd()
        folder.mkdir(parents=True, exist_ok=True)
        json_path = folder / f"digest-{week.label}.json"
        json_path.write_bytes(
            orjson.dumps({"channel": channel, **message.payload}, option=orjson.OPT_INDENT_2)
        )
        report.files.append(str(json_path))
        if message.chart_png is not None:
            png_path = folder / f"digest-{week.label}.png"
            png_path.write_bytes(message.chart_png)
            report.files.append(str(png_path))
        report.preview = preview_text(message)
        return report
    from clghub.connectors.slack import SlackMessenger

    run_id = run_id or str(uuid.uuid4())
    with (
        record_job(engine, "digest", run_id=run_id, trigger=trigger) as job,
        holding(engine, "digest"),
    ):
        posted = publish_digest(engine, SlackMessenger(config.slack), message, channel)
        report.status, report.message_ts, report.chart = (
            posted.status,
            posted.message_ts,
            posted.chart,
        )
        job.counts = {"period": week.label, "status": posted.status, "chart": posted.chart}
    return report


def alerts(
    engine: Engine,
    config: ClghubConfig,
    *,
    dry_run: bool = False,
    run_id: str | None = None,
    trigger: str = "cli",
) -> AlertsReport:
    """The alerts stage: every open play not yet announced, to Slack (and as a CRM task).

    ``dry_run`` lists what would be sent, and where, without contacting anything.
    """
    from clghub.workflows.alerts import alert_message, deliver_alerts, pending_plays

    if not config.slack.enabled and not config.plays.crm_tasks:
        raise UsageError(
            f"alerts go to Slack (slack.enabled) or CRM tasks (plays.crm_tasks): neither is on in {config.source_path}"
        )
    links = _links(config, contact=not dry_run)
    if dry_run:
        report = AlertsReport()
        plays = pending_plays(engine)
        report.plays = len(plays)
        for play in plays:
            where = (
                f"DM to {play.owner_email}, else {config.slack.alerts_channel}"
                if config.plays.deliver_to == "owner" and play.owner_email
                else config.slack.alerts_channel
            )
            text, _ = alert_message(play, links)
            report.preview.append(f"{where}: {text}")
        return report
    messenger = None
    if config.slack.enabled:
        from clghub.connectors.slack import SlackMessenger

        messenger = SlackMessenger(config.slack)
    tasks = _task_creators(config) if config.plays.crm_tasks else {}
    run_id = run_id or str(uuid.uuid4())
    try:
        with (
            record_job(engine, "alerts", run_id=run_id, trigger=trigger) as job,
            holding(engine, "alerts"),
        ):
            report = deliver_alerts(engine, config, messenger=messenger, tasks=tasks, links=links)
            job.counts = dict(report.counts())
            if report.failed:
                job.status = "failed"
                job.error = "; ".join(report.errors)[:2000]
    finally:
        for creator in tasks.values():
            creator.close()
    return report


def _task_creators(config: ClghubConfig) -> dict[str, Any]:
    creators: dict[str, Any] = {}
    if config.sources.salesforce.enabled:
        from clghub.connectors.salesforce.client import SalesforceClient
        from clghub.connectors.salesforce.writer import SalesforceTaskCreator

        creators["salesforce"] = SalesforceTaskCreator(SalesforceClient(config.sources.salesforce))
    if config.sources.hubspot.enabled:
        from clghub.connectors.hubspot.client import HubSpotClient
        from clghub.connectors.hubspot.writer import HubSpotTaskCreator

        creators["hubspot"] = HubSpotTaskCreator(HubSpotClient(config.sources.hubspot))
    return creators


def output_checks(config: ClghubConfig) -> list[CheckResult]:
    """One line per CRM with writeback (fields exist, writable, fit) and per Slack channel."""
    results: list[CheckResult] = []
    for crm in CRMS:
        if not getattr(config.writeback, crm).enabled:
            continue
        if not getattr(config.sources, crm).enabled:
            results.append(
                CheckResult(
                    f"writeback {crm}",
                    False,
                    f"needs sources.{crm}.enabled = true with credentials",
                )
            )
            continue
        targets = plan_targets(_writeback_settings(config, crm))
        writer = _crm_writer(config, crm)
        try:
            check = writer.check_fields(targets)
        except (ClghubError, TransientError) as exc:
            results.append(
                CheckResult(f"writeback {crm}", False, f"cannot describe the fields: {exc}")
            )
            continue
        finally:
            writer.close()
        if check.ok:
            results.append(
                CheckResult(
                    f"writeback {crm}", True, f"{len(check.fields)} fields present and writable"
                )
            )
        else:
            hint = (
                "clghub writeback --provision creates them"
                if crm == "hubspot"
                else "create them in Setup > Object Manager"
            )
            results.append(
                CheckResult(
                    f"writeback {crm}", False, "; ".join(check.problems), [*check.to_create, hint]
                )
            )
    if config.slack.enabled:
        from clghub.connectors.slack import SlackMessenger

        messenger = SlackMessenger(config.slack)
        try:
            who = messenger.check()
        except (ClghubError, TransientError) as exc:
            return [*results, CheckResult("slack", False, str(exc))]
        results.append(CheckResult("slack", True, f"authorized as {who}"))
        for purpose, channel in (
            ("digest", config.slack.digest_channel),
            ("alerts", config.slack.alerts_channel),
        ):
            try:
                channel_id = messenger.channel_id(channel)
                messenger.find_message(
                    channel_id, event_type="clghub_check", key="-", oldest=time.time() - 60
                )
            except (ClghubError, TransientError) as exc:
                results.append(CheckResult(f"slack {purpose} channel", False, f"{channel}: {exc}"))
                continue
            results.append(
                CheckResult(
                    f"slack {purpose} channel",
                    True,
                    f"{channel} ({channel_id}): found, history readable",
                )
            )
    return results


# =========================================================================== run
# Every stage in order, as configured: `clghub run` and the scheduler's jobs.

STAGES = ("sync", "score", "writeback", "digest", "alerts")
ONCE_ONLY_STAGES = ("digest", "alerts")
"""Stages whose output goes out once (a week's digest, an alert per account and condition)."""


@dataclass
class StageResult:
    name: str
    status: str
    """ok, stopped (a quota; resumes next run), failed or skipped."""
    seconds: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_row(self) -> dict[str, Any]:
        summary = ", ".join(f"{k}={v}" for k, v in self.counts.items() if not isinstance(v, dict | list))
        return {
            "stage": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "summary": summary[:120],
            "note": (self.error or "")[:160],
        }


@dataclass
class RunReport:
    run_id: str
    stages: list[StageResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        statuses = {stage.status for stage in self.stages}
        if "failed" in statuses:
            return "failed"
        if "stopped" in statuses:
            return "stopped"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "stages": [asdict(s) for s in self.stages]}


def _skip_reason(config: ClghubConfig, stage: str) -> str | None:
    """Why a stage has nothing to do with this config (it is then skipped, not failed)."""
    if stage == "sync" and not enabled_sources(config):
        return "no source enabled"
    if stage == "writeback" and not any(getattr(config.writeback, crm).enabled for crm in CRMS):
        return "no CRM has writeback enabled"
    if stage == "digest" and not config.slack.enabled:
        return "slack is not enabled"
    if stage == "alerts" and not (config.slack.enabled or config.plays.crm_tasks):
        return "neither slack nor plays.crm_tasks is enabled"
    return None


def run(
    engine: Engine,
    config: ClghubConfig,
    *,
    stages: Sequence[str] = STAGES,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    run_id: str | None = None,
    trigger: str = "cli",
    score_history_days: int = 0,
) -> RunReport:
    """Run ``stages`` in order; each records its own job_run row under one run id.

    A failed sync does not stop the rest: scores on the data there is are
    still right, and CRM fields are corrected by the next run. But what can be
    published only once (the week's digest, an alert per account and
    condition) waits for a run whose sync completed, so it never goes out on
    half-synced data; ``clghub digest`` or ``clghub run --no-sync`` publish on
    the store as it is. A failed score stops every stage that publishes it.
    """
    from clghub.workflows.score import ScoreError, run_score

    run_id = run_id or str(uuid.uuid4())
    stop = stop or threading.Event()
    progress = progress or NullProgress()
    report = RunReport(run_id)
    score_failed = False
    sync_incomplete = False
    for stage in STAGES:
        if stage not in stages:
            continue
        if stop.is_set():
            report.stages.append(StageResult(stage, "skipped", error="stopped on request"))
            continue
        reason = _skip_reason(config, stage)
        if reason is None and score_failed and stage in ("writeback", "digest", "alerts"):
            reason = "the score stage failed"
        if reason is None and sync_incomplete and stage in ONCE_ONLY_STAGES:
            reason = "held until a run's sync completes (it publishes once)"
        if reason is not None:
            report.stages.append(StageResult(stage, "skipped", error=reason))
            continue
        started = time.monotonic()
        result = StageResult(stage, "ok")
        try:
            if stage == "sync":
                synced = sync(engine, config, progress=progress, stop=stop, run_id=run_id, trigger=trigger)
                result.counts = synced.totals()
                failed = [s for s in synced.streams if s.status == "failed"]
                if failed:
                    result.status = "failed"
                    result.error = "; ".join(f"{s.source}.{s.stream}: {s.error}" for s in failed)
                elif synced.stopped:
                    result.status = "stopped"
                    result.error = "; ".join(f"{s.source}.{s.stream}: {s.error}" for s in synced.streams if s.status == "stopped")
            elif stage == "score":
                scored = run_score(engine, config, history_days=score_history_days, progress=progress, run_id=run_id, trigger=trigger)
                result.counts = {"as_of": scored.as_of.isoformat(), "steps": len(scored.steps)}
            elif stage == "writeback":
                written = writeback(engine, config, progress=progress, run_id=run_id, trigger=trigger)
                result.counts = {f"{r.crm}_{k}": v for r in written.crms for k, v in r.counts().items()}
                if not written.ok:
                    result.status = "failed"
                    result.error = "; ".join(f"{r.crm}: {r.error}" for r in written.crms if r.status not in ("ok", "skipped"))
            elif stage == "digest":
                posted = digest(engine, config, run_id=run_id, trigger=trigger)
                result.counts = {"period": posted.period, "posted": posted.status}
            else:
                alerted = alerts(engine, config, run_id=run_id, trigger=trigger)
                result.counts = alerted.counts()
                if alerted.failed:
                    result.status = "failed"
                    result.error = "; ".join(alerted.errors)[:500]
        except ScoreError as exc:
            result.status = "failed"
            result.error = str(exc)
        except QuotaExhausted as exc:
            result.status = "stopped"
            result.error = str(exc)
        except (ClghubError, TransientError) as exc:
            result.status = "failed"
            result.error = str(exc)
        result.seconds = time.monotonic() - started
        if stage == "score" and result.status == "failed":
            score_failed = True
        if stage == "sync" and result.status != "ok":
            sync_incomplete = True
        log.info("stage %s %s in %.1fs%s", stage, result.status, result.seconds, f": {result.error}" if result.error else "")
        report.stages.append(result)
    return report


def run_job(
    engine: Engine,
    config: ClghubConfig,
    job: str,
    *,
    stop: threading.Event | None = None,
    run_id: str | None = None,
    trigger: str = "schedule",
) -> RunReport:
    """A scheduled job: ``run`` (the stages config.run enables) or one stage by name."""
    if job == "run":
        stages = [stage for stage in STAGES if getattr(config.run, stage)]
    elif job in STAGES:
        stages = [job]
    else:
        raise UsageError(f"unknown job '{job}'; jobs are run, {', '.join(STAGES)}")
    return run(engine, config, stages=stages, stop=stop, run_id=run_id, trigger=trigger)
