"""Time-to-first-value per account, its median per cohort, and the activation rate.

- Contract start: the start (``contract_start``, else the close date) of the
  account's earliest won base contract (new business or renewal; a deal
  without a type counts as one). A customer that churned and came back keeps
  its first start: time to value measures the first onboarding.
- First value: the first day on or after that start, up to ``as_of``, on
  which ``time_to_value.metric`` reaches ``time_to_value.threshold`` in the
  product usage data.
- ``days``: first value day - contract start. ``activated``: reached within
  ``target_days``. ``overdue``: not reached and more than ``target_days``
  since the start. An account whose first contract starts after ``as_of``
  has no row yet.

Cohort summary (:func:`summary_query`): per cohort (all accounts, segment,
acquisition year = the year of the first contract start) the median days to
first value over the accounts that reached it, and the activation rate:
accounts activated within the target / accounts whose start is at least
``target_days`` before the day they were computed for. Younger accounts
are pending and count in neither, so a fresh cohort does not look worse
(or better) than it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.expression import Subquery

from clghub.config.models import ClghubConfig
from clghub.store.models import Account, Opportunity, UsageDaily, table_of, utcnow
from clghub.store.sqlfuncs import days_between, month_index
from clghub.store.value import TimeToValue
from clghub.workflows.materialize import temporary_result
from clghub.workflows.segments import account_segments

__all__ = [
    "CohortTimeToValue",
    "compute",
    "first_contract_starts",
    "first_value_days",
    "summary",
    "summary_query",
]


def first_contract_starts(as_of: date) -> Subquery:
    """``account_id, contract_start``: the first base contract start, if on or before ``as_of``."""
    opportunity = table_of(Opportunity).alias("fs_opportunity")
    start = func.min(func.coalesce(opportunity.c.contract_start, opportunity.c.close_date))
    return (
        select(opportunity.c.account_id.label("account_id"), start.label("contract_start"))
        .where(
            opportunity.c.status == "won",
            opportunity.c.is_deleted.is_(False),
            opportunity.c.account_id.is_not(None),
            or_(opportunity.c.type.in_(("new", "renewal")), opportunity.c.type.is_(None)),
        )
        .group_by(opportunity.c.account_id)
        .having(start <= as_of)
        .subquery("first_start")
    )


def first_value_days(config: ClghubConfig, as_of: date) -> Select[Any]:
    """``account_id, contract_start, first_value_day`` for every account with a
    first contract start (:func:`first_contract_starts`): the first day of
    value on or after it, empty while not reached.

    Looked up per account, not found by scanning: the usage index
    ``(account_id, metric, day)`` gives each account's days of the metric in
    order from its start, and the lookup stops at the first that reaches the
    threshold (usually within days of the start). Reading only those rows
    costs a fraction of one pass over the whole usage table, and the cost
    grows with the accounts, not with the history kept.
    """
    settings = config.time_to_value
    # In account order, so the lookups walk the usage index front to back
    # rather than jump around it (which, on a large store, reads from disk).
    grouped = first_contract_starts(as_of)
    starts = select(grouped).order_by(grouped.c.account_id).subquery("ttv_starts")
    usage = table_of(UsageDaily).alias("ttv_usage")
    first_day = (
        select(usage.c.day)
        .where(
            usage.c.account_id == starts.c.account_id,
            usage.c.metric == settings.metric,
            usage.c.day >= starts.c.contract_start,
            usage.c.day <= as_of,
            usage.c.value >= settings.threshold,
        )
        .order_by(usage.c.day)
        .limit(1)
        .scalar_subquery()
    )
    # Empty for an account that has not reached it: filtering here would
    # repeat the lookup in the WHERE clause.
    return select(starts.c.account_id, starts.c.contract_start, first_day.label("first_value_day"))


def _rows(config: ClghubConfig, as_of: date, found: Any) -> Select[Any]:
    """``time_to_value`` rows from :func:`first_value_days` (stored as ``found``)."""
    settings = config.time_to_value
    account = table_of(Account).alias("ttv_account")
    segments = account_segments(config, as_of).subquery("ttv_segments")
    taken = days_between(found.c.contract_start, found.c.first_value_day)
    elapsed = days_between(found.c.contract_start, literal(as_of))
    reached = found.c.first_value_day.is_not(None)
    return (
        select(
            found.c.account_id,
            literal(as_of).label("as_of"),
            segments.c.segment,
            found.c.contract_start,
            found.c.first_value_day,
            taken.label("days"),
            case((and_(reached, taken <= settings.target_days), true()), else_=false()).label(
                "activated"
            ),
            case((and_(~reached, elapsed > settings.target_days), true()), else_=false()).label(
                "overdue"
            ),
            literal(utcnow(), table_of(TimeToValue).c.computed_at.type).label("computed_at"),
        )
        .select_from(
            found.join(account, account.c.id == found.c.account_id).join(
                segments, segments.c.account_id == found.c.account_id
            )
        )
        .where(account.c.is_deleted.is_(False))
    )


def compute(connection: Connection, config: ClghubConfig, as_of: date) -> dict[str, int | float]:
    """Replace every account's time to value as of ``as_of``; returns counts for the run log."""
    table = table_of(TimeToValue)
    connection.execute(delete(table))
    # First value days go into a table of their own: the rows below read them
    # three times, and each lookup must run once per account.
    with temporary_result(
        connection, "ttv_first_value", first_value_days(config, as_of)
    ) as first_value:
        connection.execute(
            insert(table).from_select(
                [
                    "account_id",
                    "as_of",
                    "segment",
                    "contract_start",
                    "first_value_day",
                    "days",
                    "activated",
                    "overdue",
                    "computed_at",
                ],
                _rows(config, as_of, first_value),
            )
        )
    counts = connection.execute(
        select(
            func.count(),
            func.count(table.c.first_value_day),
            func.sum(case((table.c.activated, 1), else_=0)),
            func.sum(case((table.c.overdue, 1), else_=0)),
        )
    ).one()
    return {
        "accounts": int(counts[0]),
        "reached": int(counts[1]),
        "activated": int(counts[2] or 0),
        "overdue": int(counts[3] or 0),
    }


@dataclass(frozen=True)
class CohortTimeToValue:
    cohort_dim: str
    """all, segment or acquisition_year."""
    cohort_value: str
    accounts: int
    reached: int
    activated: int
    overdue: int
    eligible: int
    """Accounts whose start is at least ``target_days`` old: the activation rate's base."""
    activation_rate: float | None
    median_days: float | None


def summary_query(config: ClghubConfig) -> Select[Any]:
    """One row per cohort: counts, activation rate and median days to first value."""
    table = table_of(TimeToValue).alias("ttv_summary")
    target = config.time_to_value.target_days
    eligible = days_between(table.c.contract_start, table.c.as_of) >= target
    flag = {
        "reached": case((table.c.first_value_day.is_not(None), 1), else_=0),
        "activated": case((table.c.activated, 1), else_=0),
        "overdue": case((table.c.overdue, 1), else_=0),
        "eligible": case((eligible, 1), else_=0),
        "activated_eligible": case((and_(table.c.activated, eligible), 1), else_=0),
    }
    dimensions: dict[str, Any] = {
        "all": literal("all"),
        "segment": func.coalesce(table.c.segment, "(none)"),
        "acquisition_year": cast(month_index(table.c.contract_start) // 12, String),
    }
    base = union_all(
        *(
            select(
                literal(name).label("cohort_dim"),
                value.label("cohort_value"),
                table.c.days,
                *(expression.label(key) for key, expression in flag.items()),
            )
            for name, value in dimensions.items()
        )
    ).cte("ttv_cohorts")
    cohort = [base.c.cohort_dim, base.c.cohort_value]
    counts = (
        select(
            *cohort,
            func.count().label("accounts"),
            *(func.sum(base.c[key]).label(key) for key in flag),
        )
        .group_by(*cohort)
        .subquery("ttv_counts")
    )
    ranked = (
        select(
            *cohort,
            base.c.days,
            func.row_number().over(partition_by=cohort, order_by=base.c.days).label("position"),
            func.count().over(partition_by=cohort).label("reached"),
        )
        .where(base.c.days.is_not(None))
        .subquery("ttv_ranked")
    )
    # The middle one of an odd count, the two middle ones of an even count.
    middle = ranked.c.position.in_([(ranked.c.reached + 1) // 2, (ranked.c.reached + 2) // 2])
    medians = (
        select(
            ranked.c.cohort_dim,
            ranked.c.cohort_value,
            cast(func.avg(cast(ranked.c.days, Float)), Float).label("median_days"),
        )
        .where(middle)
        .group_by(ranked.c.cohort_dim, ranked.c.cohort_value)
        .subquery("ttv_medians")
    )
    rate = cast(counts.c.activated_eligible, Float) / func.nullif(
        cast(counts.c.eligible, Float), 0.0
    )
    return (
        select(
            counts.c.cohort_dim,
            counts.c.cohort_value,
            counts.c.accounts,
            cast(counts.c.reached, Integer).label("reached"),
            cast(counts.c.activated, Integer).label("activated"),
            cast(counts.c.overdue, Integer).label("overdue"),
            cast(counts.c.eligible, Integer).label("eligible"),
            rate.label("activation_rate"),
            medians.c.median_days,
        )
        .select_from(
            counts.outerjoin(
                medians,
                and_(
                    medians.c.cohort_dim == counts.c.cohort_dim,
                    medians.c.cohort_value == counts.c.cohort_value,
                ),
            )
        )
        .order_by(
            case({"all": 0, "segment": 1, "acquisition_year": 2}, value=counts.c.cohort_dim),
            counts.c.cohort_value,
        )
    )


def summary(connection: Connection, config: ClghubConfig) -> list[CohortTimeToValue]:
    """The cohort summary of the stored time to value (see :func:`summary_query`)."""
    return [
        CohortTimeToValue(
            cohort_dim=row.cohort_dim,
            cohort_value=row.cohort_value,
            accounts=int(row.accounts),
            reached=int(row.reached),
            activated=int(row.activated),
            overdue=int(row.overdue),
            eligible=int(row.eligible),
            activation_rate=float(row.activation_rate) if row.activation_rate is not None else None,
            median_days=float(row.median_days) if row.median_days is not None else None,
        )
        for row in connection.execute(summary_query(config))
    ]
