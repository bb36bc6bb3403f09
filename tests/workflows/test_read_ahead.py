"""The value score's usage totals read ahead, on a second connection, give the same snapshot."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, delete, select
from sqlalchemy.pool import NullPool

from clghub.store.engine import create_store_engine
from clghub.store.models import table_of
from clghub.store.value import ValueDriver, ValueScore
from clghub.workflows import time_to_value, value_score
from clghub.workflows.read_ahead import UsageReadAhead
from tests.workflows.builders import World, config, populate

D = date(2026, 6, 30)
SETTINGS = config(value_score={"csat_weight": 0.2})


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    tables = {"value_score": table_of(ValueScore), "value_driver": table_of(ValueDriver)}
    with engine.connect() as connection:
        return {
            name: sorted(
                tuple(v for k, v in row._mapping.items() if k != "computed_at")
                for row in connection.execute(select(table))
            )
            for name, table in tables.items()
        }


def _clear(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(delete(table_of(ValueDriver)))
        connection.execute(delete(table_of(ValueScore)))


def test_the_rows_read_ahead_score_as_the_step_would(engine: Engine) -> None:
    with engine.begin() as connection:
        populate(World(connection), accounts=80, as_of=D, seed=11)
        time_to_value.compute(connection, SETTINGS, D)
        value_score.compute(connection, SETTINGS, D)
    in_step = _snapshot(engine)
    assert len(in_step["value_score"]) > 40
    _clear(engine)

    assert UsageReadAhead.available(engine)
    ahead = UsageReadAhead(engine, SETTINGS, D)
    try:
        rows = ahead.rows()
        assert rows is not None
        assert len(rows) > 40
        with engine.begin() as connection:
            value_score.compute(connection, SETTINGS, D, usage_rows=rows)
    finally:
        ahead.close()

    assert _snapshot(engine) == in_step


def test_a_failed_read_leaves_the_step_to_read_the_usage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unmigrated = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")  # no usage table
    ahead = UsageReadAhead(unmigrated, SETTINGS, D)
    with caplog.at_level(logging.WARNING, logger="clghub.workflows.read_ahead"):
        assert ahead.rows() is None
    ahead.close()
    unmigrated.dispose()
    assert "the value score reads it itself" in caplog.text


def test_a_store_in_memory_is_not_read_ahead() -> None:
    assert not UsageReadAhead.available(create_store_engine("sqlite://"))
    assert not UsageReadAhead.available(create_store_engine("sqlite:///:memory:"))
    shared = "sqlite:///file:scratch?mode=memory&cache=shared&uri=true"
    assert not UsageReadAhead.available(create_engine(shared, poolclass=NullPool))
