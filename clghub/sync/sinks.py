"""Writing a mapped page into the store: upsert, identity, links to accounts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, func, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from clghub.config import ClghubConfig
from clghub.store.models import Account, Quarantine, SourceLink, UsageDaily, table_of
from clghub.store.upsert import UpsertCounts, dedupe_by_key, upsert
from clghub.sync.mapping import Target

__all__ = ["LINKED_TARGETS", "add_usage", "link_accounts", "quarantine", "write_page"]

LINK = table_of(SourceLink)
ACCOUNT = table_of(Account)
QUARANTINE = table_of(Quarantine)
LINKED_TARGETS = ("contact", "opportunity", "ticket", "activity")
_USAGE_KEY = ("source", "account_key", "metric", "day")


def write_page(
    connection: Connection,
    target: Target,
    source: str,
    rows: list[dict[str, Any]],
    config: ClghubConfig,
    now: datetime,
) -> UpsertCounts:
    """Upsert one page of mapped rows and connect them to accounts.

    Records that point at an account get its id before the upsert (one
    lookup per page), so a row is written once, not inserted and then
    updated; those whose account is not in the store yet wait for the
    final link pass of the run.
    """
    table = target.table
    if target.name == "usage":
        accounts = _accounts_by_key(connection, {r["account_key"] for r in rows}, config)
        for row in rows:
            row["account_id"] = accounts.get(row["account_key"])
        return upsert(connection, table, rows, key=_USAGE_KEY, now=now)
    if target.name in LINKED_TARGETS:
        accounts = _accounts_by_ref(
            connection, source, {r["account_ref"] for r in rows if r.get("account_ref")}
        )
        for row in rows:
            row["account_id"] = accounts.get(row.get("account_ref"))  # type: ignore[arg-type]
    key = ["source", "object", "source_id"] if target.name == "account" else ["source", "source_id"]
    counts = upsert(connection, table, rows, key=key, now=now)
    # Account records get their account (identity) and accounts their
    # attributes in the run's final pass, in a fixed order: see finalize_links.
    return counts


def _accounts_by_ref(connection: Connection, source: str, refs: set[str]) -> dict[str, int]:
    if not refs:
        return {}
    rows = connection.execute(
        select(LINK.c.source_id, LINK.c.account_id).where(
            LINK.c.source == source,
            LINK.c.object == "account",
            LINK.c.account_id.is_not(None),
            LINK.c.source_id.in_(bindparam("refs", expanding=True)),
        ),
        {"refs": sorted(refs)},
    )
    return {ref: account for ref, account in rows}


def _accounts_by_key(
    connection: Connection, keys: set[str], config: ClghubConfig
) -> dict[str, int]:
    """Usage keys that name exactly one live account: its product key, else (if
    identity matches on domains) its domain. An ambiguous key links nowhere."""
    found: dict[str, int] = {}
    remaining = sorted(keys)
    columns = [ACCOUNT.c.external_key]
    if "domain" in config.identity.match_on:
        columns.append(ACCOUNT.c.domain)
    for column in columns:
        for start in range(0, len(remaining), 5000):
            chunk = remaining[start : start + 5000]
            rows = connection.execute(
                select(column, func.min(ACCOUNT.c.id))
                .where(column.in_(bindparam("keys", expanding=True)), not_(ACCOUNT.c.is_deleted))
                .group_by(column)
                .having(func.count() == 1),
                {"keys": chunk},
            )
            found.update({key: account for key, account in rows})
        remaining = [k for k in remaining if k not in found]
    return found


def _account_of(table: Table) -> Any:
    return (
        select(LINK.c.account_id)
        .where(
            and_(
                LINK.c.source == table.c.source,
                LINK.c.object == "account",
                LINK.c.source_id == table.c.account_ref,
            )
        )
        .scalar_subquery()
    )


def link_accounts(
    connection: Connection,
    table: Table,
    *,
    source: str | None = None,
    source_ids: Sequence[str] | None = None,
) -> int:
    """Point records at their accounts (a page's records, or every unlinked one)."""
    account = _account_of(table)
    conditions: list[Any] = [table.c.account_id.is_distinct_from(account)]
    params: dict[str, Any] = {}
    if source_ids is not None:
        conditions += [
            table.c.source == source,
            table.c.source_id.in_(bindparam("ids", expanding=True)),
        ]
        params["ids"] = list(source_ids)
    else:
        conditions += [table.c.account_ref.is_not(None)]
    result = connection.execute(
        update(table).where(and_(*conditions)).values(account_id=account), params
    )
    return max(result.rowcount, 0)


def link_usage(connection: Connection, config: ClghubConfig) -> int:
    """Link usage rows whose key names an account now (it may have arrived after them)."""
    usage = table_of(UsageDaily)
    keys = set(
        connection.execute(
            select(usage.c.account_key).where(usage.c.account_id.is_(None)).distinct()
        ).scalars()
    )
    accounts = _accounts_by_key(connection, keys, config)
    if not accounts:
        return 0
    statement = (
        update(usage)
        .where(usage.c.account_key == bindparam("key"), usage.c.account_id.is_(None))
        .values(account_id=bindparam("account"))
    )
    result = connection.execute(statement, [{"key": k, "account": a} for k, a in accounts.items()])
    return max(result.rowcount, 0)


def add_usage(connection: Connection, rows: list[dict[str, Any]], now: datetime) -> int:
    """Add event totals to daily usage (events read once, so adding is exact)."""
    from clghub.store.models import UsageDaily

    table = table_of(UsageDaily)
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in _USAGE_KEY)
        if key in totals:
            totals[key]["value"] += row["value"]
        else:
            totals[key] = {**row, "created_at": now, "updated_at": now, "row_version": 1}
    batch = list(totals.values())
    if not batch:
        return 0
    insert_fn: Any = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert_fn(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[k] for k in _USAGE_KEY],
        set_={
            "value": table.c.value + statement.excluded.value,
            "updated_at": statement.excluded.updated_at,
            "row_version": table.c.row_version + 1,
        },
    )
    connection.execute(statement, batch)
    return len(batch)


def quarantine(
    connection: Connection,
    source: str,
    stream: str,
    rejected: list[tuple[str, str, str]],
    now: datetime,
) -> int:
    """Record rejected records (source id, reason, payload); repeats update, never duplicate."""
    if not rejected:
        return 0
    rows = [
        {
            "source": source,
            "stream": stream,
            "source_id": (source_id or "(no id)")[:128],
            "reason": reason,
            "payload": payload,
            "last_seen_at": now,
            "resolved_at": None,
        }
        for source_id, reason, payload in rejected
    ]
    rows, _ = dedupe_by_key(rows, ["source", "stream", "source_id", "reason"])
    insert_fn: Any = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert_fn(QUARANTINE)
    statement = statement.on_conflict_do_update(
        index_elements=[
            QUARANTINE.c.source,
            QUARANTINE.c.stream,
            QUARANTINE.c.source_id,
            QUARANTINE.c.reason,
        ],
        set_={
            "payload": statement.excluded.payload,
            "last_seen_at": statement.excluded.last_seen_at,
            "seen_count": QUARANTINE.c.seen_count + 1,
            "resolved_at": None,
        },
    )
    connection.execute(statement, [{**r, "first_seen_at": now, "seen_count": 1} for r in rows])
    return len(rows)
