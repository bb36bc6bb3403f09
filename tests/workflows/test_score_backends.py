"""Every workflow's output is the same on SQLite and PostgreSQL, row for row.

The hand-computed ledgers run on each backend one at a time; here one book of
a few hundred customers (renewals, expansions, contractions, churn and
reactivations, usage, meetings, tickets) goes into both stores, ``clghub
score`` runs on each, and every snapshot table is compared: the ARR ledger
and bridge, retention by cohort, CLV and its models, incentives with their
detail, time to value, value scores and their drivers, and plays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select

from clghub.config.models import ClghubConfig
from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade
from clghub.store.models import table_of
from clghub.store.revenue import (
    ArrMonth,
    ArrMovement,
    Clv,
    ClvModel,
    Incentive,
    IncentiveDetail,
    Retention,
)
from clghub.store.value import Play, TimeToValue, ValueDriver, ValueScore
from clghub.workflows.score import run_score
from tests.bench.bench_score import AS_OF, Book, load_postgresql, load_sqlite

_CLOCKS = {"id", "computed_at", "opened_at", "cleared_at", "created_at", "updated_at"}
TABLES = (
    ArrMonth,
    ArrMovement,
    Retention,
    ClvModel,
    Clv,
    Incentive,
    IncentiveDetail,
    TimeToValue,
    ValueScore,
    ValueDriver,
    Play,
)


def _scored(url: str, load: Callable[[Engine, Book], None]) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_store_engine(url)
    upgrade(engine)
    try:
        load(engine, Book(300, seed=5))
        run_score(engine, ClghubConfig(), as_of=AS_OF)
        dump = {}
        with engine.connect() as connection:
            for model in TABLES:
                table = table_of(model)
                columns = [c for c in table.columns if c.name not in _CLOCKS]
                rows = connection.execute(select(*columns)).all()
                dump[table.name] = sorted(
                    (
                        tuple((c.name, _plain(v)) for c, v in zip(columns, row, strict=True))
                        for row in rows
                    ),
                    key=repr,
                )
        return dump
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    # JSON columns come back as dicts on both; floats are compared to 12 digits.
    if isinstance(value, float):
        return float(f"{value:.12g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


@pytest.mark.postgres
def test_every_workflow_gives_the_same_rows_on_both_backends(sqlite_url: str, pg_url: str) -> None:
    on_sqlite = _scored(sqlite_url, load_sqlite)
    on_postgres = _scored(pg_url, load_postgresql)
    for model in TABLES:
        name = table_of(model).name
        assert on_sqlite[name], f"{name} is empty: the book does not exercise it"
        assert on_sqlite[name] == on_postgres[name], name
    kinds = {dict(row)["kind"] for row in on_sqlite["arr_movement"]}
    assert {"new", "expansion", "contraction", "churn"} <= kinds, kinds
