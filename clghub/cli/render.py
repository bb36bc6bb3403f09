"""Human-readable output for the terminal (Rich tables); JSON is the other face."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["console", "print_status", "table_of"]

console = Console(highlight=False, soft_wrap=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.1f}"
    # A table cell stays one glance long: nested counts (a score's steps) show
    # how many there are; the whole record is in --json.
    text = (
        ", ".join(f"{k}={_brief(v)}" for k, v in value.items())
        if isinstance(value, dict)
        else str(value)
    )
    return text if len(text) <= 80 else text[:77] + "..."


def _brief(value: Any) -> str:
    if isinstance(value, dict | list):
        return f"({len(value)})"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table_of(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Table:
    columns = columns or (list(rows[0]) if rows else [])
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        # Rich markup in CRM data must print literally.
        from rich.text import Text

        table.add_row(*(Text(_cell(row.get(c))) for c in columns))
    return table


def print_status(report: dict[str, Any]) -> None:
    if not report["jobs"] and not report["streams"]:
        console.print("Nothing has run against this store yet. Try: clghub run (or clghub demo).")
    if report["jobs"]:
        console.print(
            table_of(
                "Last run per stage",
                report["jobs"],
                ["job", "status", "trigger", "started_at", "duration_seconds", "counts", "error"],
            )
        )
    if report["streams"]:
        console.print(
            table_of(
                "Streams",
                report["streams"],
                [
                    "source",
                    "stream",
                    "status",
                    "finished_at",
                    "read",
                    "inserted",
                    "updated",
                    "unchanged",
                    "deleted",
                    "quarantined",
                    "cursor",
                    "error",
                ],
            )
        )
    if report["quarantine"]:
        console.print(
            table_of("Quarantined records (clghub export quarantine)", report["quarantine"])
        )
    else:
        console.print("Quarantine: empty")
    if report["identity_conflicts"]:
        console.print(
            f"Identity conflicts: {report['identity_conflicts']} (clghub export identity_conflicts)"
        )
    for key, value in report.items():
        if key in {"jobs", "recent_jobs", "streams", "cursors", "quarantine", "identity_conflicts"}:
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            console.print(table_of(key.replace("_", " ").capitalize(), value))
        elif value not in (None, [], {}):
            console.print(f"{key.replace('_', ' ').capitalize()}: {_cell(value)}")
