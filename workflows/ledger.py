"""From won deals to ARR pieces: the contract rules of the ARR ledger, in SQL.

Every rule is one step of a chain of common table expressions, so the same
rules serve the monthly ledger (:mod:`clghub.workflows.arr`) and the
current-term query the plays use.

1. **Deals**: won, not deleted opportunities of accounts that are not
   deleted, closed on or before ``as_of`` (a deal closed later was not known
   then). Start = ``contract_start``, else ``close_date``. End (inclusive, the
   last day of the term) = ``contract_end``, else the day before start +
   ``reporting.default_term_months``. Currency = ``currency``, else the
   reporting currency.
2. **Checks**: a deal with an unknown type, no start, an end before its start,
   a currency without a rate, no ARR and no amount, a negative figure, or an
   amount over a term too short to annualize is left out and quarantined
   (source ``workflow``, stream ``arr``) with the reason; nothing is guessed.
3. **ARR**: ``arr``, else ``amount`` / term in years, the term being the
   contract's length in months rounded (days x 12 / 365.25), converted to the
   reporting currency at ``reporting.fx_rates`` (exact, rounded half up at the
   fourth decimal).
4. **Type**: an empty type is ``new`` for the account's first deal (by start,
   close date, id) and ``renewal`` otherwise.
5. **Base terms**: ``new`` and ``renewal`` deals carry the full ARR of their
   term. Ordered by start, each one ends where the next begins (a renewal
   replaces the previous contract from its start, so overlaps never count
   twice). A ``renewal`` that starts after the previous term ended, at most
   ``reporting.renewal_grace_days`` days later, extends the previous term to
   the day before it starts (a renewal closed late is not churn).
6. **Adjustments**: ``expansion`` adds and ``contraction`` removes its ARR from
   its start to its end, within the base term in force on its start day (the
   next renewal carries the full ARR again). One with no base term in force
   on its start day is quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    CompoundSelect,
    FromClause,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)

from clghub.config.models import ClghubConfig
from clghub.store.models import Account, Opportunity, table_of
from clghub.store.sqlfuncs import add_days, add_months, days_between, least
from clghub.store.types import Money
from clghub.workflows.exact import ratio, scale_units, units

__all__ = [
    "BASE_TYPES",
    "DEAL_TYPES",
    "QUARANTINE_STREAM",
    "LedgerQueries",
    "adjustments",
    "base_terms",
    "checked_deals",
    "orphan_adjustments",
    "pieces",
    "quarantine_payload",
    "valid_deals",
]

DEAL_TYPES = ("new", "renewal", "expansion", "contraction")
BASE_TYPES = ("new", "renewal")
QUARANTINE_STREAM = "arr"

# Days in a year of months: term in months = round(days x 12 / 365.25)
# = (96 x days + 1461) // 2922 in integers (half up).
_QUARTER_DAYS_PER_YEAR = 1461


# --------------------------------------------------------------------------- stages
# Each stage is a SELECT over the previous one, so a caller can chain them as
# common table expressions (one statement) or through indexed scratch tables
# (large stores: the planner then knows what it joins).


def checked_deals(config: ClghubConfig, as_of: date) -> Select[Any]:
    """Won deals known on ``as_of``: rules 1 to 3.

    Columns: ``opportunity_id, account_id, source, source_id, type`` (as
    stored), ``close_date, start, end``, ``arr_units`` (reporting-currency
    units; NULL when the deal cannot count) and ``problem`` (why, or NULL).
    """
    opportunity = table_of(Opportunity)
    account = table_of(Account)
    reporting = config.reporting
    start = func.coalesce(opportunity.c.contract_start, opportunity.c.close_date)
    default_end = add_days(add_months(start, literal(reporting.default_term_months)), -1)
    deals = (
        select(
            opportunity.c.id.label("opportunity_id"),
            opportunity.c.account_id,
            opportunity.c.source,
            opportunity.c.source_id,
            opportunity.c.type,
            opportunity.c.close_date,
            start.label("start"),
            func.coalesce(opportunity.c.contract_end, default_end).label("end"),
            units(opportunity.c.arr).label("arr_units"),
            units(opportunity.c.amount).label("amount_units"),
            func.upper(func.coalesce(opportunity.c.currency, reporting.currency)).label("currency"),
        )
        .select_from(opportunity.join(account, account.c.id == opportunity.c.account_id))
        .where(
            opportunity.c.status == "won",
            opportunity.c.is_deleted.is_(False),
            account.c.is_deleted.is_(False),
            or_(opportunity.c.close_date.is_(None), opportunity.c.close_date <= as_of),
        )
        .subquery("ledger_deals")
    )
    term_days = days_between(deals.c.start, deals.c.end) + 1
    terms = select(
        deals,
        ((term_days * 96 + _QUARTER_DAYS_PER_YEAR) // (2 * _QUARTER_DAYS_PER_YEAR)).label(
            "term_months"
        ),
    ).subquery("ledger_terms")
    term = terms.c.term_months
    known_currencies = [reporting.currency, *reporting.fx_rates]
    problem = case(
        (
            and_(terms.c.type.is_not(None), terms.c.type.not_in(DEAL_TYPES)),
            literal("unknown opportunity type '") + terms.c.type + literal("'"),
        ),
        (terms.c.start.is_(None), literal("won deal without a contract start or close date")),
        (terms.c.end < terms.c.start, literal("contract ends before it starts")),
        (
            terms.c.currency.not_in(known_currencies),
            literal("unknown currency ")
            + terms.c.currency
            + literal(" (no reporting.fx_rates entry)"),
        ),
        (
            and_(terms.c.arr_units.is_(None), terms.c.amount_units.is_(None)),
            literal("won deal without ARR or amount"),
        ),
        (terms.c.arr_units < 0, literal("negative ARR")),
        (
            and_(terms.c.arr_units.is_(None), terms.c.amount_units < 0),
            literal("negative amount"),
        ),
        (
            and_(terms.c.arr_units.is_(None), term < 1),
            literal("contract shorter than half a month: its amount cannot be annualized"),
        ),
        else_=null(),
    )
    local = case(
        (terms.c.arr_units.is_not(None), terms.c.arr_units),
        else_=(terms.c.amount_units * 24 + term) // (term * 2),
    )
    return select(
        terms.c.opportunity_id,
        terms.c.account_id,
        terms.c.source,
        terms.c.source_id,
        terms.c.type,
        terms.c.close_date,
        terms.c.start,
        terms.c.end,
        case(
            (
                problem.is_(None),
                type_coerce(_convert(config, local, terms.c.currency), BigInteger()),
            ),
            else_=null(),
        ).label("arr_units"),
        problem.label("problem"),
    )


def _convert(config: ClghubConfig, local: ColumnElement[Any], currency: ColumnElement[Any]) -> Any:
    rates = config.reporting.fx_rates
    if not rates:
        return local
    whens = [
        (currency == code, scale_units(local, ratio(rate, what=f"reporting.fx_rates.{code}")))
        for code, rate in sorted(rates.items())
    ]
    return case(*whens, else_=local)


def valid_deals(checked: FromClause) -> Select[Any]:
    """Deals that count, with the type resolved (rule 4).

    Columns: ``opportunity_id, account_id, close_date, start, end, type, arr_units``.
    """
    order = (
        checked.c.start,
        func.coalesce(checked.c.close_date, checked.c.start),
        checked.c.opportunity_id,
    )
    first = func.row_number().over(partition_by=checked.c.account_id, order_by=order)
    resolved_type = func.coalesce(
        checked.c.type, case((first == 1, literal("new")), else_=literal("renewal"))
    )
    return select(
        checked.c.opportunity_id,
        checked.c.account_id,
        checked.c.close_date,
        checked.c.start,
        checked.c.end,
        resolved_type.label("type"),
        checked.c.arr_units,
    ).where(checked.c.problem.is_(None))


def base_terms(config: ClghubConfig, valid: FromClause) -> Select[Any]:
    """Base contracts and their effective end (rule 5).

    Columns: ``opportunity_id, account_id, start, end, effective_end, arr_units``.
    """
    grace = config.reporting.renewal_grace_days
    partition = valid.c.account_id
    order = (
        valid.c.start,
        func.coalesce(valid.c.close_date, valid.c.start),
        valid.c.opportunity_id,
    )
    ordered = (
        select(
            *valid.c,
            func.lead(valid.c.start)
            .over(partition_by=partition, order_by=order)
            .label("next_start"),
            func.lead(valid.c.type).over(partition_by=partition, order_by=order).label("next_type"),
        )
        .where(valid.c.type.in_(BASE_TYPES))
        .subquery("ledger_base_ordered")
    )
    gap_days = days_between(ordered.c.end, ordered.c.next_start) - 1
    effective_end = case(
        (
            and_(
                ordered.c.next_start.is_not(None),
                or_(
                    ordered.c.next_start <= add_days(ordered.c.end, 1),
                    and_(ordered.c.next_type == "renewal", gap_days <= grace),
                ),
            ),
            add_days(ordered.c.next_start, -1),
        ),
        else_=ordered.c.end,
    )
    bounded = select(
        ordered.c.opportunity_id,
        ordered.c.account_id,
        ordered.c.start,
        ordered.c.end,
        effective_end.label("effective_end"),
        ordered.c.arr_units,
    ).subquery("ledger_base_bounded")
    return select(bounded).where(bounded.c.effective_end >= bounded.c.start)


def adjustments(valid: FromClause, base: FromClause) -> Select[Any]:
    """Expansions (+) and contractions (-) within the base term in force on their
    start day (rule 6). ``base_id`` is NULL when none was in force.

    Columns: ``opportunity_id, account_id, type, start, effective_end, arr_units, base_id``.
    """
    return (
        select(
            valid.c.opportunity_id,
            valid.c.account_id,
            valid.c.type,
            valid.c.start,
            least(valid.c.end, base.c.effective_end).label("effective_end"),
            case(
                (valid.c.type == "contraction", -valid.c.arr_units), else_=valid.c.arr_units
            ).label("arr_units"),
            base.c.opportunity_id.label("base_id"),
        )
        .select_from(
            valid.outerjoin(
                base,
                and_(
                    base.c.account_id == valid.c.account_id,
                    base.c.start <= valid.c.start,
                    base.c.effective_end >= valid.c.start,
                ),
            )
        )
        .where(valid.c.type.in_(("expansion", "contraction")))
    )


def orphan_adjustments(adjusted: FromClause) -> Select[Any]:
    """Quarantine rows for the expansions and contractions outside any base term."""
    opportunity = table_of(Opportunity)
    return (
        select(
            adjusted.c.opportunity_id,
            adjusted.c.account_id,
            opportunity.c.source,
            opportunity.c.source_id,
            (
                literal("") + adjusted.c.type + literal(" starts when no base contract is in force")
            ).label("reason"),
        )
        .select_from(adjusted.join(opportunity, opportunity.c.id == adjusted.c.opportunity_id))
        .where(adjusted.c.base_id.is_(None))
    )


def pieces(base: FromClause, adjusted: FromClause) -> CompoundSelect[Any]:
    """Every stretch of ARR: ``(opportunity_id, account_id, start, effective_end, arr_units)``."""
    return union_all(
        select(
            base.c.opportunity_id,
            base.c.account_id,
            base.c.start,
            base.c.effective_end,
            base.c.arr_units,
        ),
        select(
            adjusted.c.opportunity_id,
            adjusted.c.account_id,
            adjusted.c.start,
            adjusted.c.effective_end,
            adjusted.c.arr_units,
        ).where(
            adjusted.c.base_id.is_not(None),
            adjusted.c.effective_end >= adjusted.c.start,
        ),
    )


# --------------------------------------------------------------------------- one statement


@dataclass(frozen=True)
class LedgerQueries:
    """The stages chained as common table expressions, for one configuration and day.

    Each expression is built once per instance, so one statement can read it
    several times.
    """

    config: ClghubConfig
    as_of: date

    @cached_property
    def checked(self) -> CTE:
        return checked_deals(self.config, self.as_of).cte("ledger_checked")

    @cached_property
    def valid(self) -> CTE:
        return valid_deals(self.checked).cte("ledger_valid")

    @cached_property
    def base_terms(self) -> CTE:
        """Base contracts: ``opportunity_id, account_id, start, end, effective_end, arr_units``."""
        return base_terms(self.config, self.valid).cte("ledger_base_terms")

    @cached_property
    def adjusted(self) -> CTE:
        return adjustments(self.valid, self.base_terms).cte("ledger_adjustments")

    @cached_property
    def pieces(self) -> CTE:
        return pieces(self.base_terms, self.adjusted).cte("ledger_pieces")

    def problems(self) -> Select[Any]:
        """``(opportunity_id, account_id, source, source_id, reason)`` of left-out deals."""
        checked = self.checked
        return select(
            checked.c.opportunity_id,
            checked.c.account_id,
            checked.c.source,
            checked.c.source_id,
            checked.c.problem.label("reason"),
        ).where(checked.c.problem.is_not(None))

    def orphan_adjustments(self) -> Select[Any]:
        return orphan_adjustments(self.adjusted)

    def current_terms(self) -> Select[Any]:
        """``(account_id, term_end, arr)``: the base term in force on ``as_of`` and today's ARR.

        ``term_end`` is the term's effective last day (the renewal date);
        ``arr`` (Money, reporting currency) adds the expansions and removes the
        contractions in force on ``as_of``. Accounts without a base term in
        force on ``as_of`` have no row.
        """
        base = self.base_terms
        stretches = self.pieces
        today = literal(self.as_of)
        arr_today = (
            select(stretches.c.account_id, func.sum(stretches.c.arr_units).label("arr_units"))
            .where(stretches.c.start <= today, stretches.c.effective_end >= today)
            .group_by(stretches.c.account_id)
            .subquery("ledger_arr_today")
        )
        return (
            select(
                base.c.account_id,
                base.c.effective_end.label("term_end"),
                type_coerce(arr_today.c.arr_units, Money()).label("arr"),
            )
            .select_from(base.join(arr_today, arr_today.c.account_id == base.c.account_id))
            .where(base.c.start <= today, base.c.effective_end >= today)
        )


def quarantine_payload(opportunity_id: Any, account_id: Any) -> ColumnElement[str]:
    """A small JSON text naming the store rows behind a quarantined deal."""
    return (
        literal('{"opportunity_id": ')
        + cast(opportunity_id, String)
        + literal(', "account_id": ')
        + func.coalesce(cast(account_id, String), literal("null"))
        + literal("}")
    )
