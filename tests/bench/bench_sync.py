"""Benchmark: `clghub sync` against the sandbox in its own process.

    python tests/bench/bench_sync.py [--accounts 100000] [--small 10000] [--state DIR]

Prints, for the CRM sources (Salesforce and HubSpot, product usage off):
- full sync wall time and its ratio to a bare httpx loop paging the same
  endpoints with the same fields, one thread per source (target <= 1.3x);
- the sync process's peak RSS at --small and --accounts accounts (target
  < 300 MB and flat in N);
- an incremental sync after 1% of the records changed through the APIs, as a
  share of the full sync's time (target < 10%);
- with 20% injected faults (at --small accounts), whether the store equals
  the clean run's (target: identical).

The sandbox runs with its HubSpot rate limit lifted so that both the loop
and the sync measure their own cost, not the policy's.
"""

from __future__ import annotations

import argparse
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
import orjson
import psutil

from clghub.config import load_config
from clghub.store.engine import create_store_engine
from clghub.sync.mapping import load_mapping
from tests.support.snapshot import store_snapshot


def _verify(ca_bundle: str | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True


HS_OBJECTS = ("owners", "companies", "contacts", "deals", "tickets")


class SandboxProcess:
    def __init__(self, accounts: int, state: Path, config: Path) -> None:
        self.accounts = accounts
        self.state = state
        self.config = config
        self.process: subprocess.Popen[str] | None = None

    def cpu(self) -> float:
        """CPU seconds the sandbox has used so far."""
        assert self.process is not None
        return cpu_seconds(psutil.Process(self.process.pid))

    def __enter__(self) -> SandboxProcess:
        command = [
            sys.executable, "-m", "clghub", "sandbox", "serve",
            "--accounts", str(self.accounts), "--seed", "7", "--as-of", "2026-06-30",
            "--state", str(self.state), "--config-out", str(self.config),
            "--hs-rate-limit", "1000000", "--port", "0", "--tls-port", "0",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            if line.strip().startswith("config "):
                break
        else:
            raise RuntimeError("the sandbox stopped before it was ready")
        # Keep draining its output so that it never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def bare_loop(config_path: Path) -> tuple[float, int]:
    """Page every synced endpoint with plain httpx, one thread per source."""
    config = load_config(config_path)
    sf, hs = config.sources.salesforce, config.sources.hubspot
    sf_mapping, hs_mapping = load_mapping("salesforce", config), load_mapping("hubspot", config)
    totals = {"records": 0}
    lock = threading.Lock()

    def salesforce() -> None:
        assert sf.ca_bundle is not None
        with httpx.Client(verify=_verify(sf.ca_bundle), timeout=120) as client:
            token = client.post(
                sf.login_url + "/services/oauth2/token",
                data={
                    "grant_type": "password",
                    "client_id": sf.consumer_key.reveal(),  # type: ignore[union-attr]
                    "client_secret": sf.consumer_secret.reveal(),  # type: ignore[union-attr]
                    "username": sf.username,
                    "password": sf.password.reveal(),  # type: ignore[union-attr]
                },
            ).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            base = token["instance_url"]
            for sobject in sf.objects:
                fields = ", ".join(sf_mapping.streams[sobject].source_fields())
                soql = f"SELECT {fields} FROM {sobject} ORDER BY SystemModstamp ASC, Id ASC"
                body = orjson.loads(client.get(f"{base}/services/data/v{sf.api_version}/queryAll", params={"q": soql}, headers=headers).content)
                while True:
                    with lock:
                        totals["records"] += len(body["records"])
                    if body.get("done", True):
                        break
                    body = orjson.loads(client.get(base + body["nextRecordsUrl"], headers=headers).content)

    def hubspot() -> None:
        headers = {"Authorization": f"Bearer {hs.access_token.reveal()}"}  # type: ignore[union-attr]
        with httpx.Client(base_url=hs.base_url, headers=headers, timeout=120) as client:
            for obj in HS_OBJECTS:
                path = "/crm/v3/owners" if obj == "owners" else f"/crm/v3/objects/{obj}"
                params: dict[str, Any] = {"limit": 100}
                if obj != "owners":
                    params["properties"] = ",".join(f for f in hs_mapping.streams[obj].source_fields() if f not in ("id", "archived", "company_id", "name") or obj == "companies")
                    if obj in ("deals", "tickets"):
                        params["associations"] = "companies"
                while True:
                    body = orjson.loads(client.get(path, params=params).content)
                    with lock:
                        totals["records"] += len(body["results"])
                    after = ((body.get("paging") or {}).get("next") or {}).get("after")
                    if not after:
                        break
                    params["after"] = after

    started = time.perf_counter()
    threads = [threading.Thread(target=salesforce), threading.Thread(target=hubspot)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, totals["records"]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def clghub_sync(config_path: Path, *args: str) -> tuple[float, float, float]:
    """Run `clghub sync` as its own process; wall seconds, peak RSS (MB) and CPU seconds."""
    environment = {**os.environ, "CLGHUB_CONFIG": str(config_path)}
    started = time.perf_counter()
    process = psutil.Popen([sys.executable, "-m", "clghub", "sync", *args], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    cpu = 0.0
    while process.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
            cpu = cpu_seconds(process)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"clghub sync failed: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
    return elapsed, peak / 1e6, cpu


def crm_only(config_path: Path, store: Path) -> Path:
    text = config_path.read_text()
    text = text.replace("[sources.product_usage]\nenabled = true", "[sources.product_usage]\nenabled = false")
    text = text.replace('url = "sqlite:///', f'url = "sqlite:///{store}"\n# was: "sqlite:///', 1)
    out = config_path.with_name(f"bench-{store.stem}.toml")
    out.write_text(text)
    return out


def change_one_percent(config_path: Path) -> int:
    """Change 1% of accounts, opportunities, deals and companies through the APIs."""
    config = load_config(config_path)
    sf, hs = config.sources.salesforce, config.sources.hubspot
    changed = 0
    with httpx.Client(verify=_verify(sf.ca_bundle), timeout=120) as client:
        token = client.post(
            sf.login_url + "/services/oauth2/token",
            data={"grant_type": "password", "client_id": sf.consumer_key.reveal(), "client_secret": sf.consumer_secret.reveal(), "username": sf.username, "password": sf.password.reveal()},  # type: ignore[union-attr]
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        base = f"{token['instance_url']}/services/data/v{sf.api_version}"
        for sobject, field, value in (("Account", "Name", "Renamed"), ("Opportunity", "Name", "Renamed")):
            total = client.get(f"{base}/query", params={"q": f"SELECT COUNT() FROM {sobject}"}, headers=headers).json()["totalSize"]
            ids = client.get(f"{base}/query", params={"q": f"SELECT Id FROM {sobject} ORDER BY Id LIMIT {max(1, total // 100)}"}, headers=headers).json()["records"]
            for start in range(0, len(ids), 200):
                records = [{"attributes": {"type": sobject}, "id": r["Id"], field: f"{value} {r['Id']}"} for r in ids[start : start + 200]]
                client.patch(f"{base}/composite/sobjects", json={"allOrNone": False, "records": records}, headers=headers).raise_for_status()
            changed += len(ids)
    with httpx.Client(base_url=hs.base_url, headers={"Authorization": f"Bearer {hs.access_token.reveal()}"}, timeout=120) as client:  # type: ignore[union-attr]
        for obj, prop in (("companies", "name"), ("deals", "dealname")):
            ids: list[str] = []
            after = None
            while True:
                params: dict[str, Any] = {"limit": 100}
                if after:
                    params["after"] = after
                body = client.get(f"/crm/v3/objects/{obj}", params=params).json()
                ids += [r["id"] for r in body["results"]]
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
            chosen = ids[: max(1, len(ids) // 100)]
            for start in range(0, len(chosen), 100):
                inputs = [{"id": i, "properties": {prop: f"Renamed {i}"}} for i in chosen[start : start + 100]]
                client.post(f"/crm/v3/objects/{obj}/batch/update", json={"inputs": inputs}).raise_for_status()
            changed += len(chosen)
    return changed


def measure(accounts: int, root: Path, *, full_figures: bool) -> dict[str, Any]:
    state = root / f"sandbox-{accounts}"
    config = root / f"sandbox-{accounts}.toml"
    results: dict[str, Any] = {"accounts": accounts}
    with SandboxProcess(accounts, state, config) as sandbox:
        clean_config = crm_only(config, root / f"clean-{accounts}.db")
        before, client_before = sandbox.cpu(), time.process_time()
        floor, records = bare_loop(config)
        floor_server, floor_client = sandbox.cpu() - before, time.process_time() - client_before
        before = sandbox.cpu()
        sync_seconds, peak, sync_cpu = clghub_sync(clean_config)
        sync_server = sandbox.cpu() - before
        results.update(
            floor=floor, records=records, sync=sync_seconds, peak_mb=peak,
            floor_server=floor_server, floor_client=floor_client, sync_server=sync_server, sync_cpu=sync_cpu,
        )
        if full_figures:
            changed = change_one_percent(config)
            time.sleep(1.1)
            incremental, _, _ = clghub_sync(clean_config)
            results.update(changed=changed, incremental=incremental)
    return results


def faults(accounts: int, root: Path) -> dict[str, Any]:
    state = root / f"faults-{accounts}"
    config = root / f"faults-{accounts}.toml"
    with SandboxProcess(accounts, state, config):
        clean_config = crm_only(config, root / f"faults-clean-{accounts}.db")
        clghub_sync(clean_config)
        faulty_config = crm_only(config, root / f"faults-faulty-{accounts}.db")
        text = faulty_config.read_text()
        text = text.replace('ca_bundle =', 'timeout_seconds = 2\nmax_retries = 12\nmax_retry_wait_seconds = 1\nca_bundle =')
        text = text.replace('access_token = {', 'timeout_seconds = 2\nmax_retries = 12\nmax_retry_wait_seconds = 1\naccess_token = {')
        faulty_config.write_text(text)
        base = load_config(config).sources.hubspot.base_url
        httpx.post(base + "/_sandbox/faults", json={"rate": 0.2, "seed": 3, "slow_seconds": 3}).raise_for_status()
        seconds, _, _ = clghub_sync(faulty_config)
        injected = httpx.get(base + "/_sandbox/faults").json()["injected"]
        httpx.post(base + "/_sandbox/faults", json={"rate": 0.0}).raise_for_status()
    clean = store_snapshot(create_store_engine(f"sqlite:///{root / f'faults-clean-{accounts}.db'}"))
    faulty = store_snapshot(create_store_engine(f"sqlite:///{root / f'faults-faulty-{accounts}.db'}"))
    differences = sum(len(set(clean[t]) ^ set(faulty[t])) for t in clean)
    return {"accounts": accounts, "seconds": seconds, "injected": injected, "differences": differences}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--state", type=Path, default=None, help="keep generated orgs here between runs")
    args = parser.parse_args()
    root = args.state or Path(tempfile.mkdtemp(prefix="clghub-bench-sync-"))
    root.mkdir(parents=True, exist_ok=True)
    small = measure(args.small, root, full_figures=False)
    large = measure(args.accounts, root, full_figures=True)
    fault = faults(args.small, root)
    print(f"accounts: {args.accounts:,} (records synced from the CRMs: {large['records']:,})")
    print(f"  bare httpx loop (floor)      {large['floor']:8.1f} s  {large['records'] / large['floor']:10,.0f} records/s")
    print(f"  clghub sync, full            {large['sync']:8.1f} s  {large['records'] / large['sync']:10,.0f} records/s  ratio {large['sync'] / large['floor']:.2f}x (target <= 1.3x)")
    print(
        f"  CPU seconds                  loop: sandbox {large['floor_server']:.1f}, loop {large['floor_client']:.1f}; "
        f"sync: sandbox {large['sync_server']:.1f}, clghub sync {large['sync_cpu']:.1f} "
        f"({large['records'] / large['sync_cpu']:,.0f} records per CPU second)"
    )
    print(f"  incremental after 1% changed ({large['changed']:,} records through the APIs)  {large['incremental']:8.1f} s  = {large['incremental'] / large['sync']:.1%} of the full sync (target < 10%)")
    print(f"  peak RSS of clghub sync      {small['peak_mb']:8.1f} MB at {args.small:,} accounts, {large['peak_mb']:.1f} MB at {args.accounts:,} (target < 300 MB, flat)")
    print(f"faults at 20% ({fault['accounts']:,} accounts): {sum(fault['injected'].values())} injected {fault['injected']}, sync {fault['seconds']:.1f} s, differences from the clean store: {fault['differences']} (target 0)")


if __name__ == "__main__":
    main()
