"""Fixtures shared by every test: stores on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from clghub.config.secrets import REDACTOR
from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade
from tests.support.pgserver import PostgresServer, postgres_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    # Never skipped: a machine without PostgreSQL fails these tests loudly,
    # so CI cannot pass while silently leaving PostgreSQL untested.
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    return pg_server.create_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """A migrated store, once per backend."""
    eng = create_store_engine(store_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's own clghub settings must not leak into tests.
    for name in list(os.environ):
        if name.startswith("CLGHUB_"):
            monkeypatch.delenv(name, raising=False)
    yield
    REDACTOR.clear()
