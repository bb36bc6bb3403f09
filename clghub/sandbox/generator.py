"""The sandbox dataset: a B2B SaaS company's CRM history, staff and product usage.

``generate(state)`` fills an empty :class:`SandboxState` from its options:
``seed`` and ``accounts`` decide the org, ``anchor`` the day history ends
(about three years of it). The same seed and anchor give the same bytes.
Accounts are planned one at a time from their own random streams
(clghub.sandbox.lifecycle) and written in batches, so memory stays flat
whatever the size; daily usage is not written at all, only each product
account's profile (clghub.sandbox.usage_model computes the rows on demand).

``ensure_data(state)`` reuses data already in a persistent state directory
when it was generated from the same options, so changes made through the
APIs survive a restart.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clghub.sandbox.crm_rows import HS_ID_BASE, RowBatch, hs_columns, sf_columns, ts
from clghub.sandbox.lifecycle import plan_account, usage_profile_for_orphan
from clghub.sandbox.people import build_staff
from clghub.sandbox.plans import UsageProfile
from clghub.sandbox.schema import HS_MODIFIED_PROPERTY, HS_OBJECTS, SF_OBJECTS
from clghub.sandbox.slack_directory import seed_slack
from clghub.sandbox.state import SandboxState

__all__ = [
    "GENERATOR_VERSION",
    "GenerationSummary",
    "bulk_import",
    "create_imported",
    "data_signature",
    "ensure_data",
    "generate",
]

GENERATOR_VERSION = "1"
"""Bump when the generated data changes: stored states from older versions regenerate."""

_BATCH = 1000
_ORPHAN_SHARE = 100
"""One usage-only product account (no CRM record) per this many accounts."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerationSummary:
    accounts: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False


def data_signature(state: SandboxState) -> str:
    options = state.options
    return json.dumps(
        {
            "version": GENERATOR_VERSION,
            "seed": options.seed,
            "accounts": options.accounts,
            "anchor": options.anchor.isoformat(),
            "usage_days": options.usage_days,
            "hs_bulk_import": options.hs_bulk_import,
        },
        sort_keys=True,
    )


def ensure_data(state: SandboxState, progress: Progress | None = None) -> GenerationSummary:
    """Generate the data unless the state already holds it for the same options."""
    signature = data_signature(state)
    stored = state.meta("signature")
    if stored == signature:
        rows = json.loads(state.meta("rows") or "{}")
        return GenerationSummary(accounts=state.options.accounts, rows=rows, reused=True)
    if stored is not None:
        state.clear()
    return generate(state, progress)


def generate(state: SandboxState, progress: Progress | None = None) -> GenerationSummary:
    """Fill an empty state with the org its options describe."""
    if state.options.accounts < 1:
        raise ValueError("the sandbox needs at least one account")
    started = time.perf_counter()
    options = state.options
    seed = options.seed
    anchor = options.anchor
    anchor_day = anchor.toordinal()
    total = options.accounts
    staff = build_staff(seed, total, anchor)
    batch = RowBatch(seed, staff, datetime.fromordinal(anchor_day))
    batch.add_staff(datetime.fromordinal(anchor_day - 4 * 365).replace(hour=9))
    counts: Counter[str] = Counter()
    _flush(state, batch, [], counts)
    for first in range(0, total, _BATCH):
        profiles: list[UsageProfile] = []
        for index in range(first, min(total, first + _BATCH)):
            plan = plan_account(seed, index, anchor_day, staff, options.usage_days)
            batch.add_account(plan)
            if plan.usage is not None:
                profiles.append(plan.usage)
        _flush(state, batch, profiles, counts)
        if progress is not None:
            progress(min(total, first + _BATCH), total)
    orphans = [
        usage_profile_for_orphan(seed, number, anchor_day, options.usage_days)
        for number in range(max(1, total // _ORPHAN_SHARE))
    ]
    _flush(state, batch, orphans, counts)
    for sobject, number in batch.max_number.items():
        state.set_sequence(f"sf:{sobject}", number)
    if options.hs_bulk_import:
        moment = datetime.fromordinal(anchor_day - 1).replace(
            hour=3, minute=14, second=15, microsecond=926_000
        )
        bulk_import(state, options.hs_bulk_import, ts(moment))
    seed_slack(state, staff)
    rows = dict(sorted(counts.items()))
    state.set_meta("rows", json.dumps(rows, sort_keys=True))
    state.set_meta("signature", data_signature(state))
    return GenerationSummary(accounts=total, rows=rows, seconds=time.perf_counter() - started)


def _insert_sql(table: str, columns: list[str]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({marks})'


_SF_INSERT = {name: _insert_sql(f"sf_{name}", sf_columns(name)) for name in SF_OBJECTS}
_HS_INSERT = {name: _insert_sql(f"hs_{name}", hs_columns(name)) for name in HS_OBJECTS}
_HS_INSERT["owners"] = _insert_sql(
    "hs_owners",
    [
        "id",
        "email",
        "firstName",
        "lastName",
        "userId",
        "teams",
        "created_at",
        "updated_at",
        "archived",
    ],
)
_PROFILE_INSERT = (
    "INSERT INTO usage_profile (key, entity, active_from, active_to, value_from, seats, "
    "health_start, health_end, adoption, outcome, outcome_target, nps_rate, nps_base) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _flush(
    state: SandboxState, batch: RowBatch, profiles: list[UsageProfile], counts: Counter[str]
) -> None:
    db = state.db
    db.execute("BEGIN")
    try:
        for name, rows in batch.sf.items():
            db.executemany(_SF_INSERT[name], rows)
        for name, rows in batch.hs.items():
            db.executemany(_HS_INSERT[name], rows)
        db.executemany(
            "INSERT INTO hs_association (from_type, from_id, to_type, to_id, type_id) VALUES (?, ?, ?, ?, ?)",
            batch.associations,
        )
        db.executemany(
            _PROFILE_INSERT,
            [
                (
                    p.key,
                    p.entity,
                    p.active_from,
                    p.active_to,
                    p.value_from,
                    p.seats,
                    p.health_start,
                    p.health_end,
                    p.adoption,
                    p.outcome,
                    p.outcome_target,
                    p.nps_rate,
                    p.nps_base,
                )
                for p in profiles
            ],
        )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    for table, count in batch.counts():
        counts[table] += count
    counts["usage_profile"] += len(profiles)
    batch.clear()


# -- bulk imports -------------------------------------------------------------

_IMPORT_ORDER = ("companies", "deals", "tickets", "contacts")


def bulk_import(
    state: SandboxState, count: int, moment: str, *, obj: str | None = None
) -> dict[str, int]:
    """Give ``count`` existing HubSpot records one exact last-modified moment.

    A bulk import (or a workflow run over a list) does this: more than
    10,000 records can share one ``hs_lastmodifieddate``, which breaks
    connectors that page search results by that timestamp alone. Records
    created after ``moment`` are left alone. Returns how many records of each
    object were touched.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    touched: dict[str, int] = {}
    remaining = count
    db = state.db
    db.execute("BEGIN")
    for name in (obj,) if obj else _IMPORT_ORDER:
        if remaining <= 0:
            break
        modified = HS_MODIFIED_PROPERTY[name]
        cursor = db.execute(
            f'UPDATE "hs_{name}" SET updated_at = ?, "{modified}" = ? WHERE id IN '
            f'(SELECT id FROM "hs_{name}" WHERE archived = 0 AND created_at <= ? ORDER BY id LIMIT ?)',
            (moment, moment, moment, remaining),
        )
        touched[name] = cursor.rowcount
        remaining -= cursor.rowcount
    db.execute("COMMIT")
    return touched


def create_imported(
    state: SandboxState, obj: str, count: int, *, moment: str | None = None
) -> list[int]:
    """Create ``count`` new HubSpot records of ``obj`` in one import: one shared timestamp."""
    if obj not in HS_ID_BASE:
        raise ValueError(f"unknown HubSpot object {obj!r}; one of {sorted(HS_ID_BASE)}")
    if count < 1:
        raise ValueError("count must be at least 1")
    moment = moment or state.timestamp()
    columns = hs_columns(obj)
    ids = [state.new_hs_id(obj) for _ in range(count)]
    rows = [_imported_row(obj, record_id, moment, columns) for record_id in ids]
    db = state.db
    db.execute("BEGIN")
    db.executemany(_HS_INSERT[obj], rows)
    db.execute("COMMIT")
    return ids


def _imported_row(obj: str, record_id: int, moment: str, columns: list[str]) -> tuple[Any, ...]:
    number = record_id % 10_000_000
    values: dict[str, Any] = {
        "id": record_id,
        "created_at": moment,
        "updated_at": moment,
        "archived": 0,
        "createdate": moment,
        HS_MODIFIED_PROPERTY[obj]: moment,
    }
    if obj == "companies":
        values.update(
            name=f"Imported Company {number}",
            domain=f"imported{number}.example.net",
            lifecyclestage="lead",
        )
    elif obj == "contacts":
        values.update(
            firstname="Imported",
            lastname=f"Contact {number}",
            email=f"imported.contact{number}@example.net",
        )
    elif obj == "deals":
        values.update(
            dealname=f"Imported Deal {number}",
            amount=1000.0,
            deal_currency_code="USD",
            dealstage="appointmentscheduled",
            pipeline="default",
            dealtype="newbusiness",
            hs_is_closed_won=0,
            hs_is_closed=0,
            closedate=moment,
        )
    else:
        values.update(
            subject=f"Imported ticket {number}",
            hs_pipeline="0",
            hs_pipeline_stage="1",
            hs_ticket_priority="MEDIUM",
        )
    return tuple(values.get(column) for column in columns)
