"""What each CRM record should show: the latest value figures of its account.

One row per live CRM record of a live account (an account in both CRMs has
a record in each; a customer merged from two records of one CRM has both).
Figures come from the latest snapshot of each workflow table: an account
the latest value score or CLV run left out has no figure (and so nothing is
written for it unless ``write_nulls``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select

from clghub.store.models import Account, SourceLink, table_of
from clghub.store.revenue import Clv
from clghub.store.value import TimeToValue, ValueScore

__all__ = ["DesiredRecord", "desired_pages"]

LINK = table_of(SourceLink)
ACCOUNT = table_of(Account)
SCORE = table_of(ValueScore)
CLV = table_of(Clv)
TTV = table_of(TimeToValue)


@dataclass(frozen=True)
class DesiredRecord:
    record_id: str
    account_id: int
    account_name: str
    values: dict[str, object]
    """clghub value name -> its computed value (``None`` when there is none)."""


def _latest(table: Any) -> Any:
    return select(func.max(table.c.as_of)).scalar_subquery()


def _query(crm: str, after: str | None, limit: int) -> Any:
    latest_score = SCORE.alias("wb_score")
    latest_clv = CLV.alias("wb_clv")
    query = (
        select(
            LINK.c.source_id.label("record_id"),
            ACCOUNT.c.id.label("account_id"),
            ACCOUNT.c.name.label("account_name"),
            latest_score.c.score,
            latest_score.c.band,
            latest_score.c.trend_30d,
            latest_score.c.trend_90d,
            latest_score.c.explanation,
            latest_score.c.computed_at.label("score_computed_at"),
            latest_clv.c.clv,
            latest_clv.c.clv_growth_pct,
            latest_clv.c.computed_at.label("clv_computed_at"),
            TTV.c.days.label("ttv_days"),
            TTV.c.computed_at.label("ttv_computed_at"),
        )
        .select_from(
            LINK.join(ACCOUNT, ACCOUNT.c.id == LINK.c.account_id)
            .outerjoin(
                latest_score,
                and_(
                    latest_score.c.account_id == ACCOUNT.c.id,
                    latest_score.c.as_of == _latest(SCORE),
                ),
            )
            .outerjoin(
                latest_clv,
                and_(latest_clv.c.account_id == ACCOUNT.c.id, latest_clv.c.as_of == _latest(CLV)),
            )
            .outerjoin(TTV, TTV.c.account_id == ACCOUNT.c.id)
        )
        .where(
            LINK.c.source == crm,
            LINK.c.object == "account",
            LINK.c.is_deleted.is_(False),
            ACCOUNT.c.is_deleted.is_(False),
        )
        .order_by(LINK.c.source_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(LINK.c.source_id > after)
    return query


def _values(row: Any) -> dict[str, object]:
    stamps = [
        moment
        for moment in (row.score_computed_at, row.clv_computed_at, row.ttv_computed_at)
        if moment is not None
    ]
    growth = row.clv_growth_pct
    computed_at: datetime | None = max(stamps) if stamps else None
    return {
        "value_score": row.score,
        "value_band": row.band,
        "value_trend_30d": row.trend_30d,
        "value_trend_90d": row.trend_90d,
        "value_drivers": row.explanation,
        "clv": row.clv,
        # A ratio in the store (0.125); CRMs show percent fields as 12.5.
        "clv_growth": None if growth is None else Decimal(str(growth)) * 100,
        "time_to_first_value_days": row.ttv_days,
        "computed_at": computed_at,
    }


def _page(connection: Connection, crm: str, after: str | None, limit: int) -> list[DesiredRecord]:
    return [
        DesiredRecord(row.record_id, row.account_id, row.account_name, _values(row))
        for row in connection.execute(_query(crm, after, limit))
    ]


def desired_pages(
    engine: Engine, crm: str, *, page_size: int = 2000
) -> Iterator[list[DesiredRecord]]:
    """The desired values of every record of ``crm``, a page at a time (by record id).

    Each page is read in its own short transaction, so writes between pages
    never wait on a long-running read.
    """
    after: str | None = None
    while True:
        with engine.connect() as connection:
            page = _page(connection, crm, after, page_size)
        if not page:
            return
        yield page
        if len(page) < page_size:
            return
        after = page[-1].record_id
