"""Plays: one open alert per account and condition until the condition clears."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from clghub.config.models import ClghubConfig
from clghub.store.models import table_of, utcnow
from clghub.store.value import Play
from clghub.workflows import plays, time_to_value
from tests.workflows.builders import World, config

D = date(2026, 6, 30)
SETTINGS = config(
    plays={"score_drop_30d": 15, "red_renewal_days": 90, "no_exec_meeting_days": 90},
    time_to_value={"threshold": 10, "target_days": 60},
)


def run(engine: Engine, day: date = D, settings: ClghubConfig = SETTINGS) -> dict[str, Any]:
    with engine.begin() as connection:
        time_to_value.compute(connection, settings, day)
        return plays.compute(connection, settings, day)


def all_plays(engine: Engine) -> list[dict[str, Any]]:
    table = table_of(Play)
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(table).order_by(table.c.id))]


def open_plays(engine: Engine) -> dict[tuple[int, str], dict[str, Any]]:
    return {(p["account_id"], p["condition"]): p for p in all_plays(engine) if not p["cleared_at"]}


def test_score_drop_opens_once_and_clears(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        acme = world.customer("Acme", start=date(2026, 1, 1))
        world.meeting(acme, D - timedelta(days=5))
        world.usage(acme, "automations_run", {date(2026, 1, 10): 10})
        world.snapshot(acme, D - timedelta(days=35), 72.0, band="green")
        world.snapshot(
            acme,
            D,
            54.0,
            band="yellow",
            trend_30d=-18.0,
            explanation="adoption depth 28 (-15 in 35 days)",
        )
        steady = world.customer("Steady", start=date(2026, 1, 1))
        world.meeting(steady, D - timedelta(days=5))
        world.usage(steady, "automations_run", {date(2026, 1, 10): 10})
        world.snapshot(steady, D - timedelta(days=35), 70.0, band="green")
        world.snapshot(steady, D, 55.1, band="yellow", trend_30d=-14.9)

    counts = run(engine)
    again = run(engine)

    opened = open_plays(engine)
    assert list(opened) == [(acme, "score_drop")]
    play = opened[(acme, "score_drop")]
    assert play["value"] == 18.0
    assert play["opened_as_of"] == D
    assert play["detail"] == (
        "value score fell 18 points in 35 days, from 72 to 54 (yellow): "
        "adoption depth 28 (-15 in 35 days)"
    )
    assert play["notified_at"] is None
    assert counts["opened"] == 1
    assert counts["open_score_drop"] == 1
    assert again["opened"] == 0
    assert len(all_plays(engine)) == 1

    # A week later the score has recovered: the play clears, and stays cleared.
    later = D + timedelta(days=7)
    with engine.begin() as connection:
        World(connection).snapshot(acme, later, 70.0, band="green", trend_30d=-2.0)
    cleared = run(engine, later)
    assert cleared["cleared"] == 1
    assert open_plays(engine) == {}
    assert all_plays(engine)[0]["cleared_at"] is not None

    # It drops again: a new play, the old one kept as history.
    again_later = later + timedelta(days=7)
    with engine.begin() as connection:
        World(connection).snapshot(acme, again_later, 50.0, band="yellow", trend_30d=-22.0)
    run(engine, again_later)
    history = [(p["condition"], p["cleared_at"] is None) for p in all_plays(engine)]
    assert history == [("score_drop", False), ("score_drop", True)]


def test_red_renewal(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        soon = world.account("Soon")  # renews 2026-08-31: 62 days
        world.deal(soon, arr="1000", start=date(2025, 9, 1))
        late = world.account("Late")  # term ended 2026-06-19, renewal still open
        world.deal(late, arr="1000", start=date(2025, 6, 20), end=date(2026, 6, 19))
        far = world.account("Far")  # renews in 184 days
        world.deal(far, arr="1000", start=date(2026, 1, 1))
        signed = world.account("Signed")  # red, but the renewal is already won
        world.deal(signed, arr="1000", start=date(2025, 9, 1))
        world.deal(signed, arr="1000", start=date(2026, 9, 1), type="renewal", close=D)
        healthy = world.account("Healthy")
        world.deal(healthy, arr="1000", start=date(2025, 9, 1))
        for account in (soon, late, far, signed, healthy):
            world.meeting(account, D - timedelta(days=5))
            world.usage(account, "automations_run", {date(2025, 9, 1): 10})
            red = account != healthy
            world.snapshot(
                account, D, 31.5 if red else 50.0, band="red" if red else "yellow", explanation="x"
            )

    run(engine)

    red = {a: p for (a, c), p in open_plays(engine).items() if c == "red_renewal"}
    assert set(red) == {soon, late}
    assert red[soon]["value"] == 62.0
    assert red[soon]["detail"] == (
        "value score 32 (red) and the contract renews in 62 days (2026-08-31): x"
    )
    assert red[late]["value"] == -11.0
    assert red[late]["detail"] == (
        "value score 32 (red) and the contract was due for renewal 11 days ago (2026-06-19): x"
    )

    # A week on, still red: the same play, its numbers brought up to date.
    week = D + timedelta(days=7)
    with engine.begin() as connection:
        World(connection).snapshot(soon, week, 30.0, band="red", explanation="y")
    run(engine, week)
    refreshed = open_plays(engine)[(soon, "red_renewal")]
    assert refreshed["id"] == red[soon]["id"]
    assert refreshed["opened_as_of"] == D
    assert refreshed["value"] == 55.0
    assert refreshed["detail"] == (
        "value score 30 (red) and the contract renews in 55 days (2026-08-31): y"
    )


def test_no_executive_meeting(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        quiet = world.customer("Quiet", start=date(2025, 9, 1))
        world.meeting(quiet, D - timedelta(days=120))
        world.activity(quiet, D - timedelta(days=3), kind="call")  # a call is not a meeting
        never = world.customer("Never", start=D - timedelta(days=100))
        young = world.customer("Young", start=D - timedelta(days=30))
        recent = world.customer("Recent", start=date(2025, 9, 1))
        world.meeting(recent, D - timedelta(days=89))
        for account in (quiet, never, young, recent):
            world.usage(account, "automations_run", {D - timedelta(days=20): 10})

    run(engine)

    meetings = {a: p for (a, c), p in open_plays(engine).items() if c == "no_exec_meeting"}
    assert set(meetings) == {quiet, never}
    assert meetings[quiet]["detail"] == "no meeting with an economic buyer in 120 days"
    assert meetings[quiet]["value"] == 120.0
    assert meetings[never]["detail"] == (
        "no meeting with an economic buyer on record in 100 days as a customer"
    )

    with engine.begin() as connection:
        World(connection).meeting(quiet, D + timedelta(days=1))
    run(engine, D + timedelta(days=1))
    meetings_later = {a for (a, c) in open_plays(engine) if c == "no_exec_meeting"}
    assert meetings_later == {never, recent}  # recent is now at 90 days


def test_ttv_overdue_and_switching_it_off(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        stuck = world.customer("Stuck", start=date(2026, 3, 1))
        world.meeting(stuck, D - timedelta(days=2))
        done = world.customer("Done", start=date(2026, 3, 1))
        world.meeting(done, D - timedelta(days=2))
        world.usage(done, "automations_run", {date(2026, 6, 1): 10})

    run(engine)
    opened = open_plays(engine)
    assert list(opened) == [(stuck, "ttv_overdue")]
    assert opened[(stuck, "ttv_overdue")]["detail"] == (
        "no first value yet 121 days after the contract started on 2026-03-01 "
        "(first value: automations_run reaching 10 on a day; target 60 days)"
    )

    switched_off = config(
        plays={"ttv_overdue": False}, time_to_value={"threshold": 10, "target_days": 60}
    )
    counts = run(engine, settings=switched_off)
    assert counts["cleared"] == 1
    assert open_plays(engine) == {}


def test_plays_clear_when_the_account_stops_being_a_customer(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        leaving = world.account("Leaving")
        world.deal(leaving, arr="1000", start=date(2025, 7, 1), end=date(2026, 6, 30))
    run(engine)
    assert set(open_plays(engine)) == {(leaving, "no_exec_meeting"), (leaving, "ttv_overdue")}
    run(engine, D + timedelta(days=91))  # beyond the 90-day renewal grace
    assert open_plays(engine) == {}


def test_one_open_play_per_account_and_condition(engine: Engine) -> None:
    with engine.begin() as connection:
        acme = World(connection).customer("Acme", start=date(2025, 1, 1))
    row = {
        "account_id": acme,
        "condition": "score_drop",
        "opened_as_of": D,
        "opened_at": utcnow(),
    }
    table = table_of(Play)
    with engine.begin() as connection:
        connection.execute(insert(table), [row])
        connection.execute(insert(table), [{**row, "cleared_at": utcnow()}])  # history: fine
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(table), [row])
