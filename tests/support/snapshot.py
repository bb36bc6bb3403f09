"""A canonical dump of the store, to compare two runs row for row.

Surrogate ids and clghub's own clocks differ between runs that did the same
work in another order (sources sync concurrently), so references are dumped
as the natural keys they point at and bookkeeping columns are left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from clghub.store import models
from clghub.store.models import table_of

__all__ = ["ENTITY_MODELS", "store_snapshot"]

ENTITY_MODELS = (
    models.Account,
    models.SourceLink,
    models.Person,
    models.Contact,
    models.Opportunity,
    models.Ticket,
    models.Activity,
    models.UsageDaily,
)
_VOLATILE = {
    "id",
    "created_at",
    "updated_at",
    "row_version",
    "first_seen_at",
    "last_seen_at",
    "seen_count",
}


def store_snapshot(
    engine: Engine, extra: tuple[Any, ...] = (), *, clocks: frozenset[str] = frozenset()
) -> dict[str, list[tuple[str, ...]]]:
    """Every entity row, canonically; ``clocks`` name columns reduced to set or not."""
    with engine.connect() as connection:
        account = table_of(models.Account)
        person = table_of(models.Person)
        account_key = {
            row.id: f"{row.origin_source}:{row.origin_source_id}"
            for row in connection.execute(
                select(account.c.id, account.c.origin_source, account.c.origin_source_id)
            )
        }
        person_key = {
            row.id: f"{row.source}:{row.source_id}"
            for row in connection.execute(select(person.c.id, person.c.source, person.c.source_id))
        }
        dump: dict[str, list[tuple[str, ...]]] = {}
        for model in (*ENTITY_MODELS, *extra):
            table = table_of(model)
            columns = [c for c in table.columns if c.name not in _VOLATILE]
            rows = []
            for row in connection.execute(select(*columns)):
                values = []
                for column, value in zip(columns, row, strict=True):
                    if column.name == "account_id":
                        value = account_key.get(value)
                    elif column.name in ("owner_id", "csm_id"):
                        value = person_key.get(value)
                    elif column.name in clocks and value is not None:
                        value = "(set)"
                    values.append(str(value))
                rows.append(tuple(values))
            dump[table.name] = sorted(rows)
    return dump
