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


# --------------------------------------------------------------------------- value workflows
# Value scores, their drivers, time to value and plays (clghub.workflows.value_score,
# time_to_value, plays).


def _value_table(name: str, *order: str) -> Callable[[dict[str, Any]], Select[Any]]:
    from sqlmodel import SQLModel

    from clghub.store import value

    models: dict[str, type[SQLModel]] = {
        "value_score": value.ValueScore,
        "value_driver": value.ValueDriver,
        "time_to_value": value.TimeToValue,
        "play": value.Play,
    }
    return _table(table_of(models[name]), *order)


def _time_to_value_summary(options: dict[str, Any]) -> Select[Any]:
    from clghub.config.models import ClghubConfig
    from clghub.workflows.time_to_value import summary_query

    config = options.get("config")
    return summary_query(config if isinstance(config, ClghubConfig) else ClghubConfig())


register_export(
    "value_scores",
    "value score per account and day: band, 30/90-day trend, explanation",
    _value_table("value_score", "as_of", "account_id"),
)
register_export(
    "value_drivers",
    "each driver of each value score: raw value, 0-100 score, weights",
    _value_table("value_driver", "as_of", "account_id", "driver"),
)
register_export(
    "time_to_value",
    "days from first contract start to first value, per account",
    _value_table("time_to_value", "account_id"),
)
register_export(
    "time_to_value_summary",
    "median days to first value and activation rate per cohort",
    _time_to_value_summary,
)
register_export(
    "plays", "alerts per account and condition, open and cleared", _value_table("play", "id")
)


# --------------------------------------------------------------------------- revenue workflows
# The ARR ledger and bridge, retention, CLV and incentives (clghub.workflows.arr,
# retention, clv, incentives).


def _revenue_table(name: str, *order: str) -> Callable[[dict[str, Any]], Select[Any]]:
    from sqlmodel import SQLModel

    from clghub.store import revenue

    tables: dict[str, type[SQLModel]] = {
        "arr_month": revenue.ArrMonth,
        "arr_movement": revenue.ArrMovement,
        "retention": revenue.Retention,
        "clv": revenue.Clv,
        "clv_model": revenue.ClvModel,
    }
    return _table(table_of(tables[name]), *order)


def _incentives(options: dict[str, Any]) -> Select[Any]:
    from clghub.store import revenue

    if options.get("detail"):
        detail = table_of(revenue.IncentiveDetail)
        return select(detail).order_by(
            detail.c.period, detail.c.team, detail.c.person_key, detail.c.account_id, detail.c.kind
        )
    incentive = table_of(revenue.Incentive)
    return select(incentive).order_by(incentive.c.period, incentive.c.team, incentive.c.person_key)


register_export(
    "arr",
    "the ARR ledger: ARR per account at the end of each month it had any",
    _revenue_table("arr_month", "account_id", "month"),
)
register_export(
    "arr_movements",
    "each account's ARR bridge movement per month and fiscal quarter",
    _revenue_table("arr_movement", "period_kind", "period_start", "account_id"),
)
register_export(
    "retention",
    "ARR bridge, NRR, GRR and logo retention per period (month, quarter, ttm) and cohort",
    _revenue_table("retention", "period_kind", "period_start", "cohort_dim", "cohort_value"),
)
register_export(
    "clv",
    "customer lifetime value per account and day, with growth since the previous snapshot",
    _revenue_table("clv", "as_of", "account_id"),
)
register_export(
    "clv_models",
    "fitted sBG retention models per segment and day, with fit diagnostics",
    _revenue_table("clv_model", "as_of", "segment"),
)
register_export(
    "incentives",
    "incentive pool per period, team and person; --detail: every account behind each figure",
    _incentives,
)


# --------------------------------------------------------------------------- outputs


def _outputs_table(name: str, *order: str) -> Callable[[dict[str, Any]], Select[Any]]:
    from sqlmodel import SQLModel

    from clghub.store import outputs

    tables: dict[str, type[SQLModel]] = {
        "writeback_state": outputs.WritebackState,
        "digest_post": outputs.DigestPost,
        "play_delivery": outputs.PlayDelivery,
    }
    return _table(table_of(tables[name]), *order)


register_export(
    "writeback_state",
    "per CRM record and field: the value the CRM last confirmed, what is in flight, the last refusal",
    _outputs_table("writeback_state", "crm", "record_id", "field"),
)
register_export(
    "digest_posts",
    "the leadership digests: one per week and channel, with the message ts and the NRR/GRR shown",
    _outputs_table("digest_post", "period", "channel"),
)
register_export(
    "play_deliveries",
    "how each play was announced: the Slack message and the CRM task, with errors",
    _outputs_table("play_delivery", "play_id"),
)
