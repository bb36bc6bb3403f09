"""``clghub status``: what ran, where each stream stands, what needs a look."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, select

from clghub.config import ClghubConfig
from clghub.store import models
from clghub.store.models import table_of

__all__ = ["StatusSection", "collect_status", "register_status_section"]

StatusSection = Callable[[Connection], Any]
_EXTRA_SECTIONS: dict[str, StatusSection] = {}


def register_status_section(name: str, section: StatusSection) -> None:
    """Later stages (writeback, digest, scheduler) add their own section."""
    _EXTRA_SECTIONS[name] = section


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
    status: dict[str, Any] = {
        "jobs": jobs,
        "recent_jobs": recent_jobs,
        "streams": streams,
        "cursors": cursors,
        "quarantine": quarantined,
        "identity_conflicts": conflicts,
    }
    for name, section in _EXTRA_SECTIONS.items():
        status[name] = section(connection)
    return status
