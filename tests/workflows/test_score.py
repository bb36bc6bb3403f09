"""``clghub score``: every workflow in order, history backfill, run records, the command."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from clghub.cli.app import main
from clghub.export import export_rows
from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade
from clghub.store.models import JobRun, table_of
from clghub.store.revenue import Retention
from clghub.store.value import Play, TimeToValue, ValueScore
from clghub.workflows import score as score_module
from clghub.workflows.score import (
    READS,
    STEPS,
    ScoreError,
    history_dates,
    resolve_as_of,
    run_score,
)
from tests.workflows.builders import World, config, populate

D = date(2026, 6, 30)


def book(engine: Engine, accounts: int = 30) -> None:
    with engine.begin() as connection:
        populate(World(connection), accounts=accounts, as_of=D, seed=7)


def jobs(engine: Engine) -> list[dict[str, Any]]:
    table = table_of(JobRun)
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(table).order_by(table.c.id))]


def count(engine: Engine, model: type[Any], **where: Any) -> int:
    table = table_of(model)
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def test_runs_every_workflow_in_order_and_records_the_run(engine: Engine) -> None:
    book(engine)
    report = run_score(engine, config(), as_of=D)

    assert report.status == "ok"
    assert [step.name for step in report.steps] == [name for name, _ in STEPS]
    assert all(step.as_of == D for step in report.steps)
    assert count(engine, ValueScore, as_of=D) == report.steps[3].counts["scored"] > 0
    assert count(engine, TimeToValue) > 0
    assert count(engine, Play) > 0
    [job] = jobs(engine)
    assert job["job"] == "score"
    assert job["status"] == "ok"
    assert job["run_id"] == report.run_id
    assert job["error"] is None
    assert job["counts"]["as_of"] == "2026-06-30"
    assert list(job["counts"]["steps"]) == [name for name, _ in STEPS]
    assert job["counts"]["steps"]["value_score"]["scored"] == report.steps[3].counts["scored"]


def test_rerun_is_idempotent(engine: Engine) -> None:
    book(engine)
    run_score(engine, config(), as_of=D)
    table = table_of(ValueScore)

    def snapshot() -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            return [
                tuple(r)
                for r in connection.execute(
                    select(table.c.account_id, table.c.score, table.c.band, table.c.explanation)
                    .where(table.c.as_of == D)
                    .order_by(table.c.account_id)
                )
            ]

    first, plays = snapshot(), count(engine, Play)
    second = run_score(engine, config(), as_of=D)
    assert snapshot() == first
    assert count(engine, Play) == plays
    assert second.steps[-1].counts["opened"] == 0


def test_history_backfills_weekly_snapshots_once(engine: Engine) -> None:
    book(engine)
    report = run_score(engine, config(), as_of=D, history_days=35)

    expected = [D - timedelta(days=n) for n in (35, 28, 21, 14, 7)]
    assert report.history == expected
    order = [(s.name, s.as_of) for s in report.steps]
    assert order[:3] == [("arr", D), ("retention", D), ("time_to_value", D)]
    assert order[3:8] == [("value_score", day) for day in expected]
    assert order[8] == ("value_score", D)
    for day in expected:
        assert count(engine, ValueScore, as_of=day) > 0
    table = table_of(ValueScore)
    with engine.connect() as connection:
        trends = connection.execute(
            select(func.count()).where(table.c.as_of == D, table.c.trend_30d.is_not(None))
        ).scalar_one()
    assert trends > 0  # today's 30-day trend compares with the backfilled D - 35
    assert jobs(engine)[0]["counts"]["history"]["days"] == [d.isoformat() for d in expected]

    again = run_score(engine, config(), as_of=D, history_days=35)
    assert again.history == []  # every snapshot is there already


def test_a_failing_workflow_is_recorded_and_stops_the_run(engine: Engine) -> None:
    book(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE value_driver"))

    with pytest.raises(ScoreError, match="score failed in value_score") as failure:
        run_score(engine, config(), as_of=D)

    report = failure.value.report
    assert report.status == "failed"
    names = [s.name for s in report.steps]
    # Nothing that reads the value score ran; on PostgreSQL, the steps that do
    # not read it may have finished beside it (CLV, incentives).
    assert "value_score" not in names
    assert "plays" not in names
    if engine.dialect.name == "sqlite":
        assert names == ["arr", "retention", "time_to_value"]
    else:
        assert names[:3] == ["arr", "retention", "time_to_value"]
        assert set(names[3:]) <= {"clv", "incentives"}
    assert count(engine, TimeToValue) > 0  # what ran before stays committed
    [job] = jobs(engine)
    assert job["status"] == "failed"
    assert "value_driver" in job["error"]
    assert list(job["counts"]["steps"]) == names


def test_as_of_defaults() -> None:
    assert resolve_as_of(config(reporting={"as_of": "2026-03-31"})) == date(2026, 3, 31)
    assert resolve_as_of(config(reporting={"as_of": "2026-03-31"}), D) == D
    assert history_dates(D, 0) == []
    assert history_dates(D, 7) == [D - timedelta(days=7)]
    assert history_dates(D, 10) == [D - timedelta(days=10), D - timedelta(days=3)]
    with pytest.raises(ValueError, match="must not be negative"):
        history_dates(D, -1)


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "clghub.toml"
    path.write_text('[store]\nurl = "sqlite:///store.db"\n\n[reporting]\nas_of = "2026-06-30"\n')
    return path


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config_file(tmp_path)
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    book(engine, accounts=10)

    code, out, _ = _cli(["--config", str(path), "score", "--json", "--backfill-days", "14"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["as_of"] == "2026-06-30"
    assert report["status"] == "ok"
    assert report["history"] == ["2026-06-16", "2026-06-23"]
    assert [s["name"] for s in report["steps"] if s["as_of"] == "2026-06-30"] == [
        name for name, _ in STEPS
    ]

    code, out, _ = _cli(["--config", str(path), "score", "--as-of", "2026-06-29"], capsys)
    assert code == 0
    assert "clghub score as of 2026-06-29" in out
    assert "value_score" in out
    assert count(engine, ValueScore, as_of=date(2026, 6, 29)) > 0
    engine.dispose()


def test_command_refuses_a_bad_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config_file(tmp_path)
    code, _, err = _cli(["--config", str(path), "score", "--as-of", "2026-13-01"], capsys)
    assert code == 2
    assert "2026-13-01" in err
    assert "YYYY-MM-DD" in err


def test_exports(engine: Engine) -> None:
    book(engine, accounts=12)
    run_score(engine, config(), as_of=D)
    with engine.connect() as connection:
        exported = {
            name: export_rows(connection, name, {"config": config()})
            for name in ("value_scores", "value_drivers", "time_to_value", "plays")
        }
        rows = {name: list(result) for name, (_, result) in exported.items()}
    assert len(rows["value_scores"]) == count(engine, ValueScore)
    assert len(rows["time_to_value"]) == count(engine, TimeToValue)
    assert len(rows["plays"]) == count(engine, Play)
    assert len(rows["value_drivers"]) == 7 * len(rows["value_scores"])
    columns = exported["value_scores"][0]
    assert {"account_id", "as_of", "score", "band", "trend_30d", "explanation"} <= set(columns)
    drivers = [(r["account_id"], r["driver"]) for r in rows["value_drivers"]]
    assert drivers == sorted(drivers)


def test_command_reports_a_failed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config_file(tmp_path)
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    book(engine, accounts=5)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE play"))
    engine.dispose()

    code, _, err = _cli(["--config", str(path), "score"], capsys)
    assert code == 1
    assert err.startswith("error: score failed in plays")
    assert "Traceback" not in err


def test_a_step_starts_only_after_the_steps_it_reads(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step waits for what it reads; on PostgreSQL, steps that don't read each other overlap."""
    book(engine)
    spans: dict[str, tuple[float, float]] = {}
    given: dict[str, set[str]] = {}
    load = score_module._load

    def timed(module: str) -> Any:
        compute = load(module)
        name = next(n for n, m in STEPS if m == module)

        def run(connection: Any, settings: Any, day: date, **kwargs: Any) -> Any:
            started = time.monotonic()
            given[name] = set(kwargs)
            if name in ("retention", "time_to_value", "clv"):
                time.sleep(0.3)  # long enough for the three to meet, when they may
            counts = compute(connection, settings, day, **kwargs)
            spans[name] = (started, time.monotonic())
            return counts

        return run

    monkeypatch.setattr(score_module, "_load", timed)
    report = run_score(engine, config(), as_of=D)

    assert report.status == "ok"
    assert [step.name for step in report.steps] == [name for name, _ in STEPS]
    # The value score takes the usage read ahead; no other step is given anything.
    assert given == {name: {"usage_rows"} if name == "value_score" else set() for name in spans}
    for name, reads in READS.items():
        for before in reads:
            assert spans[before][1] <= spans[name][0], f"{name} started before {before} ended"
    overlapping = {
        (a, b)
        for a in spans
        for b in spans
        if a < b and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]
    }
    if engine.dialect.name == "sqlite":
        assert overlapping == set()  # one writer: one step at a time, in order
        starts = sorted(spans, key=lambda name: spans[name][0])
        assert starts == [name for name, _ in STEPS]
    else:
        assert {("retention", "time_to_value"), ("clv", "retention")} <= overlapping


@pytest.mark.postgres
def test_two_runs_at_once_take_turns_step_by_step(pg_url: str) -> None:
    """Two concurrent runs (a schedule and a command) end where one run would."""
    engine = create_store_engine(pg_url)
    upgrade(engine)
    book(engine)
    try:
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(lambda _: run_score(engine, config(), as_of=D), range(2)))
        assert [r.status for r in reports] == ["ok", "ok"]
        table = table_of(ValueScore)
        with engine.connect() as connection:
            rows = connection.execute(
                select(func.count(), func.count(func.distinct(table.c.account_id))).where(
                    table.c.as_of == D
                )
            ).one()
        assert rows[0] == rows[1] == reports[0].steps[3].counts["scored"] > 0
        assert [j["status"] for j in jobs(engine)] == ["ok", "ok"]
    finally:
        engine.dispose()


def test_a_stop_cancels_the_steps_in_flight(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C or SIGTERM reach the main thread: the running steps are cancelled and roll back."""
    book(engine)
    load = score_module._load
    long_query = (
        "SELECT pg_sleep(60)"
        if engine.dialect.name == "postgresql"
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
        "WHERE x < 5000000000) SELECT count(*) FROM c"
    )

    def stalling(module: str) -> Any:
        compute = load(module)
        if module != dict(STEPS)["retention"]:
            return compute

        def run(connection: Any, settings: Any, day: date, **kwargs: Any) -> Any:
            counts = compute(connection, settings, day, **kwargs)  # written, not committed
            connection.execute(text(long_query))
            return counts

        return run

    real_wait = score_module.wait

    def stop_once_retention_runs(futures: Any, **kwargs: Any) -> Any:
        finished, waiting = real_wait(futures, timeout=2.0, return_when=kwargs["return_when"])
        if not finished:
            raise KeyboardInterrupt
        return finished, waiting

    monkeypatch.setattr(score_module, "_load", stalling)
    monkeypatch.setattr(score_module, "wait", stop_once_retention_runs)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_score(engine, config(), as_of=D)

    assert time.monotonic() - started < 30  # cancelled, not waited for
    assert count(engine, Retention) == 0  # the cancelled step rolled back
    [job] = jobs(engine)
    assert job["status"] == "stopped"
    assert "arr" in job["counts"]["steps"]
    assert "retention" not in job["counts"]["steps"]
