"""Commands that read or prepare the store: check, status, export, migrate."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from clghub.cli.render import print_status
from clghub.cli.state import state_of

__all__ = ["register"]


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"


def check(
    ctx: typer.Context,
    offline: Annotated[
        bool, typer.Option("--offline", help="Validate config and mappings only; contact nothing.")
    ] = False,
) -> None:
    """Validate the config and mappings, test each connection and the writeback fields.

    Prints one line per check, OK or what to fix; exits 1 if any check fails.

    Example: clghub --config clghub.toml check
    """
    from clghub.pipeline import run_checks

    state = state_of(ctx)
    config = state.config()
    results = run_checks(config, offline=offline)
    width = max((len(r.name) for r in results), default=0)
    for result in results:
        mark = "OK  " if result.ok else "FAIL"
        typer.echo(f"{mark} {result.name.ljust(width)}  {result.detail}")
        for line in result.hints:
            typer.echo(f"     {' ' * width}  {line}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Show recent runs per stage, cursors per stream, quarantined records, pending work.

    Example: clghub status --json
    """
    from clghub.status import collect_status

    state = state_of(ctx)
    engine = state.engine()
    with engine.connect() as connection:
        report = collect_status(connection, config=state.config())
    if as_json:
        typer.echo(json.dumps(report, default=str, indent=2))
    else:
        print_status(report)


def export(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="What to export; `clghub export --list` names them.")
    ] = "",
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ExportFormat.json,
    detail: Annotated[
        bool,
        typer.Option(
            "--detail", help="Row-level detail where offered (e.g. incentives per account)."
        ),
    ] = False,
    list_names: Annotated[bool, typer.Option("--list", help="List what can be exported.")] = False,
) -> None:
    """Print a table of the store (accounts, value_scores, retention, clv, incentives, ...).

    Example: clghub export value_scores --format csv > scores.csv
    """
    from clghub.errors import UsageError
    from clghub.export import EXPORTS, export_rows, write_csv, write_json

    if list_names or not name:
        if not list_names:
            raise UsageError("name what to export, e.g. `clghub export accounts`; --list shows all")
        for export_name in sorted(EXPORTS):
            typer.echo(f"{export_name:<22} {EXPORTS[export_name].description}")
        return
    state = state_of(ctx)
    engine = state.engine()
    options: dict[str, Any] = {"detail": detail, "config": state.config()}
    with engine.connect() as connection:
        columns, rows = export_rows(connection, name, options)
        if fmt is ExportFormat.csv:
            write_csv(sys.stdout, columns, rows)
        else:
            write_json(sys.stdout, rows)


def migrate(ctx: typer.Context) -> None:
    """Bring the store's schema up to date (also done on start-up unless store.auto_migrate = false).

    Example: clghub migrate
    """
    from clghub.store.engine import create_store_engine, describe_url, store_url
    from clghub.store.migrate import current_revision, head_revision, upgrade

    state = state_of(ctx)
    url = store_url(state.config())
    engine = create_store_engine(url)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    engine.dispose()
    if before == after:
        typer.echo(f"{describe_url(url)}: schema already at {head_revision()}")
    else:
        typer.echo(f"{describe_url(url)}: schema {before or 'empty'} -> {after}")


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(status)
    app.command()(export)
    app.command()(migrate)
