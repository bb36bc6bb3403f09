"""``clghub sandbox ...``: serve the emulated APIs, write the usage data as files."""

from __future__ import annotations

import signal
import threading
from datetime import date
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from clghub.errors import UsageError

__all__ = ["register"]

sandbox_app = typer.Typer(
    name="sandbox",
    help=(
        "The built-in sandbox: emulated Salesforce, HubSpot, Slack and product usage APIs "
        "over a generated B2B SaaS company, on loopback.\n\n"
        "Example: clghub sandbox serve --accounts 500 --config-out sandbox/clghub.toml"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


class FileFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of must be a date written YYYY-MM-DD, got {value!r}") from None


AccountsOption = Annotated[
    int, typer.Option("--accounts", min=1, help="Accounts in the generated org.")
]
SeedOption = Annotated[
    int, typer.Option("--seed", help="Seed of the generated org (same seed, same data).")
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Day the generated history ends, YYYY-MM-DD (default: today, UTC).",
        show_default=False,
    ),
]
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="Directory for the data and the CA; reused across restarts (default: a temporary one).",
        show_default=False,
    ),
]


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to bind. Anything but loopback exposes the sandbox to the network.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="HTTP port (0: a free one).")
    ] = 8765,
    tls_port: Annotated[
        int,
        typer.Option(
            "--tls-port",
            min=0,
            max=65535,
            help="HTTPS port (0: a free one); Salesforce clients use it.",
        ),
    ] = 8766,
    accounts: AccountsOption = 200,
    seed: SeedOption = 42,
    as_of: AsOfOption = None,
    fault_rate: Annotated[
        float,
        typer.Option(
            "--fault-rate", min=0.0, max=1.0, help="Share of API requests that fail on purpose."
        ),
    ] = 0.0,
    fault_kinds: Annotated[
        str | None,
        typer.Option(
            "--fault-kinds",
            help="Comma-separated fault kinds to inject (default: all); see GET /_sandbox/faults.",
            show_default=False,
        ),
    ] = None,
    strict_auth: Annotated[
        bool,
        typer.Option("--strict-auth", help="Accept only the sandbox's own credentials and tokens."),
    ] = False,
    state_dir: StateOption = None,
    config_out: Annotated[
        Path | None,
        typer.Option(
            "--config-out",
            help="Write a clghub config (and its secrets file) pointing at this sandbox.",
            show_default=False,
        ),
    ] = None,
    hs_rate_limit: Annotated[
        int,
        typer.Option(
            "--hs-rate-limit",
            min=1,
            help="HubSpot requests per 10 seconds per token before 429 (raise it for benchmarks).",
        ),
    ] = 190,
    sf_daily_quota: Annotated[
        int,
        typer.Option("--sf-daily-quota", min=1, help="Salesforce API requests a day before 403."),
    ] = 5_000_000,
    bulk_import: Annotated[
        int,
        typer.Option(
            "--bulk-import",
            min=0,
            help="HubSpot records that share one last-modified moment (a bulk import).",
        ),
    ] = 0,
) -> None:
    """Serve the emulated Salesforce, HubSpot, Slack and product usage APIs until stopped.

    HTTP on --port (HubSpot /crm, Slack /api/, usage /usage/v1/daily, control
    /_sandbox), HTTPS on --tls-port with a local CA written to the state
    directory as ca.pem (Salesforce /services). Ctrl-C or SIGTERM stops it.

    Example: clghub sandbox serve --accounts 500 --as-of 2025-06-30 --config-out sandbox/clghub.toml
    """
    from clghub.sandbox.server import SandboxServer, SandboxServerError
    from clghub.sandbox.state import SandboxOptions

    kinds = tuple(k.strip() for k in fault_kinds.split(",") if k.strip()) if fault_kinds else None
    try:
        options = SandboxOptions(
            seed=seed,
            accounts=accounts,
            as_of=_as_of(as_of),
            fault_rate=fault_rate,
            fault_kinds=kinds,
            strict_auth=strict_auth,
            state_dir=state_dir.resolve() if state_dir else None,
            hs_bulk_import=bulk_import,
            hs_requests_per_10s=hs_rate_limit,
            sf_daily_quota=sf_daily_quota,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    typer.echo(
        f"generating {accounts} accounts (seed {seed}, history to {options.anchor}) ...", err=True
    )
    server = SandboxServer(options, host=host, http_port=port, https_port=tls_port)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except SandboxServerError as exc:
            raise UsageError(str(exc)) from None
        summary = server.summary
        reused = " (reused from the state directory)" if summary and summary.reused else ""
        typer.echo(f"clghub sandbox ready{reused}")
        typer.echo(
            f"  http   {server.http_url}   HubSpot /crm, Slack /api/, usage /usage/v1/daily, control /_sandbox"
        )
        typer.echo(f"  https  {server.https_url}   Salesforce /services (trust {server.ca_path})")
        if config_out is not None:
            config_path, secrets_path = server.write_config(config_out)
            typer.echo(f"  config {config_path} (secrets in {secrets_path.name})")
        if host not in ("127.0.0.1", "localhost", "::1"):
            typer.echo(
                f"warning: bound to {host}: anyone who can reach it can use the sandbox", err=True
            )
        typer.echo("Press Ctrl-C to stop.")
        server.wait(stop)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("sandbox stopped", err=True)


def usage_files(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the files to.")],
    file_format: Annotated[
        FileFormat, typer.Option("--format", help="File format.")
    ] = FileFormat.csv,
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            help="Raw events (several a day, summing to the daily figure) instead of daily rows.",
        ),
    ] = False,
    accounts: AccountsOption = 200,
    seed: SeedOption = 42,
    as_of: AsOfOption = None,
    usage_days: Annotated[
        int, typer.Option("--days", min=1, max=3650, help="Days of usage before --as-of.")
    ] = 120,
    state_dir: StateOption = None,
) -> None:
    """Write the sandbox's product usage as files, one per day (for the files source).

    Example: clghub sandbox usage-files --out usage/ --format jsonl --events --as-of 2025-06-30
    """
    from clghub.sandbox.generator import ensure_data
    from clghub.sandbox.state import SandboxOptions, SandboxState
    from clghub.sandbox.usage_files import write_usage_files

    try:
        options = SandboxOptions(
            seed=seed,
            accounts=accounts,
            as_of=_as_of(as_of),
            usage_days=usage_days,
            state_dir=state_dir.resolve() if state_dir else None,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    state = SandboxState(options)
    try:
        ensure_data(state)
        paths = write_usage_files(state, out, file_format=file_format.value, events=events)
    finally:
        state.close()
    kind = "event" if events else "daily usage"
    typer.echo(f"wrote {len(paths)} {kind} files to {out}")


def register(app: typer.Typer) -> None:
    sandbox_app.command()(serve)
    sandbox_app.command("usage-files")(usage_files)
    app.add_typer(sandbox_app, name="sandbox")
