"""Every table of the store dumped canonically, to compare two runs row for row.

Entity tables come from :func:`tests.support.snapshot.store_snapshot`. The
derived tables (ARR, retention, value scores, CLV, incentives, plays) and the
outputs' bookkeeping (writeback state, digest posts, play deliveries) are
dumped here: surrogate ids become the natural keys they stand for, and
clghub's own clocks (``computed_at``, ``posted_at``...) are reduced to
whether they are set, since *that* they happened is state and *when* is not.
Run history (``job_run``, ``sync_run``), locks and the scheduler's job table
are left out: they record how the work went, not what it produced.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from clghub.store import models, outputs, revenue, value
from clghub.store.models import table_of
from clghub.store.types import UTCDateTime
from tests.support.snapshot import ENTITY_MODELS, store_snapshot

__all__ = [
    "LINK_PROVENANCE",
    "NOT_COMPARED",
    "SOURCE_CLOCK",
    "differences",
    "full_snapshot",
    "row_count",
    "summarize",
]

# Imported for their tables: the metadata below must know every one.
_MODEL_MODULES = (models, revenue, value, outputs)

NOT_COMPARED = frozenset({"job_run", "sync_run", "run_lock", "apscheduler_jobs"})
_EFFORT = frozenset({"attempts", "seen_count"})
"""How many tries something took: differs under faults by design."""
_SLACK_IDS = frozenset({"message_ts", "file_id", "notification_ref"})
"""Identifiers Slack hands out when a message or file arrives (its clock)."""
_CLOCK_VALUES = frozenset({"cursor", "confirmed_value", "pending_value"})
"""Columns that hold a clock in some rows: a sync cursor is the source's time
when it was read; a written-back ``computed_at`` field is clghub's."""
_CLOCK_FIELDS = frozenset({"Value_Computed_At__c", "clghub_computed_at"})


def _jsonable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


LINK_PROVENANCE = frozenset({"match_rule"})
"""How a CRM record was linked to its account (it created it, or matched it by
key or domain): history, which a first load that stopped half way changes."""
SOURCE_CLOCK = frozenset({"source_modified_at"})
"""When a CRM last changed a record: after a writeback, the next sync reads the
CRM's clock of that write, which no two runs share."""


def full_snapshot(
    engine: Engine, *, clocks: frozenset[str] = frozenset()
) -> dict[str, list[tuple[str, ...]]]:
    dump = store_snapshot(engine, clocks=clocks)
    entity_tables = {table_of(model).name for model in ENTITY_MODELS}
    with engine.connect() as connection:
        account = table_of(models.Account)
        account_key = {
            row.id: f"{row.origin_source}:{row.origin_source_id}"
            for row in connection.execute(
                select(account.c.id, account.c.origin_source, account.c.origin_source_id)
            )
        }
        person = table_of(models.Person)
        person_key = {
            str(row.id): f"person {row.source}:{row.source_id}"
            for row in connection.execute(select(person.c.id, person.c.source, person.c.source_id))
        }
        opportunity = table_of(models.Opportunity)
        opportunity_key = {
            row.id: f"{row.source}:{row.source_id}"
            for row in connection.execute(
                select(opportunity.c.id, opportunity.c.source, opportunity.c.source_id)
            )
        }
        keys = {"account_id": account_key, "opportunity_id": opportunity_key}
        play = table_of(value.Play)
        play_key = {
            row.id: f"{account_key.get(row.account_id)}/{row.condition}/{row.opened_as_of}"
            for row in connection.execute(
                select(play.c.id, play.c.account_id, play.c.condition, play.c.opened_as_of)
            )
        }
        for table in SQLModel.metadata.sorted_tables:
            if table.name in entity_tables or table.name in NOT_COMPARED:
                continue
            columns = [
                c for c in table.columns if c.name not in _EFFORT and not _surrogate(table, c.name)
            ]
            rows = []
            for row in connection.execute(select(*columns)):
                values = []
                for column, cell in zip(columns, row, strict=True):
                    if table.name == "quarantine" and column.name == "payload":
                        cell = _payload(cell, keys)
                    values.append(_canonical(column, cell, account_key, play_key, person_key))
                if _is_clock_row(table.name, row._mapping):
                    values = [
                        "(set)" if c.name in _CLOCK_VALUES and v != "None" else v
                        for c, v in zip(columns, values, strict=True)
                    ]
                rows.append(tuple(values))
            dump[table.name] = sorted(rows)
    return dump


def _surrogate(table: Any, name: str) -> bool:
    """An autoincrement id that only numbers the rows (the natural key is elsewhere)."""
    return name == "id" and table.name not in ("account", "person")


def _payload(cell: Any, keys: dict[str, dict[int, str]]) -> Any:
    """A workflow's quarantine payload names store rows by id: name them by natural key."""
    try:
        payload = json.loads(cell) if isinstance(cell, str) else None
    except json.JSONDecodeError:
        return cell
    if not isinstance(payload, dict) or not set(payload) & set(keys):
        return cell
    for name, by_id in keys.items():
        if isinstance(payload.get(name), int):
            payload[name] = by_id.get(payload[name], f"(missing {payload[name]})")
    return json.dumps(payload, sort_keys=True)


def _is_clock_row(table: str, row: Any) -> bool:
    if table == "sync_state":
        return True
    return table == "writeback_state" and row.get("field") in _CLOCK_FIELDS


def _canonical(
    column: Any,
    cell: Any,
    account_key: dict[int, str],
    play_key: dict[int, str],
    person_key: dict[str, str],
) -> str:
    name = column.name
    if cell is None:
        return "None"
    if name == "person_key":
        # A person's surrogate id (sales, CS) or a lead source (marketing).
        return person_key.get(str(cell), str(cell))
    if name == "account_id":
        return str(account_key.get(cell, f"(missing account {cell})"))
    if name == "play_id":
        return str(play_key.get(cell, f"(missing play {cell})"))
    if name == "account_ids":
        return _jsonable(sorted(str(account_key.get(i, i)) for i in cell))
    if isinstance(column.type, UTCDateTime) or name in _SLACK_IDS:
        return "(set)"
    if isinstance(cell, dict | list):
        return _jsonable(cell)
    return str(cell)


def row_count(dump: dict[str, list[tuple[str, ...]]]) -> int:
    return sum(len(rows) for rows in dump.values())


def differences(
    expected: dict[str, list[tuple[str, ...]]],
    actual: dict[str, list[tuple[str, ...]]],
    *,
    label: str = "",
    show: int = 3,
) -> list[str]:
    """One line per row missing or extra (duplicates count), per section; empty when equal."""
    found: list[str] = []
    for section in sorted(set(expected) | set(actual)):
        want = Counter(expected.get(section, []))
        have = Counter(actual.get(section, []))
        missing = want - have
        extra = have - want
        prefix = f"{label}{section}"
        for row, times in list(missing.items()):
            found.extend([f"{prefix}: missing {row}"] * times)
        for row, times in list(extra.items()):
            found.extend([f"{prefix}: extra {row}"] * times)
    return found


def summarize(lines: list[str], show: int = 12) -> str:
    head = "\n".join(line[:400] for line in lines[:show])
    more = f"\n... and {len(lines) - show} more" if len(lines) > show else ""
    return head + more
