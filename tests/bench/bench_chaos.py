"""Benchmark: the whole pipeline under faults, kills and a long soak, with the figures.

    python tests/bench/bench_chaos.py [--accounts 200] [--kills 20] [--soak-minutes 30]
                                      [--parts faults,kills,soak] [--seed 7]

- **Faults**: ``clghub run`` against the sandbox at fault rates 0, 0.1, 0.2 and
  0.4 (every fault kind), each from a fresh org and store. Per rate: requests
  served, faults injected, retries, wall time, and the differences from the
  fault-free run in the store, the CRMs' value fields and Slack (target 0).
- **Kills**: SIGKILL ``clghub run`` at ``--kills`` seeded moments spread over
  sync, score, writeback and digest, each followed by a rerun. Kills, where
  they landed, differences from an uninterrupted run, CRM fields written
  with two different values, digests posted twice (targets 0).
- **Soak**: ``clghub schedule`` with a sync job every few seconds for
  ``--soak-minutes`` against a sandbox whose records keep changing through
  the APIs. The scheduler's RSS, open descriptors and sockets at start and
  end, and changes missed (target 0).

The sandbox runs in this process; clghub runs as child processes (kills,
soak) or in this process (faults, so its retries can be counted).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psutil
from sqlalchemy import select

from clghub.http import METRICS
from clghub.sandbox.server import SandboxServer
from clghub.store.engine import create_store_engine
from clghub.store.models import SourceLink, table_of
from tests.support.chaos import (
    STAGES,
    Outcome,
    capture_outcome,
    chaos_sandbox,
    cli,
    cli_process,
    control,
    fresh_org,
    kill_during,
    rewritten_fields,
    stage_seconds,
    write_run_config,
)
from tests.support.crm_state import CrmReader
from tests.support.store_state import SOURCE_CLOCK

RATES = (0.0, 0.1, 0.2, 0.4)


def _fresh(server: SandboxServer, root: Path, name: str, extra: str = "") -> tuple[Path, Path]:
    folder = root / name
    folder.mkdir(parents=True)
    config = write_run_config(server, folder, extra=extra)
    fresh_org(server, config)
    return config, folder / "clghub.db"


def _requests(server: SandboxServer) -> int:
    return int(control(server, "GET", "/_sandbox/requests")["total"])


def faults(server: SandboxServer, root: Path, seed: int) -> int:
    print("Faults: clghub run at each fault rate, from a fresh org and store", flush=True)
    print(
        f"  {'rate':>5} {'requests':>9} {'faults':>7} {'retries':>8} {'seconds':>8} {'differences':>12}"
    )
    reference: Outcome | None = None
    total = 0
    for rate in RATES:
        config, store = _fresh(server, root, f"faults-{rate}")
        control(
            server, "POST", "/_sandbox/faults", {"rate": rate, "seed": seed, "slow_seconds": 1.3}
        )
        METRICS.reset()
        started = time.monotonic()
        result = cli(config, "run")
        seconds = time.monotonic() - started
        injected = control(server, "GET", "/_sandbox/faults")["injected"]
        control(server, "POST", "/_sandbox/faults", {"rate": 0.0})
        served = _requests(server)
        outcome = capture_outcome(server, f"sqlite:///{store}")
        if reference is None:
            reference = outcome
        found = len(reference.differences(outcome)) + len(rewritten_fields(server))
        found += 0 if result.code == 0 else 1
        total += found
        retries = sum(METRICS.snapshot().values())
        print(
            f"  {rate:>5.1f} {served:>9,} {sum(injected.values()):>7,} {retries:>8,} "
            f"{seconds:>8.1f} {found:>12}"
            + ("" if result.code == 0 else f"  (exit {result.code})"),
            flush=True,
        )
        if rate == RATES[-1]:
            print(f"  kinds injected at {rate}: {dict(sorted(injected.items()))}")
    return total


def kills(server: SandboxServer, root: Path, count: int, seed: int) -> int:
    print(
        f"Kills: SIGKILL clghub run {count} times across {', '.join(STAGES)}; rerun after each",
        flush=True,
    )
    config, store = _fresh(server, root, "kills-reference")
    assert cli(config, "run").code == 0
    seconds = stage_seconds(store)
    assert cli(config, "run").code == 0  # the second run reads back the first one's writes
    reference = capture_outcome(server, f"sqlite:///{store}", clocks=SOURCE_CLOCK)
    print(
        "  stage seconds in a clean run: "
        + ", ".join(f"{s} {seconds.get(s, 0):.1f}" for s in STAGES)
    )
    rng = random.Random(seed)
    landed: Counter[str] = Counter()
    differences = rewritten = failed_reruns = duplicate_digests = 0
    for number in range(count):
        stage = STAGES[number % len(STAGES)]
        config, store = _fresh(server, root, f"kill-{number}")
        kill = kill_during(config, store, stage, rng.uniform(0.0, 0.9 * seconds.get(stage, 0.5)))
        landed[kill.killed_in or "(after the run)"] += 1
        rerun = cli(config, "run")
        failed_reruns += rerun.code != 0
        outcome = capture_outcome(server, f"sqlite:///{store}", clocks=SOURCE_CLOCK)
        found = reference.differences(outcome)
        differences += len(found)
        rewritten += len(rewritten_fields(server))
        digests = Counter(m.key for m in outcome.slack if m.event_type == "clghub_digest")
        duplicate_digests += sum(n - 1 for n in digests.values() if n > 1)
        mark = "ok" if not found else f"{len(found)} differences, e.g. {found[0][:160]}"
        print(
            f"  kill {number + 1:>2} aimed at {stage:<9} landed in {kill.killed_in!s:<16} {mark}",
            flush=True,
        )
    print(f"  kills: {count}, landed: {dict(landed)}, reruns: {count} ({failed_reruns} failed)")
    print(f"  differences from the uninterrupted run: {differences} (target 0)")
    print(f"  CRM fields written with two different values: {rewritten} (target 0)")
    print(f"  digests posted twice: {duplicate_digests} (target 0)")
    return differences + rewritten + failed_reruns + duplicate_digests


class Mutator(threading.Thread):
    """Renames CRM records through the APIs, as users do, and remembers the last name."""

    def __init__(self, server: SandboxServer, seed: int) -> None:
        super().__init__(daemon=True)
        self.reader = CrmReader(server)
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.latest: dict[tuple[str, str], str] = {}
        self.changes = 0
        accounts = self.reader.soql("SELECT Id FROM Account WHERE IsDeleted = false")
        companies = self.reader.hs_records("companies", ("name",))
        self.targets = [("salesforce", str(a["Id"])) for a in accounts] + [
            ("hubspot", str(c["id"])) for c in companies
        ]

    def run(self) -> None:
        while not self.stop.wait(0.5):
            source, record_id = self.rng.choice(self.targets)
            name = f"Soak {self.changes:06d} {source}"
            if source == "salesforce":
                answer = self.reader.sf_call(
                    "PATCH", f"/sobjects/Account/{record_id}", {"Name": name}
                )
            else:
                answer = self.reader.hs_call(
                    "PATCH",
                    f"/crm/v3/objects/companies/{record_id}",
                    {"properties": {"name": name}},
                )
            if answer.status_code < 300:
                self.latest[(source, record_id)] = name
                self.changes += 1


def _usage(process: psutil.Process) -> tuple[float, int, int]:
    """RSS in MiB, open descriptors, open sockets of the process and its children."""
    rss, fds, sockets = 0.0, 0, 0
    for member in [process, *process.children(recursive=True)]:
        try:
            rss += member.memory_info().rss / 2**20
            fds += member.num_fds()
            sockets += len(member.net_connections(kind="inet"))
        except psutil.Error:
            continue
    return rss, fds, sockets


def soak(server: SandboxServer, root: Path, minutes: float, seed: int) -> int:
    print(
        f"Soak: clghub schedule syncing every 5 s for {minutes:g} minutes while records change",
        flush=True,
    )
    extra = '[schedule]\nmisfire_grace_seconds = 30\n\n[schedule.jobs]\nsync = "*/5 * * * * *"\n'
    config, store = _fresh(server, root, "soak", extra=extra)
    mutator = Mutator(server, seed)
    log = (root / "soak" / "schedule.log").open("w")
    process = cli_process(
        config, "schedule", stdout=log, stderr=subprocess.STDOUT, env={"PYTHONUNBUFFERED": "1"}
    )
    watched = psutil.Process(process.pid)
    try:
        time.sleep(40)  # the first full sync and a few increments
        start = _usage(watched)
        samples = [start]
        mutator.start()
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            time.sleep(min(60.0, max(1.0, deadline - time.monotonic())))
            samples.append(_usage(watched))
            print(
                f"  {len(samples) - 1:>3} min  RSS {samples[-1][0]:7.1f} MiB  fds {samples[-1][1]:>4}  "
                f"sockets {samples[-1][2]:>3}  changes made {mutator.changes}",
                flush=True,
            )
        mutator.stop.set()
        mutator.join()
        time.sleep(30)  # a few more syncs read the last changes
        end = _usage(watched)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    engine = create_store_engine(f"sqlite:///{store}")
    link = table_of(SourceLink)
    with engine.connect() as connection:
        stored = {
            (row.source, row.source_id): row.name
            for row in connection.execute(
                select(link.c.source, link.c.source_id, link.c.name).where(
                    link.c.object == "account"
                )
            )
        }
    engine.dispose()
    missed = [key for key, name in mutator.latest.items() if stored.get(key) != name]
    peak = max(sample[0] for sample in [*samples, end])
    print(f"  changes made through the APIs: {mutator.changes} to {len(mutator.latest)} records")
    print(f"  RSS      start {start[0]:.1f} MiB, end {end[0]:.1f} MiB, peak {peak:.1f} MiB")
    print(f"  fds      start {start[1]}, end {end[1]}")
    print(f"  sockets  start {start[2]}, end {end[2]}")
    print(
        f"  changes missed: {len(missed)} (target 0)" + (f", e.g. {missed[:3]}" if missed else "")
    )
    growth = end[0] - start[0]
    # Flat means no growth once warm: the second half of the soak, within noise.
    half = samples[len(samples) // 2]
    late = end[0] - half[0]
    allowed = max(5.0, 0.03 * start[0])
    print(
        f"  RSS growth {growth:+.1f} MiB overall, {late:+.1f} MiB over the second half "
        f"(target <= {allowed:.1f}); descriptor growth {end[1] - start[1]:+d} (target 0)"
    )
    return len(missed) + int(late > allowed) + int(end[1] > start[1]) + int(end[2] > start[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--soak-minutes", type=float, default=30.0)
    parser.add_argument("--parts", default="faults,kills,soak")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    os.environ.pop("CLGHUB_CONFIG", None)
    problems = 0
    with (
        tempfile.TemporaryDirectory(prefix="clghub-chaos-") as temp,
        chaos_sandbox(args.accounts) as server,
    ):
        root = Path(temp)
        print(
            f"sandbox: {args.accounts} accounts at {server.http_url}; seed {args.seed}", flush=True
        )
        if "faults" in parts:
            problems += faults(server, root, args.seed)
        if "kills" in parts:
            problems += kills(server, root, args.kills, args.seed)
        if "soak" in parts:
            problems += soak(server, root, args.soak_minutes, args.seed)
    print("all targets met" if problems == 0 else f"{problems} problems found")
    sys.exit(0 if problems == 0 else 1)


if __name__ == "__main__":
    main()
