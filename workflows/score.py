"""``clghub score``: every workflow in order, one transaction each, with a run record.

Order: ARR ledger and bridge -> retention -> time to value -> value score ->
CLV -> incentives -> plays. Each workflow reads what some of the earlier
ones wrote (:data:`READS`), so a failure stops the run there: no step starts
after it, and what committed before stays (every workflow replaces its own
rows, so the next run repairs the rest).

On PostgreSQL, steps that do not read each other run side by side, each in
its own transaction on its own connection: once the ledger is built,
retention, time to value and CLV together, then the value score beside the
incentives. A run then takes about as long as its longest chain of steps
rather than the sum of them all. SQLite has one writer: its steps run one
after the other, in the order above.

``history_days`` also fills missing value-score snapshots for the weeks
before ``as_of`` (``as_of - history_days``, then every 7 days), oldest first,
so trends have something to compare with from the first run. Only value
scores are backfilled: plays alert on today, and the revenue figures are
rebuilt from the deals on every run.

The value score's usage totals for ``as_of`` are read on a second
connection from the start of the run, beside the steps before it (see
:mod:`clghub.workflows.read_ahead`).

Each run writes one ``job_run`` row (job ``score``): status, duration, the
counts of every workflow, and the error if one failed.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager, nullcontext
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
from clghub.workflows.read_ahead import UsageReadAhead, cancel_query

__all__ = [
    "STEPS",
    "ScoreError",
    "ScoreReport",
    "StepReport",
    "history_dates",
    "resolve_as_of",
    "run_score",
]

log = logging.getLogger(__name__)

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
READS: dict[str, frozenset[str]] = {
    "arr": frozenset(),
    "retention": frozenset({"arr"}),
    # Segments may be decided by current ARR (a ``min_arr`` rule): every step
    # that groups by segment reads the ledger.
    "time_to_value": frozenset({"arr"}),
    "value_score": frozenset({"arr", "time_to_value"}),
    "clv": frozenset({"arr"}),
    "incentives": frozenset({"arr", "clv"}),
    "plays": frozenset({"arr", "time_to_value", "value_score"}),
}
"""The steps whose rows each step reads: it starts only after they committed."""
_CONCURRENT_STEPS = 3
"""Steps at a time on PostgreSQL: after the ledger, three do not read each other."""
_BACKFILLED_AFTER = "time_to_value"
_HISTORY_STEP = "value_score"
_HISTORY_INTERVAL_DAYS = 7
# Serializes concurrent score runs on PostgreSQL, step by step (SQLite's
# BEGIN IMMEDIATE already does): one advisory lock per step, this key and the
# step's place in STEPS. Any constant works as long as it is unique.
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


_STEP_INDEX = {name: index for index, (name, _module) in enumerate(STEPS)}


def _prerequisites(plan: Sequence[tuple[str, date]]) -> list[set[int]]:
    """For each step of ``plan``, the earlier steps it must wait for: those it
    reads, and an earlier run of itself (value-score history, oldest first)."""
    return [
        {
            earlier
            for earlier, (other, _day) in enumerate(plan[:index])
            if other in READS[name] or other == name
        }
        for index, (name, _day) in enumerate(plan)
    ]


class _InFlight:
    """The driver connections of the running steps, so that a stop can cancel them.

    A stop (Ctrl-C, SIGTERM) reaches the main thread only; without a cancel the
    steps in the worker threads would run on and commit after it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drivers: set[Any] = set()

    @contextmanager
    def track(self, connection: Connection) -> Iterator[None]:
        driver = connection.connection.driver_connection
        with self._lock:
            self._drivers.add(driver)
        try:
            yield
        finally:
            with self._lock:
                self._drivers.discard(driver)

    def cancel(self) -> None:
        with self._lock:
            drivers = list(self._drivers)
        for driver in drivers:
            cancel_query(driver)


def _read_usage_ahead(engine: Engine, config: ClghubConfig, day: date) -> UsageReadAhead | None:
    """The usage read ahead for ``day``, where the store allows it; ``None`` otherwise."""
    if not UsageReadAhead.available(engine):
        return None
    try:
        return UsageReadAhead(engine, config, day)
    except Exception as exc:  # the value score reads the usage itself
        log.warning("usage not read ahead: %s", exc)
        return None


def _run_step(
    engine: Engine,
    config: ClghubConfig,
    name: str,
    compute: Callable[..., dict[str, int | float]],
    as_of: date,
    *,
    in_flight: _InFlight | None = None,
    usage: UsageReadAhead | None = None,
) -> StepReport:
    started = time.perf_counter()
    # Waited for before the step's transaction: on SQLite that holds the write lock.
    extra: dict[str, Any] = {"usage_rows": usage.rows()} if usage is not None else {}
    with (
        engine.connect() as connection,
        in_flight.track(connection) if in_flight is not None else nullcontext(),
        connection.begin(),
    ):
        if connection.dialect.name == "postgresql":
            # Shared on the steps it reads, then its own: another run cannot
            # rewrite what this step reads while it reads it. Always in STEPS
            # order (what a step reads comes before it), so never a deadlock.
            for read in sorted(_STEP_INDEX[other] for other in READS[name]):
                connection.execute(
                    text("SELECT pg_advisory_xact_lock_shared(:key, :step)"),
                    {"key": _SCORE_LOCK_KEY, "step": read},
                )
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key, :step)"),
                {"key": _SCORE_LOCK_KEY, "step": _STEP_INDEX[name]},
            )
            # JIT-compiling the workflows' long generated expressions costs more
            # (half a second a statement) than it saves on tables of this size.
            connection.execute(text("SET LOCAL jit = off"))
            # Sorts of a few hundred thousand snapshot rows stay in memory.
            connection.execute(text("SET LOCAL work_mem = '64MB'"))
        counts = compute(connection, config, as_of, **extra)
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
    with (
        record_job(engine, "score", run_id=report.run_id, trigger=trigger) as job,
        ExitStack() as resources,
    ):
        current = plan[0][0]
        usage = _read_usage_ahead(engine, config, day)
        if usage is not None:
            resources.callback(usage.close)
        in_flight = _InFlight()
        try:
            workers = _CONCURRENT_STEPS if engine.dialect.name == "postgresql" else 1
            waits_for = _prerequisites(plan)
            done: set[int] = set()
            pending = list(range(len(plan)))
            failure: tuple[str, BaseException] | None = None
            with ThreadPoolExecutor(workers, thread_name_prefix="score-step") as pool:
                running: dict[Future[StepReport], tuple[int, str]] = {}
                while pending or running:
                    # Start what may start, in plan order (all of it, one at a time, on SQLite).
                    for index in list(pending):
                        if failure is not None or len(running) >= workers:
                            break
                        if not waits_for[index] <= done:
                            continue
                        pending.remove(index)
                        name, step_day = plan[index]
                        current = name if step_day == day else f"{name} {step_day.isoformat()}"
                        future = pool.submit(
                            _run_step,
                            engine,
                            config,
                            name,
                            _load(modules[name]),
                            step_day,
                            in_flight=in_flight,
                            usage=usage if (name, step_day) == (_HISTORY_STEP, day) else None,
                        )
                        running[future] = (index, current)
                    if not running:
                        break  # a step failed: what had not started stays undone
                    try:
                        finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    except BaseException:
                        # Stopped (Ctrl-C, SIGTERM): the running steps roll back.
                        in_flight.cancel()
                        if usage is not None:
                            usage.cancel()
                        raise
                    for future in sorted(finished, key=lambda f: running[f][0]):
                        index, label = running.pop(future)
                        error = future.exception()
                        if error is not None:
                            failure = failure or (label, error)
                            continue
                        done.add(index)
                        report.steps.append(future.result())
                        report.steps.sort(key=lambda step: (_STEP_INDEX[step.name], step.as_of))
                        job.counts = report.counts()
                        if progress is not None:
                            progress.advance("score")
            if failure is not None:
                current = failure[0]
                raise failure[1]
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
