"""The sandbox's product usage as files: one CSV or JSONL file per day.

Daily files (``usage-YYYY-MM-DD.csv``) carry the rows the usage API serves:
``account_key, metric, day, value, updated_at``. Event files
(``events-YYYY-MM-DD.csv``) carry raw product events for the roll-up path:
``event_id, account_key, event, timestamp, value``, several per day for the
count metrics (their values sum to the daily figure) and one per day for
the measures that do not add up (active users, the outcome KPI, an NPS
answer), so summing events per account, metric and day gives back exactly
the daily rows (a day with a count of 0 has no events).

Each file is written to a temporary name and renamed, so a reader watching
the folder never sees half a file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import orjson

from clghub.sandbox.rng import mix
from clghub.sandbox.state import SandboxState
from clghub.sandbox.usage_model import Position, UsageModel, UsageRow, day_text, updated_at_of

__all__ = [
    "ADDITIVE_METRICS",
    "EVENT_COLUMNS",
    "USAGE_COLUMNS",
    "daily_events",
    "write_usage_files",
]

USAGE_COLUMNS = ("account_key", "metric", "day", "value", "updated_at")
EVENT_COLUMNS = ("event_id", "account_key", "event", "timestamp", "value")
ADDITIVE_METRICS = frozenset(
    {"automations_run", "integrations_synced", "reports_built", "dashboards_viewed", "logins"}
)
_CHUNK = 20_000


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


def daily_events(seed: int, row: UsageRow) -> list[tuple[str, str, str, str, float | int]]:
    """The raw events behind one daily row (their values sum to the row's value)."""
    key, metric, day, value = row
    base = mix(seed, _key_hash(key), _key_hash(metric), day)
    if metric in ADDITIVE_METRICS:
        total = int(value)
        if total <= 0:
            return []
        parts = min(total, 1 + base % 4)
        cuts = (
            sorted({1 + mix(base, n) % (total - 1) for n in range(parts - 1)}) if total > 1 else []
        )
        bounds = [0, *cuts, total]
        amounts: list[float | int] = [b - a for a, b in itertools.pairwise(bounds) if b > a]
    else:
        amounts = [value]
    midnight = datetime.fromordinal(day)
    events = []
    for n, amount in enumerate(amounts):
        offset = 8 * 3600 + mix(base, 1000 + n) % (11 * 3600)
        moment = midnight + timedelta(seconds=offset, milliseconds=mix(base, 2000 + n) % 1000)
        events.append(
            (
                f"ev_{mix(base, 3000 + n):016x}",
                key,
                metric,
                moment.isoformat(timespec="milliseconds") + "Z",
                amount,
            )
        )
    return events


def _rows_of_day(model: UsageModel, day: int) -> Iterator[UsageRow]:
    position: Position | None = Position(day, 0, 0)
    while position is not None and position.day == day:
        rows, position = model.rows_from(position, day, _CHUNK)
        yield from rows


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def write_usage_files(
    state: SandboxState,
    out_dir: Path,
    *,
    file_format: Literal["csv", "jsonl"] = "csv",
    events: bool = False,
) -> list[Path]:
    """Write one file per day whose figures are final; return the paths written."""
    options = state.options
    model = UsageModel(
        state.db, seed=options.seed, anchor=options.anchor, usage_days=options.usage_days
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    columns = EVENT_COLUMNS if events else USAGE_COLUMNS
    for day in range(model.first_day, model.visible_through(state.now()) + 1):
        updated_at = updated_at_of(day).strftime("%Y-%m-%dT%H:%M:%SZ")
        if events:
            records: Iterator[tuple[object, ...]] = (
                event
                for row in _rows_of_day(model, day)
                for event in daily_events(options.seed, row)
            )
        else:
            records = (
                (key, metric, day_text(d), value, updated_at)
                for key, metric, d, value in _rows_of_day(model, day)
            )
        buffer = io.BytesIO()
        if file_format == "csv":
            text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(records)
            text.flush()
            data = buffer.getvalue()
            text.detach()
        else:
            for record in records:
                buffer.write(orjson.dumps(dict(zip(columns, record, strict=True))))
                buffer.write(b"\n")
            data = buffer.getvalue()
        name = f"{'events' if events else 'usage'}-{day_text(day)}.{file_format}"
        path = out_dir / name
        _write_atomically(path, data)
        written.append(path)
    return written
