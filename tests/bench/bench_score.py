"""Benchmark: ``clghub score`` against one GROUP BY scan of the usage table.

Builds a book of customers (accounts, people, contacts, deals with renewals
and expansions, meetings, calls, tickets) with 90 days of daily usage over 5
metrics per account, loaded in bulk (COPY on PostgreSQL, executemany on
SQLite), then in the same run and on the same database times:

- one ``SELECT account_id, metric, count(*), sum(value) FROM usage_daily
  GROUP BY account_id, metric`` (all groups fetched), and
- ``run_score`` (ARR ledger and bridge, retention, time to value, value
  score, CLV, incentives, plays), as ``clghub score`` runs it.

    python tests/bench/bench_score.py [--pg-accounts 100000] [--pg-small 10000]
                                      [--sqlite-accounts 10000] [--backend both]

Targets: score <= 3x the scan on each database; on PostgreSQL,
score(100k accounts) / score(10k) <= 12 (linear).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import Engine, insert, text

from clghub.config.models import ClghubConfig
from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade
from clghub.store.models import (
    Account,
    Activity,
    Contact,
    Opportunity,
    Person,
    Ticket,
    table_of,
)
from clghub.workflows.score import run_score
from tests.support.pgserver import postgres_server

AS_OF = date(2026, 6, 30)
DAYS = [AS_OF - timedelta(days=n) for n in range(89, -1, -1)]  # 90 days ending on as_of
METRICS = ("active_users", "automations_run", "integrations_synced", "reports_built", "outcome_kpi")
SEGMENTS = ("smb", "mid_market", "enterprise")
ROLES = ("economic_buyer", "champion", "user")
PEOPLE = 60
CHUNK = 50_000
NOW = datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
BASELINE = text(
    "SELECT account_id, metric, count(*), sum(value) FROM usage_daily GROUP BY account_id, metric"
)


# --------------------------------------------------------------------------- the book


def _tracked() -> dict[str, Any]:
    return {"created_at": NOW, "updated_at": NOW, "row_version": 1}


def people() -> list[dict[str, Any]]:
    teams = ("sales", "cs", "marketing")
    return [
        {
            **_tracked(),
            "id": n,
            "source": "salesforce",
            "source_id": f"005{n:09d}",
            "name": f"Person {n}",
            "team": teams[n % 3],
            "is_deleted": False,
            "is_active": True,
        }
        for n in range(1, PEOPLE + 1)
    ]


class Book:
    """Every table's rows for ``accounts`` customers, generated lazily and reproducibly."""

    def __init__(self, accounts: int, seed: int = 11) -> None:
        self.accounts = accounts
        self.rng = random.Random(seed)
        self.starts = [
            AS_OF - timedelta(days=self.rng.randrange(20, 1100)) for _ in range(accounts)
        ]

    def account_rows(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(1)
        for n in range(1, self.accounts + 1):
            yield {
                **_tracked(),
                "id": n,
                "name": f"Customer {n}",
                "external_key": f"acct-{n}",
                "segment": SEGMENTS[n % 3] if n % 10 else None,
                "employees": rng.choice((20, 150, 800, 5000)),
                "seats": rng.choice((5, 20, 50, 200, 500)),
                "outcome_target": 100.0,
                "owner_id": 1 + n % PEOPLE,
                "csm_id": 1 + (n * 7) % PEOPLE,
                "lead_source": ("web", "event", "partner")[n % 3],
                "is_deleted": False,
                "origin_source": "salesforce",
                "origin_source_id": f"001{n:012d}",
            }

    def deal_rows(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(2)
        sequence = 0
        for n in range(1, self.accounts + 1):
            start = self.starts[n - 1]
            arr = rng.choice((6_000, 24_000, 60_000, 150_000))
            kind = "new"
            while start <= AS_OF:
                sequence += 1
                yield self._deal(sequence, n, kind, arr, start)
                if rng.random() < 0.15:  # a mid-term expansion
                    sequence += 1
                    yield self._deal(
                        sequence, n, "expansion", arr // 5, start + timedelta(days=120)
                    )
                if rng.random() < 0.12:
                    break  # churned at the end of this term
                start = start + timedelta(days=365)
                arr = int(arr * rng.choice((0.9, 1.0, 1.1, 1.3)))
                kind = "renewal"

    @staticmethod
    def _deal(sequence: int, account: int, kind: str, arr: int, start: date) -> dict[str, Any]:
        end = start + timedelta(days=364)
        if kind == "expansion":
            end = start + timedelta(days=244)
        return {
            **_tracked(),
            "source": "salesforce",
            "source_id": f"006{sequence:012d}",
            "account_id": account,
            "type": kind,
            "status": "won",
            "stage": "Closed Won",
            "arr": Decimal(arr),
            "currency": "USD",
            "close_date": min(start, AS_OF),
            "contract_start": start,
            "contract_end": end,
            "owner_ref": f"005{1 + account % PEOPLE:09d}",
            "lead_source": "web",
            "is_deleted": False,
        }

    def contact_rows(self) -> Iterator[dict[str, Any]]:
        for n in range(1, self.accounts + 1):
            for role in ROLES:
                yield {
                    **_tracked(),
                    "source": "salesforce",
                    "source_id": f"003{n:010d}{role[0]}",
                    "account_id": n,
                    "name": f"{role} {n}",
                    "role": role,
                    "is_deleted": False,
                }

    def activity_rows(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(3)
        sequence = 0
        for n in range(1, self.accounts + 1):
            for _ in range(rng.choice((0, 1, 2, 3, 4))):
                sequence += 1
                role = rng.choice(ROLES)
                yield {
                    **_tracked(),
                    "source": "salesforce",
                    "source_id": f"00U{sequence:012d}",
                    "account_id": n,
                    "contact_ref": f"003{n:010d}{role[0]}",
                    "kind": rng.choice(("meeting", "meeting", "call", "email")),
                    "occurred_at": NOW - timedelta(days=rng.randrange(0, 300), hours=3),
                    "is_deleted": False,
                }

    def ticket_rows(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(4)
        sequence = 0
        for n in range(1, self.accounts + 1):
            for _ in range(rng.choice((0, 0, 1, 2, 5))):
                sequence += 1
                yield {
                    **_tracked(),
                    "source": "salesforce",
                    "source_id": f"500{sequence:012d}",
                    "account_id": n,
                    "priority": rng.choice(("low", "medium", "high", "urgent")),
                    "status": "closed",
                    "opened_at": NOW - timedelta(days=rng.randrange(0, 150)),
                    "csat": rng.choice((None, 3.0, 4.0, 5.0)),
                    "is_deleted": False,
                }

    def usage_lines(self) -> Iterator[str]:
        """Tab-separated COPY lines: source, account_key, account_id, metric, day, value."""
        days = [d.isoformat() for d in DAYS]
        stamp = NOW.isoformat()
        tail = f"\t{stamp}\t{stamp}\t1\n"
        for n in range(1, self.accounts + 1):
            head = f"usage\tacct-{n}\t{n}\t"
            users = 1 + n % 40
            for m, metric in enumerate(METRICS):
                base = (n * (m + 3)) % 17
                parts = [
                    f"{head}{metric}\t{day}\t{(base + (k * (m + 1) + n) % 9) * (users if m == 0 else 1)}{tail}"
                    for k, day in enumerate(days)
                ]
                yield "".join(parts)


# --------------------------------------------------------------------------- loading


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_sqlite(engine: Engine, book: Book) -> None:
    """executemany INSERTs; usage rows through the driver, stored as the column types store them."""
    sources = [
        (Person, iter(people())),
        (Account, book.account_rows()),
        (Opportunity, book.deal_rows()),
        (Contact, book.contact_rows()),
        (Activity, book.activity_rows()),
        (Ticket, book.ticket_rows()),
    ]
    for model, rows in sources:
        for chunk in _chunks(rows):
            with engine.begin() as connection:
                connection.execute(insert(table_of(model)), chunk)
    # The same text SQLAlchemy's SQLite types write: ISO dates, naive UTC timestamps.
    stamp = NOW.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    columns = (
        "source, account_key, account_id, metric, day, value, created_at, updated_at, row_version"
    )
    statement = f"INSERT INTO usage_daily ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        for block in book.usage_lines():
            rows = []
            for line in block.splitlines():
                source, key, account, metric, day, value, *_ = line.split("\t")
                rows.append((source, key, int(account), metric, day, float(value), stamp, stamp))
            cursor.executemany(statement, rows)
        cursor.execute("COMMIT")
        cursor.execute("ANALYZE")
    finally:
        raw.close()


def _copy_rows(
    engine: Engine, cursor: Any, model: type[Any], rows: Iterator[dict[str, Any]]
) -> None:
    """COPY rows, each value stored the way the column type stores it (money as units)."""
    table = table_of(model)
    first = next(rows, None)
    if first is None:
        return
    columns = list(first)
    convert = [table.c[c].type.bind_processor(engine.dialect) for c in columns]

    def values(row: dict[str, Any]) -> list[Any]:
        return [f(row[c]) if f else row[c] for c, f in zip(columns, convert, strict=True)]

    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write_row(values(first))
        for row in rows:
            copy.write_row(values(row))


def load_postgresql(engine: Engine, book: Book) -> None:
    """COPY every table; usage_daily's indexes are built after its load, as a bulk import would."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        _copy_rows(engine, cursor, Person, iter(people()))
        _copy_rows(engine, cursor, Account, book.account_rows())
        _copy_rows(engine, cursor, Opportunity, book.deal_rows())
        _copy_rows(engine, cursor, Contact, book.contact_rows())
        _copy_rows(engine, cursor, Activity, book.activity_rows())
        _copy_rows(engine, cursor, Ticket, book.ticket_rows())
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'usage_daily' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("ALTER TABLE usage_daily DROP CONSTRAINT uq_usage_daily")
        columns = "source, account_key, account_id, metric, day, value, created_at, updated_at, row_version"
        with cursor.copy(f"COPY usage_daily ({columns}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for block in book.usage_lines():
                buffer.write(block)
                if buffer.tell() > 8_000_000:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        cursor.execute(
            "ALTER TABLE usage_daily ADD CONSTRAINT uq_usage_daily "
            "UNIQUE (source, account_key, metric, day)"
        )
        for _name, definition in indexes:
            cursor.execute(definition)
        for table in ("person", "account", "opportunity", "contact", "activity", "ticket"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        raw.commit()
        raw.driver_connection.autocommit = True  # VACUUM runs outside a transaction
        cursor.execute("VACUUM ANALYZE")
    finally:
        raw.close()


# --------------------------------------------------------------------------- timing


def time_scan(engine: Engine) -> tuple[float, int]:
    """The best of two runs of the GROUP BY scan (the first also warms the cache)."""
    best = float("inf")
    groups = 0
    for _ in range(2):
        started = time.perf_counter()
        with engine.connect() as connection:
            groups = len(connection.execute(BASELINE).all())
        best = min(best, time.perf_counter() - started)
    return best, groups


def measure(label: str, url: str, accounts: int, load: Any) -> float:
    engine = create_store_engine(url)
    upgrade(engine)
    book = Book(accounts)
    started = time.perf_counter()
    load(engine, book)
    loaded = time.perf_counter() - started
    scan, groups = time_scan(engine)
    config = ClghubConfig()
    started = time.perf_counter()
    report = run_score(engine, config, as_of=AS_OF)
    score = time.perf_counter() - started
    engine.dispose()
    usage_rows = accounts * len(DAYS) * len(METRICS)
    print(f"{label}: {accounts:,} accounts, {usage_rows:,} usage rows (loaded in {loaded:.0f} s)")
    print(f"  GROUP BY account, metric scan  {scan:8.2f} s  ({groups:,} groups)")
    print(
        f"  clghub score                   {score:8.2f} s  ratio {score / scan:.2f}x (target <= 3x)"
    )
    for step in report.steps:
        print(f"    {step.name:<14} {step.seconds:7.2f} s  {step.counts}")
    return score


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-accounts", type=int, default=100_000)
    parser.add_argument("--pg-small", type=int, default=10_000)
    parser.add_argument("--sqlite-accounts", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as scratch:
            measure("SQLite", f"sqlite:///{scratch}/bench.db", args.sqlite_accounts, load_sqlite)
    if args.backend in ("postgresql", "both"):
        with postgres_server() as server:
            small = measure(
                "PostgreSQL", server.create_database("small"), args.pg_small, load_postgresql
            )
            large = measure(
                "PostgreSQL", server.create_database("large"), args.pg_accounts, load_postgresql
            )
        print(
            f"PostgreSQL score({args.pg_accounts:,}) / score({args.pg_small:,}) = "
            f"{large / small:.2f} (target <= {1.2 * args.pg_accounts / args.pg_small:g}, linear)"
        )


if __name__ == "__main__":
    main()
