"""The ``clghub`` command line.

Exit codes: 0 success, 1 a failed run, 2 a usage or configuration error.
Every command is a thin layer over a library call; errors become one clear
line, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from clghub import __version__
from clghub.cli import (
    commands_data,
    commands_ops,
    commands_outputs,
    commands_pipeline,
    commands_sandbox,
    commands_score,
)
from clghub.cli.state import AppState, fail
from clghub.config import ConfigError
from clghub.config.secrets import REDACTOR
from clghub.errors import ClghubError

__all__ = ["app", "main"]

app = typer.Typer(
    name="clghub",
    help=(
        "clghub: CRM and product data in, value figures out.\n\n"
        "Pulls accounts, opportunities, tickets and product usage from Salesforce, "
        "HubSpot and product data into one store; computes NRR, GRR, value scores, "
        "CLV and shared incentives; writes them back to CRM fields and Slack.\n\n"
        "Example: clghub demo"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clghub {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (default: $CLGHUB_CONFIG, else ./clghub.toml).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of failures.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = AppState(config_option=config, debug=debug or os.environ.get("CLGHUB_DEBUG") == "1")


# The order of the help listing: the newcomer's command first, then a run's
# stages in order, then operations and inspection.
commands_ops.register_run(app)
commands_pipeline.register(app)
commands_score.register(app)
commands_outputs.register(app)
commands_ops.register_schedule(app)
commands_data.register(app)
commands_sandbox.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and map failures to exit codes."""
    debug = os.environ.get("CLGHUB_DEBUG") == "1" or "--debug" in (
        argv if argv is not None else sys.argv[1:]
    )
    try:
        # Standalone mode: help, usage errors (exit 2) and typer.Exit are
        # handled by the command-line library; everything else arrives here.
        app(args=argv, prog_name="clghub")
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(REDACTOR.redact(str(problem)), err=True)
        sys.exit(2)
    except ClghubError as exc:
        if debug:
            raise
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if debug:
            raise
        fail(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)
