"""Each account's ARR bridge movements per month, fiscal quarter and trailing year.

A period's *start* is the end of the month before it (for a trailing twelve
months ending with month M, the end of month M - 12); its *end* is its last
month, or ``as_of`` for the period still open. Per account:

- 0 -> above 0, never active before the start: ``new``
- 0 -> above 0, active at some month end before the start: ``reactivation``
- up: ``expansion``; down but above 0: ``contraction``; above 0 -> 0: ``churn``

so that, for every period and any set of accounts,
start + new + expansion + reactivation - contraction - churn = end.
Movements inside a period net out: an account that joins and leaves within
one quarter has no quarterly movement (the monthly bridge shows both).

ARR only changes in the months where a contract stretch starts or the month
after one ends, so movements are computed at those *change points* (a few per
account and year), never by comparing every month of the ledger: monthly and
quarterly movements from the change points in the period (the ARR before the
first, the ARR of the last), trailing-twelve-months ones as runs of months
between the change points and the change points a year later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import (
    FromClause,
    Select,
    and_,
    case,
    func,
    literal,
    null,
    or_,
    select,
    union,
)

from clghub.config.models import ClghubConfig
from clghub.store.sqlfuncs import month_index, month_start
from clghub.workflows.exact import units
from clghub.workflows.periods import month_index as python_month_index

__all__ = ["MOVEMENTS", "BridgeKind", "BridgeQueries"]

BridgeKind = Literal["month", "quarter", "ttm"]
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation")


@dataclass(frozen=True)
class BridgeQueries:
    config: ClghubConfig
    as_of: date

    @property
    def current_month(self) -> int:
        return python_month_index(self.as_of)

    @property
    def offset(self) -> int:
        """The fiscal year's first month, as an offset from January."""
        return self.config.reporting.fiscal_year_start_month - 1

    # ----------------------------------------------------------------- months, quarters

    def movements(self, points: FromClause, kind: Literal["month", "quarter"]) -> Select[Any]:
        """Every account's movement per month or fiscal quarter.

        ``points`` has ``(account_id, m, arr_units)``: the account's ARR from
        month m on, at every month where it may change (where an ARR stretch
        starts, or the month after one ends), and it holds until the next
        such month. So a period's start ARR is the one before its first
        point, its end ARR that of its last point (the period's end, or
        ``as_of`` for the open one), and only the periods with a point can
        move: no month of the ledger is read, and a quarter is no more work
        than a month.

        Columns: ``account_id``, ``period``, ``period_start`` (date),
        ``movement``, ``start_units``, ``end_units``, ``amount``.
        """
        length, offset = (1, 0) if kind == "month" else (3, self.offset)
        # Month indexes are far above the offset: the division never truncates
        # a negative number.
        period = (points.c.m - offset) // length if length > 1 else points.c.m
        by_account, in_order = points.c.account_id, points.c.m
        compared = (
            select(
                points.c.account_id,
                period.label("period"),
                points.c.arr_units,
                func.coalesce(
                    func.lag(points.c.arr_units).over(partition_by=by_account, order_by=in_order),
                    0,
                ).label("prev_units"),
                func.coalesce(
                    func.max(points.c.arr_units).over(
                        partition_by=by_account, order_by=in_order, rows=(None, -1)
                    ),
                    0,
                ).label("best_before"),
                func.lag(period)
                .over(partition_by=by_account, order_by=in_order)
                .label("prev_period"),
                func.lead(period)
                .over(partition_by=by_account, order_by=in_order)
                .label("next_period"),
            )
            .where(points.c.m <= self.current_month)
            .subquery(f"bridge_{kind}_compared")
        )
        c = compared.c
        if length == 1:
            # One point per account and month: each point is a whole period.
            per_period = select(
                c.account_id,
                c.period,
                c.prev_units.label("start_units"),
                c.arr_units.label("end_units"),
                c.best_before,
            ).subquery(f"bridge_{kind}_periods")
        else:
            first = or_(c.prev_period.is_(None), c.prev_period != c.period)
            last = or_(c.next_period.is_(None), c.next_period != c.period)
            per_period = (
                select(
                    c.account_id,
                    c.period,
                    func.max(case((first, c.prev_units))).label("start_units"),
                    func.max(case((last, c.arr_units))).label("end_units"),
                    func.max(case((first, c.best_before))).label("best_before"),
                )
                .group_by(c.account_id, c.period)
                .subquery(f"bridge_{kind}_periods")
            )
        p = per_period.c
        start_units, end_units = p.start_units, p.end_units
        movement = case(
            (
                (start_units == 0) & (end_units > 0),
                case((p.best_before > 0, literal("reactivation")), else_=literal("new")),
            ),
            ((start_units > 0) & (end_units == 0), literal("churn")),
            (end_units > start_units, literal("expansion")),
            (end_units < start_units, literal("contraction")),
            else_=null(),
        )
        classified = select(
            p.account_id,
            p.period,
            month_start(p.period * length + offset).label("period_start"),
            movement.label("movement"),
            start_units.label("start_units"),
            end_units.label("end_units"),
            func.abs(end_units - start_units).label("amount"),
        ).subquery(f"bridge_{kind}_classified")
        return select(classified).where(classified.c.movement.is_not(None))

    # ----------------------------------------------------------------- trailing twelve months

    def spans(self, stored: FromClause) -> Select[Any]:
        """``(account_id, first_month, last_month, arr_units)``: runs of months with
        one ARR above zero, read off the stored monthly movements (the ARR after
        a movement holds until the account's next one)."""
        month = month_index(stored.c.period_start)
        following = func.lead(month).over(
            partition_by=stored.c.account_id, order_by=stored.c.period_start
        )
        runs = (
            select(
                stored.c.account_id,
                month.label("first_month"),
                func.coalesce(following - 1, self.current_month).label("last_month"),
                units(stored.c.end_arr).label("arr_units"),
            )
            .where(stored.c.period_kind == "month")
            .subquery("bridge_runs")
        )
        return select(runs).where(runs.c.arr_units > 0)

    def ttm_intervals(self, spans: FromClause) -> Select[Any]:
        """Each account's trailing-twelve-months movement, as runs of months.

        The TTM ending with month M compares the ARR at M with the ARR at
        M - 12; both only change where a span starts or ends, twelve months
        later for the second. Between two such months the movement is the
        same, so it is computed once per run: ``account_id``, ``first_month``,
        ``last_month`` (the months M the run covers), ``movement`` and
        ``amount``.
        """
        current = self.current_month
        starts, ends = spans.c.first_month, spans.c.last_month + 1
        breaks = union(
            select(spans.c.account_id, starts.label("m")),
            select(spans.c.account_id, ends.label("m")).where(ends <= current),
            select(spans.c.account_id, (starts + 12).label("m")).where(starts + 12 <= current),
            select(spans.c.account_id, (ends + 12).label("m")).where(ends + 12 <= current),
        ).subquery("ttm_breaks")
        end = spans.alias("ttm_end")
        prior = spans.alias("ttm_prior")
        firsts = (
            select(spans.c.account_id, func.min(spans.c.first_month).label("first_active"))
            .group_by(spans.c.account_id)
            .subquery("ttm_first")
        )
        year_before = breaks.c.m - 12
        start_units = func.coalesce(prior.c.arr_units, literal(0))
        end_units = func.coalesce(end.c.arr_units, literal(0))
        movement = case(
            (
                (start_units == 0) & (end_units > 0),
                case(
                    (firsts.c.first_active <= year_before, literal("reactivation")),
                    else_=literal("new"),
                ),
            ),
            ((start_units > 0) & (end_units == 0), literal("churn")),
            (end_units > start_units, literal("expansion")),
            (end_units < start_units, literal("contraction")),
            else_=null(),
        )
        following = func.lead(breaks.c.m).over(
            partition_by=breaks.c.account_id, order_by=breaks.c.m
        )
        runs = (
            select(
                breaks.c.account_id,
                breaks.c.m.label("first_month"),
                func.coalesce(following - 1, current).label("last_month"),
                movement.label("movement"),
                func.abs(end_units - start_units).label("amount"),
            )
            .select_from(
                breaks.join(firsts, firsts.c.account_id == breaks.c.account_id)
                .outerjoin(
                    end,
                    and_(
                        end.c.account_id == breaks.c.account_id,
                        end.c.first_month <= breaks.c.m,
                        end.c.last_month >= breaks.c.m,
                    ),
                )
                .outerjoin(
                    prior,
                    and_(
                        prior.c.account_id == breaks.c.account_id,
                        prior.c.first_month <= year_before,
                        prior.c.last_month >= year_before,
                    ),
                )
            )
            .subquery("ttm_runs")
        )
        return select(runs).where(runs.c.movement.is_not(None))
