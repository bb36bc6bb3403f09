"""The value score explained in a line a CSM reads at a glance, built in SQL.

For each driver an account has a score for, its relevance is the share of
the score it decides (effective weight) times the larger of what it holds
the score down by (100 - its score) and how much it moved since the
previous snapshot about 30 days earlier. The ``explain_top`` most relevant
drivers are named, most relevant first, each with its numbers:

    adoption depth 28 (-15 in 30 days); no executive meeting in 94 days;
    outcome progress 45% of target (60% 30 days ago)

Plain text, no markup: CRM fields and Slack messages escape it themselves.
Numbers are rounded half away from zero on both backends, so SQLite and
PostgreSQL write the same words.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    select,
)
from sqlalchemy.sql.expression import FromClause

from clghub.config.models import ClghubConfig
from clghub.store.models import Account, table_of
from clghub.store.sqlfuncs import days_between, round_half_away
from clghub.store.value import TimeToValue
from clghub.workflows.sql_numbers import (
    days_text,
    decimal_text,
    integer_text,
    signed_text,
)
from clghub.workflows.value_drivers import DRIVERS

__all__ = ["explanations"]

# Below this many days an executive meeting is recent, not missing.
_RECENT_MEETING_DAYS = 30


def explanations(
    config: ClghubConfig, as_of: date, current: FromClause, before: FromClause | None
) -> Select[Any]:
    """``account_id, explanation`` for the drivers of ``as_of``.

    ``current`` holds them (``account_id, driver, raw, score,
    effective_weight``: the value-score workflow's own table of this run's
    drivers). ``before`` holds the same accounts' drivers in the snapshot
    the changes are measured from, about 30 days earlier (``account_id,
    driver, raw, score, prev_as_of``), or is ``None`` when there is none.
    """
    ttv = table_of(TimeToValue).alias("ex_ttv")
    account = table_of(Account).alias("ex_account")
    source = current
    if before is None:
        before_raw: ColumnElement[Any] = cast(null(), Float)
        before_score: ColumnElement[Any] = cast(null(), Float)
        prev_as_of: ColumnElement[Any] = cast(null(), Date)
    else:
        before_raw, before_score, prev_as_of = before.c.raw, before.c.score, before.c.prev_as_of
        source = source.outerjoin(
            before,
            and_(
                before.c.account_id == current.c.account_id,
                before.c.driver == current.c.driver,
            ),
        )

    days_ago = cast(days_between(prev_as_of, literal(as_of)), String)
    change = current.c.score - before_score
    moved = and_(before_score.is_not(None), round_half_away(change) != 0)
    score_change = case(
        (moved, " (" + signed_text(change) + " in " + days_ago + " days)"), else_=""
    )

    def raw_then(text: ColumnElement[str], earlier: ColumnElement[str]) -> ColumnElement[str]:
        differs = and_(before_raw.is_not(None), earlier != text)
        return case((differs, " (" + earlier + " " + days_ago + " days ago)"), else_="")

    percent = integer_text(current.c.raw * 100.0) + "%"
    percent_before = integer_text(before_raw * 100.0) + "%"
    tickets = integer_text(current.c.raw * account.c.seats)
    phrases: dict[str, ColumnElement[str]] = {
        "outcome_progress": "outcome progress "
        + percent
        + " of target"
        + raw_then(percent, percent_before),
        "adoption_depth": "adoption depth " + integer_text(current.c.score) + score_change,
        "breadth": "breadth " + integer_text(current.c.score) + score_change,
        "time_to_value": case(
            (ttv.c.first_value_day <= as_of, "first value took " + days_text(current.c.raw)),
            else_="no first value after " + days_text(current.c.raw),
        ),
        "executive_engagement": case(
            (
                current.c.raw >= _RECENT_MEETING_DAYS,
                "no executive meeting in " + days_text(current.c.raw),
            ),
            (current.c.raw < 1, literal("executive meeting today")),
            else_="last executive meeting " + days_text(current.c.raw) + " ago",
        ),
        "support_friction": tickets
        + " priority-weighted support tickets in "
        + str(config.value_score.friction_days)
        + " days (score "
        + integer_text(current.c.score)
        + case((moved, ", " + signed_text(change) + " in " + days_ago + " days"), else_="")
        + ")",
        "sentiment": "sentiment "
        + decimal_text(current.c.raw)
        + " of 10"
        + raw_then(decimal_text(current.c.raw), decimal_text(before_raw)),
    }
    phrase = case(phrases, value=current.c.driver)
    order = case({name: index for index, name in enumerate(DRIVERS)}, value=current.c.driver)
    shortfall = 100.0 - current.c.score
    swing = func.abs(change)
    relevance = current.c.effective_weight * case(
        (and_(swing.is_not(None), swing > shortfall), swing), else_=shortfall
    )
    ranked = (
        select(
            current.c.account_id,
            phrase.label("phrase"),
            func.row_number()
            .over(partition_by=current.c.account_id, order_by=[relevance.desc(), order])
            .label("rank"),
        )
        .select_from(
            source.outerjoin(ttv, ttv.c.account_id == current.c.account_id).outerjoin(
                account, account.c.id == current.c.account_id
            )
        )
        .where(current.c.effective_weight > 0, relevance > 0)
        .subquery("ranked")
    )
    parts = [
        func.max(case((ranked.c.rank == position, ranked.c.phrase)))
        for position in range(1, config.value_score.explain_top + 1)
    ]
    text: ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        text = text + func.coalesce("; " + part, "")
    return select(ranked.c.account_id, text.label("explanation")).group_by(ranked.c.account_id)
