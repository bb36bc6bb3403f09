"""Shared CLV-based incentives per period (``incentive``, ``incentive_detail``).

Periods are months, fiscal quarters or fiscal years (``incentives.period``).
Each run recomputes the open period and the ``incentives.history_periods``
closed ones before it; older periods keep the figures they were paid on.

CLV at each period boundary comes from the ledger as of that day (ARR and
renewals then) with today's fitted models (:mod:`clghub.workflows.clv`).
Per account and period, with S and E its CLV at the period's start and end:

- ``new_logo``: first ARR ever in the period: credit E.
- ``clv_growth``: E - S when above 0 (a reactivated customer: S = 0).
- ``contraction``: E - S when below 0 and still a customer; charged to the
  pool only if ``incentives.contraction_nets``.
- ``clawback``: a customer at the start with no ARR at the end (churn) gives
  back the CLV credited to it (new logo and growth, less contractions
  charged) in periods that ended at most ``incentives.clawback_months``
  months before the month it churned, since its previous churn.

Pool = rate x (credits - contractions charged - clawbacks), every term exact
money (rate x CLV rounded half up per account). Each account's contribution
is split by ``incentives.shares`` between marketing (the account's lead
source), sales (the account owner) and CS (the account's CSM); the last
team in that order takes the rounding remainder, so per-person rows add up
to the team row and team rows to the pool row exactly. Accounts without an
owner, CSM or lead source count under ``(unassigned)``. People are the
account's owner and CSM today.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Column,
    Connection,
    Date,
    Integer,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    true,
    union_all,
)

from clghub.config.models import ClghubConfig, Team
from clghub.store.models import Account, Person, table_of, utcnow
from clghub.store.revenue import ArrMovement, Incentive, IncentiveDetail
from clghub.store.sqlfuncs import month_index
from clghub.store.types import UTCDateTime
from clghub.workflows.clv import Valuation, clv_at_boundaries, load_models, valuation_scratch
from clghub.workflows.exact import ratio, scale_units, sum_units, units
from clghub.workflows.periods import Period, last_closed_month, period_of
from clghub.workflows.periods import month_index as python_month_index
from clghub.workflows.scratch import scratch_table, tune_for_analytics

__all__ = ["POOL_KEY", "TEAM_KEY", "TEAM_ORDER", "UNASSIGNED", "compute", "incentive_periods"]

TEAM_ORDER: tuple[Team, ...] = ("marketing", "sales", "cs")
TEAM_KEY = "(team)"
POOL_KEY = "(pool)"
UNASSIGNED = "(unassigned)"
CREDITS = ("new_logo", "clv_growth")


@dataclass(frozen=True)
class _PeriodRow:
    period: Period
    end_month: int
    closed_month: int
    end_day: date
    reported: bool


def incentive_periods(config: ClghubConfig, as_of: date) -> tuple[list[Period], list[Period]]:
    """(reported periods, every period computed): the latter reaches back far
    enough that credits within ``clawback_months`` of a reported churn exist."""
    settings = config.incentives
    current = period_of(
        settings.period, python_month_index(as_of), config.reporting.fiscal_year_start_month
    )
    reported = [current.shifted(-k) for k in range(settings.history_periods, -1, -1)]
    # A credit can be clawed back while its period ended at most clawback_months
    # before the churn: the first reported period reaches back this many.
    extra = math.ceil(settings.clawback_months / current.length)
    computed = [reported[0].shifted(-k) for k in range(extra, 0, -1)] + reported
    return reported, computed


def compute(connection: Connection, config: ClghubConfig, as_of: date) -> dict[str, int | float]:
    """Recompute the incentive rows of the reported periods (after the CLV workflow)."""
    tune_for_analytics(connection)
    choices = load_models(connection, as_of)
    if not choices:
        return {"periods": 0, "detail_rows": 0}
    now = utcnow()
    reported, computed = incentive_periods(config, as_of)
    current_month = python_month_index(as_of)
    rows = [_period_row(p, as_of, current_month, p in reported) for p in computed]
    before_first = computed[0].shifted(-1)
    boundaries = [(before_first.index, before_first.last_month, before_first.last_month)] + [
        (row.period.index, row.end_month, row.closed_month) for row in rows
    ]
    with (
        valuation_scratch(connection, config, choices, boundaries, as_of) as valuation,
        _scratch_tables(connection) as (periods, events, pool),
    ):
        connection.execute(insert(periods), [_period_values(row) for row in rows])
        connection.execute(
            events.insert().from_select(_EVENT_COLUMNS, _events(periods, _clv_values(valuation)))
        )
        connection.execute(
            pool.insert().from_select(_POOL_COLUMNS, _pool_rows(config, periods, events))
        )
        labels = [p.label for p in reported]
        detail = table_of(IncentiveDetail)
        incentive = table_of(Incentive)
        connection.execute(delete(detail).where(detail.c.period.in_(labels)))
        connection.execute(delete(incentive).where(incentive.c.period.in_(labels)))
        stamp = literal(now, UTCDateTime())
        _write_detail(connection, config, periods, pool, stamp)
        _write_totals(connection, periods, pool, stamp)

    detail = table_of(IncentiveDetail)
    incentive = table_of(Incentive)
    detail_rows = connection.execute(
        select(func.count()).where(detail.c.period.in_(labels))
    ).scalar_one()
    pool_now = connection.execute(
        select(func.coalesce(func.sum(units(incentive.c.amount)), 0)).where(
            incentive.c.period == reported[-1].label, incentive.c.team == "pool"
        )
    ).scalar_one()
    return {
        "periods": len(reported),
        "detail_rows": int(detail_rows),
        "pool_current": int(pool_now) / 10_000,
    }


def _period_row(period: Period, as_of: date, current_month: int, reported: bool) -> _PeriodRow:
    if period.last_month >= current_month:
        return _PeriodRow(period, current_month, last_closed_month(as_of), as_of, reported)
    return _PeriodRow(period, period.last_month, period.last_month, period.end, reported)


def _period_values(row: _PeriodRow) -> dict[str, Any]:
    start_day = row.period.start - timedelta(days=1)
    return {
        "period": row.period.index,
        "label": row.period.label,
        "period_start": row.period.start,
        "period_end": row.end_day,
        "first_month": row.period.first_month,
        "end_month": row.end_month,
        "reported": 1 if row.reported else 0,
        "start_text": start_day.isoformat(),
        "end_text": row.end_day.isoformat(),
    }


# --------------------------------------------------------------------------- scratch

_EVENT_COLUMNS = [
    "period",
    "account_id",
    "kind",
    "clv_start",
    "clv_end",
    "clv_delta",
    "churn_month",
]
_POOL_COLUMNS = [
    "period",
    "account_id",
    "kind",
    "clv_start",
    "clv_end",
    "clv_delta",
    "pool_delta",
    "note",
]


@contextmanager
def _scratch_tables(connection: Connection) -> Iterator[tuple[Table, Table, Table]]:
    with (
        scratch_table(
            connection,
            "tmp_incentive_periods",
            Column("period", Integer, nullable=False),
            Column("label", String(16), nullable=False),
            Column("period_start", Date, nullable=False),
            Column("period_end", Date, nullable=False),
            Column("first_month", Integer, nullable=False),
            Column("end_month", Integer, nullable=False),
            Column("reported", Integer, nullable=False),
            Column("start_text", String(10), nullable=False),
            Column("end_text", String(10), nullable=False),
        ) as periods,
        scratch_table(
            connection,
            "tmp_incentive_events",
            Column("period", Integer, nullable=False),
            Column("account_id", Integer, nullable=False),
            Column("kind", String(16), nullable=False),
            Column("clv_start", BigInteger),
            Column("clv_end", BigInteger, nullable=False),
            Column("clv_delta", BigInteger, nullable=False),
            Column("churn_month", Integer),
            index=("account_id", "period"),
        ) as events,
        scratch_table(
            connection,
            "tmp_incentive_pool",
            Column("period", Integer, nullable=False),
            Column("account_id", Integer, nullable=False),
            Column("kind", String(16), nullable=False),
            Column("clv_start", BigInteger),
            Column("clv_end", BigInteger),
            Column("clv_delta", BigInteger, nullable=False),
            Column("pool_delta", BigInteger, nullable=False),
            Column("note", Text),
        ) as pool,
    ):
        yield periods, events, pool


def _clv_values(valuation: Valuation) -> CTE:
    """``boundary, account_id, clv_units``: every account's CLV at each boundary.

    Materialized: the events read it twice (as a period's end and as the
    next period's start).
    """
    valued = clv_at_boundaries(valuation).subquery("incentive_valued")
    return (
        select(valued.c.boundary, valued.c.account_id, valued.c.clv_units)
        .cte("incentive_clv")
        .prefix_with("MATERIALIZED")
    )


# --------------------------------------------------------------------------- events


def _events(periods: Table, values: CTE) -> Any:
    """One row per account and computed period whose CLV moved, or that churned."""
    movement = table_of(ArrMovement)
    monthly = movement.c.period_kind == "month"
    month = month_index(movement.c.period_start)
    pairs = union_all(
        select(
            (values.c.boundary + 1).label("period"),
            values.c.account_id,
            values.c.clv_units.label("start_units"),
            literal(0, BigInteger).label("end_units"),
        ),
        select(
            values.c.boundary.label("period"),
            values.c.account_id,
            literal(0, BigInteger).label("start_units"),
            values.c.clv_units.label("end_units"),
        ),
    ).subquery("incentive_pairs")
    summed = (
        select(
            pairs.c.period,
            pairs.c.account_id,
            sum_units(pairs.c.start_units).label("start_units"),
            sum_units(pairs.c.end_units).label("end_units"),
        )
        .group_by(pairs.c.period, pairs.c.account_id)
        .subquery("incentive_summed")
    )
    acquired = (
        select(movement.c.account_id, func.min(month).label("acquired"))
        .where(monthly, movement.c.kind == "new")
        .group_by(movement.c.account_id)
        .subquery("incentive_acquired")
    )
    churns = (
        select(periods.c.period, movement.c.account_id, func.max(month).label("churn_month"))
        .select_from(
            periods.join(
                movement,
                and_(
                    monthly,
                    movement.c.kind == "churn",
                    month >= periods.c.first_month,
                    month <= periods.c.end_month,
                ),
            )
        )
        .group_by(periods.c.period, movement.c.account_id)
        .subquery("incentive_churns")
    )
    start, end = summed.c.start_units, summed.c.end_units
    new_logo = and_(
        acquired.c.acquired >= periods.c.first_month, acquired.c.acquired <= periods.c.end_month
    )
    kind = case(
        (and_(new_logo, end > 0), literal("new_logo")),
        (and_(start > 0, end == 0), literal("churn")),
        (end > start, literal("clv_growth")),
        (and_(end < start, end > 0), literal("contraction")),
        else_=null(),
    )
    classified = (
        select(
            summed.c.period,
            summed.c.account_id,
            kind.label("kind"),
            case((new_logo, null()), else_=start).label("clv_start"),
            end.label("clv_end"),
            (end - case((new_logo, 0), else_=start)).label("clv_delta"),
            churns.c.churn_month,
        )
        .select_from(
            summed.join(periods, periods.c.period == summed.c.period)
            .outerjoin(acquired, acquired.c.account_id == summed.c.account_id)
            .outerjoin(
                churns,
                and_(
                    churns.c.period == summed.c.period, churns.c.account_id == summed.c.account_id
                ),
            )
        )
        .subquery("incentive_classified")
    )
    return select(*(classified.c[name] for name in _EVENT_COLUMNS)).where(
        classified.c.kind.is_not(None)
    )


def _pool_rows(config: ClghubConfig, periods: Table, events: Table) -> Any:
    """Every account's contribution to the pool of a reported period."""
    settings = config.incentives
    rate = ratio(settings.rate, what="incentives.rate")
    reported = periods.alias("pool_periods")
    charged = ("new_logo", "clv_growth", "contraction") if settings.contraction_nets else CREDITS
    note = {
        "new_logo": literal("new logo: CLV on ") + reported.c.end_text,
        "clv_growth": literal("CLV on ")
        + reported.c.end_text
        + literal(" minus CLV on ")
        + reported.c.start_text,
    }
    gains = (
        select(
            events.c.period,
            events.c.account_id,
            events.c.kind,
            events.c.clv_start,
            events.c.clv_end,
            events.c.clv_delta,
            case(
                (events.c.clv_delta >= 0, scale_units(events.c.clv_delta, rate)),
                else_=-scale_units(-events.c.clv_delta, rate),
            ).label("pool_delta"),
            case(
                (events.c.kind == "new_logo", note["new_logo"]),
                else_=note["clv_growth"],
            ).label("note"),
        )
        .select_from(events.join(reported, reported.c.period == events.c.period))
        .where(reported.c.reported == 1, events.c.kind.in_(charged))
    )

    # Clawbacks: credits (and contractions charged) since the account's
    # previous churn, in periods that ended within clawback_months of this churn.
    churn = events.alias("churn_event")
    credit = events.alias("credit_event")
    earlier = events.alias("earlier_churn")
    credit_period = periods.alias("credit_period")
    previous_churn = (
        select(func.coalesce(func.max(earlier.c.period), -1))
        .where(
            earlier.c.account_id == churn.c.account_id,
            earlier.c.kind == "churn",
            earlier.c.period < churn.c.period,
        )
        .scalar_subquery()
    )
    credited = (
        select(
            churn.c.period,
            churn.c.account_id,
            churn.c.clv_start,
            sum_units(credit.c.clv_delta).label("credited"),
        )
        .select_from(
            churn.join(
                credit,
                and_(
                    credit.c.account_id == churn.c.account_id,
                    credit.c.period < churn.c.period,
                    credit.c.period > previous_churn,
                    credit.c.kind.in_(charged),
                ),
            ).join(credit_period, credit_period.c.period == credit.c.period)
        )
        .where(
            churn.c.kind == "churn",
            churn.c.churn_month - credit_period.c.end_month <= settings.clawback_months,
        )
        .group_by(churn.c.period, churn.c.account_id, churn.c.clv_start)
        .subquery("incentive_credited")
    )
    clawback_note = literal(
        f"churned: gives back CLV credited in the {settings.clawback_months} months before"
    )
    clawbacks = (
        select(
            credited.c.period,
            credited.c.account_id,
            literal("clawback"),
            credited.c.clv_start,
            literal(0, BigInteger),
            -credited.c.credited,
            -scale_units(credited.c.credited, rate),
            clawback_note,
        )
        .select_from(credited.join(reported, reported.c.period == credited.c.period))
        .where(reported.c.reported == 1, credited.c.credited > 0)
    )
    return union_all(gains, clawbacks)


# --------------------------------------------------------------------------- writing


def _teams(config: ClghubConfig) -> list[tuple[str, Any]]:
    shares = config.incentives.shares
    return [
        (team, ratio(shares[team], what=f"incentives.shares.{team}"))
        for team in TEAM_ORDER
        if shares.get(team, 0) > 0
    ]


def _write_detail(
    connection: Connection, config: ClghubConfig, periods: Table, pool: Table, stamp: Any
) -> None:
    """One detail row per pool row and team, all teams in one statement."""
    account = table_of(Account)
    detail = table_of(IncentiveDetail)
    teams = _teams(config)
    team_rows = union_all(
        *(select(literal(team).label("team")) for team, _share in teams)
    ).subquery("incentive_teams")
    team = team_rows.c.team
    magnitude = case((pool.c.pool_delta >= 0, pool.c.pool_delta), else_=-pool.c.pool_delta)
    sign = case((pool.c.pool_delta >= 0, 1), else_=-1)
    shares = {name: sign * scale_units(magnitude, share) for name, share in teams[:-1]}
    # The last team takes what the others' rounded shares leave.
    remainder: Any = pool.c.pool_delta
    for share in shares.values():
        remainder = remainder - share
    amount = (
        case(*((team == name, share) for name, share in shares.items()), else_=remainder)
        if shares
        else remainder
    )
    people = {
        "marketing": func.coalesce(func.nullif(account.c.lead_source, ""), literal(UNASSIGNED)),
        "sales": func.coalesce(cast(account.c.owner_id, String), literal(UNASSIGNED)),
        "cs": func.coalesce(cast(account.c.csm_id, String), literal(UNASSIGNED)),
    }
    person = case(*((team == name, people[name]) for name, _share in teams), else_=null())
    columns = [
        "period",
        "account_id",
        "kind",
        "clv_start",
        "clv_end",
        "clv_delta",
        "pool_delta",
        "team",
        "person_key",
        "amount",
        "note",
        "computed_at",
    ]
    connection.execute(
        detail.insert().from_select(
            columns,
            select(
                periods.c.label,
                pool.c.account_id,
                pool.c.kind,
                pool.c.clv_start,
                pool.c.clv_end,
                pool.c.clv_delta,
                pool.c.pool_delta,
                team,
                person,
                amount,
                pool.c.note,
                stamp,
            ).select_from(
                pool.join(periods, periods.c.period == pool.c.period)
                .join(account, account.c.id == pool.c.account_id)
                .join(team_rows, true())
            ),
        )
    )


def _write_totals(connection: Connection, periods: Table, pool: Table, stamp: Any) -> None:
    detail = table_of(IncentiveDetail)
    incentive = table_of(Incentive)
    person = table_of(Person)
    columns = [
        "period",
        "period_start",
        "period_end",
        "team",
        "person_key",
        "person_name",
        "amount",
        "accounts",
        "computed_at",
    ]
    amount = units(detail.c.amount)
    # Summed per person first; names joined to the (few) sums afterwards.
    summed = (
        select(
            detail.c.period,
            detail.c.team,
            detail.c.person_key,
            func.sum(amount).label("amount"),
            func.count(func.distinct(detail.c.account_id)).label("accounts"),
        )
        .where(detail.c.period.in_(select(periods.c.label).where(periods.c.reported == 1)))
        .group_by(detail.c.period, detail.c.team, detail.c.person_key)
        .subquery("incentive_per_person")
    )
    people = select(cast(person.c.id, String).label("person_key"), person.c.name).subquery(
        "incentive_people"
    )
    per_person = (
        select(
            summed.c.period,
            periods.c.period_start,
            periods.c.period_end,
            summed.c.team,
            summed.c.person_key,
            case((summed.c.team == "marketing", summed.c.person_key), else_=people.c.name),
            summed.c.amount,
            summed.c.accounts,
            stamp,
        )
        .select_from(
            summed.join(periods, periods.c.label == summed.c.period).outerjoin(
                people,
                and_(summed.c.team != "marketing", people.c.person_key == summed.c.person_key),
            )
        )
        .where(periods.c.reported == 1)
    )
    per_team = (
        select(
            detail.c.period,
            periods.c.period_start,
            periods.c.period_end,
            detail.c.team,
            literal(TEAM_KEY),
            literal(None, String),
            func.sum(amount),
            func.count(func.distinct(detail.c.account_id)),
            stamp,
        )
        .select_from(detail.join(periods, periods.c.label == detail.c.period))
        .where(periods.c.reported == 1)
        .group_by(detail.c.period, periods.c.period_start, periods.c.period_end, detail.c.team)
    )
    whole = (
        select(
            periods.c.label,
            periods.c.period_start,
            periods.c.period_end,
            literal("pool"),
            literal(POOL_KEY),
            literal(None, String),
            func.coalesce(func.sum(pool.c.pool_delta), 0),
            func.count(func.distinct(pool.c.account_id)),
            stamp,
        )
        .select_from(periods.outerjoin(pool, pool.c.period == periods.c.period))
        .where(periods.c.reported == 1)
        .group_by(periods.c.label, periods.c.period_start, periods.c.period_end)
    )
    for query in (per_person, per_team, whole):
        connection.execute(incentive.insert().from_select(columns, query))
