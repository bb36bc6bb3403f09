"""How the revenue workflows run their SQL: scratch tables and planner settings.

A scratch table is a temporary table in the caller's connection and
transaction, so a failed step rolls it back with everything else, and it is
dropped when the step ends. Names carry a prefix per workflow so two steps on
one connection never collide. Filled, it is analyzed, so PostgreSQL plans the
joins that read it on real sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Connection, Index, MetaData, Select, Table, text

__all__ = ["analyze", "fill", "scratch_table", "tune_for_analytics"]


@contextmanager
def scratch_table(
    connection: Connection, name: str, *columns: Column[Any], index: tuple[str, ...] = ()
) -> Iterator[Table]:
    """Create a temporary table for the duration of the ``with`` block.

    ``index`` names columns to index together (the join key the step reads by).
    """
    table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
    if index:
        Index(f"ix_{name}", *(table.c[c] for c in index))
    quoted = connection.dialect.identifier_preparer.quote(name)
    # A step that failed earlier on this connection (outside a transaction
    # that rolled back) may have left its table behind.
    connection.execute(text(f"DROP TABLE IF EXISTS {quoted}"))
    table.create(connection)
    yield table
    # Not reached when the block raised: the caller's rollback removes the
    # table with the rest (DDL is transactional on both backends), and a
    # statement in PostgreSQL's aborted transaction would hide the real error.
    connection.execute(text(f"DROP TABLE {quoted}"))


def fill(connection: Connection, table: Table, rows: Select[Any]) -> None:
    """``INSERT INTO table SELECT ...``, matching columns by name, then :func:`analyze`."""
    names = [column.name for column in rows.selected_columns]
    connection.execute(table.insert().from_select(names, rows))
    analyze(connection, table)


def analyze(connection: Connection, table: Table) -> None:
    """Give PostgreSQL's planner the table's real size and value spread.

    Temporary tables are never analyzed by autovacuum, and a table rewritten
    in this transaction still carries the statistics of what it held before:
    without them the planner guesses small and picks nested loops that take
    minutes on large stores. SQLite builds automatic indexes and needs nothing.
    """
    if connection.dialect.name == "postgresql":
        quoted = connection.dialect.identifier_preparer.format_table(table)
        connection.execute(text(f"ANALYZE {quoted}"))


# PostgreSQL's default of 4 MB makes hash aggregates over a large ledger spill
# to disk; a workflow statement needs more, and gets it for its transaction only.
_WORK_MEM_MB = 64


def tune_for_analytics(connection: Connection) -> None:
    """Settings for the workflow's own transaction (PostgreSQL; SQLite needs none).

    JIT compilation is switched off: each statement runs once, and compiling a
    large plan costs seconds the execution never wins back. ``work_mem`` is
    raised to 64 MB unless the server already allows more.
    """
    if connection.dialect.name != "postgresql":
        return
    connection.execute(text("SET LOCAL jit = off"))
    current = connection.execute(
        text("SELECT pg_size_bytes(current_setting('work_mem'))")
    ).scalar_one()
    if int(current) < _WORK_MEM_MB * 1024 * 1024:
        connection.execute(text(f"SET LOCAL work_mem = '{_WORK_MEM_MB}MB'"))
