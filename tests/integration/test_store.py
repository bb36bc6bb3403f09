"""The store on SQLite and on a real PostgreSQL: migrations, upsert, exact types."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, inspect, select
from sqlmodel import SQLModel

from clghub.store.engine import create_store_engine
from clghub.store.migrate import current_revision, head_revision, upgrade
from clghub.store.models import Opportunity, table_of
from clghub.store.upsert import upsert

TABLE = table_of(Opportunity)
KEY = ["source", "source_id"]
COLUMNS = ["name", "amount", "currency", "close_date", "source_modified_at", "is_deleted", "status"]


def test_migrations_reach_head_from_empty(store_url: str) -> None:
    engine = create_store_engine(store_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"account", "opportunity", "usage_daily", "sync_state", "quarantine"} <= tables
    upgrade(engine)  # idempotent
    engine.dispose()


def test_models_and_migrations_agree(engine: Engine) -> None:
    """A model change without a migration fails here."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_sqlite_settings(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_money_and_time_zones_survive(engine: Engine) -> None:
    tokyo = timezone(timedelta(hours=9))
    row = {
        "source": "salesforce",
        "source_id": "006A",
        "name": "Renewal",
        "amount": Decimal("123456789.1235"),
        "arr": Decimal("-0.0001"),
        "currency": "JPY",
        "close_date": date(2026, 2, 28),
        "source_modified_at": datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=tokyo),
        "is_deleted": False,
        "status": "won",
    }
    with engine.begin() as connection:
        upsert(connection, TABLE, [row], key=KEY)
    with engine.connect() as connection:
        stored = connection.execute(select(TABLE).where(TABLE.c.source_id == "006A")).one()._mapping
    assert stored["amount"] == Decimal("123456789.1235")
    assert isinstance(stored["amount"], Decimal)
    assert stored["arr"] == Decimal("-0.0001")
    assert stored["source_modified_at"] == datetime(2026, 3, 1, 0, 30, 15, 123456, tzinfo=UTC)
    assert stored["source_modified_at"].tzinfo is not None
    assert stored["created_at"].tzinfo is not None


def test_floats_and_naive_datetimes_are_refused(engine: Engine) -> None:
    base = {"source": "s", "source_id": "1", "status": "open", "is_deleted": False}
    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError, match="never a float"), engine.begin() as connection:
        upsert(connection, TABLE, [{**base, "amount": 1.5}], key=KEY)
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as connection:
        upsert(connection, TABLE, [{**base, "source_modified_at": datetime(2026, 1, 1)}], key=KEY)


def test_unchanged_rows_are_left_alone(engine: Engine) -> None:
    rows = [
        {
            "source": "hubspot",
            "source_id": str(i),
            "name": f"Deal {i}",
            "amount": Decimal(i),
            "status": "open",
            "is_deleted": False,
        }
        for i in range(10)
    ]
    with engine.begin() as connection:
        first = upsert(connection, TABLE, rows, key=KEY)
    assert (first.inserted, first.updated, first.unchanged) == (10, 0, 0)
    with engine.connect() as connection:
        before = {
            r.source_id: r.updated_at
            for r in connection.execute(select(TABLE.c.source_id, TABLE.c.updated_at))
        }
    time.sleep(0.01)
    rows[3] = {**rows[3], "name": "Deal 3 (renamed)"}
    rows.append({**rows[0], "source_id": "new"})
    with engine.begin() as connection:
        second = upsert(connection, TABLE, rows, key=KEY)
    assert (second.inserted, second.updated, second.unchanged) == (1, 1, 9)
    with engine.connect() as connection:
        after = {
            r.source_id: (r.updated_at, r.row_version)
            for r in connection.execute(
                select(TABLE.c.source_id, TABLE.c.updated_at, TABLE.c.row_version)
            )
        }
    assert after["3"][0] > before["3"]
    assert after["3"][1] == 2
    assert all(after[k] == (before[k], 1) for k in before if k != "3")


def test_duplicate_keys_in_one_batch_keep_the_last(engine: Engine) -> None:
    rows = [
        {"source": "s", "source_id": "dup", "name": "first", "status": "open", "is_deleted": False},
        {
            "source": "s",
            "source_id": "dup",
            "name": "second",
            "status": "open",
            "is_deleted": False,
        },
    ]
    with engine.begin() as connection:
        counts = upsert(connection, TABLE, rows, key=KEY)
    assert (counts.inserted, counts.duplicates) == (1, 1)
    with engine.connect() as connection:
        assert connection.execute(select(TABLE.c.name)).scalar_one() == "second"


def test_large_batch_in_one_call(engine: Engine) -> None:
    rows = [
        {
            "source": "s",
            "source_id": f"{i:06d}",
            "name": "x" * 40,
            "amount": Decimal("1.5"),
            "status": "won",
            "is_deleted": False,
        }
        for i in range(5000)
    ]
    with engine.begin() as connection:
        counts = upsert(connection, TABLE, rows, key=KEY)
    assert counts.inserted == 5000


# --------------------------------------------------------------------------- property

_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30
)
_amount = st.decimals(
    min_value=Decimal("-1e11"), max_value=Decimal("1e11"), places=4, allow_nan=False
)
_moment = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2090, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))]
    ),
)
_row = st.fixed_dictionaries(
    {
        "source": st.just("salesforce"),
        "source_id": st.sampled_from(["a", "b", "c", "d", "e"]),
        "name": st.none() | _text,
        "amount": st.none() | _amount,
        "currency": st.sampled_from(["USD", "EUR", None]),
        "close_date": st.none() | st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 1, 1)),
        "source_modified_at": st.none() | _moment,
        "is_deleted": st.booleans(),
        "status": st.sampled_from(["open", "won", "lost"]),
    }
)


def _comparable(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in COLUMNS)


def test_upsert_round_trip_property(engine: Engine) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(batches=st.lists(st.lists(_row, max_size=8), min_size=1, max_size=4))
    def check(batches: list[list[dict[str, Any]]]) -> None:
        with engine.begin() as connection:
            connection.execute(delete(TABLE))
        model: dict[str, dict[str, Any]] = {}
        for batch in batches:
            last = {row["source_id"]: row for row in batch}
            expected_inserted = sum(1 for k in last if k not in model)
            expected_updated = sum(
                1 for k, r in last.items() if k in model and _comparable(model[k]) != _comparable(r)
            )
            with engine.begin() as connection:
                counts = upsert(connection, TABLE, batch, key=KEY)
            assert counts.inserted == expected_inserted
            assert counts.updated == expected_updated
            assert counts.unchanged == len(last) - expected_inserted - expected_updated
            assert counts.duplicates == len(batch) - len(last)
            model.update(last)
        with engine.connect() as connection:
            stored = {r.source_id: dict(r._mapping) for r in connection.execute(select(TABLE))}
        assert set(stored) == set(model)
        for key, row in model.items():
            assert _comparable(stored[key]) == _comparable(row)

    check()
