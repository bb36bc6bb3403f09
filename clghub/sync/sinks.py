"""Writing a mapped page into the store: upsert, identity, links to accounts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Table, and_, bindparam, func, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from clghub.config import ClghubConfig
from clghub.store.models import Account, Quarantine, SourceLink, UsageDaily, table_of
from clghub.store.upsert import (
    PreparedUpsert,
    UpsertCounts,
    dedupe_by_key,
    execute_upsert,
    prepare_upsert,
)
from clghub.sync.mapping import Target

__all__ = [
    "LINKED_TARGETS",
    "PreparedPage",
    "add_usage",
    "link_accounts",
    "link_ahead",
    "prepare_page",
    "quarantine",
    "write_page",
    "write_prepared",
]

LINK = table_of(SourceLink)
ACCOUNT = table_of(Account)
QUARANTINE = table_of(Quarantine)
LINKED_TARGETS = ("contact", "opportunity", "ticket", "activity")
_USAGE_KEY = ("source", "account_key", "metric", "day")


@dataclass
class PreparedPage:
    """A page of mapped rows ready to write: all but the account lookups and the statements."""

    target: Target
    source: str
    upsert: PreparedUpsert
    linked: bool = False
    """The rows' account ids are looked up already (see :func:`link_ahead`)."""


def prepare_page(
    dialect: Any, target: Target, source: str, rows: list[dict[str, Any]], now: datetime
) -> PreparedPage:
    """Everything of :func:`write_page` that needs no connection (done ahead, in parallel)."""
    if target.name == "usage" or target.name in LINKED_TARGETS:
        for row in rows:
            row["account_id"] = None  # looked up when written: see write_prepared
    if target.name == "usage":
        key: Sequence[str] = _USAGE_KEY
    elif target.name == "account":
        key = ["source", "object", "source_id"]
    else:
        key = ["source", "source_id"]
    return PreparedPage(
        target, source, prepare_upsert(dialect, target.table, rows, key=key, now=now)
    )


def link_ahead(connection: Connection, page: PreparedPage) -> None:
    """Look up the accounts a prepared page's records point at, before its turn to be written.

    Any connection will do, a reader's included: an account link, once
    committed, never changes, so what a reader sees is what the writer
    would. A record whose account is linked later (not yet committed) waits
    for the final link pass, as it would anyway.
    """
    if page.target.name not in LINKED_TARGETS:
        return
    prepared = page.upsert
    refs = [r.get("account_ref") for r in prepared.rows]
    by_ref = _accounts_by_ref(connection, page.source, {ref for ref in refs if ref})
    accounts = [by_ref.get(ref) if ref else None for ref in refs]
    prepared.set_column("account_id", accounts, connection.dialect)
    page.linked = True


def write_prepared(
    connection: Connection, page: PreparedPage, config: ClghubConfig
) -> UpsertCounts:
    """Upsert a prepared page, connecting its rows to their accounts.

    Records that point at an account get its id before the upsert (one
    lookup per page), so a row is written once, not inserted and then
    updated; those whose account is not in the store yet wait for the
    final link pass of the run. (Account records get their account, and
    accounts their attributes, from identity: see finalize_links.)
    """
    prepared = page.upsert
    rows = prepared.rows
    if page.target.name == "usage":
        by_key = _accounts_by_key(connection, {r["account_key"] for r in rows}, config)
        accounts = [by_key.get(r["account_key"]) for r in rows]
        prepared.set_column("account_id", accounts, connection.dialect)
    elif not page.linked:
        link_ahead(connection, page)
    return execute_upsert(connection, prepared)


def write_page(
    connection: Connection,
    target: Target,
    source: str,
    rows: list[dict[str, Any]],
    config: ClghubConfig,
    now: datetime,
) -> UpsertCounts:
    """Upsert one page of mapped rows and connect them to accounts."""
    page = prepare_page(connection.dialect, target, source, rows, now)
    return write_prepared(connection, page, config)


def _accounts_by_ref(connection: Connection, source: str, refs: set[str]) -> dict[str, int]:
    if not refs:
        return {}
    listed: Any
    if connection.dialect.name == "sqlite":
        # The page's references as one JSON array: the statement stays the same
        # (and cached) whatever their number, instead of one placeholder each.
        listed = select(func.json_each(bindparam("refs")).table_valued("value").c.value)
        refs_param: Any = orjson.dumps(list(refs)).decode()
    else:
        listed = bindparam("refs", expanding=True)
        refs_param = sorted(refs)
    rows = connection.execute(
        select(LINK.c.source_id, LINK.c.account_id).where(
            LINK.c.source == source,
            LINK.c.object == "account",
            LINK.c.account_id.is_not(None),
            LINK.c.source_id.in_(listed),
        ),
        {"refs": refs_param},
    ).all()
    return dict(rows)


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


def link_accounts(
    connection: Connection,
    table: Table,
    *,
    source: str | None = None,
    source_ids: Sequence[str] | None = None,
) -> int:
    """Point records that have no account yet at their accounts (a page's records, or all).

    A linked record keeps its account: links never move once made, and a
    record is linked afresh whenever it is written (:func:`write_page`). So
    only the unlinked rows are visited (through the account_id index), and a
    run that added nothing new costs next to nothing here.
    """
    conditions: list[Any] = [
        table.c.account_id.is_(None),
        table.c.account_ref.is_not(None),
        LINK.c.source == table.c.source,
        LINK.c.object == "account",
        LINK.c.source_id == table.c.account_ref,
        LINK.c.account_id.is_not(None),
    ]
    params: dict[str, Any] = {}
    if source_ids is not None:
        conditions += [
            table.c.source == source,
            table.c.source_id.in_(bindparam("ids", expanding=True)),
        ]
        params["ids"] = list(source_ids)
    result = connection.execute(
        update(table).where(and_(*conditions)).values(account_id=LINK.c.account_id), params
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
