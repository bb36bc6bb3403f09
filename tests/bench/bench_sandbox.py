"""Benchmark: the sandbox at scale, served from its own process.

Starts ``clghub sandbox serve`` as a subprocess with N accounts, then reads
with a plain httpx loop, one request at a time:

- Salesforce query pages (HTTPS, every Opportunity field, following
  ``nextRecordsUrl``),
- HubSpot list pages (``/crm/v3/objects/deals``, 100 a page, every property),
- product usage pages (``/usage/v1/daily``, 5,000 a page),

and prints records per second for each, the time to generate the org, and
the server's peak resident memory (psutil, sampled every 100 ms).

    python tests/bench/bench_sandbox.py [--accounts 100000] [--seconds 20] [--state DIR]

Targets at 100,000 accounts on a 2-core machine: Salesforce >= 50,000
records/s, HubSpot >= 20,000 records/s, peak RSS < 1 GiB.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
import orjson
import psutil

from clghub.sandbox.schema import HS_OBJECTS, SF_OBJECTS

AS_OF = "2025-06-30"
TARGETS = {"salesforce": 50_000.0, "hubspot": 20_000.0}
RSS_LIMIT = 1 << 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PeakMemory:
    """Samples a process's resident set size in a background thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, int(self.process.memory_info().rss))
            except psutil.NoSuchProcess:
                return
            self._stop.wait(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@dataclass
class Sandbox:
    http_url: str
    https_url: str
    ca_path: Path
    memory: PeakMemory
    ready_seconds: float


@contextmanager
def serve(accounts: int, seed: int, directory: Path) -> Iterator[Sandbox]:
    port, tls_port = _free_port(), _free_port()
    command = [
        sys.executable,
        "-m",
        "clghub",
        "sandbox",
        "serve",
        "--port",
        str(port),
        "--tls-port",
        str(tls_port),
        "--accounts",
        str(accounts),
        "--seed",
        str(seed),
        "--as-of",
        AS_OF,
        "--state",
        str(directory),
        # HubSpot's real limit (190 a 10 s) would cap the loop at 19 pages a second.
        "--hs-rate-limit",
        "1000000",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLGHUB_")}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    memory = PeakMemory(process.pid)
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"the sandbox exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        ready = time.perf_counter() - started
        yield Sandbox(
            http_url=f"http://127.0.0.1:{port}",
            https_url=f"https://127.0.0.1:{tls_port}",
            ca_path=directory / "ca.pem",
            memory=memory,
            ready_seconds=ready,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        memory.stop()


def _timed(read_page: Callable[[], int | None], budget: float) -> tuple[int, float, int]:
    """Call ``read_page`` (records read, None at the end) until the budget is spent."""
    records = pages = 0
    started = time.perf_counter()
    while time.perf_counter() - started < budget:
        count = read_page()
        if count is None:
            break
        records += count
        pages += 1
    return records, time.perf_counter() - started, pages


def bench_salesforce(sandbox: Sandbox, budget: float) -> tuple[int, float, int]:
    fields = ", ".join(f.name for f in SF_OBJECTS["Opportunity"])
    client = httpx.Client(
        base_url=sandbox.https_url,
        verify=ssl.create_default_context(cafile=str(sandbox.ca_path)),
        headers={"Authorization": "Bearer bench"},
        timeout=60,
    )
    next_url: list[str | None] = [
        f"/services/data/v62.0/queryAll?q=SELECT {fields} FROM Opportunity"
    ]

    def page() -> int | None:
        url = next_url[0]
        if url is None:
            return None
        response = client.get(url)
        response.raise_for_status()
        body = orjson.loads(response.content)
        next_url[0] = body.get("nextRecordsUrl")
        return len(body["records"])

    try:
        return _timed(page, budget)
    finally:
        client.close()


def bench_hubspot(sandbox: Sandbox, budget: float) -> tuple[int, float, int]:
    properties = ",".join(p.name for p in HS_OBJECTS["deals"])
    client = httpx.Client(
        base_url=sandbox.http_url, headers={"Authorization": "Bearer bench"}, timeout=60
    )
    after: list[str | None] = [""]

    def page() -> int | None:
        if after[0] is None:
            return None
        params = {"limit": "100", "properties": properties, "archived": "false"}
        if after[0]:
            params["after"] = after[0]
        response = client.get("/crm/v3/objects/deals", params=params)
        if response.status_code == 429:
            time.sleep(float(response.headers.get("retry-after", "1")))
            return 0
        response.raise_for_status()
        body = orjson.loads(response.content)
        after[0] = (body.get("paging") or {}).get("next", {}).get("after")
        return len(body["results"])

    try:
        return _timed(page, budget)
    finally:
        client.close()


def bench_usage(sandbox: Sandbox, budget: float) -> tuple[int, float, int]:
    client = httpx.Client(
        base_url=sandbox.http_url, headers={"Authorization": "Bearer bench"}, timeout=60
    )
    cursor: list[str | None] = [""]

    def page() -> int | None:
        if cursor[0] is None:
            return None
        params = {"limit": "5000", **({"cursor": cursor[0]} if cursor[0] else {})}
        response = client.get("/usage/v1/daily", params=params)
        response.raise_for_status()
        body = orjson.loads(response.content)
        cursor[0] = body["next_cursor"]
        return len(body["data"])

    try:
        return _timed(page, budget)
    finally:
        client.close()


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seconds", type=float, default=20.0, help="Reading time per API.")
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="Keep the generated org in this directory and reuse it on the next run.",
    )
    args = parser.parse_args()
    # The machine may be shared: the load says how much of it this run had.
    print(f"load average before: {_load()} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="clghub-bench-") as temp:
        directory = args.state or Path(temp)
        results, peak = _run(args, directory)
    verdict = "  OK" if peak < RSS_LIMIT else "  ABOVE 1 GiB"
    print(f"  peak RSS of the sandbox process: {peak / 2**20:,.0f} MiB{verdict}")
    print(f"load average after: {_load()}")
    failed = [name for name, target in TARGETS.items() if results[name] < target]
    return 1 if failed or peak >= RSS_LIMIT else 0


def _run(args: argparse.Namespace, directory: Path) -> tuple[dict[str, float], int]:
    benches = (("salesforce", bench_salesforce), ("hubspot", bench_hubspot), ("usage", bench_usage))
    results: dict[str, float] = {}
    with serve(args.accounts, args.seed, directory) as sandbox:
        size = (directory / "sandbox.db").stat().st_size / 2**20
        print(
            f"accounts {args.accounts:,}: ready (generated or reused) after {sandbox.ready_seconds:.1f} s"
        )
        print(f"  database {size:,.0f} MiB")
        server = sandbox.memory.process
        for name, bench in benches:
            cpu_before = sum(server.cpu_times()[:2])
            client_before = time.process_time()
            records, seconds, pages = bench(sandbox, args.seconds)
            cpu = sum(server.cpu_times()[:2]) - cpu_before
            client = time.process_time() - client_before
            rate = records / seconds if seconds else 0.0
            results[name] = rate
            target = TARGETS.get(name)
            verdict = ""
            if target is not None:
                verdict = "  OK" if rate >= target else f"  BELOW target {target:,.0f}"
            per_cpu = records / cpu if cpu else 0.0
            print(
                f"  {name:<10} {records:>9,} records in {pages:>5,} pages, {seconds:5.1f} s: "
                f"{rate:>9,.0f} records/s{verdict}"
            )
            print(
                f"  {'':<10} server CPU {cpu:.1f} s ({per_cpu:,.0f} records per server CPU second), "
                f"client CPU {client:.1f} s"
            )
        peak = sandbox.memory.peak
    return results, peak


if __name__ == "__main__":
    sys.exit(main())
