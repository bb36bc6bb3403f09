"""The same book of customers gives the same value figures on SQLite and PostgreSQL.

The hand-computed tests run on both backends one at a time; this one puts a
larger, varied book (ties, gaps, missing data, odd priorities) into both and
compares every stored row of the value workflows, word for word.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade
from clghub.store.models import table_of
from clghub.store.value import Play, TimeToValue, ValueDriver, ValueScore
from clghub.workflows import plays, time_to_value, value_score
from tests.workflows.builders import World, config, populate

D = date(2026, 6, 30)
SETTINGS = config(
    value_score={
        "csat_weight": 0.2,
        "segments": {"enterprise": {"bands": {"green": 75, "yellow": 45}}},
    },
    segments={"rules": [{"name": "enterprise", "min_employees": 1000}]},
)
_CLOCKS = {"computed_at", "opened_at", "cleared_at"}


def _store(url: str) -> Iterator[Engine]:
    engine = create_store_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Engine]:
    yield from _store(sqlite_url)


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Engine]:
    yield from _store(pg_url)


def _compute(engine: Engine) -> None:
    with engine.begin() as connection:
        populate(World(connection), accounts=120, as_of=D, seed=20260630)
    for day in (D - timedelta(days=91), D - timedelta(days=35), D):
        with engine.begin() as connection:
            time_to_value.compute(connection, SETTINGS, day)
            value_score.compute(connection, SETTINGS, day)
            plays.compute(connection, SETTINGS, day)


def _rows(engine: Engine, model: type[Any], *order: str) -> list[dict[str, Any]]:
    table = table_of(model)
    with engine.connect() as connection:
        result = connection.execute(select(table).order_by(*(table.c[c] for c in order)))
        return [
            {key: value for key, value in row._mapping.items() if key not in _CLOCKS}
            for row in result
        ]


@pytest.mark.postgres
def test_identical_on_sqlite_and_postgresql(sqlite_store: Engine, pg_store: Engine) -> None:
    _compute(sqlite_store)
    _compute(pg_store)
    for model, order in (
        (ValueScore, ("as_of", "account_id")),
        (ValueDriver, ("as_of", "account_id", "driver")),
        (TimeToValue, ("account_id",)),
        (Play, ("id",)),
    ):
        on_sqlite = _rows(sqlite_store, model, *order)
        on_postgres = _rows(pg_store, model, *order)
        assert on_sqlite == on_postgres, model.__tablename__
    scored = _rows(sqlite_store, ValueScore, "as_of", "account_id")
    # The book exercises what it should: all bands, trends and several segments.
    assert {row["band"] for row in scored} == {"green", "yellow", "red"}
    assert any(row["trend_30d"] is not None for row in scored)
    assert any(row["trend_90d"] is not None for row in scored)
    assert {row["segment"] for row in scored} >= {"smb", "enterprise"}
    assert {row["condition"] for row in _rows(sqlite_store, Play, "id")} >= {
        "no_exec_meeting",
        "ttv_overdue",
        "red_renewal",
    }
