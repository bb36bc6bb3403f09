"""Value score per account: drivers normalized, weighted, banded, trended and explained.

One run writes the dated snapshot for ``as_of``, replacing an earlier run's
rows for that day. Set-based, in stages kept in temporary tables (each stage
reads the one before it several times; stored, nothing is computed twice):
customers and their usage totals, the driver inputs, the raw drivers, the
normalized drivers; then the two snapshot tables:

1. ``value_driver``: every driver of every scored customer: the raw value
   (see :mod:`clghub.workflows.value_drivers`), its 0-100 score and its
   weight before and after redistribution.
2. ``value_score``: the weighted average of the driver scores an account
   has, its band, its 30- and 90-day trend and a plain-text explanation
   (:mod:`clghub.workflows.value_explain`).

Normalization, per segment and driver (``value_score.drivers`` merged with
the segment's overrides):

- ``linear``: 100 x (raw - worst) / (best - worst), clamped to 0-100. A
  ``best`` below ``worst`` means lower is better.
- ``percentile``: the account's place among the segment's accounts with a
  value for the driver: the highest value scores 100 and the lowest 0
  (however many accounts share them: every account without a ticket has
  the best support friction), and a value in between the share of peers
  below it, ties sharing the middle of their ranks:
  100 x ((rank - 1) + (rank of the last tie - 1)) / 2 / (n - 1). For the
  drivers where lower is better (time to value, days since an executive
  meeting, support friction) the scale is turned over. When every account
  in the segment has the same value (or only one has a value) there is no
  ranking: the driver is missing and its weight goes to the others.

Raw values are rounded to 6 decimals before ranking, so floating-point noise
cannot order equal values differently on two backends; driver scores are
stored with 2 decimals, the score with 1, and weights are summed as integer
millionths, so the weighted average is exact and the same everywhere.

The score is the weighted average over the drivers the account has a score
for (weights redistributed over them). An account without any gets no score
rather than 0, and so does one whose drivers with data carry less than
``value_score.min_coverage`` of its scorecard's weight: "no support tickets"
alone is no reason to call a customer green. Trends compare with the
account's latest snapshot on or before ``as_of`` - 30 (- 90), looking back
at most another 30 (90) days.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    CompoundSelect,
    Connection,
    Float,
    Integer,
    Row,
    Select,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.sql.expression import ColumnElement, Subquery

from clghub.config.models import ClghubConfig
from clghub.store.models import table_of, utcnow
from clghub.store.sqlfuncs import json_object_agg, round_half_away
from clghub.store.value import ValueDriver, ValueScore
from clghub.workflows.materialize import temporary_result
from clghub.workflows.read_ahead import usage_query
from clghub.workflows.sql_numbers import rounded
from clghub.workflows.value_drivers import (
    DRIVERS,
    LOWER_IS_BETTER,
    current_customers,
    driver_formulas,
    driver_inputs,
)
from clghub.workflows.value_explain import explanations

__all__ = [
    "TREND_LOOKBACK",
    "band_expression",
    "compute",
    "previous_snapshot",
    "weight_units",
]

# For each trend length, how much further back a snapshot may be and still count.
TREND_LOOKBACK: dict[int, int] = {30: 30, 90: 90}
_RAW_DIGITS = 6
_SCORE_DIGITS = 2
_WEIGHT_SCALE = 1_000_000


def _scorecard(config: ClghubConfig) -> Subquery:
    """segment, driver, ord, weight, method, best, worst, lower: one row per segment and driver."""
    rows = []
    for segment in config.segments.names:
        drivers, _bands = config.scorecard(segment)
        for order, name in enumerate(DRIVERS):
            driver = drivers.get(name)
            weight = driver.weight if driver is not None else 0.0
            method = driver.normalize if driver is not None else "linear"
            best = driver.best if driver is not None else None
            worst = driver.worst if driver is not None else None
            rows.append(
                select(
                    literal(segment).label("segment"),
                    literal(name).label("driver"),
                    cast(literal(order), Integer).label("ord"),
                    cast(literal(weight), Float).label("weight"),
                    literal(method).label("method"),
                    cast(literal(best) if best is not None else null(), Float).label("best"),
                    cast(literal(worst) if worst is not None else null(), Float).label("worst"),
                    cast(literal(1 if name in LOWER_IS_BETTER else 0), Integer).label("lower"),
                )
            )
    return union_all(*rows).subquery("scorecard")


def _clamp(value: ColumnElement[Any], low: float, high: float) -> ColumnElement[Any]:
    return case((value < low, literal(low)), (value > high, literal(high)), else_=value)


def _raw_rows(config: ClghubConfig, as_of: date, inputs: Table) -> Select[Any]:
    """One row per customer and driver: the raw value and the segment's settings for it."""
    card = _scorecard(config)
    formulas = driver_formulas(config, as_of, inputs)
    raw = rounded(case({d: formulas[d] for d in DRIVERS}, value=card.c.driver), _RAW_DIGITS)
    return select(
        inputs.c.account_id,
        inputs.c.segment,
        card.c.driver,
        card.c.weight,
        card.c.method,
        card.c.best,
        card.c.worst,
        card.c.lower,
        raw.label("raw"),
    ).select_from(inputs.join(card, card.c.segment == inputs.c.segment))


def _normalized(raw_rows: CTE) -> CompoundSelect[Any]:
    """``account_id, segment, driver, raw, score, weight``: every driver of every
    customer, normalized.

    Reads the raw values from a materialized common table expression: inlined,
    every reference to ``raw`` below would recompute its formula.
    """

    def rows(method: str, name: str) -> Subquery:
        return select(raw_rows).where(raw_rows.c.method == method).subquery(name)

    bounded = rows("linear", "linear_rows")
    linear = _clamp(
        (bounded.c.raw - bounded.c.worst) * 100.0 / (bounded.c.best - bounded.c.worst), 0.0, 100.0
    )
    linear_part = select(
        bounded.c.account_id,
        bounded.c.segment,
        bounded.c.driver,
        bounded.c.raw,
        rounded(linear, _SCORE_DIGITS).label("score"),
        bounded.c.weight,
    )

    # Only the percentile drivers are ranked: no sort for the others.
    ranked = rows("percentile", "percentile_rows")
    segment_driver = [ranked.c.segment, ranked.c.driver]
    peers = [ranked.c.segment, ranked.c.driver, ranked.c.raw.is_(None)]
    with_value = func.count(ranked.c.raw).over(partition_by=segment_driver)
    lowest = func.min(ranked.c.raw).over(partition_by=segment_driver)
    highest = func.max(ranked.c.raw).over(partition_by=segment_driver)
    rank = func.rank().over(partition_by=peers, order_by=ranked.c.raw)
    last_tie = func.count().over(partition_by=peers, order_by=ranked.c.raw)
    # Share of the peers below, in percent; ties share the middle of their ranks,
    # except at the ends: the highest value is 100 and the lowest 0 however many share it.
    above = case(
        (ranked.c.raw == highest, literal(100.0)),
        (ranked.c.raw == lowest, literal(0.0)),
        else_=cast((rank - 1) + (last_tie - 1), Float) * 100.0 / (2.0 * (with_value - 1)),
    )
    percentile = case(
        (ranked.c.raw.is_(None), null()),
        (lowest == highest, null()),  # one value (or one account): no ranking to speak of
        (ranked.c.lower == 1, 100.0 - above),
        else_=above,
    )
    percentile_part = select(
        ranked.c.account_id,
        ranked.c.segment,
        ranked.c.driver,
        ranked.c.raw,
        rounded(percentile, _SCORE_DIGITS).label("score"),
        ranked.c.weight,
    )
    return linear_part.union_all(percentile_part)


def _driver_rows(config: ClghubConfig, as_of: date, inputs: Table) -> Select[Any]:
    """Every scored customer's drivers: ``account_id, segment, driver, raw, score,
    weight, effective_weight`` (normalized, weights redistributed).

    One statement from the stored inputs: the raw values are computed once
    (a materialized common table expression), and each account's weight
    totals are window sums over its rows rather than a second pass joined back.
    """
    raw_rows = _raw_rows(config, as_of, inputs).cte("value_raw").prefix_with("MATERIALIZED")
    normalized = _normalized(raw_rows).subquery("value_normalized")
    n = normalized.c
    present = and_(n.score.is_not(None), n.weight > 0)
    units = weight_units(n.weight)
    present_units = case((present, units), else_=literal(0))
    # PostgreSQL sums BIGINTs into NUMERIC; back to BIGINT for integer division.
    weighted = select(
        n.account_id,
        n.segment,
        n.driver,
        n.raw,
        n.score,
        n.weight,
        present_units.label("present_units"),
        cast(func.sum(present_units).over(partition_by=n.account_id), BigInteger).label(
            "total_units"
        ),
        cast(func.sum(units).over(partition_by=n.account_id), BigInteger).label("all_units"),
    ).subquery("value_weighted")
    w = weighted.c
    coverage = round(config.value_score.min_coverage * _WEIGHT_SCALE)
    # present / total rounded half up at the 6th decimal, in integers.
    millionths = (w.present_units * (2 * _WEIGHT_SCALE) + w.total_units) // (w.total_units * 2)
    return select(
        w.account_id,
        w.segment,
        w.driver,
        w.raw,
        w.score,
        w.weight,
        (cast(millionths, Float) / float(_WEIGHT_SCALE)).label("effective_weight"),
    ).where(
        w.total_units > 0,
        w.total_units * _WEIGHT_SCALE >= w.all_units * coverage,
    )


def weight_units(weight: ColumnElement[Any]) -> ColumnElement[int]:
    """A driver weight as an integer number of millionths.

    Sums of float weights depend on the order a backend adds them in; sums
    of integers do not, so weighted averages are exact and identical.
    """
    return round_half_away(weight * float(_WEIGHT_SCALE))


def band_expression(config: ClghubConfig, segment: Any, score: Any) -> ColumnElement[str]:
    """green, yellow or red from the segment's bands."""
    greens = {name: config.scorecard(name)[1].green for name in config.segments.names}
    yellows = {name: config.scorecard(name)[1].yellow for name in config.segments.names}
    base = config.value_score.bands
    green = case(greens, value=segment, else_=literal(base.green))
    yellow = case(yellows, value=segment, else_=literal(base.yellow))
    return case((score >= green, "green"), (score >= yellow, "yellow"), else_="red")


def previous_snapshot(as_of: date, days: int) -> Subquery:
    """``account_id, prev_as_of``: each account's latest snapshot ``days`` or more before."""
    score = table_of(ValueScore).alias(f"prev_{days}")
    newest = as_of - timedelta(days=days)
    oldest = newest - timedelta(days=TREND_LOOKBACK[days])
    return (
        select(score.c.account_id, func.max(score.c.as_of).label("prev_as_of"))
        .where(score.c.as_of <= newest, score.c.as_of > oldest)
        .group_by(score.c.account_id)
        .subquery(f"previous_{days}")
    )


def _previous_scores(as_of: date, days: int) -> Select[Any]:
    """``account_id, prev_as_of, score``: the snapshot each account's trend over
    ``days`` compares with (see :func:`previous_snapshot`)."""
    previous = previous_snapshot(as_of, days)
    score = table_of(ValueScore).alias(f"earlier_{days}")
    return select(previous.c.account_id, previous.c.prev_as_of, score.c.score).select_from(
        previous.join(
            score,
            and_(
                score.c.account_id == previous.c.account_id, score.c.as_of == previous.c.prev_as_of
            ),
        )
    )


def _drivers_before(previous: Table) -> Select[Any]:
    """``account_id, driver, raw, score, prev_as_of``: the drivers of the snapshots in
    ``previous`` (:func:`_previous_scores`), which explanations compare with."""
    driver = table_of(ValueDriver).alias("before")
    return select(
        driver.c.account_id, driver.c.driver, driver.c.raw, driver.c.score, previous.c.prev_as_of
    ).select_from(
        previous.join(
            driver,
            and_(
                driver.c.account_id == previous.c.account_id,
                driver.c.as_of == previous.c.prev_as_of,
            ),
        )
    )


def _has_snapshot(connection: Connection, as_of: date, days: int) -> bool:
    """Whether any snapshot lies in the window a trend over ``days`` looks in."""
    score = table_of(ValueScore)
    newest = as_of - timedelta(days=days)
    oldest = newest - timedelta(days=TREND_LOOKBACK[days])
    found = connection.execute(
        select(score.c.as_of).where(score.c.as_of <= newest, score.c.as_of > oldest).limit(1)
    ).first()
    return found is not None


def _score_rows(
    config: ClghubConfig,
    as_of: date,
    drivers: Table,
    previous: dict[int, Table | None],
    before: Table | None,
) -> Select[Any]:
    """The rows of ``value_score`` from this run's drivers (:func:`_driver_rows`, stored),
    the earlier scores trends compare with (:func:`_previous_scores`, stored; ``None``
    for a trend without any) and the drivers explanations compare with."""
    driver = drivers
    score_table = table_of(ValueScore)
    present = driver.c.effective_weight > 0
    units = weight_units(driver.c.weight)
    # Scores are stored with two decimals: exact integers of hundredths.
    points = cast(
        func.sum(case((present, units * round_half_away(driver.c.score * 100.0)))), BigInteger
    )
    weights = cast(func.sum(case((present, units))), BigInteger)
    # The weighted average in tenths, rounded half up: points / (weights x 10) + 1/2.
    tenths = (points * 2 + weights * 10) // (weights * 20)
    totals = (
        select(
            driver.c.account_id,
            driver.c.segment,
            (cast(tenths, Float) / 10.0).label("score"),
            json_object_agg(driver.c.driver, case((present, rounded(driver.c.score, 1)))).label(
                "drivers"
            ),
        )
        .where(present)
        .group_by(driver.c.account_id, driver.c.segment)
        .subquery("totals")
    )
    text = explanations(config, as_of, drivers, before).subquery("explained")

    source = totals.outerjoin(text, text.c.account_id == totals.c.account_id)
    trends: dict[int, ColumnElement[Any]] = {}
    for days in TREND_LOOKBACK:
        earlier = previous.get(days)
        if earlier is None:
            trends[days] = cast(null(), Float)
            continue
        source = source.outerjoin(earlier, earlier.c.account_id == totals.c.account_id)
        trends[days] = rounded(totals.c.score - earlier.c.score, 1)

    return select(
        totals.c.account_id,
        literal(as_of).label("as_of"),
        totals.c.segment,
        totals.c.score,
        band_expression(config, totals.c.segment, totals.c.score).label("band"),
        trends[30].label("trend_30d"),
        trends[90].label("trend_90d"),
        func.coalesce(text.c.explanation, "every driver at its best").label("explanation"),
        totals.c.drivers,
        literal(utcnow(), score_table.c.computed_at.type).label("computed_at"),
    ).select_from(source)


def compute(
    connection: Connection,
    config: ClghubConfig,
    as_of: date,
    *,
    usage_rows: Sequence[Row[Any]] | None = None,
) -> dict[str, int | float]:
    """Replace the value-score snapshot for ``as_of``; returns counts for the run log.

    ``usage_rows``: the usage totals for ``as_of``, read already
    (:class:`clghub.workflows.read_ahead.UsageReadAhead`); read here if ``None``.
    """
    driver = table_of(ValueDriver)
    score = table_of(ValueScore)
    connection.execute(delete(score).where(score.c.as_of == as_of))
    connection.execute(delete(driver).where(driver.c.as_of == as_of))
    # Inputs are stored before the formulas read them: each input is read
    # several times, and SQLite would otherwise inline (and recompute) the
    # whole input query at every reference. The drivers are stored once and
    # read twice: copied to value_driver, and summed into value_score. The
    # earlier snapshots trends and explanations compare with are stored too
    # (when there are any): the tables they come from are large and, just
    # rewritten, carry no statistics a planner could size a join by.
    one_pass = connection.dialect.name == "postgresql"
    with ExitStack() as stack:

        def stored(
            name: str,
            query: Select[Any],
            index: tuple[str, ...] = ("account_id",),
            rows: Sequence[Row[Any]] | None = None,
        ) -> Table:
            return stack.enter_context(
                temporary_result(connection, name, query, index=index, rows=rows)
            )

        customers = stored("value_customers", current_customers(config, as_of))
        usage = stored(
            "value_usage", usage_query(connection.dialect.name, config, as_of), rows=usage_rows
        )
        inputs = stored(
            "value_inputs",
            driver_inputs(config, as_of, customers=customers, usage=usage, one_pass=one_pass),
        )
        drivers = stored("value_drivers_now", _driver_rows(config, as_of, inputs))
        previous: dict[int, Table | None] = {
            days: stored(f"value_previous_{days}", _previous_scores(as_of, days))
            if _has_snapshot(connection, as_of, days)
            else None
            for days in TREND_LOOKBACK
        }
        earlier = previous[30]
        before = (
            stored("value_before", _drivers_before(earlier), ("account_id", "driver"))
            if earlier is not None
            else None
        )
        connection.execute(
            insert(driver).from_select(
                ["account_id", "as_of", "driver", "raw", "score", "weight", "effective_weight"],
                select(
                    drivers.c.account_id,
                    literal(as_of),
                    drivers.c.driver,
                    drivers.c.raw,
                    drivers.c.score,
                    drivers.c.weight,
                    drivers.c.effective_weight,
                ),
            )
        )
        connection.execute(
            insert(score).from_select(
                [
                    "account_id",
                    "as_of",
                    "segment",
                    "score",
                    "band",
                    "trend_30d",
                    "trend_90d",
                    "explanation",
                    "drivers",
                    "computed_at",
                ],
                _score_rows(config, as_of, drivers, previous, before),
            )
        )
    bands: dict[str, int] = dict(
        connection.execute(
            select(score.c.band, func.count()).where(score.c.as_of == as_of).group_by(score.c.band)
        ).all()
    )
    average = connection.execute(
        select(func.avg(score.c.score)).where(score.c.as_of == as_of)
    ).scalar_one()
    return {
        "scored": int(sum(bands.values())),
        "green": int(bands.get("green", 0)),
        "yellow": int(bands.get("yellow", 0)),
        "red": int(bands.get("red", 0)),
        "average_score": round(float(average), 1) if average is not None else 0.0,
    }
