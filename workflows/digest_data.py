"""The figures of the leadership digest, read from the workflow tables.

Everything is as of the digest's cut-off: the reporting day for the week in
progress, the last day of the week for an earlier one. Each section is
independent; one whose workflow has not run is empty and says so.

- NRR, GRR and the ARR bridge: the trailing-twelve-month ``retention`` row
  (all accounts) ending last on or before the cut-off; expansion also for
  the fiscal quarter in progress.
- Risers and fallers: the latest value-score snapshot, by 30-day trend.
- At-risk ARR: red accounts whose current term ends within
  ``slack.digest.at_risk_days``.
- No executive engagement: customers without an economic-buyer meeting for
  ``slack.digest.no_exec_days`` days (never met counts once they have been
  customers that long).
- The incentive pool of the period in progress, by team.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, desc, func, literal, or_, select

from clghub.config.models import ClghubConfig
from clghub.store.models import Account, SourceLink, table_of
from clghub.store.revenue import ArrMonth, Incentive, Retention
from clghub.store.sqlfuncs import days_between
from clghub.store.value import ValueScore
from clghub.workflows.arr import current_term_end_query
from clghub.workflows.time_to_value import first_contract_starts
from clghub.workflows.value_drivers import Days, current_customers, last_executive_meeting

__all__ = [
    "AccountLine",
    "Bridge",
    "DigestData",
    "DigestPeriod",
    "Ranked",
    "load_digest_data",
]

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
LIST_LIMIT = 25
"""Accounts fetched per list; the message shows what fits and counts the rest."""
TEAMS = ("marketing", "sales", "cs")


@dataclass(frozen=True)
class DigestPeriod:
    """An ISO week: the digest's period and its idempotency key."""

    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> DigestPeriod:
        match = _WEEK.match(text.strip())
        if match is None:
            raise ValueError(f"'{text}' is not an ISO week written YYYY-Www, e.g. 2026-W47")
        year, week = int(match[1]), int(match[2])
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ValueError(f"'{text}': {year} has no week {week}") from None
        return cls(year, week)

    @classmethod
    def of(cls, day: date) -> DigestPeriod:
        year, week, _ = day.isocalendar()
        return cls(year, week)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def start(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)


@dataclass(frozen=True)
class AccountLine:
    account_id: int
    name: str
    links: tuple[tuple[str, str], ...]
    """(crm, record id) of each live CRM record of the account."""
    score: float | None = None
    band: str | None = None
    trend_30d: float | None = None
    explanation: str | None = None
    arr: Decimal | None = None
    term_end: date | None = None
    days_since_exec: int | None = None


@dataclass(frozen=True)
class Ranked:
    """A list of accounts: the first ones in detail, the total behind them."""

    lines: list[AccountLine] = field(default_factory=list)
    total: int = 0
    arr: Decimal = Decimal(0)


@dataclass(frozen=True)
class Bridge:
    period_start: date
    period_end: date
    start: Decimal
    new: Decimal
    expansion: Decimal
    reactivation: Decimal
    contraction: Decimal
    churn: Decimal
    end: Decimal
    nrr: float | None
    grr: float | None
    logo_retention: float | None
    start_logos: int
    end_logos: int


@dataclass
class DigestData:
    period: DigestPeriod
    cutoff: date
    currency: str
    bridge: Bridge | None = None
    quarter_label: str | None = None
    quarter_expansion: Decimal | None = None
    score_as_of: date | None = None
    risers: Ranked = field(default_factory=Ranked)
    fallers: Ranked = field(default_factory=Ranked)
    at_risk: Ranked = field(default_factory=Ranked)
    no_exec: Ranked = field(default_factory=Ranked)
    incentive_period: str | None = None
    pool: Decimal | None = None
    teams: dict[str, Decimal] = field(default_factory=dict)


RETENTION = table_of(Retention)
SCORE = table_of(ValueScore)
ACCOUNT = table_of(Account)
LINK = table_of(SourceLink)
INCENTIVE = table_of(Incentive)
ARR_MONTH = table_of(ArrMonth)


def _bridge(connection: Connection, cutoff: date) -> Bridge | None:
    row = connection.execute(
        select(RETENTION)
        .where(
            RETENTION.c.period_kind == "ttm",
            RETENTION.c.cohort_dim == "all",
            RETENTION.c.period_end <= cutoff,
        )
        .order_by(desc(RETENTION.c.period_end))
        .limit(1)
    ).first()
    if row is None:
        return None
    return Bridge(
        row.period_start,
        row.period_end,
        row.start_arr,
        row.new_arr,
        row.expansion_arr,
        row.reactivation_arr,
        row.contraction_arr,
        row.churn_arr,
        row.end_arr,
        row.nrr,
        row.grr,
        row.logo_retention,
        row.start_logos,
        row.end_logos,
    )


def _quarter(connection: Connection, cutoff: date) -> tuple[date, date, Decimal] | None:
    row = connection.execute(
        select(RETENTION.c.period_start, RETENTION.c.period_end, RETENTION.c.expansion_arr)
        .where(
            RETENTION.c.period_kind == "quarter",
            RETENTION.c.cohort_dim == "all",
            RETENTION.c.period_start <= cutoff,
        )
        .order_by(desc(RETENTION.c.period_start))
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def _links(
    connection: Connection, account_ids: list[int]
) -> dict[int, tuple[tuple[str, str], ...]]:
    if not account_ids:
        return {}
    rows = connection.execute(
        select(LINK.c.account_id, LINK.c.source, LINK.c.source_id)
        .where(
            LINK.c.account_id.in_(account_ids),
            LINK.c.object == "account",
            LINK.c.is_deleted.is_(False),
            LINK.c.source.in_(("salesforce", "hubspot")),
        )
        .order_by(LINK.c.account_id, LINK.c.source, LINK.c.source_id)
    )
    found: dict[int, list[tuple[str, str]]] = {}
    for account_id, source, source_id in rows:
        found.setdefault(account_id, []).append((source, source_id))
    return {k: tuple(v) for k, v in found.items()}


def _lines(connection: Connection, rows: list[Any]) -> list[AccountLine]:
    links = _links(connection, [r.account_id for r in rows])
    lines = []
    for row in rows:
        mapping = row._mapping
        lines.append(
            AccountLine(
                account_id=row.account_id,
                name=row.name,
                links=links.get(row.account_id, ()),
                score=mapping.get("score"),
                band=mapping.get("band"),
                trend_30d=mapping.get("trend_30d"),
                explanation=mapping.get("explanation"),
                arr=mapping.get("arr"),
                term_end=mapping.get("term_end"),
                days_since_exec=mapping.get("days_since"),
            )
        )
    return lines


def _movers(connection: Connection, snapshot: date, *, rising: bool, limit: int) -> Ranked:
    moved = SCORE.c.trend_30d > 0 if rising else SCORE.c.trend_30d < 0
    live = and_(SCORE.c.as_of == snapshot, moved, ACCOUNT.c.is_deleted.is_(False))
    joined = SCORE.join(ACCOUNT, ACCOUNT.c.id == SCORE.c.account_id)
    total = connection.execute(select(func.count()).select_from(joined).where(live)).scalar_one()
    order = desc(SCORE.c.trend_30d) if rising else SCORE.c.trend_30d
    rows = connection.execute(
        select(
            SCORE.c.account_id,
            ACCOUNT.c.name,
            SCORE.c.score,
            SCORE.c.band,
            SCORE.c.trend_30d,
            SCORE.c.explanation,
        )
        .select_from(joined)
        .where(live)
        .order_by(order, SCORE.c.account_id)
        .limit(limit)
    ).all()
    return Ranked(_lines(connection, list(rows)), int(total))


def _ranked(connection: Connection, query: Any) -> Ranked:
    """Totals and the top accounts by ARR of a query of (account_id, name, arr, ...)."""
    listed = query.subquery("listed")
    total, arr = connection.execute(
        select(func.count(), func.coalesce(func.sum(listed.c.arr), 0)).select_from(listed)
    ).one()
    rows = connection.execute(
        select(listed).order_by(desc(listed.c.arr), listed.c.account_id).limit(LIST_LIMIT)
    ).all()
    return Ranked(
        _lines(connection, list(rows)), int(total), arr if isinstance(arr, Decimal) else Decimal(0)
    )


def _at_risk(connection: Connection, config: ClghubConfig, cutoff: date, snapshot: date) -> Ranked:
    terms = current_term_end_query(config, cutoff).subquery("risk_terms")
    horizon = cutoff + timedelta(days=config.slack.digest.at_risk_days)
    query = (
        select(
            SCORE.c.account_id,
            ACCOUNT.c.name,
            terms.c.arr.label("arr"),
            terms.c.term_end,
            SCORE.c.score,
            SCORE.c.band,
            SCORE.c.trend_30d,
            SCORE.c.explanation,
        )
        .select_from(
            SCORE.join(ACCOUNT, ACCOUNT.c.id == SCORE.c.account_id).join(
                terms, terms.c.account_id == SCORE.c.account_id
            )
        )
        .where(
            SCORE.c.as_of == snapshot,
            SCORE.c.band == "red",
            ACCOUNT.c.is_deleted.is_(False),
            terms.c.term_end <= horizon,
        )
    )
    return _ranked(connection, query)


def _no_exec(connection: Connection, config: ClghubConfig, cutoff: date) -> Ranked:
    limit = config.slack.digest.no_exec_days
    customers = current_customers(config, cutoff).subquery("ne_customers")
    meetings = last_executive_meeting(Days(cutoff, config.reporting.timezone))
    starts = first_contract_starts(cutoff)
    # ARR from the ledger's month (a second ledger query here would repeat its CTEs).
    arr = ARR_MONTH.alias("ne_arr")
    age = days_between(starts.c.contract_start, literal(cutoff))
    query = (
        select(
            customers.c.account_id,
            ACCOUNT.c.name,
            arr.c.arr.label("arr"),
            customers.c.term_end,
            meetings.c.days_since,
        )
        .select_from(
            customers.join(ACCOUNT, ACCOUNT.c.id == customers.c.account_id)
            .outerjoin(meetings, meetings.c.account_id == customers.c.account_id)
            .outerjoin(starts, starts.c.account_id == customers.c.account_id)
            .outerjoin(
                arr,
                and_(
                    arr.c.account_id == customers.c.account_id, arr.c.month == cutoff.replace(day=1)
                ),
            )
        )
        .where(
            ACCOUNT.c.is_deleted.is_(False),
            or_(
                meetings.c.days_since >= limit,
                and_(meetings.c.days_since.is_(None), age >= limit),
            ),
        )
    )
    return _ranked(connection, query)


def _incentives(
    connection: Connection, cutoff: date
) -> tuple[str | None, Decimal | None, dict[str, Decimal]]:
    period = connection.execute(
        select(INCENTIVE.c.period)
        .where(INCENTIVE.c.team == "pool", INCENTIVE.c.period_start <= cutoff)
        .order_by(desc(INCENTIVE.c.period_start))
        .limit(1)
    ).scalar()
    if period is None:
        return None, None, {}
    rows = connection.execute(
        select(INCENTIVE.c.team, INCENTIVE.c.person_key, INCENTIVE.c.amount).where(
            INCENTIVE.c.period == period,
            or_(INCENTIVE.c.team == "pool", INCENTIVE.c.person_key == "(team)"),
        )
    ).all()
    pool: Decimal | None = None
    teams: dict[str, Decimal] = {}
    for team, _, amount in rows:
        if team == "pool":
            pool = amount
        else:
            teams[team] = amount
    return (
        str(period),
        pool,
        {t: teams[t] for t in (*TEAMS, *sorted(set(teams) - set(TEAMS))) if t in teams},
    )


def load_digest_data(
    connection: Connection, config: ClghubConfig, period: DigestPeriod, as_of: date
) -> DigestData:
    """The digest's figures for ``period``, as of ``min(as_of, period.end)``."""
    cutoff = min(as_of, period.end)
    data = DigestData(period=period, cutoff=cutoff, currency=config.reporting.currency)
    data.bridge = _bridge(connection, cutoff)
    quarter = _quarter(connection, cutoff)
    if quarter is not None:
        start, end, expansion = quarter
        data.quarter_label = f"{start.isoformat()} to {end.isoformat()}"
        data.quarter_expansion = expansion
    snapshot = connection.execute(
        select(func.max(SCORE.c.as_of)).where(SCORE.c.as_of <= cutoff)
    ).scalar()
    data.score_as_of = snapshot
    top_n = config.slack.digest.top_n
    if snapshot is not None:
        data.risers = _movers(connection, snapshot, rising=True, limit=top_n)
        data.fallers = _movers(connection, snapshot, rising=False, limit=top_n)
        data.at_risk = _at_risk(connection, config, cutoff, snapshot)
    data.no_exec = _no_exec(connection, config, cutoff)
    data.incentive_period, data.pool, data.teams = _incentives(connection, cutoff)
    return data
