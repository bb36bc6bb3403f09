"""``clghub score``: every workflow in order, one transaction each, with a run record.

Order: ARR ledger and bridge -> retention -> time to value -> value score ->
CLV -> incentives -> plays. Each workflow reads what the earlier ones wrote,
so a failure stops the run there; what committed before stays (every
workflow replaces its own rows, so the next run repairs the rest).

``history_days`` also fills missing value-score snapshots for the weeks
before ``as_of`` (``as_of - history_days``, then every 7 days), oldest first,
so trends have something to compare with from the first run. Only value
scores are backfilled: plays alert on today, and the revenue figures are
rebuilt from the deals on every run.

Each run writes one ``job_run`` row (job ``score``): status, duration, the
counts of every workflow, and the error if one failed.
"""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from clghub.config.models import ClghubConfig
from clghub.errors import ClghubError
from clghub.jobs import record_job
from clghub.progress import Progress
from clghub.store.models import table_of
from clghub.store.value import ValueScore

__all__ = [
    "STEPS",
    "ScoreError",
    "ScoreReport",
    "StepReport",
    "history_dates",
    "resolve_as_of",
    "run_score",
]

Workflow = Callable[[Connection, ClghubConfig, date], dict[str, int | float]]

# (step name, module whose ``compute`` runs it), in the order they must run.
STEPS: tuple[tuple[str, str], ...] = (
    ("arr", "clghub.workflows.arr"),
    ("retention", "clghub.workflows.retention"),
    ("time_to_value", "clghub.workflows.time_to_value"),
    ("value_score", "clghub.workflows.value_score"),
    ("clv", "clghub.workflows.clv"),
    ("incentives", "clghub.workflows.incentives"),
    ("plays", "clghub.workflows.plays"),
)
_BACKFILLED_AFTER = "time_to_value"
_HISTORY_STEP = "value_score"
_HISTORY_INTERVAL_DAYS = 7
# Serializes concurrent score runs on PostgreSQL, step by step (SQLite's
# BEGIN IMMEDIATE already does). Any constant works as long as it is unique.
_SCORE_LOCK_KEY = 0x636C7363


@dataclass(frozen=True)
class StepReport:
    name: str
    as_of: date
    seconds: float
    counts: dict[str, int | float]


@dataclass
class ScoreReport:
    run_id: str
    as_of: date
    status: str = "running"
    """running, ok or failed."""
    duration_seconds: float = 0.0
    steps: list[StepReport] = field(default_factory=list)
    history: list[date] = field(default_factory=list)
    """The earlier days whose value-score snapshot this run filled in."""
    error: str | None = None

    def counts(self) -> dict[str, Any]:
        """What ``job_run.counts`` holds: per step its counts and seconds."""
        steps: dict[str, Any] = {}
        for step in self.steps:
            if step.as_of == self.as_of:
                steps[step.name] = {**step.counts, "seconds": round(step.seconds, 3)}
        backfill = [s for s in self.steps if s.as_of != self.as_of]
        result: dict[str, Any] = {"as_of": self.as_of.isoformat(), "steps": steps}
        if backfill:
            result["history"] = {
                "days": [d.isoformat() for d in self.history],
                "scored": sum(int(s.counts.get("scored", 0)) for s in backfill),
                "seconds": round(sum(s.seconds for s in backfill), 3),
            }
        return result

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "status": self.status,
            "duration_seconds": round(self.duration_seconds, 3),
            "steps": [
                {
                    "name": s.name,
                    "as_of": s.as_of.isoformat(),
                    "seconds": round(s.seconds, 3),
                    "counts": s.counts,
                }
                for s in self.steps
            ],
            "history": [d.isoformat() for d in self.history],
            "error": self.error,
        }


class ScoreError(ClghubError):
    """A workflow failed; ``report`` says which and what had run before it."""

    def __init__(self, message: str, report: ScoreReport) -> None:
        super().__init__(message)
        self.report = report


def resolve_as_of(config: ClghubConfig, as_of: date | None = None) -> date:
    """The day to compute for: ``as_of``, else ``reporting.as_of``, else today (UTC)."""
    if as_of is not None:
        return as_of
    if config.reporting.as_of:
        return date.fromisoformat(config.reporting.as_of)
    return datetime.now(UTC).date()


def history_dates(as_of: date, history_days: int) -> list[date]:
    """``as_of - history_days`` and every 7 days after it, before ``as_of``."""
    if history_days < 0:
        raise ValueError("history_days must not be negative")
    first = as_of - timedelta(days=history_days)
    count = (history_days + _HISTORY_INTERVAL_DAYS - 1) // _HISTORY_INTERVAL_DAYS
    return [first + timedelta(days=_HISTORY_INTERVAL_DAYS * n) for n in range(count)]


def _load(module: str) -> Workflow:
    compute: Workflow = importlib.import_module(module).compute
    return compute


def _missing_snapshots(engine: Engine, days: Sequence[date]) -> list[date]:
    if not days:
        return []
    score = table_of(ValueScore)
    with engine.connect() as connection:
        present = set(
            connection.execute(
                select(score.c.as_of).where(score.c.as_of.in_(days)).distinct()
            ).scalars()
        )
    return [day for day in days if day not in present]


def _run_step(
    engine: Engine, config: ClghubConfig, name: str, compute: Workflow, as_of: date
) -> StepReport:
    started = time.perf_counter()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCORE_LOCK_KEY})
            # JIT-compiling the workflows' long generated expressions costs more
            # (half a second a statement) than it saves on tables of this size.
            connection.execute(text("SET LOCAL jit = off"))
            # Sorts of a few hundred thousand snapshot rows stay in memory.
            connection.execute(text("SET LOCAL work_mem = '64MB'"))
        counts = compute(connection, config, as_of)
    return StepReport(name, as_of, time.perf_counter() - started, counts)


def run_score(
    engine: Engine,
    config: ClghubConfig,
    *,
    as_of: date | None = None,
    history_days: int = 0,
    progress: Progress | None = None,
    run_id: str | None = None,
    trigger: str = "cli",
) -> ScoreReport:
    """Run every workflow for ``as_of`` (see the module docstring).

    ``run_id`` ties this stage to the other stages of one ``clghub run``.
    Raises :class:`ScoreError` when a workflow fails, after recording the
    failure (and what ran before it) in ``job_run``.
    """
    day = resolve_as_of(config, as_of)
    history = _missing_snapshots(engine, history_dates(day, history_days))
    plan: list[tuple[str, date]] = []
    for name, _module in STEPS:
        plan.append((name, day))
        if name == _BACKFILLED_AFTER:
            plan.extend((_HISTORY_STEP, past) for past in history)
    modules = dict(STEPS)
    report = ScoreReport(run_id=run_id or str(uuid.uuid4()), as_of=day, history=history)
    started = time.perf_counter()
    if progress is not None:
        progress.start("score", f"score {day.isoformat()}", total=len(plan))
    with record_job(engine, "score", run_id=report.run_id, trigger=trigger) as job:
        current = plan[0][0]
        try:
            for name, step_day in plan:
                current = name if step_day == day else f"{name} {step_day.isoformat()}"
                workflow = _load(modules[name])
                report.steps.append(_run_step(engine, config, name, workflow, step_day))
                job.counts = report.counts()
                if progress is not None:
                    progress.advance("score")
        except Exception as exc:
            report.status = "failed"
            report.error = f"{current}: {type(exc).__name__}: {exc}"
            report.duration_seconds = time.perf_counter() - started
            job.counts = report.counts()
            if progress is not None:
                progress.finish("score", f"failed in {current}")
            raise ScoreError(f"score failed in {report.error}", report) from exc
        report.status = "ok"
        report.duration_seconds = time.perf_counter() - started
        job.counts = report.counts()
    if progress is not None:
        progress.finish("score", f"{report.duration_seconds:.1f} s")
    return report
