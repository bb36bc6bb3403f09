"""Commands that move data: sync (score, writeback, digest and run join later)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from clghub.cli.render import console, table_of
from clghub.cli.state import state_of
from clghub.progress import progress_for_terminal

__all__ = ["register", "stop_on_sigterm"]


@contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    """SIGTERM (and a first Ctrl-C) ask the run to stop after the page in hand is committed."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def ask(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def sync(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Only this source (salesforce, hubspot, product_usage); repeatable.",
        ),
    ] = None,
    full_refresh: Annotated[
        bool,
        typer.Option("--full-refresh", help="Re-read everything instead of only what changed."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
) -> None:
    """Pull the enabled sources into the store, incrementally, a page at a time.

    Exits 1 if a stream failed; a stream stopped by an API quota keeps its
    checkpoint and resumes on the next run. Like every command that changes the
    store, it refuses to start while another (a run, a scheduled job) is at work.

    Example: clghub sync --source salesforce --full-refresh
    """
    from clghub import pipeline
    from clghub.lock import holding

    state = state_of(ctx)
    config = state.config()
    engine = state.engine()
    with (
        holding(engine, "run"),
        stop_on_sigterm() as stop,
        progress_for_terminal(not as_json) as progress,
    ):
        report = pipeline.sync(
            engine,
            config,
            sources=source or None,
            full_refresh=full_refresh,
            progress=progress,
            stop=stop,
        )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), default=str, indent=2))
    else:
        rows = [
            {
                "stream": f"{s.source}.{s.stream}",
                "status": s.status,
                "mode": s.mode,
                "read": s.read,
                "inserted": s.inserted,
                "updated": s.updated,
                "unchanged": s.unchanged,
                "deleted": s.deleted,
                "quarantined": s.quarantined,
                "seconds": round(s.seconds, 1),
                "note": s.error or "",
            }
            for s in report.streams
        ]
        console.print(table_of("Sync", rows))
        unlinked = {k: v for k, v in report.unlinked.items() if v}
        if unlinked:
            console.print(f"Waiting for their account (clghub export quarantine): {unlinked}")
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(sync)
