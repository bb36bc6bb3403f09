"""Which segment each account belongs to, as one SQL expression.

An account's own ``segment`` wins when it is one of ``segments.names``. An
account without one (or with a value clghub does not know, e.g. a CRM
picklist value that was renamed) takes the first of ``segments.rules`` it
matches, on employees and current ARR, else ``segments.default``. Current ARR
is the ledger's figure for the month ``as_of`` falls in (``arr_month``), in
the reporting currency; an account with no ledger row has no ARR and matches
no ``min_arr`` rule.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, literal, select, true

from clghub.config.models import ClghubConfig, SegmentRule
from clghub.store.models import Account, table_of
from clghub.store.revenue import ArrMonth

__all__ = ["account_segments", "needs_arr", "segment_expression"]


def segment_expression(
    config: ClghubConfig, account: Any, current_arr: ColumnElement[Any] | None
) -> ColumnElement[str]:
    """The segment of ``account`` (a table or alias), given its current ARR.

    ``current_arr`` is a Money column (reporting currency); it may be ``None``
    when no rule looks at ARR.
    """
    segments = config.segments
    whens: list[tuple[ColumnElement[bool], Any]] = [
        (account.c.segment.in_(segments.names), account.c.segment)
    ]
    for rule in segments.rules:
        whens.append((_rule_matches(rule, account, current_arr), literal(rule.name)))
    return case(*whens, else_=literal(segments.default))


def _rule_matches(
    rule: SegmentRule, account: Any, current_arr: ColumnElement[Any] | None
) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if rule.min_employees is not None:
        conditions.append(account.c.employees >= rule.min_employees)
    if rule.min_arr is not None:
        if current_arr is None:
            raise ValueError("a min_arr rule needs the current ARR")
        # The Money type binds the Decimal as integer units, like the column.
        conditions.append(current_arr >= rule.min_arr)
    return and_(*conditions) if conditions else true()


def needs_arr(config: ClghubConfig) -> bool:
    return any(rule.min_arr is not None for rule in config.segments.rules)


def account_segments(config: ClghubConfig, as_of: date) -> Select[Any]:
    """``SELECT account_id, segment`` for every account that is not deleted."""
    account = table_of(Account).alias("seg_account")
    if not needs_arr(config):
        return select(
            account.c.id.label("account_id"),
            segment_expression(config, account, None).label("segment"),
        ).where(account.c.is_deleted.is_(False))
    ledger = table_of(ArrMonth).alias("seg_arr")
    return (
        select(
            account.c.id.label("account_id"),
            segment_expression(config, account, ledger.c.arr).label("segment"),
        )
        .select_from(
            account.outerjoin(
                ledger,
                and_(ledger.c.account_id == account.c.id, ledger.c.month == as_of.replace(day=1)),
            )
        )
        .where(account.c.is_deleted.is_(False))
    )
