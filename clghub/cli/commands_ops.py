"""Operations: run (every stage, once), schedule (on cron, one active per store)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from clghub.cli.commands_pipeline import stop_on_sigterm
from clghub.cli.render import console, table_of
from clghub.cli.state import state_of
from clghub.progress import progress_for_terminal

__all__ = ["register_run", "register_schedule"]


def run(
    ctx: typer.Context,
    sync: Annotated[
        bool | None, typer.Option("--sync/--no-sync", help="Pull the sources (default: run.sync).")
    ] = None,
    score: Annotated[
        bool | None,
        typer.Option("--score/--no-score", help="Run the workflows (default: run.score)."),
    ] = None,
    writeback: Annotated[
        bool | None,
        typer.Option(
            "--writeback/--no-writeback",
            help="Write value fields to the CRMs (default: run.writeback).",
        ),
    ] = None,
    digest: Annotated[
        bool | None,
        typer.Option("--digest/--no-digest", help="Post this week's digest (default: run.digest)."),
    ] = None,
    alerts: Annotated[
        bool | None,
        typer.Option("--alerts/--no-alerts", help="Deliver new plays (default: run.alerts)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
) -> None:
    """Sync, score, write back, post the digest and deliver alerts, in order, as configured.

    One run at a time per store: a second `clghub run` (or a scheduled job) waits
    for none and exits with an error instead. Each stage writes a job_run row.
    When the sync fails or stops, the digest and alerts (which go out once) wait
    for a run whose sync completes.

    Example: clghub run --no-digest
    """
    from clghub import pipeline
    from clghub.lock import holding

    state = state_of(ctx)
    config = state.config()
    engine = state.engine()
    chosen = {
        "sync": config.run.sync if sync is None else sync,
        "score": config.run.score if score is None else score,
        "writeback": config.run.writeback if writeback is None else writeback,
        "digest": config.run.digest if digest is None else digest,
        "alerts": config.run.alerts if alerts is None else alerts,
    }
    with (
        holding(engine, "run"),
        stop_on_sigterm() as stop,
        progress_for_terminal(not as_json) as progress,
    ):
        report = pipeline.run(
            engine,
            config,
            stages=[name for name, on in chosen.items() if on],
            stop=stop,
            progress=progress,
        )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), default=str, indent=2))
    else:
        console.print(table_of("Run", [s.as_row() for s in report.stages]))
    if report.status == "failed":
        raise typer.Exit(1)


def schedule(ctx: typer.Context) -> None:
    """Run the configured jobs on their cron schedules until stopped (SIGTERM or Ctrl-C).

    Start it on more than one host against one PostgreSQL store for
    availability: one is active, the others stand by and take over within a
    poll interval (schedule.standby_poll_seconds) when it dies.

    Example: clghub --config /etc/clghub/clghub.toml schedule
    """
    from clghub.scheduler import ScheduleService

    state = state_of(ctx)
    config = state.config()
    engine = state.engine()
    service = ScheduleService(config, state.config_path, engine)
    stop = threading.Event()

    def ask(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.serve(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("scheduler stopped", err=True)


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the store, config, digest JSON and chart.")
    ] = Path("clghub-demo"),
    accounts: Annotated[int, typer.Option("--accounts", min=10, max=100_000, help="Accounts in the sandbox org.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sandbox org (same seed, same data).")] = 42,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start over: delete the folder's store and org first.")] = False,
) -> None:
    """Run the whole pipeline on the built-in sandbox and a local SQLite store.

    Starts emulated Salesforce, HubSpot, Slack and product-usage APIs on
    loopback, syncs them, scores, writes the value fields back, posts the
    digest and the alerts, and prints what came out. Needs no account or
    network. Run it again to see an incremental run; --fresh starts over.

    Example: clghub demo --accounts 500 --dir /tmp/clghub-demo
    """
    from clghub.demo import run_demo

    with stop_on_sigterm() as stop, progress_for_terminal() as progress:
        result = run_demo(directory, accounts=accounts, seed=seed, fresh=fresh, progress=progress, stop=stop)
    print_demo(result)
    if result.run.status == "failed":
        raise typer.Exit(1)


def print_demo(result: Any) -> None:
    from rich.text import Text

    from clghub.config import load_config
    from clghub.demo import money, percent
    from clghub.store.engine import open_store
    from clghub.workflows.digest_data import DigestPeriod, load_digest_data

    config = load_config(result.config_path)
    engine = open_store(config)
    with engine.connect() as connection:
        data = load_digest_data(connection, config, DigestPeriod.of(result.as_of), result.as_of)
    engine.dispose()
    currency = data.currency
    console.print(Text(f"clghub demo: {result.accounts} accounts, history up to {result.as_of}, in {result.folder}", style="bold"))
    console.print(table_of("Stages", [s.as_row() for s in result.run.stages]))
    bridge = data.bridge
    if bridge is not None:
        console.print(
            Text(
                f"Trailing twelve months to {bridge.period_end}: NRR {percent(bridge.nrr)}, "
                f"GRR {percent(bridge.grr)}, logo retention {percent(bridge.logo_retention)}"
            )
        )
        console.print(
            table_of(
                "ARR bridge",
                [
                    {"movement": name, "ARR": money(value, currency)}
                    for name, value in (
                        ("start", bridge.start),
                        ("+ new", bridge.new),
                        ("+ expansion", bridge.expansion),
                        ("+ reactivation", bridge.reactivation),
                        ("- contraction", bridge.contraction),
                        ("- churn", bridge.churn),
                        ("end", bridge.end),
                    )
                ],
            )
        )
    for title, ranked in (("Top value risers (30 days)", data.risers), ("Top value fallers (30 days)", data.fallers)):
        rows = [
            {
                "account": line.name,
                "score": "-" if line.score is None else f"{line.score:.0f}",
                "30d": "-" if line.trend_30d is None else f"{line.trend_30d:+.0f}",
                "drivers": line.explanation or "",
            }
            for line in ranked.lines
        ]
        if rows:
            console.print(table_of(title, rows))
    if data.pool is not None:
        teams = ", ".join(f"{team} {money(amount, currency)}" for team, amount in sorted(data.teams.items()))
        console.print(Text(f"Incentive pool {data.incentive_period}: {money(data.pool, currency)} ({teams})"))
    for stage in result.run.stages:
        if stage.name == "writeback" and stage.counts:
            console.print(Text("Written back: " + ", ".join(f"{k}={v}" for k, v in stage.counts.items())))
    console.print(Text(f"Slack messages posted in the sandbox: {result.slack_messages}"))
    for path in result.digest_files:
        console.print(Text(f"Digest file: {path}"))
    console.print(Text(f"Explore: clghub --config {result.config_path} status   (or export value_scores, retention, clv, incentives)"))


def register_run(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(run)


def register_schedule(app: typer.Typer) -> None:
    app.command()(schedule)
