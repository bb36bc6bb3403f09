"""Small ledgers, written straight into a store, and readers for what the revenue workflows made.

book = Book(connection)
acme = book.account("Acme", segment="smb")
book.deal(acme, "12000", date(2024, 1, 1))                    # new, 12 months
book.deal(acme, "3000", date(2024, 7, 1), date(2024, 12, 31), type="expansion")
arr = ledger(connection)[acme]                                 # {date(2024, 1, 1): Decimal(...)}
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, select

from clghub.config.models import ClghubConfig
from clghub.store.models import Account, Opportunity, Person, table_of, utcnow
from clghub.store.revenue import ArrMonth, ArrMovement, Retention

__all__ = ["Book", "config_with", "ledger", "movements", "retention_rows"]


def config_with(**sections: dict[str, Any]) -> ClghubConfig:
    """A configuration with some sections changed (validated like a file)."""
    return ClghubConfig.model_validate(sections)


class Book:
    """Accounts, people and won deals for ledger tests."""

    def __init__(self, connection: Connection, *, source: str = "salesforce") -> None:
        self.connection = connection
        self.source = source
        self._ids = itertools.count(1)

    def _insert(self, model: type[Any], values: dict[str, Any]) -> int:
        table = table_of(model)
        now = utcnow()
        if "row_version" in table.c:
            values = {"created_at": now, "updated_at": now, "row_version": 1, **values}
        result = self.connection.execute(insert(table).returning(table.c.id), [values])
        return int(result.scalar_one())

    def person(
        self,
        name: str | None,
        *,
        team: str = "sales",
        email: str | None = None,
        source: str | None = None,
    ) -> int:
        return self._insert(
            Person,
            {
                "source": source or self.source,
                "source_id": f"005{next(self._ids):06d}",
                "name": name,
                "team": team,
                "email": email,
            },
        )

    def account(
        self,
        name: str,
        *,
        segment: str | None = "smb",
        industry: str | None = None,
        region: str | None = None,
        employees: int | None = None,
        owner: int | None = None,
        csm: int | None = None,
        lead_source: str | None = None,
        deleted: bool = False,
    ) -> int:
        return self._insert(
            Account,
            {
                "name": name,
                "segment": segment,
                "industry": industry,
                "region": region,
                "employees": employees,
                "owner_id": owner,
                "csm_id": csm,
                "lead_source": lead_source,
                "is_deleted": deleted,
                "origin_source": self.source,
                "origin_source_id": f"001{next(self._ids):06d}",
            },
        )

    def deal(
        self,
        account: int | None,
        arr: str | None,
        start: date | None,
        end: date | None = None,
        *,
        type: str | None = "new",
        status: str = "won",
        currency: str | None = None,
        close: date | None = None,
        amount: str | None = None,
        deleted: bool = False,
    ) -> int:
        return self._insert(
            Opportunity,
            {
                "source": self.source,
                "source_id": f"006{next(self._ids):06d}",
                "account_id": account,
                "type": type,
                "status": status,
                "arr": Decimal(arr) if arr is not None else None,
                "amount": Decimal(amount) if amount is not None else None,
                "currency": currency,
                "close_date": close if close is not None else start,
                "contract_start": start,
                "contract_end": end,
                "is_deleted": deleted,
            },
        )


def ledger(connection: Connection) -> dict[int, dict[date, Decimal]]:
    """``arr_month`` as {account: {month: ARR}}."""
    table = table_of(ArrMonth)
    out: dict[int, dict[date, Decimal]] = defaultdict(dict)
    for row in connection.execute(select(table.c.account_id, table.c.month, table.c.arr)):
        out[row.account_id][row.month] = row.arr
    return dict(out)


def movements(
    connection: Connection, kind: str = "month"
) -> dict[tuple[int, date], tuple[str, Decimal]]:
    """``arr_movement`` of one period kind as {(account, period start): (movement, amount)}."""
    table = table_of(ArrMovement)
    rows = connection.execute(select(table).where(table.c.period_kind == kind))
    return {(r.account_id, r.period_start): (r.kind, r.amount) for r in rows}


def retention_rows(
    connection: Connection, kind: str, dim: str = "all"
) -> dict[tuple[date, str], Any]:
    """``retention`` rows of one period kind and cohort dimension by (period start, value)."""
    table = table_of(Retention)
    rows = connection.execute(
        select(table).where(table.c.period_kind == kind, table.c.cohort_dim == dim)
    )
    return {(r.period_start, r.cohort_value): r for r in rows}
