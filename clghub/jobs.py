"""Run history: a ``job_run`` row per stage, with counts, duration and error."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update

from clghub.config.secrets import REDACTOR
from clghub.store.models import JobRun, table_of, utcnow

__all__ = ["JobRecord", "record_job"]

JOB = table_of(JobRun)


@dataclass
class JobRecord:
    id: int
    job: str
    counts: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None


@contextmanager
def record_job(
    engine: Engine, job: str, *, run_id: str, trigger: str = "cli"
) -> Iterator[JobRecord]:
    """Insert a running ``job_run`` row, and finish it however the block ends.

    The block may set ``record.counts`` and ``record.status`` ("ok", "stopped",
    "failed"); an exception marks the job failed (redacted) and propagates.
    """
    started = time.monotonic()
    with engine.begin() as connection:
        job_id = connection.execute(
            JOB.insert()
            .values(
                run_id=run_id,
                job=job,
                trigger=trigger,
                status="running",
                host=socket.gethostname()[:255],
                pid=os.getpid(),
            )
            .returning(JOB.c.id)
        ).scalar_one()
    record = JobRecord(job_id, job)
    try:
        yield record
    except BaseException as exc:
        record.status = "failed" if not isinstance(exc, KeyboardInterrupt) else "stopped"
        record.error = REDACTOR.redact(f"{type(exc).__name__}: {exc}")[:2000]
        raise
    finally:
        with engine.begin() as connection:
            connection.execute(
                update(JOB)
                .where(JOB.c.id == record.id)
                .values(
                    status=record.status,
                    finished_at=utcnow(),
                    duration_seconds=round(time.monotonic() - started, 3),
                    counts=record.counts or None,
                    error=record.error,
                )
            )
