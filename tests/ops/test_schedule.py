"""`clghub schedule`: two schedulers on one PostgreSQL store, takeover, coalescing, the run lock."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from clghub.lock import LockHeld, StoreLock, holding
from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade
from clghub.store.models import JobRun, table_of

JOB = table_of(JobRun)
TICK = 3  # seconds between scheduled runs in these tests


def write_config(path: Path, store_url: str, *, grace: int = 2, tick: int = TICK) -> Path:
    path.write_text(
        f'[store]\nurl = "{store_url}"\n'
        f"[schedule]\nmisfire_grace_seconds = {grace}\nstandby_poll_seconds = 1\n"
        f'[schedule.jobs]\nscore = "*/{tick} * * * * *"\n'
        '[reporting]\nas_of = "2026-06-30"\n'
    )
    return path


class Scheduler:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.handle = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clghub", "--config", str(config), "schedule"],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def text(self) -> str:
        return self.log.read_text()

    @property
    def active(self) -> bool:
        return "scheduler active" in self.text()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(60)
        self.handle.close()


@pytest.fixture
def schedulers() -> Iterator[list[Scheduler]]:
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop(signal.SIGKILL)


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def scheduled_runs(engine: Engine) -> list[datetime]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(JOB.c.started_at)
                .where(JOB.c.job == "score", JOB.c.trigger == "schedule")
                .order_by(JOB.c.started_at)
            ).scalars()
        )


def assert_one_run_per_tick(starts: list[datetime]) -> None:
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]
    assert all(gap > TICK / 2 for gap in gaps), gaps


@pytest.mark.postgres
def test_two_schedulers_one_active_and_the_standby_takes_over(
    pg_url: str, tmp_path: Path, schedulers: list[Scheduler]
) -> None:
    engine = create_store_engine(pg_url)
    upgrade(engine)
    config = write_config(tmp_path / "clghub.toml", pg_url)
    first = Scheduler(config, tmp_path / "first.log")
    schedulers.append(first)
    wait_for(lambda: first.active)
    second = Scheduler(config, tmp_path / "second.log")
    schedulers.append(second)
    wait_for(lambda: "standing by" in second.text())
    wait_for(lambda: len(scheduled_runs(engine)) >= 3, timeout=40)
    assert not second.active
    assert_one_run_per_tick(scheduled_runs(engine))

    first.stop(signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: second.active, timeout=60)
    assert time.monotonic() - killed_at < 60
    before = len(scheduled_runs(engine))
    wait_for(lambda: len(scheduled_runs(engine)) >= before + 2, timeout=40)
    assert_one_run_per_tick(scheduled_runs(engine))
    second.stop()
    assert "scheduler stopped" in second.text()
    engine.dispose()


def test_missed_runs_coalesce_into_one(
    sqlite_url: str, tmp_path: Path, schedulers: list[Scheduler]
) -> None:
    engine = create_store_engine(sqlite_url)
    upgrade(engine)
    tick = 10
    # A long grace: runs missed while no scheduler ran are still due, and coalesce.
    config = write_config(tmp_path / "clghub.toml", sqlite_url, grace=600, tick=tick)
    scheduler = Scheduler(config, tmp_path / "first.log")
    schedulers.append(scheduler)
    wait_for(lambda: len(scheduled_runs(engine)) >= 1, timeout=40)
    scheduler.stop()
    stopped = len(scheduled_runs(engine))
    time.sleep(2.5 * tick)  # two ticks missed
    # Restart just after a tick boundary: a run before the next regular tick can
    # only be the catch-up of the missed ones.
    time.sleep(tick - time.time() % tick + 0.2)
    restarted_at = time.time()
    restarted = Scheduler(config, tmp_path / "second.log")
    schedulers.append(restarted)
    next_regular_tick = restarted_at - restarted_at % tick + tick
    time.sleep(max(0.0, next_regular_tick - 1.0 - time.time()))
    catch_up = scheduled_runs(engine)[stopped:]
    assert len(catch_up) == 1, catch_up  # the missed ticks, coalesced into one run
    assert restarted_at < catch_up[0].timestamp() < next_regular_tick
    wait_for(lambda: len(scheduled_runs(engine)) >= stopped + 2, timeout=3 * tick)
    restarted.stop()
    starts = scheduled_runs(engine)
    assert starts[stopped + 1].timestamp() >= next_regular_tick - 0.5  # then the regular tick
    engine.dispose()


@pytest.mark.postgres
def test_the_active_scheduler_notices_a_lost_postgresql_lock(pg_url: str) -> None:
    engine = create_store_engine(pg_url)
    upgrade(engine)
    active = StoreLock(engine, "scheduler")
    assert active.try_acquire()
    assert active.check()
    assert not StoreLock(engine, "scheduler").try_acquire()
    # The active process's database session dies (a network cut, a server restart):
    # the server frees the advisory lock, so a standby may take it...
    with engine.connect() as connection:
        ended = (
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
            )
            .scalars()
            .all()
        )
        connection.commit()
    assert ended == [True]
    standby = StoreLock(engine, "scheduler")
    assert standby.try_acquire()
    # ...and the one that was active learns it has lost it, and stands down.
    assert not active.check()
    active.release()
    standby.release()
    engine.dispose()


def test_run_lock_is_held_by_one_process_at_a_time(store_url: str) -> None:
    engine = create_store_engine(store_url)
    upgrade(engine)
    with holding(engine, "run"):
        other = StoreLock(engine, "run")
        assert not other.try_acquire()
        with pytest.raises(LockHeld), holding(engine, "run"):
            pass
    with holding(engine, "run"):
        pass
    engine.dispose()


def test_a_stale_sqlite_lock_is_taken_over(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    upgrade(engine)
    dead = StoreLock(engine, "run", stale_after=0.5, heartbeat=60)
    assert dead.try_acquire()
    dead._stop.set()  # the holder died: no more heartbeats
    time.sleep(0.7)
    taker = StoreLock(engine, "run", stale_after=0.5)
    assert taker.try_acquire()
    taker.release()
    engine.dispose()


def test_a_sqlite_lock_of_a_killed_process_is_taken_over_at_once(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    upgrade(engine)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from clghub.store.engine import create_store_engine\n"
            "from clghub.lock import StoreLock\n"
            "lock = StoreLock(create_store_engine(sys.argv[1]), 'run', heartbeat=60)\n"
            "assert lock.try_acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
            sqlite_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    # Alive and beating: refused, whatever the staleness setting.
    assert not StoreLock(engine, "run").try_acquire()
    holder.kill()
    holder.wait(30)
    holder.stdout.close()
    # Its heartbeat is fresh, but the process is gone: no minute-long wait.
    taker = StoreLock(engine, "run")
    assert taker.try_acquire()
    taker.release()
    engine.dispose()
