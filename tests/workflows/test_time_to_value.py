"""Time to first value per account, and its cohort medians and activation rate."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, select

from clghub.export import export_rows
from clghub.store.models import table_of
from clghub.store.value import TimeToValue
from clghub.workflows import time_to_value
from clghub.workflows.time_to_value import CohortTimeToValue
from tests.workflows.builders import World, config

D = date(2026, 6, 30)
SETTINGS = config(time_to_value={"metric": "automations_run", "threshold": 10, "target_days": 60})


def run(engine: Engine, day: date = D) -> dict[str, int | float]:
    with engine.begin() as connection:
        return time_to_value.compute(connection, SETTINGS, day)


def rows(engine: Engine) -> dict[int, dict[str, Any]]:
    table = table_of(TimeToValue)
    with engine.connect() as connection:
        return {r.account_id: dict(r._mapping) for r in connection.execute(select(table))}


def test_days_to_first_value_activation_and_overdue(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        fast = world.customer("Fast", start=date(2026, 3, 1))
        world.usage(fast, "automations_run", {date(2026, 2, 20): 50})  # before the start
        world.usage(fast, "automations_run", {date(2026, 3, 10): 9})  # below the threshold
        world.usage(fast, "automations_run", {date(2026, 3, 15): 10, date(2026, 3, 20): 30})
        slow = world.customer("Slow", start=date(2026, 1, 1))
        world.usage(slow, "automations_run", {date(2026, 4, 1): 12})  # 90 days: late
        stuck = world.customer("Stuck", start=date(2026, 3, 1))  # 121 days, nothing
        world.usage(stuck, "automations_run", {date(2026, 7, 5): 99})  # after as_of
        world.usage(stuck, "reports_built", {date(2026, 3, 5): 99})  # another metric
        fresh = world.customer("Fresh", start=date(2026, 6, 1))  # 29 days: not due yet
        later = world.customer("Later", start=date(2026, 7, 1))  # starts after as_of

    counts = run(engine)

    found = rows(engine)
    assert set(found) == {fast, slow, stuck, fresh}
    assert later not in found
    summary = {
        account: (r["first_value_day"], r["days"], r["activated"], r["overdue"])
        for account, r in found.items()
    }
    assert summary == {
        fast: (date(2026, 3, 15), 14, True, False),
        slow: (date(2026, 4, 1), 90, False, False),
        stuck: (None, None, False, True),
        fresh: (None, None, False, False),
    }
    assert found[fast]["contract_start"] == date(2026, 3, 1)
    assert found[fast]["as_of"] == D
    assert found[fast]["segment"] == "smb"
    assert counts == {"accounts": 4, "reached": 2, "activated": 1, "overdue": 1}


def test_contract_start_is_the_first_base_contract(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        renewed = world.account("Renewed")
        world.deal(renewed, arr="1000", start=date(2026, 2, 1), type="renewal")
        world.deal(renewed, arr="1000", start=date(2025, 2, 1), type=None)  # untyped first deal
        world.deal(renewed, arr="500", start=date(2024, 6, 1), type="expansion")  # not a base
        world.deal(renewed, arr="900", start=date(2024, 1, 1), status="lost")
        world.deal(renewed, arr="900", start=date(2023, 1, 1), deleted=True)
        world.usage(renewed, "automations_run", {date(2025, 2, 11): 10})
        gone = world.account("Gone", deleted=True)
        world.deal(gone, arr="1000", start=date(2026, 1, 1))

    run(engine)

    found = rows(engine)
    assert set(found) == {renewed}
    assert found[renewed]["contract_start"] == date(2025, 2, 1)
    assert found[renewed]["days"] == 10


def test_rerun_replaces_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        acme = world.customer("Acme", start=date(2026, 3, 1))
    run(engine, date(2026, 4, 1))
    assert rows(engine)[acme]["overdue"] is False
    with engine.begin() as connection:
        World(connection).usage(acme, "automations_run", {date(2026, 5, 10): 11})
    run(engine)
    run(engine)
    assert len(rows(engine)) == 1
    assert rows(engine)[acme]["days"] == 70
    assert rows(engine)[acme]["as_of"] == D


def test_cohort_medians_and_activation_rate(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)

        def customer(name: str, segment: str, start: date, taken: int | None) -> None:
            account = world.customer(name, start=start, segment=segment)
            if taken is not None:
                world.usage(account, "automations_run", {start + timedelta(days=taken): 10})

        # 2025 cohort, smb: 10, 20, 90 days and one never (all started long ago).
        customer("A", "smb", date(2025, 3, 1), 10)
        customer("B", "smb", date(2025, 4, 1), 20)
        customer("C", "smb", date(2025, 5, 1), 90)
        customer("D", "smb", date(2025, 6, 1), None)
        # 2026 cohort, enterprise: 30 and 50 days; one 20 days old that has activated
        # already, one 10 days old that has not (both too young to count in the rate).
        customer("E", "enterprise", date(2026, 1, 5), 30)
        customer("F", "enterprise", date(2026, 2, 1), 50)
        customer("G", "enterprise", D - timedelta(days=20), 5)
        customer("H", "enterprise", D - timedelta(days=10), None)

    run(engine)
    with engine.connect() as connection:
        result = time_to_value.summary(connection, SETTINGS)

    # all: reached 10, 20, 90, 30, 50, 5 -> median (20 + 30) / 2 = 25; eligible A-F,
    # activated among them A, B, E, F -> 4 / 6.
    assert result == [
        CohortTimeToValue("all", "all", 8, 6, 5, 1, 6, 4 / 6, 25.0),
        CohortTimeToValue("segment", "enterprise", 4, 3, 3, 0, 2, 1.0, 30.0),
        CohortTimeToValue("segment", "smb", 4, 3, 2, 1, 4, 0.5, 20.0),
        CohortTimeToValue("acquisition_year", "2025", 4, 3, 2, 1, 4, 0.5, 20.0),
        CohortTimeToValue("acquisition_year", "2026", 4, 3, 3, 0, 2, 1.0, 30.0),
    ]


def test_summary_export(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        acme = world.customer("Acme", start=date(2026, 1, 1))
        world.usage(acme, "automations_run", {date(2026, 1, 31): 10})
    run(engine)
    with engine.connect() as connection:
        columns, exported = export_rows(connection, "time_to_value_summary", {"config": SETTINGS})
        lines = list(exported)
        _, per_account = export_rows(connection, "time_to_value", {})
        accounts = list(per_account)
    assert columns == [
        "cohort_dim",
        "cohort_value",
        "accounts",
        "reached",
        "activated",
        "overdue",
        "eligible",
        "activation_rate",
        "median_days",
    ]
    assert [(r["cohort_dim"], r["cohort_value"], r["median_days"]) for r in lines] == [
        ("all", "all", 30.0),
        ("segment", "smb", 30.0),
        ("acquisition_year", "2026", 30.0),
    ]
    assert [(r["account_id"], r["days"]) for r in accounts] == [(acme, 30)]
