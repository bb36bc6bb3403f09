"""``clghub demo``: the whole pipeline on the built-in sandbox and a local SQLite store.

Starts the sandbox in-process on free loopback ports (its org generated from
the seed, history up to today), writes a config pointing every source and
destination at it, and runs what a scheduled ``clghub run`` would: sync,
score (with 90 days of weekly history, so trends exist), writeback (after
creating the HubSpot properties, as ``--provision`` does), the digest and
the alerts. Leaves the store, the config, the digest's Block Kit JSON and
its chart in the demo folder, and returns what to print.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from clghub.config import load_config
from clghub.progress import Progress

__all__ = ["DemoResult", "run_demo"]

HISTORY_DAYS = 90


@dataclass
class DemoResult:
    folder: Path
    config_path: Path
    as_of: date
    accounts: int
    run: Any
    digest_files: list[str] = field(default_factory=list)
    digest: Any = None
    provisioned: list[str] = field(default_factory=list)
    slack_messages: int = 0


def run_demo(
    folder: Path,
    *,
    accounts: int,
    seed: int,
    fresh: bool = False,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> DemoResult:
    from clghub import pipeline
    from clghub.sandbox.server import SandboxServer
    from clghub.sandbox.state import SandboxOptions
    from clghub.store.engine import open_store

    folder = folder.resolve()
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    today = datetime.now(UTC).date()
    options = SandboxOptions(accounts=accounts, seed=seed, as_of=today, state_dir=folder / "sandbox")
    with SandboxServer(options) as sandbox:
        config_path, _ = sandbox.write_config(folder / "clghub.toml")
        config = load_config(config_path)
        # Alerts go to each account owner's direct messages, as CS teams run them.
        config.plays.deliver_to = "owner"
        engine = open_store(config)
        try:
            provisioned = pipeline.provision_hubspot(config)
            report = pipeline.run(engine, config, progress=progress, stop=stop, trigger="demo", score_history_days=HISTORY_DAYS)
            files: list[str] = []
            digest = None
            if any(s.name == "score" and s.status == "ok" for s in report.stages):
                digest = pipeline.digest(engine, config, dry_run=True, out_dir=folder)
                files = digest.files
            messages = _slack_messages(sandbox.http_url)
        finally:
            engine.dispose()
    return DemoResult(folder, config_path, today, accounts, report, files, digest, provisioned, messages)


def _slack_messages(base_url: str) -> int:
    import httpx

    response = httpx.get(base_url + "/_sandbox/slack/messages", timeout=30, headers={"Connection": "close"})
    if response.status_code != 200:
        return 0
    body = response.json()
    messages = body.get("messages", body) if isinstance(body, dict) else body
    return len(messages) if isinstance(messages, list) else 0


def money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount >= 1_000_000:
        return f"{sign}{currency} {amount / 1_000_000:,.2f}M"
    if amount >= 1_000:
        return f"{sign}{currency} {amount / 1_000:,.1f}k"
    return f"{sign}{currency} {amount:,.0f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
