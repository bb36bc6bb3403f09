"""Benchmark: writeback of 50,000 changed accounts to Salesforce and HubSpot through the sandbox.

Starts ``clghub sandbox serve`` in its own process with HubSpot's 100
requests / 10 s policy (``--hs-rate-limit 100``), creates N Salesforce
Accounts (one Bulk API 2.0 insert job) and N HubSpot companies (the
sandbox's import), puts N accounts linked to both into a SQLite store with
value figures, then runs the writeback engine:

1. Salesforce through sObject Collections (bulk threshold above N) and HubSpot
   batch updates: write calls must be ceil(N / 200) and ceil(N / 100); at
   most 1% of HubSpot requests answered 429; HubSpot's wall time within
   1.15x of the policy's floor, ceil(N / 100) requests / 100 per 10 s.
2. An immediate rerun: zero write calls.
3. Every score changed again, Salesforce above the bulk threshold: one Bulk
   API 2.0 ingest job, a fixed handful of calls whatever N.

Every figure comes from the sandbox's request counters (``/_sandbox/requests``).

    python tests/bench/bench_writeback.py [--accounts 50000]
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
from sqlalchemy import Engine, insert, update

from clghub.config import ClghubConfig, load_config
from clghub.connectors.hubspot.client import HubSpotClient
from clghub.connectors.hubspot.writer import HubSpotWriter
from clghub.connectors.salesforce.client import SalesforceClient
from clghub.connectors.salesforce.writer import SalesforceWriter
from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade
from clghub.store.models import Account, SourceLink, table_of
from clghub.store.revenue import Clv
from clghub.store.value import TimeToValue, ValueScore
from clghub.writeback import CrmReport, TargetField, WritebackSettings, run_crm_writeback
from clghub.writeback.values import VALUE_SPECS

AS_OF = date(2026, 11, 20)
HS_PER_10S = 100
COMPUTED = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
SF_COMPOSITE = ("PATCH", "/services/data/{version}/composite/sobjects")
HS_UPDATE = ("POST", "/crm/v3/objects/{object}/batch/update")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def sandbox(directory: Path) -> Iterator[tuple[str, Path]]:
    port, tls_port = _free_port(), _free_port()
    config_path = directory / "clghub.toml"
    command = [
        sys.executable, "-m", "clghub", "sandbox", "serve",
        "--port", str(port), "--tls-port", str(tls_port),
        "--accounts", "20", "--as-of", AS_OF.isoformat(),
        "--state", str(directory / "state"),
        "--hs-rate-limit", str(HS_PER_10S),
        "--config-out", str(config_path),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLGHUB_")}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"the sandbox exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                if (
                    httpx.get(url + "/_sandbox/health", timeout=2).status_code == 200
                    and config_path.exists()
                ):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        yield url, config_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def counters(url: str) -> Counter[tuple[str, str, int]]:
    found: Counter[tuple[str, str, int]] = Counter()
    for entry in httpx.get(url + "/_sandbox/requests").json()["requests"]:
        found[(entry["method"], entry["path"], entry["status"])] += entry["count"]
    return found


def reset(url: str) -> None:
    httpx.post(url + "/_sandbox/requests/reset").raise_for_status()


def calls(counts: Counter[tuple[str, str, int]], method: str, path: str) -> int:
    return sum(n for (m, p, _), n in counts.items() if m == method and p == path)


def write_calls(counts: Counter[tuple[str, str, int]]) -> int:
    """Calls that change CRM data: Collections, batch updates and every Bulk ingest call."""
    return sum(
        n
        for (m, p, _), n in counts.items()
        if (m, p) in (SF_COMPOSITE, HS_UPDATE) or "/jobs/ingest" in p
    )


def salesforce_records(config: ClghubConfig, count: int) -> list[str]:
    """Create ``count`` Accounts with one Bulk API 2.0 insert job; their ids."""
    client = SalesforceClient(config.sources.salesforce)
    writer = SalesforceWriter(client, config.writeback.salesforce)
    body = io.StringIO()
    out = csv.writer(body, lineterminator="\n")
    out.writerow(["Name"])
    out.writerows([f"Bench Account {n}"] for n in range(count))
    job = writer._send(
        "POST", "jobs/ingest", what="create insert job",
        body=b'{"object": "Account", "operation": "insert", "lineEnding": "LF"}',
    ).json()  # fmt: skip
    writer._send(
        "PUT",
        f"jobs/ingest/{job['id']}/batches",
        what="upload",
        body=body.getvalue().encode(),
        content_type="text/csv",
    )
    writer._send(
        "PATCH", f"jobs/ingest/{job['id']}", what="close", body=b'{"state": "UploadComplete"}'
    )
    writer._poll(job["id"])
    ids = [row["sf__Id"] for row in writer._results(job["id"], "successfulResults")]
    client.close()
    if len(ids) != count:
        raise SystemExit(f"created {len(ids)} Salesforce accounts, wanted {count}")
    return ids


def hubspot_records(url: str, count: int) -> list[str]:
    body = httpx.post(
        url + "/_sandbox/bulk-import",
        json={"object": "companies", "count": count, "mode": "create"},
        timeout=300,
    ).json()
    first, last = int(body["first_id"]), int(body["last_id"])
    if last - first + 1 != count:
        raise SystemExit(f"the import made ids {first}..{last}, not {count} in a row")
    return [str(i) for i in range(first, last + 1)]


def store(directory: Path, sf_ids: list[str], hs_ids: list[str]) -> Engine:
    engine = create_store_engine(f"sqlite:///{directory / 'store.db'}")
    upgrade(engine)
    accounts, links, scores, clvs, ttvs = (
        table_of(m) for m in (Account, SourceLink, ValueScore, Clv, TimeToValue)
    )
    step = 5000
    for start in range(0, len(sf_ids), step):
        chunk = range(start, min(start + step, len(sf_ids)))
        with engine.begin() as connection:
            connection.execute(
                insert(accounts),
                [
                    {
                        "id": n + 1,
                        "name": f"Bench Account {n}",
                        "origin_source": "salesforce",
                        "origin_source_id": sf_ids[n],
                    }
                    for n in chunk
                ],
            )
            connection.execute(
                insert(links),
                [
                    {
                        "source": "salesforce",
                        "object": "account",
                        "source_id": sf_ids[n],
                        "account_id": n + 1,
                    }
                    for n in chunk
                ],
            )
            connection.execute(
                insert(links),
                [
                    {
                        "source": "hubspot",
                        "object": "account",
                        "source_id": hs_ids[n],
                        "account_id": n + 1,
                    }
                    for n in chunk
                ],
            )
            connection.execute(insert(scores), [
                {"account_id": n + 1, "as_of": AS_OF, "score": 20.0 + n % 80, "band": ("red", "yellow", "green")[n % 3],
                 "trend_30d": (n % 21) - 10.0, "trend_90d": (n % 31) - 15.0,
                 "explanation": f"adoption depth {n % 97} (+{n % 9} in 30 days); outcome progress {n % 100}% of target",
                 "computed_at": COMPUTED}
                for n in chunk
            ])  # fmt: skip
            connection.execute(
                insert(clvs),
                [
                    {
                        "account_id": n + 1,
                        "as_of": AS_OF,
                        "clv": Decimal(10_000 + n),
                        "clv_growth_pct": (n % 50) / 100,
                        "computed_at": COMPUTED,
                    }
                    for n in chunk
                ],
            )
            connection.execute(
                insert(ttvs),
                [
                    {
                        "account_id": n + 1,
                        "as_of": AS_OF,
                        "contract_start": date(2025, 1, 1),
                        "days": n % 120,
                        "computed_at": COMPUTED,
                    }
                    for n in chunk
                ],
            )
    return engine


def settings(config: ClghubConfig, crm: str) -> WritebackSettings:
    section = getattr(config.writeback, crm)
    return WritebackSettings(
        crm, dict(section.fields), frozenset(section.owned_fields), section.write_nulls
    )


def run(engine: Engine, config: ClghubConfig, crm: str) -> CrmReport:
    if crm == "salesforce":
        writer: SalesforceWriter | HubSpotWriter = SalesforceWriter(
            SalesforceClient(config.sources.salesforce), config.writeback.salesforce
        )
    else:
        writer = HubSpotWriter(HubSpotClient(config.sources.hubspot), config.writeback.hubspot)
    try:
        return run_crm_writeback(engine, settings(config, crm), writer)
    finally:
        writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    args = parser.parse_args()
    n = args.accounts
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(name, None)  # the sandbox's CA is in the config's ca_bundle
    failures: list[str] = []

    def check(ok: bool, text: str) -> None:
        print(("  ok    " if ok else "  MISS  ") + text)
        if not ok:
            failures.append(text)

    with (
        tempfile.TemporaryDirectory(prefix="clghub-bench-writeback-") as tmp,
        sandbox(Path(tmp)) as (url, config_path),
    ):
        directory = Path(tmp)
        config = load_config(config_path)
        config.writeback.salesforce.bulk_threshold = n + 1  # Collections first
        started = time.perf_counter()
        sf_ids = salesforce_records(config, n)
        hs_ids = hubspot_records(url, n)
        engine = store(directory, sf_ids, hs_ids)
        HubSpotWriter(HubSpotClient(config.sources.hubspot), config.writeback.hubspot).provision(
            [TargetField(VALUE_SPECS[v], f) for v, f in config.writeback.hubspot.fields.items()]
        )
        print(
            f"setup: {n:,} Salesforce accounts, {n:,} HubSpot companies, {n:,} store accounts in {time.perf_counter() - started:.1f}s"
        )
        time.sleep(10)  # let HubSpot's ten-second window empty after the setup calls

        print(f"\n1. first run, {n:,} changed accounts")
        reset(url)
        salesforce = run(engine, config, "salesforce")
        sf_counts = counters(url)
        reset(url)
        hubspot = run(engine, config, "hubspot")
        hs_counts = counters(url)
        hs_requests = sum(c for (_, p, _), c in hs_counts.items() if p.startswith("/crm/"))
        hs_429 = sum(c for (_, p, s), c in hs_counts.items() if p.startswith("/crm/") and s == 429)
        floor = math.ceil(n / 100) / HS_PER_10S * 10
        for report in (salesforce, hubspot):
            print(
                f"   {report.crm}: mode {report.mode}, {report.changed:,} changed, {report.written:,} written, {report.failed} refused, {report.seconds:.1f}s"
            )
        print(
            f"   Salesforce Collections calls: {calls(sf_counts, *SF_COMPOSITE)} (ceil({n:,} / 200) = {math.ceil(n / 200)})"
        )
        print(
            f"   HubSpot batch update calls:   {calls(hs_counts, *HS_UPDATE)} (ceil({n:,} / 100) = {math.ceil(n / 100)})"
        )
        print(
            f"   HubSpot requests: {hs_requests}, answered 429: {hs_429} ({hs_429 / max(hs_requests, 1):.2%})"
        )
        print(
            f"   HubSpot wall time: {hubspot.seconds:.1f}s; policy floor {floor:.1f}s; ratio {hubspot.seconds / floor:.3f}"
        )
        check(
            salesforce.written == n and hubspot.written == n,
            f"every record written ({salesforce.written:,} + {hubspot.written:,})",
        )
        check(
            calls(sf_counts, *SF_COMPOSITE) == math.ceil(n / 200),
            "Salesforce calls = ceil(N / 200)",
        )
        check(calls(hs_counts, *HS_UPDATE) == math.ceil(n / 100), "HubSpot calls = ceil(N / 100)")
        check(hs_429 <= 0.01 * hs_requests, "at most 1% of HubSpot requests answered 429")
        check(hubspot.seconds <= 1.15 * floor, "HubSpot wall time within 1.15x of the policy floor")

        print("\n2. immediate rerun")
        reset(url)
        again = [run(engine, config, crm) for crm in ("salesforce", "hubspot")]
        rerun_writes = write_calls(counters(url))
        print(
            f"   changed: {[r.changed for r in again]}, write calls: {rerun_writes}, seconds: {[r.seconds for r in again]}"
        )
        check(
            rerun_writes == 0 and all(r.changed == 0 for r in again),
            "zero write calls on an immediate rerun",
        )

        threshold = min(5_000, n - 1)  # the default threshold, or below a small N
        print(f"\n3. every score changed, Salesforce above the bulk threshold ({threshold:,})")
        with engine.begin() as connection:
            scores = table_of(ValueScore)
            connection.execute(update(scores).values(score=scores.c.score + 0.5))
        config.writeback.salesforce.bulk_threshold = threshold
        reset(url)
        bulk = run(engine, config, "salesforce")
        bulk_counts = counters(url)
        ingest = {
            f"{m} {p.split('/jobs/ingest')[1] or '/'}": c
            for (m, p, _), c in bulk_counts.items()
            if "/jobs/ingest" in p
        }
        print(
            f"   salesforce: mode {bulk.mode}, {bulk.written:,} written, {bulk.requests} calls, {bulk.seconds:.1f}s"
        )
        print(f"   ingest calls: {ingest}")
        check(bulk.mode == "bulk" and bulk.written == n, "bulk job wrote every record")
        check(
            bulk.requests == sum(ingest.values()) and bulk.requests <= 12,
            "the bulk job's fixed calls (<= 12)",
        )
        check(calls(bulk_counts, *SF_COMPOSITE) == 0, "no Collections call in bulk mode")
        engine.dispose()
    print("\nall targets met" if not failures else f"\n{len(failures)} target(s) missed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
