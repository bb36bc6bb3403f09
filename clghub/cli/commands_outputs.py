"""Commands that send the value figures out: writeback, digest, alerts."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from clghub.cli.render import console, table_of
from clghub.cli.state import state_of

__all__ = ["register"]


def _shown(value: str | None) -> str:
    return "(empty)" if value is None else value if len(value) <= 60 else value[:57] + "..."


def writeback(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the changes and send nothing (reads the store only)."
        ),
    ] = False,
    provision: Annotated[
        bool,
        typer.Option(
            "--provision",
            help="First create the HubSpot property group and properties (and list the Salesforce fields to create).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Write the changed value fields (score, band, trends, drivers, CLV, time to value) to the CRMs.

    Only fields that differ from what the CRM last confirmed are sent, in
    batches; records the CRM refuses are reported and tried again on the next
    run. Exits 1 if a CRM's writeback failed.

    Example: clghub writeback --dry-run
    """
    from clghub import pipeline
    from clghub.lock import holding
    from clghub.progress import progress_for_terminal

    state = state_of(ctx)
    config = state.config()
    engine = state.engine()
    # A dry run only reads; anything that writes waits for no other run.
    with (
        contextlib.nullcontext() if dry_run else holding(engine, "run"),
        progress_for_terminal(not as_json and not dry_run) as progress,
    ):
        report = pipeline.writeback(
            engine, config, dry_run=dry_run, provision=provision, progress=progress
        )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), default=str, indent=2))
    else:
        rows: list[dict[str, Any]] = [
            {
                "crm": r.crm,
                "status": r.status,
                "mode": r.mode,
                "records": r.records,
                "changed": r.changed,
                "fields": r.fields,
                "written": r.written,
                "refused": r.failed,
                "in doubt": r.in_doubt,
                "settled": r.settled,
                "requests": r.requests,
                "note": r.error or "",
            }
            for r in report.crms
        ]
        console.print(
            table_of("Writeback (dry run: nothing sent)" if dry_run else "Writeback", rows)
        )
        for r in report.crms:
            for line in r.provisioned:
                console.print(f"{r.crm}: {line}")
            if r.failures:
                console.print(
                    table_of(
                        f"{r.crm}: records refused (tried again next run)",
                        [{"record": rid, "reason": why} for rid, why in r.failures],
                    )
                )
            if r.preview:
                typer.echo(
                    f"{r.crm}: {r.changed} records, {r.fields} fields would change; the first ones:"
                )
                record = None
                for change in r.preview:
                    if change.record_id != record:
                        record = change.record_id
                        typer.echo(f"  {change.record_id} {change.account_name}")
                    before = "(never written)" if change.first_write else _shown(change.old)
                    typer.echo(f"    {change.field}: {before} -> {_shown(change.new)}")
    if not report.ok:
        raise typer.Exit(1)


def digest(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Write the Block Kit JSON and the chart PNG to files, print a preview, send nothing.",
        ),
    ] = False,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="ISO week to post, YYYY-Www (default: the week of the reporting day).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the --dry-run files (default: the working directory).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Post the weekly leadership digest to slack.digest_channel, once per week.

    NRR and GRR with the change since the last digest, the ARR bridge (and
    its chart), expansion, value-score risers and fallers with their drivers,
    at-risk ARR, accounts without executive engagement, the incentive pool.
    A rerun, or a run after one that stopped halfway, never posts it twice.

    Example: clghub digest --dry-run --period 2026-W47 --out digests/
    """
    from clghub import pipeline
    from clghub.lock import holding

    state = state_of(ctx)
    config = state.config()
    engine = state.engine()
    with contextlib.nullcontext() if dry_run else holding(engine, "run"):
        report = pipeline.digest(engine, config, period=period, dry_run=dry_run, out_dir=out)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), default=str, indent=2))
        return
    if dry_run:
        typer.echo(report.preview)
        typer.echo("")
        for path in report.files:
            typer.echo(f"wrote {path}")
        typer.echo("dry run: nothing was sent")
        return
    chart = "" if report.chart == "none" else f"; chart {report.chart}"
    typer.echo(
        f"digest {report.period} to {report.channel}: {report.status} (ts {report.message_ts}){chart}"
    )


def alerts(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="List the alerts that would be sent, and where; send nothing."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Announce the open plays not yet announced: to the owner or slack.alerts_channel, and as CRM tasks.

    Each play is announced once (also after a run that stopped halfway);
    failures are reported and tried again on the next run (exit 1).

    Example: clghub alerts --dry-run
    """
    from dataclasses import asdict

    from clghub import pipeline
    from clghub.lock import holding

    state = state_of(ctx)
    config = state.config()
    engine = state.engine()
    with contextlib.nullcontext() if dry_run else holding(engine, "run"):
        report = pipeline.alerts(engine, config, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(asdict(report), default=str, indent=2))
    elif dry_run:
        for line in report.preview:
            typer.echo(line)
        typer.echo(f"{report.plays} play(s) to announce; dry run: nothing was sent")
    else:
        typer.echo(
            f"{report.plays} play(s): {report.messages} message(s) posted, {report.found} found already posted, "
            f"{report.tasks} task(s) created, {report.notified} announced, {report.failed} failed"
        )
        for line in report.errors:
            typer.echo(f"  {line}", err=True)
    if report.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(writeback)
    app.command()(digest)
    app.command()(alerts)
