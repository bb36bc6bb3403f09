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
account and year), never by comparing every month of the ledger: monthly
movements from the change points, quarterly ones in the quarters that had a
monthly one, trailing-twelve-months ones as runs of months between the change
points and the change points a year later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Subquery,
    and_,
    case,
    func,
    literal,
    null,
    select,
    union,
)

from clghub.config.models import ClghubConfig
from clghub.store.models import table_of
from clghub.store.revenue import ArrMonth
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

    def monthly_movements(self, points: FromClause) -> Select[Any]:
        """Every account's monthly movement.

        ``points`` has ``(account_id, m, arr_units)``: the account's ARR from
        month m on, at every month where it may change (where an ARR stretch
        starts, or the month after one ends), and it holds until the next
        such month. So the ARR before m is the previous point's, and only
        those months are compared, not every month of the ledger.

        Columns: ``account_id``, ``period``, ``period_start`` (date),
        ``movement``, ``start_units``, ``end_units``, ``amount``.
        """
        by_account, in_order = points.c.account_id, points.c.m
        compared = (
            select(
                points.c.account_id,
                points.c.m,
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
            )
            .where(points.c.m <= self.current_month)
            .subquery("bridge_month_compared")
        )
        start_units, end_units = compared.c.prev_units, compared.c.arr_units
        movement = case(
            (
                (start_units == 0) & (end_units > 0),
                case((compared.c.best_before > 0, literal("reactivation")), else_=literal("new")),
            ),
            ((start_units > 0) & (end_units == 0), literal("churn")),
            (end_units > start_units, literal("expansion")),
            (end_units < start_units, literal("contraction")),
            else_=null(),
        )
        classified = select(
            compared.c.account_id,
            compared.c.m.label("period"),
            month_start(compared.c.m).label("period_start"),
            movement.label("movement"),
            start_units.label("start_units"),
            end_units.label("end_units"),
            func.abs(end_units - start_units).label("amount"),
        ).subquery("bridge_month_classified")
        return select(classified).where(classified.c.movement.is_not(None))

    def quarterly_movements(self, monthly: FromClause) -> Select[Any]:
        """Every account's movement per fiscal quarter, from the monthly ones.

        ``monthly`` has ``(account_id, period_start)`` of the monthly
        movements: a quarter's end can only differ from the previous quarter's
        in a quarter with a monthly movement.
        """
        quarter = (month_index(monthly.c.period_start) - self.offset) // 3
        candidates = (
            select(monthly.c.account_id, quarter.label("period"))
            .distinct()
            .subquery("bridge_quarter_candidates")
        )
        first_month = candidates.c.period * 3 + self.offset
        last_month = first_month + 2
        end_month = case(
            (last_month > self.current_month, literal(self.current_month)), else_=last_month
        )
        return self._classified(candidates, first_month - 1, end_month, first_month)

    def _classified(
        self,
        candidates: Subquery,
        start_month: ColumnElement[Any],
        end_month: ColumnElement[Any],
        first_month: ColumnElement[Any],
    ) -> Select[Any]:
        """The movement of each ``(account_id, period)`` between the ARR at the end
        of ``start_month`` and at the end of ``end_month`` (month indexes).

        Columns: ``account_id``, ``period``, ``period_start`` (date),
        ``movement``, ``start_units``, ``end_units``, ``amount``.
        """
        arr_month = table_of(ArrMonth)
        start = arr_month.alias("bridge_start")
        end = arr_month.alias("bridge_end")
        firsts = self._first_months()
        start_day = month_start(start_month)
        start_units = func.coalesce(units(start.c.arr), literal(0))
        end_units = func.coalesce(units(end.c.arr), literal(0))
        movement = case(
            (
                (start_units == 0) & (end_units > 0),
                case((firsts.c.first_active <= start_day, literal("reactivation")), else_="new"),
            ),
            ((start_units > 0) & (end_units == 0), literal("churn")),
            (end_units > start_units, literal("expansion")),
            (end_units < start_units, literal("contraction")),
            else_=null(),
        )
        compared = (
            select(
                candidates.c.account_id,
                candidates.c.period,
                month_start(first_month).label("period_start"),
                movement.label("movement"),
                start_units.label("start_units"),
                end_units.label("end_units"),
                func.abs(end_units - start_units).label("amount"),
            )
            .select_from(
                candidates.join(firsts, firsts.c.account_id == candidates.c.account_id)
                .outerjoin(
                    start,
                    and_(start.c.account_id == candidates.c.account_id, start.c.month == start_day),
                )
                .outerjoin(
                    end,
                    and_(
                        end.c.account_id == candidates.c.account_id,
                        end.c.month == month_start(end_month),
                    ),
                )
            )
            .subquery("bridge_compared")
        )
        return select(compared).where(compared.c.movement.is_not(None))

    def _first_months(self) -> Subquery:
        """Each account's first month with ARR (the ledger's own order: an index scan)."""
        arr_month = table_of(ArrMonth)
        return (
            select(arr_month.c.account_id, func.min(arr_month.c.month).label("first_active"))
            .group_by(arr_month.c.account_id)
            .subquery("bridge_first_month")
        )

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
