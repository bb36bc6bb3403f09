"""Reading HubSpot records: which properties a read returns, rendering pages,
and the v3 ``associations`` block of list and read answers.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import orjson

from clghub.sandbox.apis.hs_catalog import ObjectCatalog
from clghub.sandbox.apis.hs_values import record_json_sql

__all__ = ["RecordRenderer", "association_blocks", "property_list", "splice_associations"]


def property_list(catalog: ObjectCatalog, requested: Iterable[str] | None) -> tuple[str, ...]:
    """Requested properties the object has (HubSpot ignores unknown names),
    or its defaults, plus the ones every read carries; in a stable order."""
    names = list(catalog.defaults) if requested is None else list(requested)
    chosen: list[str] = []
    for name in [*names, *catalog.always]:
        if name in catalog.properties and name not in chosen:
            chosen.append(name)
    return tuple(chosen)


class RecordRenderer:
    """SELECT statements that render records to JSON, cached by shape."""

    def __init__(self, capacity: int = 512) -> None:
        self._cache: OrderedDict[tuple[object, ...], str] = OrderedDict()
        self._capacity = capacity

    def select(
        self,
        catalog: ObjectCatalog,
        properties: Sequence[str],
        *,
        where: str,
        order: str = "id",
        archived_at: bool = False,
        paged: bool = False,
        as_bytes: bool = False,
    ) -> str:
        """SELECT id, record JSON; ``as_bytes`` reads the JSON as UTF-8 bytes (no
        decode and re-encode of pages that go out as they are, see sf_query.json_page)."""
        key = (catalog.name, tuple(properties), where, order, archived_at, paged, as_bytes)
        sql = self._cache.get(key)
        if sql is not None:
            self._cache.move_to_end(key)
            return sql
        expression = record_json_sql(catalog, properties, archived_at=archived_at)
        if as_bytes:
            expression = f"CAST({expression} AS BLOB)"
        sql = f"SELECT id, {expression} FROM {catalog.table} WHERE {where} ORDER BY {order}"
        if paged:
            sql += " LIMIT ? OFFSET ?"
        self._cache[key] = sql
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return sql

    def clear(self) -> None:
        self._cache.clear()


def association_blocks(
    db: sqlite3.Connection,
    catalog: ObjectCatalog,
    ids: Sequence[int],
    targets: Sequence[ObjectCatalog],
) -> dict[int, bytes]:
    """The ``"associations": {...}`` value per record id (records without any are absent)."""
    blocks: dict[int, dict[str, object]] = {}
    if not ids or not targets:
        return {}
    placeholders = ", ".join("?" for _ in ids)
    for target in targets:
        link_type = f"{catalog.singular()}_to_{target.singular()}"
        rows = db.execute(
            f"SELECT DISTINCT from_id, to_id FROM hs_association WHERE from_type = ? AND to_type = ? "
            f"AND from_id IN ({placeholders}) ORDER BY from_id, to_id",
            (catalog.name, target.name, *ids),
        ).fetchall()
        grouped: dict[int, list[dict[str, str]]] = {}
        for from_id, to_id in rows:
            grouped.setdefault(int(from_id), []).append({"id": str(to_id), "type": link_type})
        for record_id, links in grouped.items():
            blocks.setdefault(record_id, {})[target.name] = {"results": links}
    return {record_id: orjson.dumps(block) for record_id, block in blocks.items()}


def splice_associations(record_json: bytes, block: bytes | None) -> bytes:
    """Add an associations block to a rendered record (its JSON ends with '}')."""
    if block is None:
        return record_json
    return record_json[:-1] + b',"associations":' + block + b"}"
