"""Product usage from files (daily rows and raw events) and SQL, through the real runner."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from clghub.config import parse_config
from clghub.pipeline import build_connectors
from clghub.store.models import Quarantine, UsageDaily, table_of
from clghub.sync.runner import run_sync

USAGE = table_of(UsageDaily)


def usage(engine: Engine) -> dict[tuple[str, str, str], float]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(USAGE.c.account_key, USAGE.c.metric, USAGE.c.day, USAGE.c.value)
        ).all()
    return {(k, m, d.isoformat()): v for k, m, d, v in rows}


def files_config(folder: Path, records: str) -> Any:
    return parse_config(
        {
            "sources": {
                "product_usage": {
                    "enabled": True,
                    "kind": "files",
                    "records": records,
                    "files": {"path": str(folder)},
                }
            }
        }
    )


def test_daily_csv_and_jsonl_files_are_read_once(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "usage"
    folder.mkdir()
    (folder / "2026-01-01.csv").write_text(
        "account_key,metric,day,value\nk1,logins,2026-01-01,5\nk2,logins,2026-01-01,7\nk3,logins,not-a-day,1\n"
    )
    (folder / "2026-01-02.jsonl").write_text(
        json.dumps({"account_key": "k1", "metric": "logins", "day": "2026-01-02", "value": "3"})
        + "\n"
    )
    config = files_config(folder, "daily")
    report = run_sync(engine, config, build_connectors(config))
    assert report.ok
    assert usage(engine) == {
        ("k1", "logins", "2026-01-01"): 5.0,
        ("k2", "logins", "2026-01-01"): 7.0,
        ("k1", "logins", "2026-01-02"): 3.0,
    }
    quarantine = table_of(Quarantine)
    with engine.connect() as connection:
        reasons = connection.execute(select(quarantine.c.reason)).scalars().all()
    assert reasons == [
        "day: unreadable date 'not-a-day' (use ISO 8601, e.g. 2024-05-31) (from day)"
    ]
    again = run_sync(engine, config, build_connectors(config))
    assert again.totals()["read"] == 0


def test_events_roll_up_and_count_exactly_once(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    lines = [
        {"account_key": "k1", "event": "automations_run", "timestamp": "2026-01-01T09:00:00Z"},
        {"account_key": "k1", "event": "automations_run", "timestamp": "2026-01-01T17:30:00Z"},
        {
            "account_key": "k1",
            "event": "automations_run",
            "timestamp": "2026-01-02T08:00:00Z",
            "value": 4,
        },
    ]
    (folder / "a.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    config = files_config(folder, "events")
    run_sync(engine, config, build_connectors(config))
    assert usage(engine) == {
        ("k1", "automations_run", "2026-01-01"): 2.0,
        ("k1", "automations_run", "2026-01-02"): 4.0,
    }
    # A second file with more events of the same day adds to the total; rerunning adds nothing.
    (folder / "b.jsonl").write_text(json.dumps(lines[0]) + "\n")
    run_sync(engine, config, build_connectors(config))
    run_sync(engine, config, build_connectors(config))
    assert usage(engine)[("k1", "automations_run", "2026-01-01")] == 3.0


def test_sql_source_reads_since_the_cursor(engine: Engine, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.db"
    with sqlite3.connect(warehouse) as db:
        db.execute(
            "CREATE TABLE daily (account_key TEXT, metric TEXT, day TEXT, value REAL, updated_at TEXT)"
        )
        db.executemany(
            "INSERT INTO daily VALUES (?, ?, ?, ?, ?)",
            [
                ("k1", "logins", "2026-01-01", 4, "2026-01-02T02:00:00Z"),
                ("k2", "logins", "2026-01-01", 6, "2026-01-02T02:00:00Z"),
            ],
        )
    query = "SELECT * FROM daily WHERE :since IS NULL OR updated_at >= :since"
    config = parse_config(
        {
            "sources": {
                "product_usage": {
                    "enabled": True,
                    "kind": "sql",
                    "sql": {"url": f"sqlite:///{warehouse}", "query": query},
                }
            }
        }
    )
    run_sync(engine, config, build_connectors(config))
    assert len(usage(engine)) == 2
    with sqlite3.connect(warehouse) as db:
        db.execute(
            "INSERT INTO daily VALUES ('k1', 'logins', '2026-01-02', 9, '2026-01-03T02:00:00Z')"
        )
    report = run_sync(engine, config, build_connectors(config))
    # The boundary is inclusive (rows sharing the cursor's timestamp are re-read, unchanged).
    totals = report.totals()
    assert (totals["read"], totals["inserted"], totals["unchanged"]) == (3, 1, 2)
    assert usage(engine)[("k1", "logins", "2026-01-02")] == 9.0


def test_a_truncated_rest_page_is_read_again() -> None:
    # A body cut short arrives with a 200 and a matching Content-Length: only
    # parsing it shows the fault, and the retry must cover the parse too.
    from clghub.config.models import RestUsageConfig
    from clghub.connectors.product_usage.sources import RestUsageStream
    from clghub.sync.mapping import load_mapping
    from clghub.sync.stream import StreamState

    whole = json.dumps(
        {
            "data": [
                {"account_key": "acme.com", "metric": "logins", "day": "2026-06-01", "value": 3,
                 "updated_at": "2026-06-02T00:00:00Z"}
            ],
            "next_cursor": None,
        }
    ).encode()
    answers = iter([whole[: len(whole) // 2], whole])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=next(answers))

    config = RestUsageConfig(base_url="http://usage.test", max_retry_wait_seconds=0.01)
    stream = RestUsageStream(
        config,
        load_mapping("product_usage").streams["daily"],
        transport=httpx.MockTransport(handler),
    )
    try:
        pages = list(stream.read(StreamState()))
    finally:
        stream.close()
    assert len(seen) == 2
    assert [record["account_key"] for page in pages for record in page.records] == ["acme.com"]
    assert pages[-1].cursor == "2026-06-02T00:00:00Z"
