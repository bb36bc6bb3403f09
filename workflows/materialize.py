"""Intermediate results kept as temporary tables made straight from a SELECT.

``CREATE TEMPORARY TABLE ... AS SELECT`` rather than ``INSERT INTO ...
SELECT``: PostgreSQL (up to 15 at least) never plans the SELECT of an INSERT
in parallel, but does for a table created from a query, which halves the
time of a scan over the whole usage table on two cores. SQLite runs both
the same way. The table lives in the caller's transaction and is dropped
when the ``with`` block ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Column,
    CompoundSelect,
    Connection,
    Index,
    MetaData,
    Row,
    Select,
    Table,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

__all__ = ["CreateTemporaryTableAs", "Query", "analyze", "temporary_result"]

Query = Select[Any] | CompoundSelect[Any]


class CreateTemporaryTableAs(Executable, ClauseElement):
    """``CREATE TEMPORARY TABLE name AS <select>``."""

    inherit_cache = False

    def __init__(self, name: str, query: Query) -> None:
        self.name = name
        self.query = query


@compiles(CreateTemporaryTableAs)
def _create_as(element: CreateTemporaryTableAs, compiler: SQLCompiler, **kw: Any) -> str:
    name = compiler.preparer.quote(element.name)
    return f"CREATE TEMPORARY TABLE {name} AS {compiler.process(element.query, **kw)}"


def analyze(connection: Connection, table: Table) -> None:
    """Give the planner statistics of a freshly filled temporary table.

    Without them PostgreSQL guesses its size, and a bad guess about a table
    of customers turns every later join into nested loops.
    """
    connection.execute(text(f"ANALYZE {connection.dialect.identifier_preparer.quote(table.name)}"))


@contextmanager
def temporary_result(
    connection: Connection,
    name: str,
    query: Query,
    *,
    index: tuple[str, ...] = ("account_id",),
    rows: Sequence[Row[Any]] | None = None,
) -> Iterator[Table]:
    """The rows of ``query`` in an analyzed temporary table, for the ``with`` block.

    ``index`` names the columns later joins look rows up by (an empty tuple
    for none): without it SQLite may scan the whole table for every row of
    the other side of a join. ``rows``: the query's rows read already (on
    another connection); the table still takes its columns and their types
    from ``query`` (run with ``LIMIT 0``), then the rows go in (PostgreSQL:
    ``COPY``).
    """
    quoted = connection.dialect.identifier_preparer.quote(name)
    # A step that failed earlier on this connection may have left it behind.
    connection.execute(text(f"DROP TABLE IF EXISTS {quoted}"))
    connection.execute(CreateTemporaryTableAs(name, query if rows is None else query.limit(0)))
    table = Table(
        name, MetaData(), *(Column(column.key, column.type) for column in query.selected_columns)
    )
    if rows:
        _insert(connection, table, rows)
    if index:
        Index(f"ix_{name}", *(table.c[column] for column in index)).create(connection)
    analyze(connection, table)
    yield table
    # Not reached when the block raised: the caller's rollback removes it.
    connection.execute(text(f"DROP TABLE {quoted}"))


def _insert(connection: Connection, table: Table, rows: Sequence[Row[Any]]) -> None:
    names = [column.name for column in table.columns]
    if connection.dialect.name == "postgresql":
        quote = connection.dialect.identifier_preparer.quote
        driver = connection.connection.driver_connection
        assert driver is not None
        # The caller's transaction: the driver connection is the same one.
        with (
            driver.cursor() as cursor,
            cursor.copy(
                f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(tuple(row))
        return
    connection.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])
