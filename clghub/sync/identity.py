"""Identity: one account per customer, however many sources know it.

A source's account record lands in ``source_link``. A new link is matched,
in the configured order, on the product account key (``external_key``) and
then on the normalized web domain, to an existing account that no record of
the same source already claims; a match must be unique. Otherwise the
record creates a new account. Links never move once made. The account's key
(``origin_source``, ``origin_source_id``) is its live record of the highest
priority source, whichever record created it.

Two accounts claiming one domain (or one key) are reported in
``identity_conflict``, never merged silently. The account's attributes are
rebuilt from its links: the first non-empty value by source priority.

Everything here is set-based SQL over the page's links, run inside the
page's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement, KeyedColumnElement

from clghub.config import ClghubConfig
from clghub.store.models import Account, IdentityConflict, Person, SourceLink, table_of
from clghub.store.upsert import upsert

__all__ = ["ATTRIBUTES", "refresh_accounts", "resolve_links"]

LINK = table_of(SourceLink)
ACCOUNT = table_of(Account)
PERSON = table_of(Person)
CONFLICT = table_of(IdentityConflict)

# Attributes an account takes from its links (first non-empty by priority).
ATTRIBUTES = (
    "name",
    "domain",
    "external_key",
    "industry",
    "region",
    "country",
    "segment",
    "employees",
    "seats",
    "outcome_target",
    "lead_source",
    "source_created_at",
)
_IDENTITY_LOCK_KEY = 0x636C6769
_CHUNK = 5_000
"""Ids bound into one statement: a first load touches every account, and one
IN list of them all costs more memory than the rest of the sync (and passes
PostgreSQL's 65,535-parameter limit)."""


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _priority(config: ClghubConfig, link: Any) -> ColumnElement[Any]:
    order = list(config.identity.source_priority)
    whens = [(link.c.source == name, index) for index, name in enumerate(order)]
    return case(*whens, else_=len(order))


def resolve_links(
    connection: Connection, source: str, config: ClghubConfig, now: datetime
) -> list[int]:
    """Give every unlinked account record of ``source`` an account; return the accounts touched.

    Runs once per sync, after every source has been read, source by source in
    priority order: the outcome depends on the data, never on which page or
    which source happened to arrive first.
    """
    if connection.dialect.name == "postgresql":
        # Two syncs must not both create an account for one domain.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IDENTITY_LOCK_KEY})
    pending = and_(LINK.c.source == source, LINK.c.object == "account", LINK.c.account_id.is_(None))
    new_ids = list(connection.execute(select(LINK.c.source_id).where(pending)).scalars())
    if not new_ids:
        return []
    ignored = [d.lower() for d in config.identity.ignore_domains]
    for rule in config.identity.match_on:
        _match(connection, rule, pending, ignored)
    _create_accounts(connection, pending, now)
    accounts_of = select(LINK.c.account_id).where(
        LINK.c.source == source,
        LINK.c.object == "account",
        LINK.c.source_id.in_(bindparam("ids", expanding=True)),
    )
    touched = sorted(
        {
            account
            for ids in _chunks(new_ids)
            for account in connection.execute(accounts_of, {"ids": ids}).scalars()
            if account is not None
        }
    )
    _record_conflicts(connection, touched, now)
    return touched


def _match(
    connection: Connection, rule: str, page: ColumnElement[bool], ignored: list[str]
) -> None:
    column = LINK.c.external_key if rule == "external_key" else LINK.c.domain
    account_column = ACCOUNT.c.external_key if rule == "external_key" else ACCOUNT.c.domain
    other = LINK.alias("other")
    # Candidates: live accounts with the same key that no record of this
    # source claims yet (a second record of one source is a duplicate, not a match).
    candidate = and_(
        account_column == column,
        not_(ACCOUNT.c.is_deleted),
        not_(
            exists()
            .where(
                and_(
                    other.c.account_id == ACCOUNT.c.id,
                    other.c.source == LINK.c.source,
                    other.c.object == "account",
                )
            )
            .correlate_except(other)
        ),
    )
    count = (
        select(func.count()).select_from(ACCOUNT).where(candidate).correlate(LINK).scalar_subquery()
    )
    chosen = select(func.min(ACCOUNT.c.id)).where(candidate).correlate(LINK).scalar_subquery()
    conditions = [page, LINK.c.account_id.is_(None), column.is_not(None), count == 1]
    if rule == "domain" and ignored:
        conditions.append(column.not_in(ignored))
    connection.execute(
        update(LINK).where(and_(*conditions)).values(account_id=chosen, match_rule=rule)
    )


def _create_accounts(connection: Connection, page: ColumnElement[bool], now: datetime) -> None:
    unmatched = and_(page, LINK.c.account_id.is_(None))
    columns = [
        "origin_source",
        "origin_source_id",
        "is_deleted",
        "created_at",
        "updated_at",
        "row_version",
        *ATTRIBUTES,
    ]
    selected = select(
        LINK.c.source,
        LINK.c.source_id,
        LINK.c.is_deleted,
        literal(now, ACCOUNT.c.created_at.type),
        literal(now, ACCOUNT.c.updated_at.type),
        literal(1),
        func.coalesce(LINK.c.name, "(no name)"),
        *(LINK.c[name] for name in ATTRIBUTES[1:]),
    ).where(unmatched)
    connection.execute(insert(ACCOUNT).from_select(columns, selected))
    origin = (
        select(ACCOUNT.c.id)
        .where(
            and_(
                ACCOUNT.c.origin_source == LINK.c.source,
                ACCOUNT.c.origin_source_id == LINK.c.source_id,
            )
        )
        .scalar_subquery()
    )
    connection.execute(update(LINK).where(unmatched).values(account_id=origin, match_rule="origin"))


def _record_conflicts(connection: Connection, accounts: list[int], now: datetime) -> None:
    if not accounts:
        return
    for kind, column in (("domain", ACCOUNT.c.domain), ("external_key", ACCOUNT.c.external_key)):
        page_values = select(column).where(
            ACCOUNT.c.id.in_(bindparam("accounts", expanding=True)), column.is_not(None)
        )
        shared = (
            select(column, func.count())
            .where(column.in_(page_values), not_(ACCOUNT.c.is_deleted))
            .group_by(column)
            .having(func.count() > 1)
        )
        counts: dict[Any, int] = {}
        for chunk in _chunks(accounts):
            counts.update(connection.execute(shared, {"accounts": chunk}).all())
        if not counts:
            continue
        conflicts = []
        for value, count in sorted(counts.items()):
            members = (
                connection.execute(
                    select(ACCOUNT.c.id)
                    .where(column == value, not_(ACCOUNT.c.is_deleted))
                    .order_by(ACCOUNT.c.id)
                )
                .scalars()
                .all()
            )
            conflicts.append(
                {
                    "kind": kind,
                    "value": str(value)[:255],
                    "account_ids": list(members),
                    "detail": f"{count} accounts claim {kind} {value}; not merged (fix the CRM records or the key)",
                    "last_seen_at": now,
                }
            )
        upsert(
            connection,
            CONFLICT,
            conflicts,
            key=["kind", "value"],
            compare=["account_ids", "detail"],
        )


def refresh_accounts(
    connection: Connection, config: ClghubConfig, accounts: Sequence[int] | None, now: datetime
) -> int:
    """Rebuild accounts' attributes from their links; ``None`` means every account."""
    if accounts is not None and not accounts:
        return 0
    link = LINK.alias("l")
    priority = _priority(config, link)
    mine = and_(link.c.account_id == ACCOUNT.c.id, link.c.object == "account")
    # The account's live link of the highest priority, found once per account:
    # it holds most of the answers, so the per-attribute searches below run
    # only where it has no value (a first load refreshes every account).
    top = LINK.alias("top")
    top_id = (
        select(link.c.id)
        .where(mine, not_(link.c.is_deleted))
        .order_by(priority, link.c.id)
        .limit(1)
        .scalar_subquery()
        .correlate(ACCOUNT)
    )

    def first(column: KeyedColumnElement[Any]) -> Any:
        later = (
            select(column)
            .where(mine, not_(link.c.is_deleted), column.is_not(None))
            .order_by(priority, link.c.id)
            .limit(1)
            .scalar_subquery()
        )
        # COALESCE reads its second argument only when the first is NULL.
        return func.coalesce(top.c[column.key], later)

    def person_of(ref_column: str) -> Any:
        top_person = (
            select(PERSON.c.id)
            .where(PERSON.c.source == top.c.source, PERSON.c.source_id == top.c[ref_column])
            .scalar_subquery()
        )
        return func.coalesce(top_person, first_person(ref_column))

    def first_person(ref_column: str) -> Any:
        return (
            select(PERSON.c.id)
            .select_from(
                link.join(
                    PERSON,
                    and_(
                        PERSON.c.source == link.c.source, PERSON.c.source_id == link.c[ref_column]
                    ),
                )
            )
            .where(mine, not_(link.c.is_deleted))
            .order_by(priority, link.c.id)
            .limit(1)
            .scalar_subquery()
        )

    values: dict[str, Any] = {name: first(link.c[name]) for name in ATTRIBUTES}
    values["name"] = func.coalesce(values["name"], ACCOUNT.c.name)
    # The account's own key follows the same priority, so it does not depend on
    # which source a first load happened to read first (a stopped or failed sync).
    values["origin_source"] = func.coalesce(first(link.c.source), ACCOUNT.c.origin_source)
    values["origin_source_id"] = func.coalesce(
        first(link.c.source_id), ACCOUNT.c.origin_source_id
    )
    values["owner_id"] = person_of("owner_ref")
    values["csm_id"] = person_of("csm_ref")
    values["is_deleted"] = top.c.id.is_(None)  # no live link left
    # Compute the new values once, then write only the accounts that change.
    fresh = select(
        ACCOUNT.c.id.label("account_id"), *(v.label(k) for k, v in values.items())
    ).select_from(ACCOUNT.outerjoin(top, top.c.id == top_id))
    if accounts is not None:
        fresh = fresh.where(ACCOUNT.c.id.in_(bindparam("accounts", expanding=True)))
    new = fresh.subquery("fresh")
    changed = or_(*(ACCOUNT.c[k].is_distinct_from(new.c[k]) for k in values))
    statement = (
        update(ACCOUNT)
        .where(ACCOUNT.c.id == new.c.account_id, changed)
        .values(
            **{k: new.c[k] for k in values},
            updated_at=now,
            row_version=ACCOUNT.c.row_version + 1,
        )
    )
    if accounts is None:
        return max(connection.execute(statement).rowcount, 0)
    return sum(
        max(connection.execute(statement, {"accounts": chunk}).rowcount, 0)
        for chunk in _chunks(list(accounts))
    )
