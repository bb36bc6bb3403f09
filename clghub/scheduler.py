"""``clghub schedule``: the configured jobs on their cron schedules, one active scheduler per store.

Several ``clghub schedule`` processes may run against one PostgreSQL store for
availability: the one that holds the ``scheduler`` lock is active, the others
stand by and try to take the lock every ``schedule.standby_poll_seconds``.
PostgreSQL releases an advisory lock the moment its holder's connection dies,
so a standby takes over within one poll after the active process is killed.

The active scheduler keeps its jobs in the store (APScheduler's SQLAlchemy job
store), coalesces missed runs into one, runs each job at most once at a time,
and starts a missed run only within ``misfire_grace_seconds``. Every job takes
the store's ``run`` lock too, so a ``clghub run`` from a terminal never
overlaps a scheduled one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from clghub.config import ClghubConfig, load_config
from clghub.cron import parse_cron
from clghub.lock import LockHeld, StoreLock, holding

__all__ = ["STOP", "ScheduleService", "run_scheduled_job"]

log = logging.getLogger("clghub.scheduler")

# Set on SIGTERM: the running job checkpoints its current page and returns.
STOP = threading.Event()
JOBS_TABLE = "apscheduler_jobs"


def run_scheduled_job(job: str, config_path: str) -> None:
    """What the scheduler runs: load the config afresh (edits apply), take the run lock, run."""
    from clghub import pipeline
    from clghub.store.engine import open_store

    config = load_config(Path(config_path))
    engine = open_store(config)
    run_id = str(uuid.uuid4())
    started = time.monotonic()
    log.info("job %s started (run %s)", job, run_id)
    try:
        with holding(engine, "run"):
            report = pipeline.run_job(
                engine, config, job, stop=STOP, run_id=run_id, trigger="schedule"
            )
        log.info("job %s finished %s in %.1fs", job, report.status, time.monotonic() - started)
    except LockHeld as exc:
        log.warning("job %s skipped: %s", job, exc)
    except Exception as exc:
        log.error("job %s failed after %.1fs: %s", job, time.monotonic() - started, exc)
    finally:
        engine.dispose()


def _same_schedule(stored: Job, trigger: CronTrigger, args: list[str]) -> bool:
    return (
        str(stored.trigger) == str(trigger)
        and str(getattr(stored.trigger, "timezone", "")) == str(trigger.timezone)
        and list(stored.args) == args
    )


class ScheduleService:
    def __init__(self, config: ClghubConfig, config_path: Path, engine: Engine) -> None:
        self.config = config
        self.config_path = config_path.resolve()
        self.engine = engine
        self.leader = StoreLock(engine, "scheduler", stale_after=30.0, heartbeat=5.0)
        self.scheduler: BackgroundScheduler | None = None
        self.role = "starting"

    def serve(self, stop: threading.Event) -> None:
        """Stand by until this process holds the scheduler lock, then schedule until ``stop``."""
        poll = self.config.schedule.standby_poll_seconds
        announced = False
        while not stop.is_set():
            if self.leader.try_acquire():
                break
            if not announced:
                log.info("another scheduler is active; standing by (checking every %.0fs)", poll)
                announced = True
            self.role = "standby"
            stop.wait(poll)
        if stop.is_set():
            return
        self.role = "active"
        log.info("scheduler active")
        try:
            self._start()
            while not stop.wait(1.0):
                if not self.leader.check():
                    log.error("lost the scheduler lock; stopping so that only one scheduler runs")
                    break
        finally:
            self._shutdown()
            self.leader.release()

    def _start(self) -> None:
        schedule = self.config.schedule
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.engine, tablename=JOBS_TABLE)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": schedule.misfire_grace_seconds,
            },
            timezone=schedule.timezone,
        )
        scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        scheduler.start(paused=True)
        wanted = set(schedule.jobs)
        for existing in scheduler.get_jobs():
            if existing.id not in wanted:
                scheduler.remove_job(existing.id)
        for job, expression in schedule.jobs.items():
            trigger = parse_cron(expression, schedule.timezone)
            args = [job, str(self.config_path)]
            stored = scheduler.get_job(job)
            if stored is not None and _same_schedule(stored, trigger, args):
                # Keep its next run time, even if it passed while no scheduler ran:
                # on resume the missed runs coalesce into one (within the grace time).
                continue
            scheduler.add_job(
                "clghub.scheduler:run_scheduled_job",
                trigger,
                id=job,
                name=job,
                args=args,
                replace_existing=True,
            )
        scheduler.resume()
        self.scheduler = scheduler
        for job in scheduler.get_jobs():
            log.info("scheduled %s: %s (next %s)", job.id, schedule.jobs[job.id], job.next_run_time)

    @staticmethod
    def _missed(event: JobExecutionEvent) -> None:
        log.warning(
            "job %s missed its %s run (beyond the misfire grace time)",
            event.job_id,
            event.scheduled_run_time,
        )

    def _shutdown(self) -> None:
        if self.scheduler is not None:
            STOP.set()
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
            STOP.clear()
