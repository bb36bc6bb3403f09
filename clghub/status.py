"""``clghub status``: what ran, where each stream stands, what needs a look."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from clghub.config import ClghubConfig
from clghub.store import models
from clghub.store.models import ScheduledJob, table_of
from clghub.store.outputs import DigestPost, WritebackState

__all__ = ["collect_status"]


def _rows(connection: Connection, statement: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(statement)]


def collect_status(
    connection: Connection, *, config: ClghubConfig | None = None, recent: int = 10
) -> dict[str, Any]:
    job = table_of(models.JobRun)
    sync = table_of(models.SyncRun)
    state = table_of(models.SyncState)
    quarantine = table_of(models.Quarantine)
    conflict = table_of(models.IdentityConflict)

    latest_job = select(job.c.job, func.max(job.c.id).label("id")).group_by(job.c.job).subquery()
    jobs = _rows(
        connection,
        select(
            job.c.job,
            job.c.status,
            job.c.trigger,
            job.c.started_at,
            job.c.finished_at,
            job.c.duration_seconds,
            job.c.counts,
            job.c.error,
        )
        .join(latest_job, job.c.id == latest_job.c.id)
        .order_by(job.c.job),
    )
    latest_sync = (
        select(sync.c.source, sync.c.stream, func.max(sync.c.id).label("id"))
        .group_by(sync.c.source, sync.c.stream)
        .subquery()
    )
    streams = _rows(
        connection,
        select(
            sync.c.source,
            sync.c.stream,
            sync.c.mode,
            sync.c.status,
            sync.c.started_at,
            sync.c.finished_at,
            sync.c.read,
            sync.c.inserted,
            sync.c.updated,
            sync.c.unchanged,
            sync.c.deleted,
            sync.c.quarantined,
            sync.c.error,
            state.c.cursor,
        )
        .join(latest_sync, sync.c.id == latest_sync.c.id)
        .outerjoin(state, (state.c.source == sync.c.source) & (state.c.stream == sync.c.stream))
        .order_by(sync.c.source, sync.c.stream),
    )
    cursors = _rows(
        connection,
        select(state.c.source, state.c.stream, state.c.cursor, state.c.updated_at).order_by(
            state.c.source, state.c.stream
        ),
    )
    quarantined = _rows(
        connection,
        select(quarantine.c.source, quarantine.c.stream, func.count().label("records"))
        .where(quarantine.c.resolved_at.is_(None))
        .group_by(quarantine.c.source, quarantine.c.stream)
        .order_by(quarantine.c.source, quarantine.c.stream),
    )
    conflicts = connection.execute(select(func.count()).select_from(conflict)).scalar_one()
    recent_jobs = _rows(
        connection,
        select(job.c.job, job.c.status, job.c.started_at, job.c.duration_seconds, job.c.error)
        .order_by(job.c.id.desc())
        .limit(recent),
    )
    writeback = table_of(WritebackState)
    failing = _rows(
        connection,
        select(
            writeback.c.crm,
            func.count(func.distinct(writeback.c.record_id)).label("records"),
            func.max(writeback.c.last_error).label("example_error"),
        )
        .where(writeback.c.last_error.is_not(None))
        .group_by(writeback.c.crm)
        .order_by(writeback.c.crm),
    )
    digest = table_of(DigestPost)
    last_digest = _rows(
        connection,
        select(digest.c.period, digest.c.channel, digest.c.state, digest.c.posted_at, digest.c.last_error)
        .order_by(digest.c.period.desc(), digest.c.channel)
        .limit(1),
    )
    scheduled = table_of(ScheduledJob)
    next_runs = [
        {"job": job, "next_run": datetime.fromtimestamp(moment, UTC) if moment else None}
        for job, moment in connection.execute(
            select(scheduled.c.id, scheduled.c.next_run_time).order_by(scheduled.c.next_run_time)
        )
    ]
    status: dict[str, Any] = {
        "jobs": jobs,
        "recent_jobs": recent_jobs,
        "streams": streams,
        "cursors": cursors,
        "quarantine": quarantined,
        "identity_conflicts": conflicts,
        "writeback_failures": failing,
        "last_digest": last_digest[0] if last_digest else None,
        "next_runs": next_runs,
    }
    return status
