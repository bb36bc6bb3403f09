"""Plays: alerts for accounts that need someone, one per account and condition until it clears.

Conditions, evaluated for the customers of ``as_of`` (see
:func:`~clghub.workflows.value_drivers.current_customers`):

- ``score_drop``: the value score fell by at least ``plays.score_drop_30d``
  against the snapshot its 30-day trend is measured from.
- ``red_renewal``: the value score is red and the current term ends within
  ``plays.red_renewal_days`` (or ended, and the renewal is still open).
- ``no_exec_meeting``: no meeting with an economic buyer for
  ``plays.no_exec_meeting_days`` days; never met counts once the customer is
  that old.
- ``ttv_overdue`` (when ``plays.ttv_overdue``): no first value yet, more than
  ``time_to_value.target_days`` after the first contract started.

A run opens a play for each condition that holds and has no open play for
that account, and clears (``cleared_at``) the open plays whose condition no
longer holds, or whose rule is switched off. An open play keeps the day it
opened (``opened_as_of``) and has its ``value`` and ``detail`` brought up to
date on every run, so whoever reads it later sees today's numbers ("renews
in 44 days", not the 51 of the day it opened). Delivery fills
``notified_at`` and the references later.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Integer,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import FromClause

from clghub.config.models import ClghubConfig
from clghub.store.models import table_of, utcnow
from clghub.store.sqlfuncs import date_text, days_between
from clghub.store.value import Play, TimeToValue, ValueScore
from clghub.workflows.materialize import temporary_result
from clghub.workflows.scratch import scratch_table
from clghub.workflows.sql_numbers import days_text, integer_text
from clghub.workflows.time_to_value import first_contract_starts
from clghub.workflows.value_drivers import (
    Days,
    current_customers,
    last_executive_meeting,
)
from clghub.workflows.value_score import previous_snapshot

__all__ = ["CONDITIONS", "compute", "conditions_holding"]

CONDITIONS: tuple[str, ...] = ("score_drop", "red_renewal", "no_exec_meeting", "ttv_overdue")


def _score_drop(config: ClghubConfig, as_of: date, customers: Any) -> Select[Any]:
    score = table_of(ValueScore).alias("sd_score")
    previous = previous_snapshot(as_of, 30)
    fell = -score.c.trend_30d
    since = days_between(previous.c.prev_as_of, literal(as_of))
    detail = (
        "value score fell "
        + integer_text(fell)
        + " points in "
        + days_text(since)
        + ", from "
        + integer_text(score.c.score + fell)
        + " to "
        + integer_text(score.c.score)
        + " ("
        + score.c.band
        + "): "
        + func.coalesce(score.c.explanation, "")
    )
    return (
        select(
            score.c.account_id,
            literal("score_drop").label("condition"),
            cast(fell, Float).label("value"),
            detail.label("detail"),
        )
        .select_from(
            score.join(customers, customers.c.account_id == score.c.account_id).join(
                previous, previous.c.account_id == score.c.account_id
            )
        )
        .where(score.c.as_of == as_of, score.c.trend_30d <= -config.plays.score_drop_30d)
    )


def _red_renewal(config: ClghubConfig, as_of: date, customers: Any) -> Select[Any]:
    score = table_of(ValueScore).alias("rr_score")
    to_renewal = days_between(literal(as_of), customers.c.term_end)
    when = case(
        (to_renewal >= 0, "renews in " + days_text(to_renewal)),
        else_="was due for renewal " + days_text(-to_renewal) + " ago",
    )
    detail = (
        "value score "
        + integer_text(score.c.score)
        + " (red) and the contract "
        + when
        + " ("
        + date_text(customers.c.term_end)
        + "): "
        + func.coalesce(score.c.explanation, "")
    )
    return (
        select(
            score.c.account_id,
            literal("red_renewal").label("condition"),
            cast(to_renewal, Float).label("value"),
            detail.label("detail"),
        )
        .select_from(score.join(customers, customers.c.account_id == score.c.account_id))
        .where(
            score.c.as_of == as_of,
            score.c.band == "red",
            customers.c.term_end <= as_of + timedelta(days=config.plays.red_renewal_days),
        )
    )


def _no_exec_meeting(config: ClghubConfig, as_of: date, customers: Any) -> Select[Any]:
    limit = config.plays.no_exec_meeting_days
    meeting = last_executive_meeting(Days(as_of, config.reporting.timezone))
    starts = first_contract_starts(as_of)
    age = days_between(starts.c.contract_start, literal(as_of))
    met = meeting.c.days_since.is_not(None)
    value = case((met, meeting.c.days_since), else_=age)
    detail = case(
        (met, "no meeting with an economic buyer in " + days_text(meeting.c.days_since)),
        else_="no meeting with an economic buyer on record in " + days_text(age) + " as a customer",
    )
    return (
        select(
            customers.c.account_id,
            literal("no_exec_meeting").label("condition"),
            cast(value, Float).label("value"),
            detail.label("detail"),
        )
        .select_from(
            customers.outerjoin(meeting, meeting.c.account_id == customers.c.account_id).outerjoin(
                starts, starts.c.account_id == customers.c.account_id
            )
        )
        .where(
            or_(
                meeting.c.days_since >= limit,
                and_(~met, age >= limit),
            )
        )
    )


def _ttv_overdue(config: ClghubConfig, as_of: date, customers: Any) -> Select[Any]:
    settings = config.time_to_value
    ttv = table_of(TimeToValue).alias("to_ttv")
    elapsed = days_between(ttv.c.contract_start, literal(as_of))
    not_reached = or_(ttv.c.first_value_day.is_(None), ttv.c.first_value_day > as_of)
    detail = (
        "no first value yet "
        + days_text(elapsed)
        + " after the contract started on "
        + date_text(ttv.c.contract_start)
        + f" (first value: {settings.metric} reaching {settings.threshold:g} on a day;"
        + f" target {settings.target_days} days)"
    )
    return (
        select(
            ttv.c.account_id,
            literal("ttv_overdue").label("condition"),
            cast(elapsed, Float).label("value"),
            detail.label("detail"),
        )
        .select_from(ttv.join(customers, customers.c.account_id == ttv.c.account_id))
        .where(not_reached, ttv.c.contract_start <= as_of, elapsed > settings.target_days)
    )


def conditions_holding(
    config: ClghubConfig, as_of: date, customers: FromClause | None = None
) -> Select[Any]:
    """``account_id, condition, value, detail`` for every condition that holds on ``as_of``.

    ``customers`` is :func:`~clghub.workflows.value_drivers.current_customers`
    stored in a temporary table, or empty to compute them here.
    """
    if customers is None:
        customers = current_customers(config, as_of).subquery("play_customers")
    parts = [
        _score_drop(config, as_of, customers),
        _red_renewal(config, as_of, customers),
        _no_exec_meeting(config, as_of, customers),
    ]
    if config.plays.ttv_overdue:
        parts.append(_ttv_overdue(config, as_of, customers))
    union = union_all(*parts).subquery("holding")
    return select(union.c.account_id, union.c.condition, union.c.value, union.c.detail)


def compute(connection: Connection, config: ClghubConfig, as_of: date) -> dict[str, int | float]:
    """Open the plays whose condition holds, refresh the open ones, clear the rest."""
    play = table_of(Play)
    now = utcnow()
    with (
        temporary_result(
            connection, "play_customers", current_customers(config, as_of)
        ) as customers,
        scratch_table(
            connection,
            "plays_holding",
            Column("account_id", Integer, nullable=False),
            Column("condition", String(32), nullable=False),
            Column("value", Float),
            Column("detail", Text),
            index=("account_id", "condition"),
        ) as holding,
    ):
        connection.execute(
            insert(holding).from_select(
                ["account_id", "condition", "value", "detail"],
                conditions_holding(config, as_of, customers),
            )
        )
        held = select(holding.c.account_id, holding.c.condition)
        connection.execute(
            update(play)
            .where(
                play.c.cleared_at.is_(None),
                tuple_(play.c.account_id, play.c.condition).not_in(held),
            )
            .values(cleared_at=now)
        )
        connection.execute(
            update(play)
            .where(
                play.c.cleared_at.is_(None),
                play.c.account_id == holding.c.account_id,
                play.c.condition == holding.c.condition,
            )
            .values(value=holding.c.value, detail=holding.c.detail)
        )
        open_plays = select(play.c.account_id, play.c.condition).where(play.c.cleared_at.is_(None))
        new = (
            select(
                holding.c.account_id,
                holding.c.condition,
                literal(as_of).label("opened_as_of"),
                literal(now, play.c.opened_at.type).label("opened_at"),
                holding.c.value,
                holding.c.detail,
            )
            .where(tuple_(holding.c.account_id, holding.c.condition).not_in(open_plays))
            # Ids in a stable order: by account, then condition.
            .order_by(holding.c.account_id, holding.c.condition)
        )
        insert_fn: Any = (
            postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        )
        # Two runs racing for the same day both see no open play; the partial
        # unique index lets exactly one of them open it.
        connection.execute(
            insert_fn(play)
            .from_select(
                ["account_id", "condition", "opened_as_of", "opened_at", "value", "detail"], new
            )
            .on_conflict_do_nothing(
                index_elements=[play.c.account_id, play.c.condition],
                index_where=play.c.cleared_at.is_(None),
            )
        )
    # Counted by this run's timestamp: drivers do not all report INSERT ... SELECT rowcounts.
    opened, cleared = connection.execute(
        select(
            func.count().filter(play.c.opened_at == now),
            func.count().filter(play.c.cleared_at == now),
        )
    ).one()
    by_condition: dict[str, int] = dict(
        connection.execute(
            select(play.c.condition, func.count())
            .where(play.c.cleared_at.is_(None))
            .group_by(play.c.condition)
        ).all()
    )
    counts: dict[str, int | float] = {"opened": int(opened), "cleared": int(cleared)}
    for condition in CONDITIONS:
        counts[f"open_{condition}"] = int(by_condition.get(condition, 0))
    return counts
