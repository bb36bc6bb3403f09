"""A readable way to put customers into a store for workflow tests.

    world = World(connection)
    acme = world.customer("Acme", start=date(2025, 1, 1), segment="smb", seats=50)
    world.deal(acme, arr="3000", start=date(2025, 7, 1), type="expansion")
    world.daily(acme, "active_users", 20, start=date(2025, 10, 1), end=date(2025, 10, 31))
    world.meeting(acme, date(2025, 10, 3))
    world.ticket(acme, "high", opened=date(2025, 10, 5))

Rows go in at once through plain INSERTs, as the sync would leave them
(source records with a source and source id, usage linked to the account).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert

from clghub.config.models import ClghubConfig
from clghub.store.models import (
    Account,
    Activity,
    Contact,
    Opportunity,
    Person,
    Ticket,
    UsageDaily,
    table_of,
    utcnow,
)
from clghub.store.value import ValueScore

__all__ = ["World", "config", "days", "populate"]

SOURCE = "salesforce"


def config(**sections: Any) -> ClghubConfig:
    """A configuration with some sections set, validated as a config file would be."""
    return ClghubConfig.model_validate(sections)


def days(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included."""
    return [start + timedelta(n) for n in range((end - start).days + 1)]


def _moment(value: date | datetime, hour: int = 12) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(hour), tzinfo=UTC)


class World:
    """Customers, people and their activity, written straight into a store."""

    def __init__(self, connection: Connection, *, source: str = SOURCE) -> None:
        self.connection = connection
        self.source = source
        self._ids = itertools.count(1)
        self._contacts: dict[tuple[int, str], str] = {}

    def _sid(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def _tracked(self) -> dict[str, Any]:
        now = utcnow()
        return {"created_at": now, "updated_at": now, "row_version": 1}

    def _insert(self, model: type[Any], values: Mapping[str, Any]) -> int:
        table = table_of(model)
        row = {**self._tracked(), **values}
        result = self.connection.execute(insert(table).returning(table.c.id), [row])
        return int(result.scalar_one())

    # ----------------------------------------------------------------- people and accounts

    def person(self, name: str, *, team: str = "cs") -> int:
        return self._insert(
            Person,
            {"source": self.source, "source_id": self._sid("005"), "name": name, "team": team},
        )

    def account(
        self,
        name: str,
        *,
        segment: str | None = None,
        seats: int | None = None,
        outcome_target: float | None = None,
        employees: int | None = None,
        industry: str | None = None,
        region: str | None = None,
        owner: int | None = None,
        csm: int | None = None,
        lead_source: str | None = None,
        created: date | datetime | None = None,
        deleted: bool = False,
    ) -> int:
        return self._insert(
            Account,
            {
                "name": name,
                "segment": segment,
                "seats": seats,
                "outcome_target": outcome_target,
                "employees": employees,
                "industry": industry,
                "region": region,
                "owner_id": owner,
                "csm_id": csm,
                "lead_source": lead_source,
                "source_created_at": _moment(created) if created is not None else None,
                "is_deleted": deleted,
                "origin_source": self.source,
                "origin_source_id": self._sid("001"),
                "external_key": f"key-{name.lower().replace(' ', '-')}",
            },
        )

    def customer(self, name: str, *, start: date, arr: str = "12000", **account: Any) -> int:
        """An account with one won new-business deal starting on ``start``."""
        account_id = self.account(name, **account)
        self.deal(account_id, arr=arr, start=start)
        return account_id

    # ----------------------------------------------------------------- deals

    def deal(
        self,
        account: int,
        *,
        arr: str | Decimal | None,
        start: date | None,
        end: date | None = None,
        type: str | None = "new",
        status: str = "won",
        currency: str | None = None,
        close: date | None = None,
        amount: str | Decimal | None = None,
        owner_ref: str | None = None,
        lead_source: str | None = None,
        deleted: bool = False,
    ) -> int:
        return self._insert(
            Opportunity,
            {
                "source": self.source,
                "source_id": self._sid("006"),
                "account_ref": None,
                "account_id": account,
                "name": f"{type or 'deal'} {start}",
                "type": type,
                "status": status,
                "stage": "Closed Won" if status == "won" else None,
                "arr": Decimal(arr) if arr is not None else None,
                "amount": Decimal(amount) if amount is not None else None,
                "currency": currency,
                "close_date": close or start,
                "contract_start": start,
                "contract_end": end,
                "owner_ref": owner_ref,
                "lead_source": lead_source,
                "is_deleted": deleted,
            },
        )

    # ----------------------------------------------------------------- engagement

    def contact(self, account: int, role: str | None) -> str:
        """A contact of ``account`` in ``role``; returns its source id (one per role)."""
        key = (account, role or "")
        if key not in self._contacts:
            source_id = self._sid("003")
            self._insert(
                Contact,
                {
                    "source": self.source,
                    "source_id": source_id,
                    "account_id": account,
                    "name": f"{role or 'someone'} at {account}",
                    "role": role,
                },
            )
            self._contacts[key] = source_id
        return self._contacts[key]

    def activity(
        self,
        account: int,
        on: date | datetime,
        *,
        kind: str = "meeting",
        role: str | None = "economic_buyer",
        deleted: bool = False,
    ) -> int:
        contact_ref = self.contact(account, role) if role is not None else None
        return self._insert(
            Activity,
            {
                "source": self.source,
                "source_id": self._sid("00U"),
                "account_id": account,
                "contact_ref": contact_ref,
                "kind": kind,
                "subject": f"{kind} with {role}",
                "occurred_at": _moment(on),
                "is_deleted": deleted,
            },
        )

    def meeting(self, account: int, on: date | datetime, *, role: str = "economic_buyer") -> int:
        return self.activity(account, on, kind="meeting", role=role)

    def ticket(
        self,
        account: int,
        priority: str | None,
        *,
        opened: date | datetime,
        closed: date | datetime | None = None,
        csat: float | None = None,
        deleted: bool = False,
    ) -> int:
        return self._insert(
            Ticket,
            {
                "source": self.source,
                "source_id": self._sid("500"),
                "account_id": account,
                "subject": f"{priority} ticket",
                "priority": priority,
                "status": "closed" if closed else "open",
                "opened_at": _moment(opened),
                "closed_at": _moment(closed) if closed is not None else None,
                "csat": csat,
                "is_deleted": deleted,
            },
        )

    # ----------------------------------------------------------------- product usage

    def usage(
        self, account: int, metric: str, values: Mapping[date, float], *, source: str = "usage"
    ) -> None:
        """One usage row per day given."""
        rows = [
            {
                **self._tracked(),
                "source": source,
                "account_key": f"acct-{account}",
                "account_id": account,
                "metric": metric,
                "day": day,
                "value": float(value),
            }
            for day, value in values.items()
        ]
        if rows:
            self.connection.execute(insert(table_of(UsageDaily)), rows)

    def daily(
        self,
        account: int,
        metric: str,
        value: float,
        *,
        start: date,
        end: date,
        source: str = "usage",
    ) -> None:
        """The same ``value`` every day from ``start`` to ``end``."""
        self.usage(account, metric, dict.fromkeys(days(start, end), value), source=source)

    def on_days(self, account: int, metric: str, value: float, dates: Iterable[date]) -> None:
        self.usage(account, metric, dict.fromkeys(dates, value))

    # ----------------------------------------------------------------- snapshots

    def snapshot(
        self,
        account: int,
        day: date,
        score: float,
        *,
        band: str,
        trend_30d: float | None = None,
        explanation: str | None = None,
        segment: str = "smb",
    ) -> None:
        """A value-score snapshot as the value-score workflow would have left it."""
        self.connection.execute(
            insert(table_of(ValueScore)),
            [
                {
                    "account_id": account,
                    "as_of": day,
                    "segment": segment,
                    "score": score,
                    "band": band,
                    "trend_30d": trend_30d,
                    "explanation": explanation,
                    "computed_at": utcnow(),
                }
            ],
        )


def populate(world: World, *, accounts: int, as_of: date, seed: int) -> list[int]:
    """A varied, reproducible book of customers: every driver, gaps, ties and edge cases.

    Values are whole numbers or simple fractions so that ties happen, and so
    that both backends see exactly the same inputs.
    """
    rng = random.Random(seed)
    ids = []
    segments = [None, "smb", "mid_market", "enterprise", "Strategic"]
    for n in range(accounts):
        start = as_of - timedelta(days=rng.choice([10, 45, 100, 200, 400, 800]))
        account = world.account(
            f"Customer {n}",
            segment=rng.choice(segments),
            seats=rng.choice([None, 0, 5, 20, 50, 200]),
            outcome_target=rng.choice([None, 0.0, 50.0, 100.0]),
            employees=rng.choice([None, 10, 500, 5000]),
            created=start - timedelta(days=rng.choice([0, 30])),
        )
        ids.append(account)
        end = rng.choice([None, as_of - timedelta(days=40), as_of + timedelta(days=200)])
        world.deal(account, arr=rng.choice(["1000", "24000", "150000"]), start=start, end=end)
        if rng.random() < 0.2:
            continue  # no activity of any kind
        first = max(start, as_of - timedelta(days=120))
        for metric, choices in (
            ("active_users", [0, 1, 5, 10]),
            ("automations_run", [0, 3, 10, 12]),
            ("integrations_synced", [0, 1, 2]),
            ("reports_built", [0, 1, 4]),
            ("outcome_kpi", [20, 50, 75, 120]),
            ("nps", [3, 7, 9, 10]),
        ):
            if rng.random() < 0.25:
                continue
            step = rng.choice([1, 3, 7])
            values = {
                day: float(rng.choice(choices))
                for day in days(first, as_of + timedelta(days=3))[::step]
            }
            world.usage(account, metric, values)
        for _ in range(rng.choice([0, 1, 2, 3])):
            world.activity(
                account,
                datetime.combine(
                    as_of - timedelta(days=rng.randrange(0, 300)),
                    time(rng.randrange(0, 24), rng.choice([0, 30])),
                    tzinfo=UTC,
                ),
                kind=rng.choice(["meeting", "meeting", "call", "email"]),
                role=rng.choice(["economic_buyer", "champion", "user", "other", None]),
            )
        for _ in range(rng.choice([0, 0, 1, 4])):
            world.ticket(
                account,
                rng.choice(["low", "medium", "high", "urgent", None, "p1"]),
                opened=as_of - timedelta(days=rng.randrange(0, 200)),
                csat=rng.choice([None, 1.0, 3.0, 5.0]),
            )
    return ids
