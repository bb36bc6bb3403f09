"""``clghub score``: run the workflows (ARR, retention, time to value, value scores, CLV,
incentives, plays) against the store."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from clghub.cli.render import console
from clghub.cli.state import state_of

__all__ = ["register"]


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a date written YYYY-MM-DD") from None


def _summary(counts: dict[str, int | float]) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items())


def score(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Compute as of this day (YYYY-MM-DD); default reporting.as_of, else today (UTC).",
            show_default=False,
        ),
    ] = None,
    backfill_days: Annotated[
        int,
        typer.Option(
            "--backfill-days",
            min=0,
            help="Also fill missing weekly value-score snapshots this many days back (for trends).",
        ),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Run the workflows: ARR ledger and bridge, retention, time to value, value scores, CLV,
    incentives and plays, each in its own transaction; records the run (clghub status).

    Example: clghub score --as-of 2026-06-30 --backfill-days 90
    """
    from clghub.lock import holding
    from clghub.progress import progress_for_terminal
    from clghub.workflows.score import run_score

    day = _parse_day(as_of)
    state = state_of(ctx)
    config = state.config()
    engine = state.engine()
    with holding(engine, "run"), progress_for_terminal(enabled=not as_json) as progress:
        report = run_score(engine, config, as_of=day, history_days=backfill_days, progress=progress)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    table = Table(title=f"clghub score as of {report.as_of.isoformat()}", title_justify="left")
    for column in ("step", "seconds", "counts"):
        table.add_column(column)
    for step in report.steps:
        if step.as_of == report.as_of:
            # Text, not markup: nothing in the counts is Rich syntax.
            table.add_row(Text(step.name), Text(f"{step.seconds:.2f}"), Text(_summary(step.counts)))
    console.print(table)
    if report.history:
        console.print(
            f"Value-score history filled for {len(report.history)} earlier day(s): "
            f"{report.history[0].isoformat()} .. {report.history[-1].isoformat()}"
        )
    console.print(f"Done in {report.duration_seconds:.1f} s (run {report.run_id}).")


def register(app: typer.Typer) -> None:
    app.command()(score)
