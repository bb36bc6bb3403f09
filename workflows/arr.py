"""The ARR ledger (``arr_month``) and each account's bridge movements (``arr_movement``).

The ledger is rebuilt from the won deals on every run (so a deal closed late
restates the months it covers) following the contract rules of
:mod:`clghub.workflows.ledger`: ARR at month M is the ARR in force on the
last day of M (on ``as_of`` for the month still open). Deals that cannot
count are quarantined with the reason and resolved once they can.

Movements per account are stored for months and fiscal quarters, classified
as in :mod:`clghub.workflows.bridge`; :mod:`clghub.workflows.retention` sums
them by cohort.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Integer,
    Select,
    String,
    Subquery,
    Table,
    Text,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    union,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from clghub.config.models import ClghubConfig
from clghub.errors import ClghubError
from clghub.store.models import Opportunity, Quarantine, table_of, utcnow
from clghub.store.revenue import ArrMonth, ArrMovement
from clghub.store.sqlfuncs import add_days, month_index
from clghub.store.types import UTCDateTime
from clghub.workflows.bridge import BridgeQueries
from clghub.workflows.exact import units
from clghub.workflows.ledger import (
    QUARANTINE_STREAM,
    LedgerQueries,
    adjustments,
    base_terms,
    checked_deals,
    orphan_adjustments,
    pieces,
    quarantine_payload,
    valid_deals,
)
from clghub.workflows.periods import month_date
from clghub.workflows.periods import month_index as python_month_index
from clghub.workflows.scratch import analyze, fill, scratch_table, tune_for_analytics

__all__ = ["QUARANTINE_SOURCE", "compute", "current_term_end_query", "require_ledger"]

QUARANTINE_SOURCE = "workflow"
_MOVEMENT_KINDS: tuple[Literal["month", "quarter"], ...] = ("month", "quarter")


def current_term_end_query(config: ClghubConfig, as_of: date) -> Select[Any]:
    """``SELECT account_id, term_end, arr``: each account's current base term.

    ``term_end`` is the last day of the base contract in force on ``as_of``
    (its renewal date, after the ledger's replacement and grace rules);
    ``arr`` is the account's ARR on ``as_of`` (Money, reporting currency).
    Accounts with no contract in force have no row. Reads the opportunities,
    not ``arr_month``, so it does not depend on the ARR workflow having run.
    """
    return LedgerQueries(config, as_of).current_terms()


def require_ledger(connection: Connection, as_of: date) -> None:
    """Refuse to read a ledger built for a later day than ``as_of``.

    The workflows after this one read ``arr_month`` and ``arr_movement`` as
    this workflow left them; run for an earlier day they would mix two days.
    """
    arr_month = table_of(ArrMonth)
    latest = connection.execute(select(func.max(arr_month.c.month))).scalar_one()
    if latest is not None and latest > as_of.replace(day=1):
        raise ClghubError(
            f"the ARR ledger was built for a later day (it has {latest:%Y-%m}); "
            f"run the ARR workflow for {as_of} first"
        )


def compute(connection: Connection, config: ClghubConfig, as_of: date) -> dict[str, int | float]:
    """Rebuild the ledger and the monthly and quarterly movements as of ``as_of``."""
    tune_for_analytics(connection)
    now = utcnow()
    arr_month = table_of(ArrMonth)
    current = python_month_index(as_of)
    # Each stage goes through an indexed scratch table: joins then run on real
    # sizes (see scratch.analyze) instead of a planner's guesses about CTEs.
    with (
        scratch_table(
            connection,
            "tmp_arr_deals",
            Column("opportunity_id", Integer, nullable=False),
            Column("account_id", Integer, nullable=False),
            Column("source", String(32), nullable=False),
            Column("source_id", String(64), nullable=False),
            Column("type", String(32)),
            Column("close_date", Date),
            Column("start", Date),
            Column("end", Date),
            Column("arr_units", BigInteger),
            Column("problem", Text),
            index=("account_id",),
        ) as deals,
        scratch_table(
            connection,
            "tmp_arr_valid",
            Column("opportunity_id", Integer, nullable=False),
            Column("account_id", Integer, nullable=False),
            Column("close_date", Date),
            Column("start", Date, nullable=False),
            Column("end", Date, nullable=False),
            Column("type", String(32), nullable=False),
            Column("arr_units", BigInteger, nullable=False),
            index=("account_id", "start"),
        ) as valid,
        scratch_table(
            connection,
            "tmp_arr_base",
            Column("opportunity_id", Integer, nullable=False),
            Column("account_id", Integer, nullable=False),
            Column("start", Date, nullable=False),
            Column("end", Date, nullable=False),
            Column("effective_end", Date, nullable=False),
            Column("arr_units", BigInteger, nullable=False),
            index=("account_id", "start"),
        ) as base,
        scratch_table(
            connection,
            "tmp_arr_coverage",
            Column("account_id", Integer, nullable=False),
            Column("opportunity_id", Integer, nullable=False),
            Column("first_month", Integer, nullable=False),
            Column("last_month", Integer, nullable=False),
            Column("arr_units", BigInteger, nullable=False),
        ) as coverage,
        scratch_table(
            connection,
            "tmp_arr_points",
            Column("account_id", Integer, nullable=False),
            Column("m", Integer, nullable=False),
            Column("total_units", BigInteger, nullable=False),
            Column("arr_units", BigInteger, nullable=False),
            index=("account_id", "m"),
        ) as points,
        scratch_table(
            connection,
            "tmp_arr_months",
            Column("m", Integer, primary_key=True),
            Column("month", Date, nullable=False),
        ) as months,
    ):
        fill(connection, deals, checked_deals(config, as_of))
        _record_quarantine(
            connection,
            select(
                deals.c.opportunity_id,
                deals.c.account_id,
                deals.c.source,
                deals.c.source_id,
                deals.c.problem.label("reason"),
            ).where(deals.c.problem.is_not(None)),
            now,
        )
        fill(connection, valid, valid_deals(deals))
        fill(connection, base, base_terms(config, valid))
        adjusted = adjustments(valid, base).subquery("arr_adjusted")
        _record_quarantine(connection, orphan_adjustments(adjusted), now)
        stretches = pieces(base, adjusted).subquery("arr_pieces")
        fill(connection, coverage, _coverage(stretches, as_of, current))
        # ARR only changes where a stretch starts or the month after one ends:
        # valued there, it holds until the next such month.
        fill(connection, points, _change_points(coverage, current))
        _record_quarantine(connection, _overdrawn(coverage, points), now)

        first = connection.execute(select(func.min(points.c.m))).scalar_one()
        if first is not None:
            connection.execute(
                insert(months),
                [{"m": m, "month": month_date(m)} for m in range(int(first), current + 1)],
            )
            analyze(connection, months)
        connection.execute(delete(arr_month))
        connection.execute(
            arr_month.insert().from_select(
                ["account_id", "month", "arr", "computed_at"],
                _ledger_rows(points, months, current, now),
            )
        )
        analyze(connection, arr_month)
        counted = connection.execute(select(func.count()).select_from(valid)).scalar_one()
        ledger_rows = connection.execute(select(func.count()).select_from(arr_month)).scalar_one()
        movements = _write_movements(connection, config, as_of, points, now)

    _resolve_quarantine(connection, now)
    current_row = select(func.count(), func.coalesce(func.sum(units(arr_month.c.arr)), 0)).where(
        arr_month.c.month == as_of.replace(day=1)
    )
    active, arr_units = connection.execute(current_row).one()
    quarantine = table_of(Quarantine)
    quarantined = connection.execute(
        select(func.count()).where(
            quarantine.c.source == QUARANTINE_SOURCE,
            quarantine.c.stream == QUARANTINE_STREAM,
            quarantine.c.last_seen_at == now,
        )
    ).scalar_one()
    return {
        "deals": int(counted),
        "deals_quarantined": int(quarantined),
        "ledger_rows": int(ledger_rows),
        "active_accounts": int(active),
        "arr": float(arr_units) / 10_000,
        **{f"movements_{kind}": count for kind, count in movements.items()},
    }


def _coverage(pieces: Any, as_of: date, current: int) -> Select[Any]:
    """The months each ARR piece covers: from its start month to the last month
    whose final day (``as_of`` for the open month) it still covers."""
    last_month = case(
        (pieces.c.effective_end >= as_of, literal(current)),
        else_=month_index(add_days(pieces.c.effective_end, 1)) - 1,
    )
    bounded = select(
        pieces.c.account_id,
        pieces.c.opportunity_id,
        month_index(pieces.c.start).label("first_month"),
        last_month.label("last_month"),
        pieces.c.arr_units,
    ).where(pieces.c.start <= as_of)
    inner = bounded.subquery("arr_bounded")
    return select(inner).where(inner.c.last_month >= inner.c.first_month)


def _change_points(coverage: Table, current: int) -> Select[Any]:
    """``(account_id, m, total_units, arr_units)`` at every month where an
    account's ARR may change; ``arr_units`` is the total floored at zero."""
    starts = select(coverage.c.account_id, coverage.c.first_month.label("m"))
    ends = select(coverage.c.account_id, (coverage.c.last_month + 1).label("m")).where(
        coverage.c.last_month < current
    )
    at = union(starts, ends).subquery("arr_change_months")
    total = func.coalesce(func.sum(coverage.c.arr_units), 0)
    return (
        select(
            at.c.account_id,
            at.c.m,
            total.label("total_units"),
            case((total > 0, total), else_=0).label("arr_units"),
        )
        .select_from(
            at.outerjoin(
                coverage,
                and_(
                    coverage.c.account_id == at.c.account_id,
                    coverage.c.first_month <= at.c.m,
                    coverage.c.last_month >= at.c.m,
                ),
            )
        )
        .group_by(at.c.account_id, at.c.m)
    )


def _spans(points: Table, current: int) -> Subquery:
    """Each change point's ARR from its month to the month before the next one."""
    following = func.lead(points.c.m).over(partition_by=points.c.account_id, order_by=points.c.m)
    return select(
        points.c.account_id,
        points.c.m.label("first_month"),
        func.coalesce(following - 1, current).label("last_month"),
        points.c.arr_units,
    ).subquery("arr_spans")


def _ledger_rows(points: Table, months: Table, current: int, now: datetime) -> Select[Any]:
    """One ``arr_month`` row per account and month with ARR."""
    spans = _spans(points, current)
    return (
        select(
            spans.c.account_id,
            months.c.month,
            spans.c.arr_units,
            literal(now, UTCDateTime()),
        )
        .select_from(
            spans.join(
                months, and_(months.c.m >= spans.c.first_month, months.c.m <= spans.c.last_month)
            )
        )
        .where(spans.c.arr_units > 0)
    )


def _overdrawn(coverage: Table, points: Table) -> Select[Any]:
    """Contractions in force where they take the account's ARR below zero."""
    opportunity = table_of(Opportunity)
    return (
        select(
            coverage.c.opportunity_id,
            coverage.c.account_id,
            opportunity.c.source,
            opportunity.c.source_id,
            literal(
                "contraction removes more ARR than the account has; those months count as zero"
            ).label("reason"),
        )
        .select_from(
            coverage.join(
                points,
                and_(
                    points.c.account_id == coverage.c.account_id,
                    points.c.m >= coverage.c.first_month,
                    points.c.m <= coverage.c.last_month,
                ),
            ).join(opportunity, opportunity.c.id == coverage.c.opportunity_id)
        )
        .where(coverage.c.arr_units < 0, points.c.total_units < 0)
    )


def _write_movements(
    connection: Connection, config: ClghubConfig, as_of: date, points: Table, now: datetime
) -> dict[str, int]:
    """Monthly and quarterly movements, both from the change points."""
    movement = table_of(ArrMovement)
    connection.execute(delete(movement))
    bridge = BridgeQueries(config, as_of)
    for kind in _MOVEMENT_KINDS:
        found = bridge.movements(points, kind).subquery(f"arr_movements_{kind}")
        connection.execute(
            movement.insert().from_select(
                [
                    "period_kind",
                    "period_start",
                    "account_id",
                    "kind",
                    "start_arr",
                    "end_arr",
                    "amount",
                    "computed_at",
                ],
                select(
                    literal(kind),
                    found.c.period_start,
                    found.c.account_id,
                    found.c.movement,
                    found.c.start_units,
                    found.c.end_units,
                    found.c.amount,
                    literal(now, UTCDateTime()),
                ),
            )
        )
    analyze(connection, movement)
    # rowcount of INSERT ... SELECT is not reliable on every driver; count instead.
    counted = connection.execute(
        select(movement.c.period_kind, func.count()).group_by(movement.c.period_kind)
    ).all()
    return {kind: 0 for kind in _MOVEMENT_KINDS} | {str(k): int(n) for k, n in counted}


# --------------------------------------------------------------------------- quarantine


def _record_quarantine(connection: Connection, rows: Any, now: datetime) -> None:
    """Upsert ``(opportunity_id, account_id, source, source_id, reason)`` rows."""
    quarantine = table_of(Quarantine)
    found = rows.subquery("arr_quarantine_rows")
    stamp = literal(now, UTCDateTime())
    selected = (
        select(
            literal(QUARANTINE_SOURCE),
            literal(QUARANTINE_STREAM),
            found.c.source + literal(":") + found.c.source_id,
            found.c.reason,
            quarantine_payload(found.c.opportunity_id, found.c.account_id),
            stamp,
            stamp,
            literal(1),
        )
        .distinct()
        # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT.
        .where(true())
    )
    insert_fn: Any = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert_fn(quarantine).from_select(
        [
            "source",
            "stream",
            "source_id",
            "reason",
            "payload",
            "first_seen_at",
            "last_seen_at",
            "seen_count",
        ],
        selected,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["source", "stream", "source_id", "reason"],
        set_={
            "payload": statement.excluded.payload,
            "last_seen_at": statement.excluded.last_seen_at,
            "seen_count": quarantine.c.seen_count + 1,
            "resolved_at": None,
        },
    )
    connection.execute(statement)


def _resolve_quarantine(connection: Connection, now: datetime) -> None:
    """Deals quarantined before but counted now are marked resolved."""
    quarantine = table_of(Quarantine)
    connection.execute(
        update(quarantine)
        .where(
            quarantine.c.source == QUARANTINE_SOURCE,
            quarantine.c.stream == QUARANTINE_STREAM,
            quarantine.c.resolved_at.is_(None),
            quarantine.c.last_seen_at < now,
        )
        .values(resolved_at=now)
    )
