"""`clghub demo` end to end, `clghub run` and its lock, SIGTERM mid-sync, `clghub status`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clghub.cli.app import main
from clghub.store.engine import create_store_engine
from tests.support.sandbox import running_sandbox
from tests.support.snapshot import store_snapshot


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "clghub", "demo", "--dir", str(folder), "--accounts", "40"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Trailing twelve months" in out
    assert "NRR" in out
    assert "GRR" in out
    assert "ARR bridge" in out
    assert "Incentive pool" in out
    digests = list(folder.glob("digest-*.json"))
    charts = list(folder.glob("digest-*.png"))
    assert len(digests) == 1
    assert len(charts) == 1
    assert charts[0].read_bytes().startswith(b"\x89PNG")
    blocks = json.loads(digests[0].read_text())["blocks"]
    assert 0 < len(blocks) <= 50
    assert (folder / "clghub.db").exists()
    # Quiet in a pipe: no progress bars in the captured output.
    assert "━" not in result.stderr
    # A second demo run reuses the org and store: an incremental run.
    again = subprocess.run(
        [sys.executable, "-m", "clghub", "demo", "--dir", str(folder), "--accounts", "40"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    status = subprocess.run(
        [sys.executable, "-m", "clghub", "--config", str(folder / "clghub.toml"), "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(status.stdout)
    jobs = {job["job"]: job for job in report["jobs"]}
    assert {"sync", "score", "writeback", "alerts"} <= set(jobs)
    assert all(job["status"] == "ok" for job in jobs.values())
    assert report["streams"]
    assert report["last_digest"]["state"] == "posted"


def test_run_stages_and_the_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_sandbox(tmp_path / "sandbox", accounts=30) as sandbox:
        config = str(sandbox.config_path)
        code, out, err = cli(["--config", config, "run", "--no-writeback", "--no-alerts", "--no-digest", "--json"], capsys)
        assert code == 0, err
        report = json.loads(out)
        stages = {stage["name"]: stage["status"] for stage in report["stages"]}
        assert stages == {"sync": "ok", "score": "ok"}
        from clghub.config import load_config
        from clghub.lock import holding
        from clghub.store.engine import open_store

        engine = open_store(load_config(sandbox.config_path))
        with holding(engine, "run"):
            # Every command that changes the store waits for no one: it refuses.
            for command in (["run", "--no-sync"], ["sync"], ["score"], ["writeback"], ["alerts"]):
                code, _, err = cli(["--config", config, *command], capsys)
                assert code == 1, command
                assert "another clghub process is running against this store" in err, command
            # Looking is always allowed.
            code, _, err = cli(["--config", config, "writeback", "--dry-run"], capsys)
            assert code == 0, err
        engine.dispose()


def test_sigterm_mid_sync_loses_nothing(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "sandbox", accounts=60) as sandbox:
        text = sandbox.config_path.read_text()
        environment = {**os.environ, "CLGHUB_CONFIG": str(sandbox.config_path)}
        stopped = subprocess.Popen([sys.executable, "-m", "clghub", "sync"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.0)
        stopped.send_signal(signal.SIGTERM)
        _, err = stopped.communicate(timeout=120)
        assert "Traceback" not in err
        finished = subprocess.run([sys.executable, "-m", "clghub", "sync"], env=environment, capture_output=True, text=True, check=False)
        assert finished.returncode == 0, finished.stderr[-2000:]
        clean_config = tmp_path / "clean.toml"
        clean_config.write_text(text.replace('url = "sqlite:///clghub.db"', f'url = "sqlite:///{tmp_path / "clean.db"}"'))
        (tmp_path / "clghub-secrets.env").write_text((sandbox.config_path.parent / "clghub-secrets.env").read_text())
        subprocess.run([sys.executable, "-m", "clghub", "--config", str(clean_config), "sync"], check=True, capture_output=True)
        store = create_store_engine(f"sqlite:///{sandbox.config_path.parent / 'clghub.db'}")
        clean = create_store_engine(f"sqlite:///{tmp_path / 'clean.db'}")
        assert store_snapshot(store) == store_snapshot(clean)
