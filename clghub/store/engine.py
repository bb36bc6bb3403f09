"""Opening the store: SQLite by file path (the default) or PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL

from clghub.config.models import ClghubConfig
from clghub.config.refs import SecretRef

__all__ = ["create_store_engine", "describe_url", "open_store", "store_url"]

_SQLITE_BUSY_TIMEOUT_MS = 60_000


def store_url(config: ClghubConfig) -> URL:
    """The configured store URL, SQLite paths made absolute against the config's folder."""
    raw = config.store.url.reveal() if isinstance(config.store.url, SecretRef) else config.store.url
    url = make_url(raw)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not Path(database).is_absolute():
            url = url.set(database=str(config.resolve_path(database)))
    return url


def describe_url(url: URL | str) -> str:
    """The URL with any password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def create_store_engine(url: URL | str, *, echo: bool = False, read_only: bool = False) -> Engine:
    """An engine with the settings clghub relies on.

    SQLite: WAL (readers never block the writer), foreign keys on, a generous
    busy timeout, and ``BEGIN IMMEDIATE`` for every transaction, so two
    writers queue up instead of failing on a lock upgrade. ``read_only``
    engines begin deferred transactions and never block writers.
    PostgreSQL: the psycopg 3 driver.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, echo=echo, pool_pre_ping=True, future=True)
    if backend != "sqlite":
        raise ValueError(f"unsupported store backend '{backend}'")

    database = parsed.database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {
        "check_same_thread": False,
        "timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000,
    }
    engine = create_engine(parsed, echo=echo, connect_args=connect_args, future=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def open_store(
    config: ClghubConfig, *, migrate: bool | None = None, read_only: bool = False
) -> Engine:
    """Create the engine for ``config`` and bring the schema to head if asked."""
    from clghub.store.migrate import upgrade

    engine = create_store_engine(store_url(config), echo=config.store.echo_sql, read_only=read_only)
    if config.store.auto_migrate if migrate is None else migrate:
        upgrade(engine)
    return engine
