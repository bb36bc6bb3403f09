"""The ARR bridge, NRR, GRR and logo retention per period and cohort (``retention``).

Periods: calendar months, fiscal quarters (``reporting.fiscal_year_start_month``)
and trailing twelve months (``ttm``, one per month: the twelve months ending
with it, compared with the month twelve months before). The period still open
ends on ``as_of``.

Cohorts: ``all``; ``segment`` (as the value score resolves it); ``industry``;
``region``; ``acquisition_year`` (calendar year of the account's first month
with ARR); ``owner`` (the account owner's name, with their email, else their
CRM id, added when two people share a name; one name and one email in two
CRMs are one person). Missing attributes read ``(none)``. Accounts
are placed by their attributes today, for every period.

For the accounts of a cohort, with each account's movement from
:mod:`clghub.workflows.bridge` (months and quarters as stored in
``arr_movement`` by the ARR workflow, trailing twelve months compared here):

- NRR = ARR at the end of the accounts active at the start / their ARR at the
  start = (start + expansion - contraction - churn) / start; new logos and
  reactivations are excluded.
- GRR = (start - contraction - churn) / start, at most 1.
- logo retention = 1 - churned logos / logos at the start.

Rates are empty when the cohort had no ARR at the start. Money is exact; the
bridge identity start + new + expansion + reactivation - contraction - churn
= end holds for every row.

ARR and logos at each month end per cohort are the running sums of the
monthly movements, so the ledger itself is read once (for the trailing
twelve months), not once per cohort dimension.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Column,
    Connection,
    Date,
    Float,
    Integer,
    Select,
    String,
    Subquery,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
)

from clghub.config.models import ClghubConfig
from clghub.store.models import Account, Person, table_of, utcnow
from clghub.store.revenue import ArrMonth, ArrMovement, Retention
from clghub.store.sqlfuncs import month_index
from clghub.store.types import UTCDateTime
from clghub.workflows.arr import require_ledger
from clghub.workflows.bridge import BridgeKind, BridgeQueries
from clghub.workflows.exact import units
from clghub.workflows.periods import month_date, month_end, period_of
from clghub.workflows.periods import month_index as python_month_index
from clghub.workflows.scratch import analyze, fill, scratch_table, tune_for_analytics
from clghub.workflows.segments import account_segments

__all__ = ["COHORT_DIMS", "PERIOD_KINDS", "cohort_attributes", "compute"]

PERIOD_KINDS: tuple[BridgeKind, ...] = ("month", "quarter", "ttm")
COHORT_DIMS = ("all", "segment", "industry", "region", "acquisition_year", "owner")
NONE_LABEL = "(none)"
_MOVE_SUMS = ("new", "expansion", "contraction", "churn", "reactivation")
_LOGO_SUMS = ("new", "reactivation", "churn")


def compute(connection: Connection, config: ClghubConfig, as_of: date) -> dict[str, int | float]:
    """Replace every retention row with the figures of the ledger as of ``as_of``."""
    tune_for_analytics(connection)
    require_ledger(connection, as_of)
    now = utcnow()
    retention = table_of(Retention)
    connection.execute(delete(retention))
    current = python_month_index(as_of)
    with (
        scratch_table(
            connection,
            "tmp_retention_attrs",
            Column("account_id", Integer, primary_key=True),
            *(Column(dim, String(255), nullable=False) for dim in COHORT_DIMS[1:]),
            Column("combo", Integer, nullable=False),
        ) as attrs,
        scratch_table(
            connection,
            "tmp_retention_combo_values",
            Column("combo", Integer, primary_key=True),
            *(Column(dim, String(255), nullable=False) for dim in COHORT_DIMS[1:]),
        ) as combo_values,
        scratch_table(
            connection,
            "tmp_retention_spans",
            Column("account_id", Integer, nullable=False),
            Column("first_month", Integer, nullable=False),
            Column("last_month", Integer, nullable=False),
            Column("arr_units", BigInteger, nullable=False),
            index=("account_id", "first_month"),
        ) as spans,
        scratch_table(
            connection,
            "tmp_retention_combos",
            Column("period_kind", String(8), nullable=False),
            Column("period", Integer, nullable=False),
            Column("movement", String(16), nullable=False),
            Column("combo", Integer, nullable=False),
            Column("amount", BigInteger, nullable=False),
            Column("logos", Integer, nullable=False),
        ) as combos,
        scratch_table(
            connection,
            "tmp_retention_moves",
            Column("period_kind", String(8), nullable=False),
            Column("dim", String(32), nullable=False),
            Column("value", String(255), nullable=False),
            Column("period", Integer, nullable=False),
            *(Column(f"{name}_units", BigInteger, nullable=False) for name in _MOVE_SUMS),
            *(Column(f"{name}_logos", Integer, nullable=False) for name in _LOGO_SUMS),
            index=("period_kind", "dim", "value", "period"),
        ) as moves,
        scratch_table(
            connection,
            "tmp_retention_stock",
            Column("dim", String(32), nullable=False),
            Column("value", String(255), nullable=False),
            Column("m", Integer, nullable=False),
            Column("arr_units", BigInteger, nullable=False),
            Column("logos", Integer, nullable=False),
            index=("dim", "value", "m"),
        ) as stock,
        scratch_table(
            connection, "tmp_retention_months", Column("m", Integer, primary_key=True)
        ) as months,
        scratch_table(
            connection,
            "tmp_retention_periods",
            Column("period_kind", String(8), nullable=False),
            Column("period", Integer, nullable=False),
            Column("start_point", Integer, nullable=False),
            Column("end_point", Integer, nullable=False),
            Column("period_start", Date, nullable=False),
            Column("period_end", Date, nullable=False),
        ) as periods,
    ):
        # Each distinct combination of cohort values gets a number: movements are
        # summed per number (integers group fast), then per dimension.
        known = cohort_attributes(config, as_of).subquery("retention_known")
        dims = [known.c[dim] for dim in COHORT_DIMS[1:]]
        fill(
            connection,
            attrs,
            select(known, func.dense_rank().over(order_by=dims).label("combo")),
        )
        fill(
            connection,
            combo_values,
            select(attrs.c.combo, *(attrs.c[dim] for dim in COHORT_DIMS[1:])).distinct(),
        )
        first_day: date | None = connection.execute(
            select(func.min(table_of(ArrMonth).c.month))
        ).scalar()
        if first_day is None:
            return {}
        first = python_month_index(first_day)
        # Movements are first summed per combination of cohort values (far
        # fewer rows than accounts x periods), then per dimension from those.
        stored = table_of(ArrMovement)
        for kind in ("month", "quarter"):
            connection.execute(
                combos.insert().from_select(
                    _COMBO_COLUMNS, _combined(kind, _stored_movements(config, kind, stored), attrs)
                )
            )
        # Trailing twelve months: each account's movement is constant over runs
        # of months; a run adds its amount from its first month and takes it
        # back after its last, and running sums give every month's total.
        bridge = BridgeQueries(config, as_of)
        fill(connection, spans, bridge.spans(stored))
        # Each run feeds two edges: computed once, not once per edge.
        runs = bridge.ttm_intervals(spans).cte("retention_ttm_runs").prefix_with("MATERIALIZED")
        connection.execute(
            combos.insert().from_select(_COMBO_COLUMNS, _run_edges(runs, attrs, current))
        )
        analyze(connection, combos)
        # Every kind at once, one dimension at a time.
        for dim in COHORT_DIMS:
            connection.execute(
                moves.insert().from_select(_MOVE_COLUMNS, _sums(dim, combos, combo_values))
            )
        analyze(connection, moves)
        connection.execute(insert(months), [{"m": m} for m in range(int(first), current + 1)])
        analyze(connection, months)
        connection.execute(moves.insert().from_select(_MOVE_COLUMNS, _ttm_totals(moves, months)))
        analyze(connection, moves)

        fill(connection, stock, _running_stock(moves, months))
        connection.execute(insert(periods), _periods(config, as_of, int(first), current))
        analyze(connection, periods)
        stamp = literal(now, UTCDateTime())
        connection.execute(
            retention.insert().from_select(_COLUMNS, _rows(periods, stock, moves, stamp))
        )
    counted = connection.execute(
        select(retention.c.period_kind, func.count()).group_by(retention.c.period_kind)
    ).all()
    return {f"rows_{kind}": int(count) for kind, count in counted}


_MOVE_COLUMNS = [
    "period_kind",
    "dim",
    "value",
    "period",
    *(f"{name}_units" for name in _MOVE_SUMS),
    *(f"{name}_logos" for name in _LOGO_SUMS),
]

_COLUMNS = [
    "period_kind",
    "period_start",
    "period_end",
    "cohort_dim",
    "cohort_value",
    "start_arr",
    "new_arr",
    "expansion_arr",
    "contraction_arr",
    "churn_arr",
    "reactivation_arr",
    "end_arr",
    "start_logos",
    "new_logos",
    "reactivated_logos",
    "churned_logos",
    "end_logos",
    "nrr",
    "grr",
    "logo_retention",
    "computed_at",
]


# --------------------------------------------------------------------------- movements


_COMBO_COLUMNS = ["period_kind", "period", "movement", "combo", "amount", "logos"]


def _stored_movements(config: ClghubConfig, kind: str, movement: Table) -> Subquery:
    """The ARR workflow's movements of one kind: ``account_id, period, movement, amount``."""
    month = month_index(movement.c.period_start)
    offset = config.reporting.fiscal_year_start_month - 1
    period = month if kind == "month" else (month - offset) // 3
    return (
        select(
            movement.c.account_id,
            period.label("period"),
            movement.c.kind.label("movement"),
            units(movement.c.amount).label("amount"),
        )
        .where(movement.c.period_kind == kind)
        .subquery(f"retention_{kind}_movements")
    )


def _combined(kind: str, movements: Subquery, attrs: Table) -> Select[Any]:
    """Movement totals and counts per period, movement and combination of cohort values."""
    return (
        select(
            literal(kind),
            movements.c.period,
            movements.c.movement,
            attrs.c.combo,
            func.sum(movements.c.amount),
            func.count(),
        )
        .select_from(movements.join(attrs, attrs.c.account_id == movements.c.account_id))
        .group_by(movements.c.period, movements.c.movement, attrs.c.combo)
    )


def _sums(dim: str, combos: Table, combo_values: Table) -> Select[Any]:
    """Movement totals and logo counts per kind, period and value of one dimension."""
    value = literal("all") if dim == "all" else combo_values.c[dim]
    grouped = [combos.c.period_kind, combos.c.period]
    movement = combos.c.movement
    source: Any = combos
    if dim != "all":
        grouped.append(combo_values.c[dim])
        source = combos.join(combo_values, combo_values.c.combo == combos.c.combo)
    return (
        select(
            combos.c.period_kind,
            literal(dim),
            value,
            combos.c.period,
            *(func.sum(case((movement == name, combos.c.amount), else_=0)) for name in _MOVE_SUMS),
            *(func.sum(case((movement == name, combos.c.logos), else_=0)) for name in _LOGO_SUMS),
        )
        .select_from(source)
        .group_by(*grouped)
    )


_TTM_EDGES = "ttm_edge"


def _run_edges(runs: CTE, attrs: Table, current: int) -> Select[Any]:
    """Where each trailing-twelve-months run starts adding its amount (and one
    logo) and where it stops, summed per month, movement and combination."""
    edges = union_all(
        select(
            runs.c.account_id,
            runs.c.first_month.label("m"),
            runs.c.movement,
            runs.c.amount,
            literal(1).label("logos"),
        ),
        select(
            runs.c.account_id,
            (runs.c.last_month + 1).label("m"),
            runs.c.movement,
            (-runs.c.amount).label("amount"),
            literal(-1).label("logos"),
        ).where(runs.c.last_month < current),
    ).subquery("retention_run_edges")
    return (
        select(
            literal(_TTM_EDGES),
            edges.c.m,
            edges.c.movement,
            attrs.c.combo,
            func.sum(edges.c.amount),
            func.sum(edges.c.logos),
        )
        .select_from(edges.join(attrs, attrs.c.account_id == edges.c.account_id))
        .group_by(edges.c.m, edges.c.movement, attrs.c.combo)
    )


def _running(value: Any, values: Subquery, months: Table) -> Any:
    """The running sum of ``value`` (0 where missing) per cohort value, by month."""
    return func.sum(func.coalesce(value, 0)).over(
        partition_by=(values.c.dim, values.c.value), order_by=months.c.m, rows=(None, 0)
    )


def _ttm_totals(moves: Table, months: Table) -> Select[Any]:
    """Trailing-twelve-months movement totals per cohort value and month: the
    running sums of the run edges."""
    values = (
        select(moves.c.dim, moves.c.value)
        .where(moves.c.period_kind == _TTM_EDGES)
        .distinct()
        .subquery("retention_ttm_values")
    )
    edge = moves.alias("retention_ttm_edge")
    sums = [f"{name}_units" for name in _MOVE_SUMS] + [f"{name}_logos" for name in _LOGO_SUMS]
    running = (
        select(
            values.c.dim,
            values.c.value,
            months.c.m,
            *(_running(edge.c[name], values, months).label(name) for name in sums),
        )
        .select_from(
            values.join(months, true()).outerjoin(
                edge,
                and_(
                    edge.c.period_kind == _TTM_EDGES,
                    edge.c.dim == values.c.dim,
                    edge.c.value == values.c.value,
                    edge.c.period == months.c.m,
                ),
            )
        )
        .subquery("retention_ttm_running")
    )
    return select(
        literal("ttm"),
        running.c.dim,
        running.c.value,
        running.c.m,
        *(running.c[name] for name in sums),
    ).where(or_(*(running.c[name] != 0 for name in sums)))


def _running_stock(moves: Table, months: Table) -> Select[Any]:
    """ARR and logos at every month end per cohort value: running sums of the
    monthly movements (every account starts from zero)."""
    values = (
        select(moves.c.dim, moves.c.value)
        .where(moves.c.period_kind == "month")
        .distinct()
        .subquery("retention_values")
    )
    monthly = moves.alias("retention_monthly")
    net_units = (
        monthly.c.new_units
        + monthly.c.expansion_units
        + monthly.c.reactivation_units
        - monthly.c.contraction_units
        - monthly.c.churn_units
    )
    net_logos = monthly.c.new_logos + monthly.c.reactivation_logos - monthly.c.churn_logos
    return select(
        values.c.dim,
        values.c.value,
        months.c.m,
        _running(net_units, values, months).label("arr_units"),
        _running(net_logos, values, months).label("logos"),
    ).select_from(
        values.join(months, true()).outerjoin(
            monthly,
            and_(
                monthly.c.period_kind == "month",
                monthly.c.dim == values.c.dim,
                monthly.c.value == values.c.value,
                monthly.c.period == months.c.m,
            ),
        )
    )


# --------------------------------------------------------------------------- rows


def _periods(config: ClghubConfig, as_of: date, first: int, current: int) -> list[dict[str, Any]]:
    """Every period of every kind from the first ledger month to ``as_of``."""

    def end_day(month: int) -> date:
        return as_of if month >= current else month_end(month)

    rows = []
    for m in range(first, current + 1):
        rows.append(
            {
                "period_kind": "month",
                "period": m,
                "start_point": m - 1,
                "end_point": m,
                "period_start": month_date(m),
                "period_end": end_day(m),
            }
        )
        rows.append(
            {
                "period_kind": "ttm",
                "period": m,
                "start_point": m - 12,
                "end_point": m,
                "period_start": month_date(m - 11),
                "period_end": end_day(m),
            }
        )
    fiscal = config.reporting.fiscal_year_start_month
    quarter = period_of("quarter", first, fiscal)
    while quarter.first_month <= current:
        end_point = min(quarter.last_month, current)
        rows.append(
            {
                "period_kind": "quarter",
                "period": quarter.index,
                "start_point": quarter.first_month - 1,
                "end_point": end_point,
                "period_start": quarter.start,
                "period_end": end_day(end_point) if end_point == current else quarter.end,
            }
        )
        quarter = quarter.shifted(1)
    return rows


def _rows(periods: Table, stock: Table, moves: Table, stamp: Any) -> Select[Any]:
    """Retention rows of every period kind: stocks at both ends, movements between.

    The stock has a row for every cohort value and month from the first ledger
    month on, and every period ends in that range, so each row starts from
    the stock at the period's end: all joins are on equal keys.
    """
    start = stock.alias("retention_start")
    end = stock.alias("retention_end")
    moved = moves.alias("retention_moved")

    def at(point: Any, column: str) -> Any:
        return func.coalesce(point.c[column], 0)

    def moved_sum(name: str) -> Any:
        return func.coalesce(moved.c[name], 0)

    start_units, end_units = at(start, "arr_units"), end.c.arr_units
    start_logos = at(start, "logos")
    new, reactivation = moved_sum("new_units"), moved_sum("reactivation_units")
    contraction, churn = moved_sum("contraction_units"), moved_sum("churn_units")
    churned_logos = moved_sum("churn_logos")
    base = cast(start_units, Float)
    return (
        select(
            periods.c.period_kind,
            periods.c.period_start,
            periods.c.period_end,
            end.c.dim,
            end.c.value,
            start_units,
            new,
            moved_sum("expansion_units"),
            contraction,
            churn,
            reactivation,
            end_units,
            start_logos,
            moved_sum("new_logos"),
            moved_sum("reactivation_logos"),
            churned_logos,
            end.c.logos,
            _rate(start_units, cast(end_units - new - reactivation, Float) / base),
            _rate(start_units, cast(start_units - contraction - churn, Float) / base),
            case(
                (start_logos > 0, 1.0 - cast(churned_logos, Float) / cast(start_logos, Float)),
                else_=None,
            ),
            stamp,
        )
        .select_from(
            periods.join(end, end.c.m == periods.c.end_point)
            .outerjoin(
                start,
                and_(
                    start.c.dim == end.c.dim,
                    start.c.value == end.c.value,
                    start.c.m == periods.c.start_point,
                ),
            )
            .outerjoin(
                moved,
                and_(
                    moved.c.period_kind == periods.c.period_kind,
                    moved.c.dim == end.c.dim,
                    moved.c.value == end.c.value,
                    moved.c.period == periods.c.period,
                ),
            )
        )
        .where((start_units > 0) | (end_units > 0))
    )


def _rate(start: Any, value: Any) -> Any:
    return case((start > 0, value), else_=None)


def cohort_attributes(config: ClghubConfig, as_of: date) -> Select[Any]:
    """``(account_id, segment, industry, region, acquisition_year, owner)`` as text.

    One row per account that has ever had ARR (the ledger's accounts).
    """
    account = table_of(Account)
    person = table_of(Person)
    # An account's first month with ARR is its (only) "new" monthly movement.
    movement = table_of(ArrMovement)
    firsts = (
        select(movement.c.account_id, month_index(movement.c.period_start).label("first"))
        .where(movement.c.period_kind == "month", movement.c.kind == "new")
        .subquery("cohort_first_month")
    )
    segments = account_segments(config, as_of).subquery("cohort_segment")
    # People are told apart by name; two people who share one are told apart by
    # email (else their CRM id), never by a store id, which differs per store.
    # The same name and email in two CRMs is one person, and one cohort.
    identity = func.coalesce(
        func.nullif(person.c.email, ""), person.c.source + literal(":") + person.c.source_id
    )
    people = select(
        person.c.id,
        person.c.name,
        person.c.source,
        person.c.source_id,
        identity.label("identity"),
        func.min(identity).over(partition_by=person.c.name).label("lowest"),
        func.max(identity).over(partition_by=person.c.name).label("highest"),
    ).subquery("cohort_person")
    owner = case(
        (account.c.owner_id.is_(None), literal(NONE_LABEL)),
        (people.c.id.is_(None), literal("(unknown owner)")),
        (
            or_(people.c.name.is_(None), people.c.name == ""),
            literal("person ") + people.c.source + literal(":") + people.c.source_id,
        ),
        (
            people.c.lowest != people.c.highest,
            people.c.name + literal(" (") + people.c.identity + literal(")"),
        ),
        else_=people.c.name,
    )
    return select(
        firsts.c.account_id,
        func.coalesce(segments.c.segment, literal(NONE_LABEL)).label("segment"),
        func.coalesce(func.nullif(account.c.industry, ""), literal(NONE_LABEL)).label("industry"),
        func.coalesce(func.nullif(account.c.region, ""), literal(NONE_LABEL)).label("region"),
        cast(firsts.c.first // 12, String).label("acquisition_year"),
        owner.label("owner"),
    ).select_from(
        firsts.join(account, account.c.id == firsts.c.account_id)
        .outerjoin(segments, segments.c.account_id == firsts.c.account_id)
        .outerjoin(people, people.c.id == account.c.owner_id)
    )
