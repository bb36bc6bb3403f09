"""``clghub export NAME``: a store table (or a view of it) as JSON or CSV, streamed."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import Connection, Select, Table, select

from clghub.errors import UsageError
from clghub.store import models
from clghub.store.models import table_of

__all__ = ["EXPORTS", "Export", "export_rows", "register_export", "write_csv", "write_json"]


@dataclass(frozen=True)
class Export:
    name: str
    description: str
    query: Callable[[dict[str, Any]], Select[Any]]
    """Builds the SELECT; receives the command's options (e.g. ``detail``)."""


EXPORTS: dict[str, Export] = {}


def register_export(
    name: str, description: str, query: Callable[[dict[str, Any]], Select[Any]]
) -> None:
    EXPORTS[name] = Export(name, description, query)


def _table(table: Table, *order: str) -> Callable[[dict[str, Any]], Select[Any]]:
    def build(_options: dict[str, Any]) -> Select[Any]:
        return select(table).order_by(*(table.c[c] for c in order or ("id",)))

    return build


register_export(
    "accounts", "customers, one row per account across sources", _table(table_of(models.Account))
)
register_export(
    "source_links", "each source's identifier of each customer", _table(table_of(models.SourceLink))
)
register_export("people", "CRM users (owners, CSMs)", _table(table_of(models.Person)))
register_export("contacts", "contacts with their roles", _table(table_of(models.Contact)))
register_export("opportunities", "opportunities and deals", _table(table_of(models.Opportunity)))
register_export("tickets", "support tickets", _table(table_of(models.Ticket)))
register_export("activities", "meetings, calls and emails", _table(table_of(models.Activity)))
register_export(
    "usage",
    "daily product usage per account and metric",
    _table(table_of(models.UsageDaily), "account_key", "metric", "day"),
)
register_export(
    "quarantine", "records a sync rejected, with the reason", _table(table_of(models.Quarantine))
)
register_export(
    "identity_conflicts",
    "domains claimed by more than one account",
    _table(table_of(models.IdentityConflict)),
)
register_export("sync_runs", "one row per stream per sync", _table(table_of(models.SyncRun)))
register_export("job_runs", "one row per stage per run", _table(table_of(models.JobRun)))
register_export(
    "cursors",
    "the checkpoint of every stream",
    _table(table_of(models.SyncState), "source", "stream"),
)


def export_rows(
    connection: Connection, name: str, options: dict[str, Any] | None = None
) -> tuple[list[str], Iterator[dict[str, Any]]]:
    export = EXPORTS.get(name)
    if export is None:
        known = ", ".join(sorted(EXPORTS))
        raise UsageError(f"unknown export '{name}'; choose one of: {known}")
    result = connection.execution_options(stream_results=True, yield_per=1000).execute(
        export.query(options or {})
    )
    columns = list(result.keys())

    def rows() -> Iterator[dict[str, Any]]:
        for row in result:
            yield dict(zip(columns, row, strict=True))

    return columns, rows()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact; a JSON float would round money
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def write_json(out: TextIO, rows: Iterator[dict[str, Any]]) -> int:
    """A JSON array, written one row at a time."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(
            json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False, default=str)
        )
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_csv(out: TextIO, columns: list[str], rows: Iterator[dict[str, Any]]) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        values = [_plain(row[c]) for c in columns]
        writer.writerow(
            json.dumps(v, default=str) if isinstance(v, dict | list) else v for v in values
        )
        count += 1
    return count
