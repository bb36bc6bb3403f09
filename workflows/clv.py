"""Customer lifetime value with the shifted-beta-geometric model (``clv_model``, ``clv``).

**Fit.** Renewal cohorts come from the ARR ledger. A customer is acquired in
the month of her first ARR; she has *survived* t periods (``clv.period_months``
each) while her first unbroken run of ARR months lasts through month
acquisition + t x period. Only fully elapsed periods count (up to the last
closed month): younger customers are right-censored, so each contributes the
periods it was observed for. Alpha and beta are fitted by maximum likelihood
(:func:`clghub.workflows.sbg.fit_sbg_counts`) per segment and over all
accounts ("all"). A segment with fewer than ``clv.min_cohort_accounts``
customers observed for a full period, or whose data cannot identify the model
(nobody churned, nobody renewed, a single period seen), uses the overall fit,
and its ``clv_model`` row says so (``borrowed_from = 'all'``, the reason in
``diagnostics``).

**Value.** For an account active on the valuation day, in its current run of
ARR months (a reactivated customer starts a new one):

- margin m = ARR x ``clv.gross_margin`` x period_months / 12 (one period's
  margin, exact money);
- renewals n = periods completed in the current run up to the last closed
  month (renewals already observed, so "given the renewals so far");
- d = (1 + ``clv.discount_rate``) ^ (period_months / 12) - 1 per period;
- CLV = m + m x DERL(d | alpha, beta, n) / (1 + d).

The current period's margin is counted once, undiscounted. DERL (Fader &
Hardie 2010) values the periods after it at the next renewal, so it is
discounted one period back to the start of the current period; for a
just-acquired customer (n = 0) the formula equals their E(CLV) =
m x 2F1(1, beta; alpha + beta; 1 / (1 + d)).

``clv`` rows per ``as_of`` carry the previous snapshot (the latest earlier
``as_of``) and the growth against it; an account that had CLV then and has
no ARR now gets a zero row, so its loss shows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import (
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
    exists,
    false,
    func,
    insert,
    literal,
    select,
)

from clghub.config.models import ClghubConfig
from clghub.errors import ClghubError
from clghub.store.models import table_of, utcnow
from clghub.store.revenue import ArrMonth, ArrMovement, Clv, ClvModel
from clghub.store.sqlfuncs import month_index, round_half_up
from clghub.store.types import UTCDateTime
from clghub.workflows.arr import require_ledger
from clghub.workflows.exact import ratio, scale_units, units
from clghub.workflows.periods import last_closed_month, month_date
from clghub.workflows.periods import month_index as python_month_index
from clghub.workflows.sbg import SbgFit, fit_sbg, fit_sbg_counts
from clghub.workflows.scratch import analyze, fill, scratch_table, tune_for_analytics
from clghub.workflows.segments import account_segments

__all__ = [
    "ALL_SEGMENTS",
    "ClvModelChoice",
    "SbgFit",
    "Valuation",
    "clv_at_boundaries",
    "compute",
    "fit_sbg",
    "load_models",
    "period_discount",
    "valuation_scratch",
]

log = logging.getLogger(__name__)

ALL_SEGMENTS = "all"


@dataclass(frozen=True)
class ClvModelChoice:
    """The fit one segment's accounts are valued with."""

    segment: str
    alpha: float
    beta: float
    model_segment: str
    """The segment whose data made the fit: the segment itself or "all"."""


def period_discount(config: ClghubConfig) -> float:
    """The discount rate per model period, from the yearly ``clv.discount_rate``."""
    return float((1.0 + config.clv.discount_rate) ** (config.clv.period_months / 12.0) - 1.0)


def compute(connection: Connection, config: ClghubConfig, as_of: date) -> dict[str, int | float]:
    """Fit the models and value every account as of ``as_of`` (after the ARR workflow)."""
    tune_for_analytics(connection)
    require_ledger(connection, as_of)
    now = utcnow()
    model_table = table_of(ClvModel)
    clv = table_of(Clv)
    connection.execute(delete(model_table).where(model_table.c.as_of == as_of))
    connection.execute(delete(clv).where(clv.c.as_of == as_of))

    histories = _renewal_histories(connection, config, as_of)
    rows, choices = _fit_models(config, histories)
    if not choices:
        log.warning(
            "CLV not computed: no account has been a customer for a full %d-month period yet",
            config.clv.period_months,
        )
        return {"models": 0, "clv_rows": 0}
    for row in rows:
        row.update(as_of=as_of, computed_at=now)
    connection.execute(insert(model_table), rows)

    current = python_month_index(as_of)
    with valuation_scratch(
        connection, config, choices, [(0, current, last_closed_month(as_of))], as_of
    ) as valuation:
        values = clv_at_boundaries(valuation).subquery("clv_now")
        written = _write_snapshot(connection, config, as_of, values, now)

    active = connection.execute(
        select(func.count()).where(table_of(ArrMonth).c.month == as_of.replace(day=1))
    ).scalar_one()
    if written["valued"] != active:
        raise ClghubError(
            f"CLV valued {written['valued']} of {active} active accounts; "
            "the ledger and its movements disagree (rerun the ARR workflow for this as_of)"
        )
    return {
        "models": len(rows),
        "models_borrowed": sum(1 for row in rows if row["borrowed_from"] is not None),
        "customers_fitted": histories.customers(ALL_SEGMENTS),
        "clv_rows": written["valued"] + written["lost"],
        "clv_lost": written["lost"],
        "clv_total": written["total_units"] / 10_000,
    }


# --------------------------------------------------------------------------- fitting


@dataclass
class _Histories:
    """Renewal histories per segment (and "all"): churn and censoring counts by period."""

    churned: dict[str, dict[int, int]]
    censored: dict[str, dict[int, int]]
    cohorts: dict[str, set[int]]

    def customers(self, segment: str) -> int:
        observed = sum(self.churned[segment].values())
        observed += sum(n for t, n in self.censored[segment].items() if t > 0)
        return observed


def _renewal_histories(connection: Connection, config: ClghubConfig, as_of: date) -> _Histories:
    period = config.clv.period_months
    closed = literal(last_closed_month(as_of))
    movement = table_of(ArrMovement)
    monthly = movement.c.period_kind == "month"
    month = month_index(movement.c.period_start)
    acquired = (
        select(movement.c.account_id, func.min(month).label("acquired"))
        .where(monthly, movement.c.kind == "new")
        .group_by(movement.c.account_id)
        .subquery("clv_acquired")
    )
    churned = (
        select(movement.c.account_id, func.min(month).label("churned"))
        .where(monthly, movement.c.kind == "churn")
        .group_by(movement.c.account_id)
        .subquery("clv_first_churn")
    )
    segments = account_segments(config, as_of).subquery("clv_segments")
    observed = case(
        (closed >= acquired.c.acquired, (closed - acquired.c.acquired) // period), else_=0
    )
    survived = (churned.c.churned - 1 - acquired.c.acquired) // period
    churned_in = case(
        (and_(churned.c.churned.is_not(None), survived < observed), survived + 1), else_=None
    )
    per_account = (
        select(
            segments.c.segment,
            (acquired.c.acquired // period).label("cohort"),
            churned_in.label("churned_in"),
            observed.label("observed"),
        )
        .select_from(
            acquired.join(segments, segments.c.account_id == acquired.c.account_id).outerjoin(
                churned, churned.c.account_id == acquired.c.account_id
            )
        )
        .subquery("clv_histories")
    )
    grouped = select(
        per_account.c.segment,
        per_account.c.cohort,
        per_account.c.churned_in,
        per_account.c.observed,
        func.count(),
    ).group_by(
        per_account.c.segment,
        per_account.c.cohort,
        per_account.c.churned_in,
        per_account.c.observed,
    )
    histories = _Histories(defaultdict(dict), defaultdict(dict), defaultdict(set))
    for segment, cohort, churned_in, seen, count in connection.execute(grouped):
        for key in (str(segment), ALL_SEGMENTS):
            if churned_in is not None:
                bucket, t = histories.churned[key], int(churned_in)
            else:
                bucket, t = histories.censored[key], int(seen)
            bucket[t] = bucket.get(t, 0) + int(count)
            if churned_in is not None or int(seen) > 0:
                histories.cohorts[key].add(int(cohort))
    return histories


def _fit_models(
    config: ClghubConfig, histories: _Histories
) -> tuple[list[dict[str, Any]], list[ClvModelChoice]]:
    """``clv_model`` rows and the fit each configured segment uses."""
    minimum = config.clv.min_cohort_accounts
    overall_customers = histories.customers(ALL_SEGMENTS)
    if overall_customers == 0:
        return [], []
    overall = fit_sbg_counts(histories.churned[ALL_SEGMENTS], histories.censored[ALL_SEGMENTS])
    settings = {
        "period_months": config.clv.period_months,
        "discount_rate_per_period": period_discount(config),
    }
    overall_diagnostics = overall.diagnostics() | settings
    if overall_customers < minimum:
        overall_diagnostics["warning"] = (
            f"only {overall_customers} customers observed for a full period "
            f"(clv.min_cohort_accounts = {minimum}); nothing to borrow from"
        )
    rows = [
        _model_row(ALL_SEGMENTS, overall, histories, None, overall_diagnostics),
    ]
    choices = []
    for segment in config.segments.names:
        customers = histories.customers(segment)
        diagnostics: dict[str, Any] = dict(settings)
        if customers >= minimum:
            fit = fit_sbg_counts(histories.churned[segment], histories.censored[segment])
            if fit.warning is None:
                rows.append(_model_row(segment, fit, histories, None, fit.diagnostics() | settings))
                choices.append(ClvModelChoice(segment, fit.alpha, fit.beta, segment))
                continue
            diagnostics["own_fit"] = fit.diagnostics()
            diagnostics["borrowed"] = f"{fit.warning}: the overall fit is used"
        else:
            diagnostics["borrowed"] = (
                f"{customers} customers observed for a full period, fewer than "
                f"clv.min_cohort_accounts = {minimum}: the overall fit is used"
            )
        rows.append(_model_row(segment, overall, histories, ALL_SEGMENTS, diagnostics))
        choices.append(ClvModelChoice(segment, overall.alpha, overall.beta, ALL_SEGMENTS))
    return rows, choices


def _model_row(
    segment: str,
    fit: SbgFit,
    histories: _Histories,
    borrowed_from: str | None,
    diagnostics: dict[str, Any],
) -> dict[str, Any]:
    return {
        "segment": segment,
        "alpha": fit.alpha,
        "beta": fit.beta,
        "cohorts": len(histories.cohorts[segment]),
        "accounts": histories.customers(segment),
        "log_likelihood": None if borrowed_from else fit.log_likelihood,
        "borrowed_from": borrowed_from,
        "diagnostics": diagnostics,
    }


def load_models(connection: Connection, as_of: date) -> list[ClvModelChoice]:
    """The fits stored for ``as_of`` (one per configured segment; "all" left out)."""
    table = table_of(ClvModel)
    rows = connection.execute(
        select(table.c.segment, table.c.alpha, table.c.beta, table.c.borrowed_from).where(
            table.c.as_of == as_of, table.c.segment != ALL_SEGMENTS
        )
    ).all()
    return [
        ClvModelChoice(str(s), float(a), float(b), str(borrowed or s)) for s, a, b, borrowed in rows
    ]


# --------------------------------------------------------------------------- valuing


class Valuation(NamedTuple):
    """The scratch tables :func:`clv_at_boundaries` reads."""

    valued: Table
    """Per valuation day and active account: segment, ARR, margin and renewals."""
    factors: Table
    """DERL per segment and renewals."""


@contextmanager
def valuation_scratch(
    connection: Connection,
    config: ClghubConfig,
    choices: list[ClvModelChoice],
    boundaries: list[tuple[int, int, int]],
    as_of: date,
) -> Iterator[Valuation]:
    """Scratch tables of the accounts valued on each day and of DERL per
    (segment, renewals).

    ``boundaries`` are ``(boundary id, month index valued, last closed month)``:
    the ARR of the month valued, renewals counted up to the last closed month.
    Accounts are valued in their segment of ``as_of``.
    """
    with (
        scratch_table(
            connection,
            "tmp_clv_boundaries",
            Column("boundary", Integer, nullable=False),
            Column("month_date", Date, nullable=False),
            Column("closed_month", Integer, nullable=False),
        ) as boundary_table,
        scratch_table(
            connection,
            "tmp_clv_factors",
            Column("segment", String(64), nullable=False),
            Column("renewals", Integer, nullable=False),
            Column("model_segment", String(64), nullable=False),
            Column("derl", Float, nullable=False),
            Column("residual", Float, nullable=False),
            index=("segment", "renewals"),
        ) as factor_table,
        scratch_table(
            connection,
            "tmp_clv_valued",
            Column("boundary", Integer, nullable=False),
            Column("account_id", Integer, nullable=False),
            Column("segment", String(64), nullable=False),
            Column("arr_units", BigInteger, nullable=False),
            Column("margin_units", BigInteger, nullable=False),
            Column("renewals", Integer, nullable=False),
        ) as valued_table,
    ):
        connection.execute(
            insert(boundary_table),
            [
                {"boundary": b, "month_date": month_date(month), "closed_month": closed}
                for b, month, closed in boundaries
            ],
        )
        latest = max(month for _, month, _ in boundaries)
        first_day: date | None = connection.execute(
            select(func.min(table_of(ArrMonth).c.month))
        ).scalar()
        first = latest if first_day is None else python_month_index(first_day)
        most = max(0, (latest - first) // config.clv.period_months)
        discount = period_discount(config)
        rows = []
        for choice in choices:
            fit = SbgFit.from_parameters(choice.alpha, choice.beta)
            for renewals in range(most + 1):
                derl = fit.derl(discount, renewals)
                rows.append(
                    {
                        "segment": choice.segment,
                        "renewals": renewals,
                        "model_segment": choice.model_segment,
                        "derl": derl,
                        "residual": derl / (1.0 + discount),
                    }
                )
        if rows:
            connection.execute(insert(factor_table), rows)
        analyze(connection, boundary_table)
        analyze(connection, factor_table)
        # Stored and analyzed: segments and renewals are computed keys, which
        # no planner can estimate the join with the factors on.
        fill(connection, valued_table, _valued(config, boundary_table, as_of))
        yield Valuation(valued_table, factor_table)


def _valued(config: ClghubConfig, boundaries: Table, as_of: date) -> Select[Any]:
    """Every account active on each valuation day, with its segment, ARR, margin
    and renewals so far.

    Renewals so far are whole periods from the start of the account's current
    run of ARR months (its latest arrival, new or reactivation, on or before
    the day) to the day's last closed month.
    """
    period = config.clv.period_months
    arr_month = table_of(ArrMonth)
    movement = table_of(ArrMovement)
    segments = account_segments(config, as_of).subquery("clv_segments")
    arr_units = units(arr_month.c.arr)
    started = (
        select(
            boundaries.c.boundary,
            boundaries.c.closed_month,
            arr_month.c.account_id,
            arr_units.label("arr_units"),
            func.max(month_index(movement.c.period_start)).label("spell_start"),
        )
        .select_from(
            boundaries.join(arr_month, arr_month.c.month == boundaries.c.month_date).join(
                movement,
                and_(
                    movement.c.account_id == arr_month.c.account_id,
                    movement.c.period_kind == "month",
                    movement.c.kind.in_(("new", "reactivation")),
                    movement.c.period_start <= boundaries.c.month_date,
                ),
            )
        )
        .group_by(
            boundaries.c.boundary,
            boundaries.c.closed_month,
            arr_month.c.account_id,
            arr_units,
        )
        .subquery("clv_spell_starts")
    )
    renewals = case(
        (
            started.c.closed_month > started.c.spell_start,
            (started.c.closed_month - started.c.spell_start) // period,
        ),
        else_=0,
    )
    margin_ratio = ratio(config.clv.gross_margin, what="clv.gross_margin") * Fraction(period, 12)
    return select(
        started.c.boundary,
        started.c.account_id,
        segments.c.segment,
        started.c.arr_units,
        scale_units(started.c.arr_units, margin_ratio).label("margin_units"),
        renewals.label("renewals"),
    ).select_from(started.join(segments, segments.c.account_id == started.c.account_id))


def clv_at_boundaries(valuation: Valuation) -> Select[Any]:
    """CLV of every account active at each valuation day.

    Columns: ``boundary``, ``account_id``, ``segment``, ``model_segment``,
    ``arr_units``, ``margin_units``, ``renewals``, ``derl``, ``clv_units``.
    Segments are ``as_of``'s (see :func:`valuation_scratch`) for every day.
    """
    valued, factors = valuation
    return select(
        valued.c.boundary,
        valued.c.account_id,
        valued.c.segment,
        factors.c.model_segment,
        valued.c.arr_units,
        valued.c.margin_units,
        valued.c.renewals,
        factors.c.derl,
        (
            valued.c.margin_units
            + round_half_up(cast(valued.c.margin_units, Float) * factors.c.residual)
        ).label("clv_units"),
    ).select_from(
        valued.join(
            factors,
            and_(factors.c.segment == valued.c.segment, factors.c.renewals == valued.c.renewals),
        )
    )


def _write_snapshot(
    connection: Connection, config: ClghubConfig, as_of: date, values: Subquery, now: datetime
) -> dict[str, int]:
    clv = table_of(Clv)
    previous_day = connection.execute(
        select(func.max(clv.c.as_of)).where(clv.c.as_of < as_of)
    ).scalar_one()
    # No earlier snapshot: an empty set the planner sees as empty (a test for
    # a NULL day would scan the table being written once per row written).
    on_previous_day = clv.c.as_of == previous_day if previous_day is not None else false()
    previous = (
        select(clv.c.account_id, units(clv.c.clv).label("clv_units"))
        .where(on_previous_day)
        .subquery("clv_previous")
    )
    stamp = literal(now, UTCDateTime())
    day = literal(as_of)
    growth = values.c.clv_units - previous.c.clv_units
    columns = [
        "account_id",
        "as_of",
        "segment",
        "model_segment",
        "arr",
        "margin",
        "renewals",
        "derl",
        "clv",
        "clv_previous",
        "clv_growth",
        "clv_growth_pct",
        "computed_at",
    ]
    connection.execute(
        clv.insert().from_select(
            columns,
            select(
                values.c.account_id,
                day,
                values.c.segment,
                values.c.model_segment,
                values.c.arr_units,
                values.c.margin_units,
                values.c.renewals,
                values.c.derl,
                values.c.clv_units,
                previous.c.clv_units,
                growth,
                case(
                    (
                        previous.c.clv_units > 0,
                        cast(growth, Float) / cast(previous.c.clv_units, Float),
                    ),
                    else_=None,
                ),
                stamp,
            ).select_from(values.outerjoin(previous, previous.c.account_id == values.c.account_id)),
        )
    )
    segments = account_segments(config, as_of).subquery("clv_lost_segments")
    current = clv.alias("clv_current")
    lost_rows = (
        select(
            previous.c.account_id,
            day,
            segments.c.segment,
            literal(None, String),
            literal(0, BigInteger),
            literal(0, BigInteger),
            literal(0),
            literal(0.0),
            literal(0, BigInteger),
            previous.c.clv_units,
            -previous.c.clv_units,
            literal(-1.0),
            stamp,
        )
        .select_from(previous.outerjoin(segments, segments.c.account_id == previous.c.account_id))
        .where(
            previous.c.clv_units > 0,
            ~exists().where(
                current.c.as_of == as_of, current.c.account_id == previous.c.account_id
            ),
        )
    )
    connection.execute(clv.insert().from_select(columns, lost_rows))
    valued, lost, total = connection.execute(
        select(
            func.count().filter(units(clv.c.arr) > 0),
            func.count().filter(units(clv.c.arr) == 0),
            func.coalesce(func.sum(units(clv.c.clv)), 0),
        ).where(clv.c.as_of == as_of)
    ).one()
    return {"valued": int(valued), "lost": int(lost), "total_units": int(total)}
