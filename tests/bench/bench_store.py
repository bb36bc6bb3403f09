"""Benchmark: the bulk upsert against a plain executemany INSERT, SQLite and PostgreSQL.

Upserts 200,000 account rows into an empty table, then the same rows again
with 1% changed, and times a plain ``executemany`` INSERT of the same rows on
the same database in the same run. Prints rows/s and the ratios.

    python tests/bench/bench_store.py [--rows 200000] [--backend sqlite|postgresql|both]

Targets: first load within 1.5x of the plain insert; the 1%-changed reload
rewrites only the changed rows and takes less time than the first load.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import Engine, func, insert, select, text

from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade
from clghub.store.models import Account, table_of, utcnow
from clghub.store.upsert import upsert
from tests.support.pgserver import postgres_server

BATCH = 2000
TABLE = table_of(Account)
KEY = ["origin_source", "origin_source_id"]


def make_rows(
    count: int, *, changed: float = 0.0, seed: int = 7
) -> tuple[list[dict[str, Any]], set[str]]:
    rng = random.Random(seed)
    rows = []
    touched: set[str] = set()
    for i in range(count):
        source_id = f"001{i:015d}"
        name = f"Account {i} Holdings"
        if changed and rng.random() < changed:
            name += " (renamed)"
            touched.add(source_id)
        rows.append(
            {
                "origin_source": "salesforce",
                "origin_source_id": source_id,
                "name": name,
                "domain": f"account{i}.example.org",
                "external_key": f"acct-{i}",
                "industry": ("Software", "Retail", "Finance", "Health")[i % 4],
                "region": ("NA", "EMEA", "APAC")[i % 3],
                "segment": ("smb", "mid_market", "enterprise")[i % 3],
                "employees": 10 + i % 5000,
                "seats": 5 + i % 200,
                "lead_source": "web",
                "is_deleted": False,
            }
        )
    return rows, touched


def batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def truncate(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM account"))


def plain_insert(engine: Engine, rows: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for chunk in batches(rows):
        now = utcnow()
        with engine.begin() as connection:
            connection.execute(
                insert(TABLE),
                [{**r, "created_at": now, "updated_at": now, "row_version": 1} for r in chunk],
            )
    return time.perf_counter() - start


def upsert_all(engine: Engine, rows: list[dict[str, Any]]) -> tuple[float, dict[str, int]]:
    totals = {"inserted": 0, "updated": 0, "unchanged": 0}
    start = time.perf_counter()
    for chunk in batches(rows):
        with engine.begin() as connection:
            counts = upsert(connection, TABLE, chunk, key=KEY)
        totals["inserted"] += counts.inserted
        totals["updated"] += counts.updated
        totals["unchanged"] += counts.unchanged
    return time.perf_counter() - start, totals


def run(label: str, url: str, count: int) -> None:
    engine = create_store_engine(url)
    upgrade(engine)
    rows, _ = make_rows(count)
    plain = plain_insert(engine, rows)
    truncate(engine)
    first, first_counts = upsert_all(engine, rows)
    load_mark = utcnow()
    changed_rows, touched = make_rows(count, changed=0.01, seed=11)
    reload, reload_counts = upsert_all(engine, changed_rows)
    with engine.connect() as connection:
        moved = connection.execute(
            select(func.count()).select_from(TABLE).where(TABLE.c.updated_at > load_mark)
        ).scalar_one()
    engine.dispose()
    print(f"{label}: {count:,} rows")
    print(f"  plain executemany INSERT   {plain:7.2f} s  {count / plain:10,.0f} rows/s")
    print(
        f"  upsert, first load         {first:7.2f} s  {count / first:10,.0f} rows/s  "
        f"ratio to plain {first / plain:.2f}x (target <= 1.5x)  {first_counts}"
    )
    print(
        f"  upsert, 1% changed reload  {reload:7.2f} s  {count / reload:10,.0f} rows/s  "
        f"ratio to first load {reload / first:.2f}x (target < 1)  {reload_counts}"
    )
    print(
        f"  rows actually changed {len(touched):,}; updated count {reload_counts['updated']:,}; "
        f"rows whose updated_at moved {moved:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as scratch:
            run("SQLite", f"sqlite:///{scratch}/bench.db", args.rows)
    if args.backend in ("postgresql", "both"):
        with pg_database() as url:
            run("PostgreSQL", url, args.rows)


@contextmanager
def pg_database() -> Iterator[str]:
    with postgres_server() as server:
        yield server.create_database("bench")


if __name__ == "__main__":
    main()
