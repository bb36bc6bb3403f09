"""The raw value-score drivers of every current customer, computed in SQL.

Scored are the customers of ``as_of`` (:func:`current_customers`). Each
driver is a plain indicator over a window ending on ``as_of`` (days are
days of the reporting time zone):

- ``outcome_progress``: the latest outcome KPI in the usage window divided by
  the account's ``outcome_target``, capped at ``outcome_cap``. Missing without
  a positive target or a KPI value in the window.
- ``adoption_depth``: weighted use of the high-ROI features per active user
  and day: sum(weight x value) over the window / sum of daily active users.
  Depth is kept apart from breadth (users / seats), so the two drivers do
  not count the same thing twice. When no active users were recorded it is
  per seat and day instead. Missing for an account that has never had any
  usage data (no product data is not the same as no use).
- ``breadth``: (1 - breadth_roles_weight) x min(average daily active users /
  seats, 1) + breadth_roles_weight x (distinct key contact roles - economic
  buyer, champion, user - with a meeting, call or email in ``roles_days``) / 3.
  Missing without seats or without usage data.
- ``time_to_value``: days from the first contract start to first value; not
  reached yet, the days since the start once past ``time_to_value.target_days``;
  missing before that.
- ``executive_engagement``: days since the last meeting with an economic
  buyer. Never met: the days since the customer's start once that exceeds
  the driver's bound (its ``worst`` for linear normalization, else
  ``plays.no_exec_meeting_days``), so it scores as the worst; missing for a
  younger customer.
- ``support_friction``: tickets opened in ``friction_days``, each weighted by
  priority, per seat (lower is better). Missing without seats.
- ``sentiment``: the average of the sentiment metric over ``sentiment_days``,
  blended with ticket CSAT (rescaled from 1-5 to 0-10) by ``csat_weight``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.sql.expression import FromClause, Subquery

from clghub.config.models import ClghubConfig, DriverName
from clghub.store.models import Account, Activity, Contact, Ticket, UsageDaily, table_of
from clghub.store.sqlfuncs import days_between
from clghub.store.value import TimeToValue
from clghub.workflows.ledger import LedgerQueries
from clghub.workflows.segments import account_segments
from clghub.workflows.sql_numbers import whole_days_between

__all__ = [
    "DRIVERS",
    "ENGAGED_KINDS",
    "KEY_ROLES",
    "LOWER_IS_BETTER",
    "Days",
    "current_customers",
    "driver_formulas",
    "driver_inputs",
    "driver_values",
    "last_executive_meeting",
    "usage_totals",
]

DRIVERS: tuple[DriverName, ...] = (
    "outcome_progress",
    "adoption_depth",
    "breadth",
    "time_to_value",
    "executive_engagement",
    "support_friction",
    "sentiment",
)
LOWER_IS_BETTER = frozenset({"time_to_value", "executive_engagement", "support_friction"})
KEY_ROLES: tuple[str, ...] = ("economic_buyer", "champion", "user")
ENGAGED_KINDS: tuple[str, ...] = ("meeting", "call", "email")
_CSAT_TO_TEN = 2.5  # CSAT 1-5 onto 0-10: (csat - 1) x 2.5


@dataclass(frozen=True)
class Days:
    """The days and instants a run on ``as_of`` looks at, in the reporting time zone."""

    as_of: date
    timezone: str = "UTC"

    def first_day(self, length: int) -> date:
        """The first day of the ``length`` days that end with ``as_of``."""
        return self.as_of - timedelta(days=length - 1)

    def start_of(self, day: date) -> datetime:
        """The UTC instant the reporting day ``day`` begins."""
        local = datetime.combine(day, time(0), tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The first instant after ``as_of`` (exclusive end of every window)."""
        return self.start_of(self.as_of + timedelta(days=1))

    def since(self, length: int) -> datetime:
        """The first instant of the ``length`` days that end with ``as_of``."""
        return self.start_of(self.first_day(length))


def current_customers(config: ClghubConfig, as_of: date) -> Select[Any]:
    """``account_id, term_end``: the accounts that are customers on ``as_of``.

    A customer has a base contract of the ARR ledger (same rules: see
    :mod:`clghub.workflows.ledger`) that started on or before ``as_of`` and
    ended no more than ``reporting.renewal_grace_days`` before it: a renewal
    still being closed keeps the account a customer (it needs attention
    most). ``term_end`` is the last day of the committed term, a renewal
    already won included: the renewal date, possibly past.
    """
    terms = LedgerQueries(config, as_of).base_terms
    covered = func.max(case((terms.c.start <= as_of, terms.c.effective_end)))
    grace = timedelta(days=config.reporting.renewal_grace_days)
    return (
        select(terms.c.account_id, func.max(terms.c.effective_end).label("term_end"))
        .group_by(terms.c.account_id)
        .having(covered >= as_of - grace)
    )


def last_executive_meeting(days: Days) -> Subquery:
    """``account_id, days_since``: whole days since the last economic-buyer meeting."""
    activity = table_of(Activity).alias("em_activity")
    contact = table_of(Contact).alias("em_contact")
    last = func.max(activity.c.occurred_at)
    return (
        select(
            activity.c.account_id.label("account_id"),
            whole_days_between(last, literal(days.end, activity.c.occurred_at.type)).label(
                "days_since"
            ),
        )
        .select_from(
            activity.join(
                contact,
                and_(
                    contact.c.source == activity.c.source,
                    contact.c.source_id == activity.c.contact_ref,
                ),
            )
        )
        .where(
            activity.c.account_id.is_not(None),
            activity.c.is_deleted.is_(False),
            activity.c.kind == "meeting",
            contact.c.role == "economic_buyer",
            activity.c.occurred_at < days.end,
        )
        .group_by(activity.c.account_id)
        .subquery("exec_meeting")
    )


def usage_totals(config: ClghubConfig, as_of: date, *, one_pass: bool) -> Select[Any]:
    """``account_id, feature_units, active_user_days, outcome_day`` (and ``sentiment_metric``).

    Two plans, one result. ``one_pass`` reads the usage table once for both
    windows and adds ``sentiment_metric`` (PostgreSQL scans the whole table
    whatever the filter, so one scan beats two); otherwise it reads only the
    usage window and :func:`_sentiment_metric` reads the sentiment window
    (SQLite reads each window straight from the ``(account_id, metric, day)``
    index, so two narrow reads beat one wide one).

    Rows are first summed per account and metric, with no more per-row work
    than a date comparison; the metric names are compared once per group.
    """
    vs = config.value_score
    days = Days(as_of, config.reporting.timezone)
    usage = table_of(UsageDaily).alias("vu")
    metrics = sorted({*vs.features, vs.active_users_metric, vs.outcome_metric})
    window_start = days.first_day(vs.window_days)
    in_window = and_(usage.c.metric.in_(metrics), usage.c.day >= window_start)
    where: ColumnElement[bool] = in_window
    if one_pass:
        rated = and_(
            usage.c.metric == vs.sentiment_metric,
            usage.c.day >= days.first_day(vs.sentiment_days),
        )
        where = or_(in_window, rated)
    recent = usage.c.day >= window_start
    # Without the sentiment rows every row read is in the window: plain sums,
    # no per-row test (SQLite evaluates every expression for every row).
    window_value = case((recent, usage.c.value)) if one_pass else usage.c.value
    window_day = case((recent, usage.c.day)) if one_pass else usage.c.day
    sums = [
        func.sum(window_value).label("window_sum"),
        func.max(window_day).label("last_day"),
    ]
    if one_pass:
        sums += [func.sum(usage.c.value).label("total"), func.count(usage.c.value).label("rows")]
    per_metric = (
        select(usage.c.account_id, usage.c.metric, *sums)
        .where(usage.c.account_id.is_not(None), usage.c.day <= days.as_of, where)
        .group_by(usage.c.account_id, usage.c.metric)
        .subquery("usage_per_metric")
    )
    m = per_metric.c
    feature_units: ColumnElement[Any] = (
        func.sum(
            case(
                *(
                    (m.metric == name, m.window_sum * weight)
                    for name, weight in vs.features.items()
                ),
                else_=literal(0.0),
            )
        )
        if vs.features
        else literal(0.0)
    )
    columns = [
        m.account_id.label("account_id"),
        feature_units.label("feature_units"),
        func.sum(
            case((m.metric == vs.active_users_metric, m.window_sum), else_=literal(0.0))
        ).label("active_user_days"),
        func.max(case((m.metric == vs.outcome_metric, m.last_day))).label("outcome_day"),
    ]
    if one_pass:
        rated_total = func.sum(case((m.metric == vs.sentiment_metric, m.total)))
        rated_rows = func.sum(case((m.metric == vs.sentiment_metric, m.rows)))
        columns.append(
            (cast(rated_total, Float) / func.nullif(cast(rated_rows, Float), 0.0)).label(
                "sentiment_metric"
            )
        )
    return select(*columns).group_by(m.account_id)


def _sentiment_metric(config: ClghubConfig, days: Days) -> Subquery:
    """The average of the sentiment metric over its own, longer window."""
    vs = config.value_score
    usage = table_of(UsageDaily).alias("vs_usage")
    return (
        select(
            usage.c.account_id.label("account_id"),
            func.avg(usage.c.value).label("sentiment_metric"),
        )
        .where(
            usage.c.account_id.is_not(None),
            usage.c.metric == vs.sentiment_metric,
            usage.c.day >= days.first_day(vs.sentiment_days),
            usage.c.day <= days.as_of,
        )
        .group_by(usage.c.account_id)
        .subquery("sentiment_totals")
    )


def _roles_active(config: ClghubConfig, days: Days) -> Subquery:
    activity = table_of(Activity).alias("ra_activity")
    contact = table_of(Contact).alias("ra_contact")
    return (
        select(
            activity.c.account_id.label("account_id"),
            func.count(func.distinct(contact.c.role)).label("roles"),
        )
        .select_from(
            activity.join(
                contact,
                and_(
                    contact.c.source == activity.c.source,
                    contact.c.source_id == activity.c.contact_ref,
                ),
            )
        )
        .where(
            activity.c.account_id.is_not(None),
            activity.c.is_deleted.is_(False),
            activity.c.kind.in_(ENGAGED_KINDS),
            contact.c.role.in_(KEY_ROLES),
            activity.c.occurred_at >= days.since(config.value_score.roles_days),
            activity.c.occurred_at < days.end,
        )
        .group_by(activity.c.account_id)
        .subquery("roles_active")
    )


def _tickets(config: ClghubConfig, days: Days) -> Subquery:
    vs = config.value_score
    ticket = table_of(Ticket).alias("vt")
    weights = vs.ticket_weights
    weight = case(
        (ticket.c.priority == "low", literal(weights.low)),
        (ticket.c.priority == "high", literal(weights.high)),
        (ticket.c.priority == "urgent", literal(weights.urgent)),
        else_=literal(weights.medium),
    )
    friction_since = days.since(vs.friction_days)
    sentiment_since = days.since(vs.sentiment_days)
    answered = func.coalesce(ticket.c.closed_at, ticket.c.opened_at)
    return (
        select(
            ticket.c.account_id.label("account_id"),
            func.sum(
                case((ticket.c.opened_at >= friction_since, weight), else_=literal(0.0))
            ).label("weighted_tickets"),
            func.avg(
                case(
                    (
                        and_(ticket.c.csat.is_not(None), answered >= sentiment_since),
                        ticket.c.csat,
                    )
                )
            ).label("csat"),
        )
        .where(
            ticket.c.account_id.is_not(None),
            ticket.c.is_deleted.is_(False),
            or_(ticket.c.opened_at >= friction_since, answered >= sentiment_since),
            ticket.c.opened_at < days.end,
        )
        .group_by(ticket.c.account_id)
        .subquery("ticket_totals")
    )


def _never_met_bound(config: ClghubConfig, segment: ColumnElement[str]) -> ColumnElement[Any]:
    """Per segment: how long a customer may go without any executive meeting before it counts."""

    def bound(name: str) -> float:
        driver = config.scorecard(name)[0].get("executive_engagement")
        if driver is not None and driver.normalize == "linear" and driver.worst is not None:
            return max(driver.worst, driver.best or 0.0)
        return float(config.plays.no_exec_meeting_days)

    bounds = {name: bound(name) for name in config.segments.names}
    return case(bounds, value=segment, else_=literal(bound(config.segments.default)))


def _ratio(numerator: ColumnElement[Any], denominator: ColumnElement[Any]) -> ColumnElement[Any]:
    """numerator / denominator as a float; empty when the denominator is empty or zero."""
    return cast(numerator, Float) / func.nullif(cast(denominator, Float), 0.0)


def _at_most(value: ColumnElement[Any], cap: float) -> ColumnElement[Any]:
    return case((value > cap, literal(cap)), else_=value)


def driver_inputs(
    config: ClghubConfig,
    as_of: date,
    *,
    customers: FromClause | None = None,
    usage: FromClause | None = None,
    one_pass: bool = False,
) -> Select[Any]:
    """``account_id`` and every input the driver formulas read, for every customer on ``as_of``.

    ``customers`` (:func:`current_customers`) and ``usage`` (:func:`usage_totals`
    with ``one_pass``) may come stored in temporary tables; empty, they are
    computed here.
    """
    vs = config.value_score
    days = Days(as_of, config.reporting.timezone)
    account = table_of(Account).alias("va")
    ttv = table_of(TimeToValue).alias("vttv")
    raw_usage = table_of(UsageDaily).alias("vu_any")
    outcome_usage = table_of(UsageDaily).alias("vu_outcome")
    if customers is None:
        customers = current_customers(config, as_of).subquery("customers")
    segments = account_segments(config, as_of).subquery("segments")
    if usage is None:
        usage = usage_totals(config, as_of, one_pass=one_pass).subquery("usage_totals")
    rated = None if one_pass else _sentiment_metric(config, days)
    roles = _roles_active(config, days)
    tickets = _tickets(config, days)
    meeting = last_executive_meeting(days)

    # No usage in the window: an account that has had usage before is silent,
    # one that never had any has no product data at all.
    has_usage = case(
        (usage.c.account_id.is_not(None), literal(1)),
        (
            exists().where(raw_usage.c.account_id == account.c.id, raw_usage.c.day <= as_of),
            literal(1),
        ),
        else_=literal(0),
    )
    # The latest outcome KPI: looked up per account on its latest day (several
    # usage rows can share it, one per product source), accounts taken in
    # order so the lookups walk the usage index front to back.
    outcome_value = (
        select(func.avg(outcome_usage.c.value))
        .where(
            outcome_usage.c.account_id == usage.c.account_id,
            outcome_usage.c.metric == vs.outcome_metric,
            outcome_usage.c.day == usage.c.outcome_day,
        )
        .scalar_subquery()
    )
    outcomes = (
        select(usage.c.account_id, outcome_value.label("latest_outcome"))
        .where(usage.c.outcome_day.is_not(None))
        .order_by(usage.c.account_id)
        .subquery("latest_outcome")
    )
    since_start = days_between(ttv.c.contract_start, literal(as_of))
    age = case(
        (ttv.c.contract_start.is_not(None), since_start),
        else_=whole_days_between(
            account.c.source_created_at, literal(days.end, account.c.source_created_at.type)
        ),
    )
    columns: dict[str, ColumnElement[Any]] = {
        "segment": segments.c.segment,
        "seats": cast(func.nullif(account.c.seats, 0), Float),
        "outcome_target": account.c.outcome_target,
        "latest_outcome": outcomes.c.latest_outcome,
        "has_usage": has_usage,
        "feature_units": func.coalesce(usage.c.feature_units, 0.0),
        "active_user_days": func.coalesce(usage.c.active_user_days, 0.0),
        "roles": func.coalesce(roles.c.roles, 0),
        "weighted_tickets": func.coalesce(tickets.c.weighted_tickets, 0.0),
        "csat": tickets.c.csat,
        "sentiment_metric": (rated if rated is not None else usage).c.sentiment_metric,
        "meeting_days": meeting.c.days_since,
        "age": age,
        "first_value_day": ttv.c.first_value_day,
        "ttv_days": ttv.c.days,
        "since_start": since_start,
    }
    joined = (
        customers.join(account, account.c.id == customers.c.account_id)
        .join(segments, segments.c.account_id == customers.c.account_id)
        .outerjoin(usage, usage.c.account_id == customers.c.account_id)
        .outerjoin(outcomes, outcomes.c.account_id == customers.c.account_id)
    )
    if rated is not None:
        joined = joined.outerjoin(rated, rated.c.account_id == customers.c.account_id)
    return (
        select(
            customers.c.account_id.label("account_id"),
            *(expression.label(name) for name, expression in columns.items()),
        )
        .select_from(
            joined.outerjoin(roles, roles.c.account_id == customers.c.account_id)
            .outerjoin(tickets, tickets.c.account_id == customers.c.account_id)
            .outerjoin(meeting, meeting.c.account_id == customers.c.account_id)
            .outerjoin(ttv, ttv.c.account_id == customers.c.account_id)
        )
        .where(account.c.is_deleted.is_(False))
    )


def driver_formulas(
    config: ClghubConfig, as_of: date, inputs: Any
) -> dict[DriverName, ColumnElement[Any]]:
    """Each driver's raw value from the columns of :func:`driver_inputs` (a table or subquery)."""
    vs = config.value_score
    i = inputs.c
    window = float(vs.window_days)
    used = i.has_usage == 1

    outcome_progress = case(
        (
            i.outcome_target > 0,
            _at_most(_ratio(i.latest_outcome, i.outcome_target), vs.outcome_cap),
        ),
        else_=null(),
    )
    adoption_depth: ColumnElement[Any] = (
        case(
            (
                used,
                _ratio(
                    i.feature_units,
                    func.coalesce(func.nullif(i.active_user_days, 0.0), i.seats * window),
                ),
            ),
            else_=null(),
        )
        if vs.features
        else null()
    )
    roles_share = cast(i.roles, Float) / float(len(KEY_ROLES))
    user_share = _at_most(_ratio(i.active_user_days / window, i.seats), 1.0)
    breadth = case(
        (
            used,
            (1.0 - vs.breadth_roles_weight) * user_share + vs.breadth_roles_weight * roles_share,
        ),
        else_=null(),
    )
    time_to_value = case(
        (i.first_value_day <= as_of, cast(i.ttv_days, Float)),
        (i.since_start > config.time_to_value.target_days, cast(i.since_start, Float)),
        else_=null(),
    )
    executive_engagement = case(
        (i.meeting_days.is_not(None), cast(i.meeting_days, Float)),
        (i.age >= _never_met_bound(config, i.segment), cast(i.age, Float)),
        else_=null(),
    )
    support_friction = _ratio(i.weighted_tickets, i.seats)
    metric = i.sentiment_metric
    csat = (i.csat - 1.0) * _CSAT_TO_TEN
    if vs.csat_weight <= 0.0:
        sentiment: ColumnElement[Any] = metric
    elif vs.csat_weight >= 1.0:
        sentiment = csat
    else:
        sentiment = case(
            (
                and_(metric.is_not(None), csat.is_not(None)),
                (1.0 - vs.csat_weight) * metric + vs.csat_weight * csat,
            ),
            else_=func.coalesce(metric, csat),
        )
    return {
        "outcome_progress": outcome_progress,
        "adoption_depth": adoption_depth,
        "breadth": breadth,
        "time_to_value": time_to_value,
        "executive_engagement": executive_engagement,
        "support_friction": support_friction,
        "sentiment": cast(sentiment, Float),
    }


def driver_values(config: ClghubConfig, as_of: date) -> Select[Any]:
    """``account_id, segment`` and one column per driver (raw, empty when missing).

    For reading; the value-score workflow stores :func:`driver_inputs` first
    and applies :func:`driver_formulas` to the stored rows.
    """
    inputs = driver_inputs(config, as_of).subquery("inputs")
    formulas = driver_formulas(config, as_of, inputs)
    return select(
        inputs.c.account_id,
        inputs.c.segment,
        *(formulas[name].label(name) for name in DRIVERS),
    )
