"""Value scores: raw drivers, normalization, weights, bands, trends, explanations.

Every expected figure is worked out by hand from the data the test writes
(the comments show the arithmetic); each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from clghub.config.models import ClghubConfig
from clghub.store.models import table_of
from clghub.store.value import ValueDriver, ValueScore
from clghub.workflows import time_to_value, value_score
from tests.workflows.builders import World, config, days

D = date(2026, 6, 30)
START = date(2026, 1, 1)

LINEAR = {
    "outcome_progress": {"weight": 0.25, "normalize": "linear", "best": 1.0, "worst": 0.0},
    "adoption_depth": {"weight": 0.25, "normalize": "linear", "best": 2.0, "worst": 0.0},
    "breadth": {"weight": 0.15, "normalize": "linear", "best": 0.8, "worst": 0.0},
    "time_to_value": {"weight": 0.10, "normalize": "linear", "best": 14, "worst": 120},
    "executive_engagement": {"weight": 0.15, "normalize": "linear", "best": 14, "worst": 180},
    "support_friction": {"weight": 0.05, "normalize": "linear", "best": 0.0, "worst": 1.0},
    "sentiment": {"weight": 0.05, "normalize": "linear", "best": 10, "worst": 0},
}


def score_day(engine: Engine, settings: ClghubConfig, day: date) -> dict[str, int | float]:
    with engine.begin() as connection:
        time_to_value.compute(connection, settings, day)
        return value_score.compute(connection, settings, day)


def scores(engine: Engine, day: date) -> dict[int, dict[str, Any]]:
    table = table_of(ValueScore)
    with engine.connect() as connection:
        rows = connection.execute(select(table).where(table.c.as_of == day))
        return {row.account_id: dict(row._mapping) for row in rows}


def drivers(engine: Engine, day: date, account: int) -> dict[str, dict[str, Any]]:
    table = table_of(ValueDriver)
    with engine.connect() as connection:
        rows = connection.execute(
            select(table).where(table.c.as_of == day, table.c.account_id == account)
        )
        return {row.driver: dict(row._mapping) for row in rows}


def linear(raw: float, best: float, worst: float) -> float:
    return round(min(max((raw - worst) * 100 / (best - worst), 0.0), 100.0), 2)


def test_raw_drivers_and_linear_score(engine: Engine) -> None:
    settings = config(
        value_score={
            "drivers": LINEAR,
            "features": {"automations_run": 3.0, "reports_built": 1.0},
            "explain_top": 7,
        }
    )
    with engine.begin() as connection:
        world = World(connection)
        acme = world.customer("Acme", start=START, segment="smb", seats=40, outcome_target=200)
        window = days(D - timedelta(days=29), D)  # the 30 days ending on as_of
        world.on_days(acme, "active_users", 20, window)  # 600 user-days, 20 a day
        world.on_days(acme, "automations_run", 4, window)  # 30 x 4 x 3 = 360
        world.on_days(acme, "reports_built", 6, window)  # 30 x 6 x 1 = 180
        # Before the window: must not count.
        world.daily(acme, "reports_built", 1000, start=date(2026, 5, 1), end=date(2026, 5, 31))
        world.usage(acme, "automations_run", {date(2026, 2, 15): 12})  # first value: 45 days
        world.usage(
            acme,
            "outcome_kpi",
            {date(2026, 6, 10): 100, date(2026, 6, 20): 150, date(2026, 7, 1): 500},
        )
        world.usage(acme, "nps", {D: 9, D - timedelta(days=50): 8, D - timedelta(days=100): 7})
        world.usage(acme, "nps", {D - timedelta(days=200): 0})  # older than 180 days
        world.meeting(acme, date(2026, 6, 10))  # economic buyer, 20 days before
        world.activity(acme, date(2026, 5, 1), kind="call", role="champion")
        world.activity(acme, date(2026, 3, 1), kind="email", role="user")  # > 90 days ago
        world.activity(acme, date(2026, 6, 1), kind="task", role="user")  # not engagement
        world.meeting(acme, date(2026, 7, 2))  # after as_of
        for priority in ("low", "high", "urgent", None):  # 1 + 4 + 8 + 2 (as medium) = 15
            world.ticket(acme, priority, opened=date(2026, 6, 1))
        world.ticket(acme, "urgent", opened=date(2026, 6, 1), deleted=True)
        world.ticket(acme, "urgent", opened=D - timedelta(days=100))

    counts = score_day(engine, settings, D)

    raw = {name: row["raw"] for name, row in drivers(engine, D, acme).items()}
    assert raw == {
        "outcome_progress": 0.75,  # latest KPI in the window, 150 / target 200
        "adoption_depth": 0.9,  # (360 + 180) / 600 active user-days
        "breadth": 0.533333,  # 0.8 x (20 / 40 seats) + 0.2 x (2 of 3 roles active)
        "time_to_value": 45.0,  # 2026-01-01 -> 2026-02-15
        "executive_engagement": 20.0,  # 2026-06-10 -> 2026-06-30
        "support_friction": 0.375,  # 15 weighted tickets / 40 seats
        "sentiment": 8.0,  # (9 + 8 + 7) / 3 within 180 days
    }
    expected = {name: linear(raw[name], d["best"], d["worst"]) for name, d in LINEAR.items()}
    stored = {name: row["score"] for name, row in drivers(engine, D, acme).items()}
    assert stored == expected
    assert expected["breadth"] == 66.67
    assert expected["executive_engagement"] == 96.39
    total = sum(LINEAR[name]["weight"] * expected[name] for name in LINEAR)
    row = scores(engine, D)[acme]
    assert row["score"] == round(total, 1) == 68.7
    assert row["band"] == "yellow"
    assert row["segment"] == "smb"
    assert row["trend_30d"] is None
    assert row["trend_90d"] is None
    assert row["drivers"] == {name: round(value, 1) for name, value in expected.items()}
    assert counts == {"scored": 1, "green": 0, "yellow": 1, "red": 0, "average_score": 68.7}
    # All seven, most relevant first (weight x (100 - score)): adoption 13.75,
    # outcome 6.25, breadth 5.0, time to value 2.9, friction 1.9, sentiment 1.0,
    # executive engagement 0.5.
    assert row["explanation"] == (
        "adoption depth 45; outcome progress 75% of target; breadth 67; "
        "first value took 45 days; "
        "15 priority-weighted support tickets in 90 days (score 63); "
        "sentiment 8.0 of 10; last executive meeting 20 days ago"
    )


def test_percentile_ranks_within_the_segment(engine: Engine) -> None:
    settings = config(
        value_score={
            "features": {"automations_run": 1.0},
            "drivers": {
                "adoption_depth": {"weight": 1.0, "normalize": "percentile"},
                "support_friction": {"weight": 1.0, "normalize": "percentile"},
            },
        }
    )
    window = days(D - timedelta(days=29), D)

    def peer(world: World, name: str, segment: str, level: int) -> int:
        # adoption depth = automations / active users = level;
        # support friction = level urgent tickets x 8 / 8 seats = level as well.
        account = world.customer(name, start=START, segment=segment, seats=8)
        world.on_days(account, "active_users", 10, window)
        world.on_days(account, "automations_run", 10 * level, window)
        for _ in range(level):
            world.ticket(account, "urgent", opened=D - timedelta(days=3))
        return account

    with engine.begin() as connection:
        world = World(connection)
        accounts = [
            peer(world, f"Peer {n}", "smb", level) for n, level in enumerate((0, 1, 1, 2, 3))
        ]
        # Everyone in the segment alike, or alone in it: nothing to rank, no score.
        alike = [peer(world, f"Alike {n}", "mid_market", 1) for n in range(2)]
        loner = peer(world, "Loner", "enterprise", 2)

    score_day(engine, settings, D)

    # n = 5. Lowest (0) -> 0, highest (3) -> 100; in between the share of peers below,
    # ((first rank - 1) + (last rank - 1)) / 2 / (n - 1): the tied 1s (ranks 2-3)
    # -> (1 + 2) / 2 / 4 = 37.5; the 2 (rank 4) -> 75. Friction is turned over.
    adoption = [drivers(engine, D, a)["adoption_depth"]["score"] for a in accounts]
    friction = [drivers(engine, D, a)["support_friction"]["score"] for a in accounts]
    assert adoption == [0.0, 37.5, 37.5, 75.0, 100.0]
    assert friction == [100.0, 62.5, 62.5, 25.0, 0.0]
    assert [scores(engine, D)[a]["score"] for a in accounts] == [50.0] * 5
    for account in [*alike, loner]:
        assert account not in scores(engine, D)
        assert drivers(engine, D, account) == {}


def test_weights_redistribute_over_drivers_with_data(engine: Engine) -> None:
    settings = config(value_score={"drivers": LINEAR})
    with engine.begin() as connection:
        world = World(connection)
        # Only executive engagement (weight 0.15) and friction (0.05) have data:
        # no usage ever, no outcome target, first value not due yet.
        sparse = world.customer("Sparse", start=date(2026, 6, 1), seats=10)
        world.meeting(sparse, date(2026, 6, 26))  # 4 days -> linear 100
        world.ticket(sparse, "medium", opened=date(2026, 6, 20))  # 2 / 10 = 0.2 -> 80
        # A customer without any data gets no score (not 0).
        empty = world.customer("Empty", start=date(2026, 6, 1))
        # Data, but no contract: not a customer, not scored.
        prospect = world.account("Prospect", seats=10)
        world.meeting(prospect, date(2026, 6, 26))

    score_day(engine, settings, D)

    found = drivers(engine, D, sparse)
    effective = {name: row["effective_weight"] for name, row in found.items()}
    assert effective == {
        "outcome_progress": 0.0,
        "adoption_depth": 0.0,
        "breadth": 0.0,
        "time_to_value": 0.0,
        "executive_engagement": 0.75,  # 0.15 / 0.20
        "support_friction": 0.25,  # 0.05 / 0.20
        "sentiment": 0.0,
    }
    assert found["adoption_depth"]["raw"] is None
    assert found["executive_engagement"]["weight"] == 0.15
    snapshot = scores(engine, D)
    assert snapshot[sparse]["score"] == 95.0  # 0.75 x 100 + 0.25 x 80
    assert snapshot[sparse]["band"] == "green"
    assert set(snapshot) == {sparse}
    assert drivers(engine, D, empty) == {}
    assert drivers(engine, D, prospect) == {}


def test_too_little_data_gets_no_score(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        # Seats and no tickets, nothing else: support friction (weight 0.05) alone.
        quiet = world.customer("Quiet", start=date(2026, 6, 1), seats=10)
        other = world.customer("Other", start=date(2026, 6, 1), seats=10)
        world.ticket(other, "high", opened=date(2026, 6, 20))

    score_day(engine, config(value_score={"min_coverage": 0.2}), D)
    assert scores(engine, D) == {}

    score_day(engine, config(value_score={"min_coverage": 0.0}), D)
    snapshot = scores(engine, D)
    assert snapshot[quiet]["score"] == 100.0
    assert snapshot[other]["score"] == 0.0


def test_usage_drivers_tell_silence_from_no_data(engine: Engine) -> None:
    settings = config(
        value_score={
            "drivers": LINEAR,
            "features": {"automations_run": 2.0},
            "min_coverage": 0,
        },
    )
    with engine.begin() as connection:
        world = World(connection)
        # Used the product in the spring, nothing in the window: depth 0, breadth 0.
        silent = world.customer("Silent", start=START, seats=10)
        world.daily(silent, "automations_run", 5, start=date(2026, 3, 1), end=date(2026, 3, 31))
        # Feature use but no active-user metric: depth per seat-day.
        # 30 x 5 x 2 = 300 / (10 seats x 30 days) = 1.0
        seats_only = world.customer("Seats only", start=START, seats=10)
        world.daily(seats_only, "automations_run", 5, start=D - timedelta(days=29), end=D)
        # Never any usage data: depth and breadth missing.
        unknown = world.customer("Unknown", start=START, seats=10)
        world.ticket(unknown, "low", opened=date(2026, 6, 1))

    score_day(engine, settings, D)

    assert drivers(engine, D, silent)["adoption_depth"]["raw"] == 0.0
    assert drivers(engine, D, silent)["breadth"]["raw"] == 0.0
    assert drivers(engine, D, seats_only)["adoption_depth"]["raw"] == 1.0
    assert drivers(engine, D, unknown)["adoption_depth"]["raw"] is None
    assert drivers(engine, D, unknown)["breadth"]["raw"] is None


def test_executive_engagement_when_never_met(engine: Engine) -> None:
    settings = config(value_score={"drivers": LINEAR, "min_coverage": 0})
    with engine.begin() as connection:
        world = World(connection)
        # Customer for 200 days, never met an economic buyer (a champion does not count):
        # the days so far (200 > the bound 180), which scores as the worst.
        old = world.customer("Old", start=D - timedelta(days=200), seats=5)
        world.meeting(old, D - timedelta(days=10), role="champion")
        # Customer for 100 days: too young to judge, missing.
        young = world.customer("Young", start=D - timedelta(days=100), seats=5)

    score_day(engine, settings, D)

    assert drivers(engine, D, old)["executive_engagement"]["raw"] == 200.0
    assert drivers(engine, D, old)["executive_engagement"]["score"] == 0.0
    assert drivers(engine, D, young)["executive_engagement"]["raw"] is None


def test_time_to_value_driver_reached_overdue_and_pending(engine: Engine) -> None:
    settings = config(
        value_score={"drivers": LINEAR, "min_coverage": 0}, time_to_value={"target_days": 60}
    )
    with engine.begin() as connection:
        world = World(connection)
        reached = world.customer("Reached", start=date(2026, 3, 1), seats=5)
        world.usage(reached, "automations_run", {date(2026, 3, 21): 10})  # 20 days
        overdue = world.customer("Overdue", start=date(2026, 3, 1), seats=5)  # 121 days, none
        pending = world.customer("Pending", start=date(2026, 5, 31), seats=5)  # 30 days, none

    score_day(engine, settings, D)

    assert drivers(engine, D, reached)["time_to_value"]["raw"] == 20.0
    assert drivers(engine, D, overdue)["time_to_value"]["raw"] == 121.0
    assert drivers(engine, D, overdue)["time_to_value"]["score"] == 0.0
    assert drivers(engine, D, pending)["time_to_value"]["raw"] is None


def test_sentiment_blends_csat(engine: Engine) -> None:
    settings = config(value_score={"drivers": LINEAR, "csat_weight": 0.25, "min_coverage": 0})
    with engine.begin() as connection:
        world = World(connection)
        both = world.customer("Both", start=START, seats=5)
        world.usage(both, "nps", {D: 8})
        world.ticket(both, "low", opened=D - timedelta(days=5), closed=D, csat=5)  # -> 10
        world.ticket(both, "low", opened=D - timedelta(days=5), csat=3)  # -> 5
        csat_only = world.customer("CSAT only", start=START, seats=5)
        world.ticket(csat_only, "low", opened=D - timedelta(days=5), csat=2)  # -> 2.5

    score_day(engine, settings, D)

    # 0.75 x 8 + 0.25 x (10 + 5) / 2 = 7.875
    assert drivers(engine, D, both)["sentiment"]["raw"] == 7.875
    assert drivers(engine, D, csat_only)["sentiment"]["raw"] == 2.5


def test_bands_follow_the_segment_scorecard(engine: Engine) -> None:
    settings = config(
        value_score={
            "drivers": {"executive_engagement": LINEAR["executive_engagement"]},
            "bands": {"green": 70, "yellow": 40},
            "segments": {"enterprise": {"bands": {"green": 80, "yellow": 60}}},
        }
    )
    with engine.begin() as connection:
        world = World(connection)
        accounts = {}
        # days since meeting -> linear score: 64 -> 69.88, 47 -> 80.12
        for segment, since in (("smb", 47), ("enterprise", 47), ("smb", 64), ("enterprise", 64)):
            account = world.customer(f"{segment} {since}", start=START, segment=segment)
            world.meeting(account, D - timedelta(days=since))
            accounts[(segment, since)] = account

    score_day(engine, settings, D)

    snapshot = scores(engine, D)
    bands = {key: (snapshot[a]["score"], snapshot[a]["band"]) for key, a in accounts.items()}
    assert bands == {
        ("smb", 47): (80.1, "green"),
        ("enterprise", 47): (80.1, "green"),
        ("smb", 64): (69.9, "yellow"),
        ("enterprise", 64): (69.9, "yellow"),
    }


def test_trends_and_explanation(engine: Engine) -> None:
    settings = config(
        value_score={
            "features": {"automations_run": 1.0},
            "drivers": {
                "outcome_progress": LINEAR["outcome_progress"],
                "adoption_depth": {"weight": 0.25, "normalize": "linear", "best": 1, "worst": 0},
                "executive_engagement": LINEAR["executive_engagement"],
                "breadth": {"weight": 0},
                "time_to_value": {"weight": 0},
                "support_friction": {"weight": 0},
                "sentiment": {"weight": 0},
            },
        }
    )
    earlier = D - timedelta(days=35)
    with engine.begin() as connection:
        world = World(connection)
        acme = world.customer("Acme", start=START, outcome_target=100, seats=200)
        world.daily(acme, "active_users", 100, start=START, end=D)
        world.daily(acme, "automations_run", 43, start=START, end=earlier)  # depth 0.43
        world.daily(acme, "automations_run", 28, start=earlier + timedelta(days=1), end=D)
        world.usage(acme, "outcome_kpi", {D - timedelta(days=40): 60, D - timedelta(days=5): 45})
        world.meeting(acme, D - timedelta(days=94))

    score_day(engine, settings, earlier)
    score_day(engine, settings, D)

    # At D - 35: outcome 60, adoption 43, executive (59 days) 72.89.
    # At D:      outcome 45, adoption 28, executive (94 days) 51.81.
    def total(outcome: float, adoption: float, executive: float) -> float:
        return round((0.25 * outcome + 0.25 * adoption + 0.15 * executive) / 0.65, 1)

    before = scores(engine, earlier)[acme]
    now = scores(engine, D)[acme]
    assert before["score"] == total(60, 43, linear(59, 14, 180)) == 56.4
    assert now["score"] == total(45, 28, linear(94, 14, 180)) == 40.0
    assert now["trend_30d"] == round(now["score"] - before["score"], 1) == -16.4
    assert now["trend_90d"] is None
    # Relevance = effective weight x max(100 - score, |change|):
    # adoption 0.385 x 72 > outcome 0.385 x 55 > executive 0.231 x 48.2.
    assert now["explanation"] == (
        "adoption depth 28 (-15 in 35 days); "
        "outcome progress 45% of target (60% 35 days ago); "
        "no executive meeting in 94 days"
    )
    assert before["explanation"] == (
        "adoption depth 43; outcome progress 60% of target; no executive meeting in 59 days"
    )


def test_trend_uses_the_nearest_snapshot_within_reach(engine: Engine) -> None:
    settings = config(
        value_score={"drivers": {"executive_engagement": LINEAR["executive_engagement"]}}
    )
    with engine.begin() as connection:
        world = World(connection)
        acme = world.account("Acme")
        world.deal(acme, arr="36000", start=date(2025, 1, 1), end=date(2027, 12, 31))
        for before in (260, 150, 5):
            world.meeting(acme, D - timedelta(days=before))

    snapshots = [D - timedelta(days=n) for n in (200, 95, 45, 0)]
    for day in snapshots:
        score_day(engine, settings, day)
    history = {day: scores(engine, day)[acme] for day in snapshots}

    # Days since the last meeting -> score: D-200: 60 -> 72.3; D-95: 55 -> 75.3;
    # D-45: 105 -> 45.2; D: 5 -> 100.
    assert [history[day]["score"] for day in snapshots] == [72.3, 75.3, 45.2, 100.0]
    # 30 days: the latest snapshot in (D-60, D-30] is D-45.
    assert history[D]["trend_30d"] == 54.8
    # 90 days: the latest in (D-180, D-90] is D-95 (D-200 is older).
    assert history[D]["trend_90d"] == 24.7
    # From D-95, 30 days back reaches (D-155, D-125]: nothing there, D-200 is too far.
    assert history[D - timedelta(days=95)]["trend_30d"] is None
    assert history[D - timedelta(days=95)]["trend_90d"] == 3.0


def test_rerun_replaces_the_snapshot(engine: Engine) -> None:
    settings = config(value_score={"drivers": LINEAR})
    with engine.begin() as connection:
        world = World(connection)
        acme = world.customer("Acme", start=START, seats=5)
        world.meeting(acme, D - timedelta(days=10))

    score_day(engine, settings, D)
    first = scores(engine, D)
    score_day(engine, settings, D)
    again = scores(engine, D)

    def without_clock(rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {k: {c: v for c, v in r.items() if c != "computed_at"} for k, r in rows.items()}

    assert without_clock(again) == without_clock(first)
    driver = table_of(ValueDriver)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(driver)).scalar_one()
    assert count == 7  # one row per driver, not two


def test_customers_include_a_renewal_in_its_grace_period(engine: Engine) -> None:
    settings = config(value_score={"drivers": LINEAR}, reporting={"renewal_grace_days": 30})
    with engine.begin() as connection:
        world = World(connection)
        lapsing = world.account("Lapsing")  # term ended 2026-06-14, renewal still open
        world.deal(lapsing, arr="1000", start=date(2025, 6, 15), end=date(2026, 6, 14))
        world.meeting(lapsing, D - timedelta(days=3))
        churned = world.account("Churned")  # ended 2026-05-14: beyond the 30-day grace
        world.deal(churned, arr="1000", start=date(2025, 5, 15), end=date(2026, 5, 14))
        world.meeting(churned, D - timedelta(days=3))
        future = world.account("Future")  # starts after as_of
        world.deal(future, arr="1000", start=date(2026, 7, 1))
        world.meeting(future, D - timedelta(days=3))

    score_day(engine, settings, D)

    assert set(scores(engine, D)) == {lapsing}


def test_config_refuses_a_scorecard_without_weight() -> None:
    zero = {name: {"weight": 0} for name in LINEAR}
    with pytest.raises(ValueError, match="at least one driver needs a weight above 0"):
        config(value_score={"drivers": zero})
    with pytest.raises(ValueError, match=r"segments\.enterprise\.drivers"):
        config(value_score={"segments": {"enterprise": {"drivers": zero}}})
