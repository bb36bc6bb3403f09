"""End-to-end `clghub run` against a sandbox, and the state it leaves everywhere.

Shared by the resilience tests and ``tests/bench/bench_chaos.py``: a config
for a sandbox with short client timeouts and a store of its own, the run
itself (in this process, so :data:`clghub.http.METRICS` sees its retries, or
as a subprocess that can be killed), and :class:`Outcome`, the final state
in the store, in the CRMs' value fields and in Slack, comparable row for row.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from clghub import pipeline
from clghub.cli.app import main
from clghub.config import load_config
from clghub.sandbox.config_out import write_config
from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import SandboxOptions
from clghub.store.engine import create_store_engine
from tests.support.crm_state import (
    CLOCK_FIELDS,
    HS_VALUE_FIELDS,
    SF_VALUE_FIELDS,
    CrmReader,
    SlackMessage,
    requests_by_route,
    slack_messages,
)
from tests.support.store_state import differences, full_snapshot

__all__ = [
    "AS_OF",
    "CHAT_POST",
    "HS_WRITE",
    "SF_WRITE",
    "STAGES",
    "CliResult",
    "ClientSettings",
    "KillReport",
    "Outcome",
    "capture_outcome",
    "chaos_sandbox",
    "cli",
    "cli_process",
    "control",
    "fresh_org",
    "kill_during",
    "rewritten_fields",
    "stage_seconds",
    "write_run_config",
]

AS_OF = date(2026, 6, 30)
SF_WRITE = ("PATCH", "/services/data/{version}/composite/sobjects")
HS_WRITE = ("POST", "/crm/v3/objects/{object}/batch/update")
CHAT_POST = ("POST", "/api/chat.postMessage")
STAGES = ("sync", "score", "writeback", "digest")
"""The stages a kill is aimed at (alerts follow the digest and share its machinery)."""


@dataclass(frozen=True)
class ClientSettings:
    """The HTTP settings every source and Slack get in a chaos config."""

    timeout_seconds: float = 1.0
    """Short, so that a stalled answer (slow_seconds just above it) costs little."""
    max_retries: int = 12
    max_retry_wait_seconds: float = 1.0

    def lines(self) -> str:
        return (
            f"timeout_seconds = {self.timeout_seconds}\n"
            f"max_retries = {self.max_retries}\n"
            f"max_retry_wait_seconds = {self.max_retry_wait_seconds}\n"
        )


def chaos_sandbox(accounts: int, *, seed: int = 11, **options: Any) -> SandboxServer:
    """A sandbox (not started) pinned to :data:`AS_OF`; same seed, same org."""
    return SandboxServer(SandboxOptions(accounts=accounts, seed=seed, as_of=AS_OF, **options))


def write_run_config(
    server: SandboxServer,
    folder: Path,
    *,
    clients: ClientSettings | None = None,
    extra: str = "",
    store_url: str | None = None,
) -> Path:
    """A clghub.toml (and its secrets file) for ``server`` with its own store in ``folder``.

    ``extra`` is TOML appended at the end (new tables only); ``store_url``
    replaces the SQLite file next to the config.
    """
    path, _ = write_config(folder / "clghub.toml", server.endpoints())
    text = path.read_text(encoding="utf-8")
    settings = (clients or ClientSettings()).lines()
    for header in (
        "[sources.salesforce]\n",
        "[sources.hubspot]\n",
        "[sources.product_usage.rest]\n",
        "[slack]\n",
    ):
        if header not in text:
            raise AssertionError(f"the sandbox config has no {header.strip()} table")
        text = text.replace(header, header + settings, 1)
    if store_url is not None:
        text = text.replace('url = "sqlite:///clghub.db"', f'url = "{store_url}"', 1)
    path.write_text(text + ("\n" + extra if extra else ""), encoding="utf-8")
    return path


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def cli(config_path: Path, *args: str) -> CliResult:
    """``clghub --config PATH ARGS`` in this process (its output captured)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["--config", str(config_path), *args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    _quiet_root_logger()
    return CliResult(code, out.getvalue(), err.getvalue())


def _quiet_root_logger() -> None:
    """The CLI pointed the root logger at the captured stream; send it nowhere now."""
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def cli_process(
    config_path: Path, *args: str, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """``clghub --config PATH ARGS`` as a child process (to be killed, or waited for)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CLGHUB_")} | (env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "clghub", "--config", str(config_path), *args],
        env=environment,
        text=True,
        **popen,
    )


def control(
    server: SandboxServer, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    answer = httpx.request(method, server.http_url + path, json=body, timeout=30)
    answer.raise_for_status()
    return answer.json()


@dataclass
class Outcome:
    """Everything a run leaves behind: the store, the CRMs' value fields, Slack."""

    store: dict[str, list[tuple[str, ...]]]
    crm: dict[str, list[tuple[str, ...]]]
    slack: list[SlackMessage]
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)

    def slack_rows(self) -> dict[str, list[tuple[str, ...]]]:
        by_channel: dict[str, list[tuple[str, ...]]] = {}
        for message in self.slack:
            by_channel.setdefault(f"slack {message.channel}", []).append(
                (
                    message.text,
                    message.blocks,
                    str(message.key),
                    str(message.event_type),
                    str(message.files),
                )
            )
        return {k: sorted(v) for k, v in by_channel.items()}

    def differences(self, other: Outcome) -> list[str]:
        """What ``other`` has that this one lacks or has more of, everywhere; empty when equal."""
        return (
            differences(self.store, other.store, label="store ")
            + differences(self.crm, other.crm, label="crm ")
            + differences(self.slack_rows(), other.slack_rows())
        )


def capture_outcome(
    server: SandboxServer,
    store_url: str,
    *,
    clocks: frozenset[str] = frozenset(),
    reader: CrmReader | None = None,
) -> Outcome:
    """What a run left behind; ``clocks`` names store columns compared only as set or not."""
    engine = create_store_engine(store_url)
    try:
        store = full_snapshot(engine, clocks=clocks)
    finally:
        engine.dispose()
    # The requests first: reading the CRMs below is counted too.
    served = requests_by_route(server)
    return Outcome(
        store=store,
        crm=(reader or CrmReader(server)).value_fields(),
        slack=slack_messages(server),
        requests=served,
    )


def fresh_org(server: SandboxServer, config_path: Path) -> None:
    """The org as generated (a reset), the HubSpot value properties created, counters cleared.

    Provisioning is setup, not the run under test: a real portal has its
    properties before clghub writes to them.
    """
    control(server, "POST", "/_sandbox/faults", {"rate": 0.0})
    control(server, "POST", "/_sandbox/reset")
    pipeline.provision_hubspot(load_config(config_path))
    control(server, "POST", "/_sandbox/requests/reset")


def rewritten_fields(server: SandboxServer) -> list[str]:
    """Value fields the CRMs saw written with two or more different values (clocks aside)."""
    fields = [f for f in (*SF_VALUE_FIELDS, *HS_VALUE_FIELDS) if f not in CLOCK_FIELDS]
    answer = httpx.get(server.http_url + "/_sandbox/writes", params={"field": fields}, timeout=30)
    answer.raise_for_status()
    return [
        f"{w['system']} {w['object']} {w['record_id']} {w['field']}: {w['values']}"
        for w in answer.json()["writes"]
        if len(w["values"]) > 1
    ]


def stage_seconds(store_path: Path) -> dict[str, float]:
    """How long each stage of the last run in a SQLite store took (its job_run rows)."""
    with contextlib.closing(sqlite3.connect(store_path)) as db:
        rows = db.execute(
            "SELECT job, duration_seconds FROM job_run WHERE run_id = "
            "(SELECT run_id FROM job_run ORDER BY id DESC LIMIT 1)"
        ).fetchall()
    return {str(job): float(seconds or 0.0) for job, seconds in rows}


@dataclass(frozen=True)
class KillReport:
    aimed_at: str
    killed_in: str | None
    """The stage running when the kill landed; None if the run ended first."""
    after_seconds: float


def _running_stage(store_path: Path, pid: int) -> str | None:
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=0.2)
        ) as db:
            row = db.execute(
                "SELECT job FROM job_run WHERE pid = ? AND status = 'running' ORDER BY id DESC LIMIT 1",
                (pid,),
            ).fetchone()
    except sqlite3.Error:
        return None  # not created or not migrated yet, or busy this instant
    return None if row is None else str(row[0])


def kill_during(
    config_path: Path, store_path: Path, stage: str, delay: float, *, timeout: float = 300.0
) -> KillReport:
    """Start ``clghub run``; SIGKILL it ``delay`` seconds into ``stage`` (read from job_run)."""
    process = cli_process(config_path, "run", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    entered: float | None = None
    try:
        while process.poll() is None and time.monotonic() - started < timeout:
            running = _running_stage(store_path, process.pid)
            if entered is None and running == stage:
                entered = time.monotonic()
            if entered is not None and time.monotonic() - entered >= delay:
                landed = _running_stage(store_path, process.pid)
                process.send_signal(signal.SIGKILL)
                process.wait(30)
                return KillReport(stage, landed or "(between stages)", time.monotonic() - started)
            time.sleep(0.01)
        return KillReport(stage, None, time.monotonic() - started)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
