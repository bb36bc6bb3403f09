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
        [
            sys.executable,
            "-m",
            "clghub",
            "--config",
            str(folder / "clghub.toml"),
            "status",
            "--json",
        ],
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
        code, out, err = cli(
            ["--config", config, "run", "--no-writeback", "--no-alerts", "--no-digest", "--json"],
            capsys,
        )
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


def _pages_committed(store: Path) -> bool:
    import contextlib
    import sqlite3

    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=0.2)
        ) as db:
            return bool(db.execute("SELECT count(*) FROM sync_state").fetchone()[0])
    except sqlite3.Error:
        return False


def test_sigterm_mid_sync_loses_nothing(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "sandbox", accounts=60) as sandbox:
        text = sandbox.config_path.read_text()
        environment = {**os.environ, "CLGHUB_CONFIG": str(sandbox.config_path)}
        stopped = subprocess.Popen(
            [sys.executable, "-m", "clghub", "sync"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        store_path = sandbox.config_path.parent / "clghub.db"
        # SIGTERM once the sync has committed a page or two, mid-stream.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _pages_committed(store_path):
            time.sleep(0.05)
        assert stopped.poll() is None, "the sync ended before it could be stopped"
        stopped.send_signal(signal.SIGTERM)
        _, err = stopped.communicate(timeout=120)
        assert "Traceback" not in err
        assert stopped.returncode == 0, err[-2000:]
        # It finished the page in hand, recorded the streams as stopped, let go of the lock.
        runs = create_store_engine(f"sqlite:///{store_path}")
        with runs.connect() as connection:
            statuses = set(connection.exec_driver_sql("SELECT status FROM sync_run").scalars())
            locks = connection.exec_driver_sql("SELECT count(*) FROM run_lock").scalar_one()
        runs.dispose()
        assert "stopped" in statuses, statuses
        assert locks == 0
        finished = subprocess.run(
            [sys.executable, "-m", "clghub", "sync"],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert finished.returncode == 0, finished.stderr[-2000:]
        clean_config = tmp_path / "clean.toml"
        clean_config.write_text(
            text.replace(
                'url = "sqlite:///clghub.db"', f'url = "sqlite:///{tmp_path / "clean.db"}"'
            )
        )
        (tmp_path / "clghub-secrets.env").write_text(
            (sandbox.config_path.parent / "clghub-secrets.env").read_text()
        )
        subprocess.run(
            [sys.executable, "-m", "clghub", "--config", str(clean_config), "sync"],
            check=True,
            capture_output=True,
        )
        store = create_store_engine(f"sqlite:///{sandbox.config_path.parent / 'clghub.db'}")
        clean = create_store_engine(f"sqlite:///{tmp_path / 'clean.db'}")
        assert store_snapshot(store) == store_snapshot(clean)


def test_status_export_and_version_read_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv
    import io

    from clghub import __version__

    code, out, _ = cli(["--version"], capsys)
    assert (code, out.strip()) == (0, f"clghub {__version__}")
    with running_sandbox(tmp_path / "sandbox", accounts=30) as sandbox:
        config = str(sandbox.config_path)
        code, _, err = cli(["--config", config, "writeback", "--provision"], capsys)
        assert code == 0, err
        code, _, err = cli(["--config", config, "run", "--no-alerts"], capsys)
        assert code == 0, err
        code, out, err = cli(["--config", config, "status", "--json"], capsys)
        assert code == 0, err
        report = json.loads(out)
        assert {job["job"]: job["status"] for job in report["jobs"]} == {
            "sync": "ok",
            "score": "ok",
            "writeback": "ok",
            "digest": "ok",
        }
        cursors = {(c["source"], c["stream"]): c["cursor"] for c in report["cursors"]}
        assert ("salesforce", "Opportunity") in cursors
        assert ("hubspot", "deals") in cursors
        assert all(cursors.values())
        # Status counts what waits in quarantine, per stream, as the export lists it.
        code, out, err = cli(["--config", config, "export", "quarantine"], capsys)
        assert code == 0, err
        waiting: dict[tuple[str, str], int] = {}
        for row in json.loads(out):
            if row["resolved_at"] is None:
                key = (row["source"], row["stream"])
                waiting[key] = waiting.get(key, 0) + 1
        assert {(q["source"], q["stream"]): q["records"] for q in report["quarantine"]} == waiting
        assert report["writeback_failures"] == []
        assert report["last_digest"]["state"] == "posted"
        assert report["next_runs"] == []  # no scheduler has run against this store
        code, out, _ = cli(["--config", config, "status"], capsys)
        assert code == 0
        assert "Last run per stage" in out
        assert "Streams" in out
        code, out, _ = cli(["--config", config, "export", "accounts", "--format", "csv"], capsys)
        assert code == 0
        accounts = list(csv.DictReader(io.StringIO(out)))
        assert len(accounts) >= 30
        assert {"name", "domain", "segment"} <= set(accounts[0])
        code, out, _ = cli(["--config", config, "export", "value_scores"], capsys)
        assert code == 0
        scores = json.loads(out)
        assert scores
        assert all(0 <= row["score"] <= 100 for row in scores)
        code, _, err = cli(["--config", config, "export", "no_such_table"], capsys)
        assert code == 2
        assert "no_such_table" in err
