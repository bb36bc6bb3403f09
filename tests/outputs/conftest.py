"""Fixtures for the output tests: a sandbox per test, a config pointing at it, store data."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from clghub.config import ClghubConfig, load_config
from clghub.sandbox.config_out import SandboxEndpoints, write_config
from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import SandboxOptions
from clghub.store.engine import create_store_engine
from clghub.store.migrate import upgrade

AS_OF = date(2026, 11, 20)


@pytest.fixture
def sandbox_options() -> SandboxOptions:
    """Override in a test module for a bigger org or other limits."""
    return SandboxOptions(accounts=24, as_of=AS_OF, slack_message_interval=1.0)


@pytest.fixture
def sandbox(
    sandbox_options: SandboxOptions, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SandboxServer]:
    # requests prefers these variables over a session's own CA bundle, which
    # would hide the sandbox's certificate authority from the Salesforce client.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with SandboxServer(sandbox_options) as server:
        yield server
        # hubspot-api-client opens a connection pool per API object and leaves it
        # to the garbage collector; collect now, so the server sees those
        # connections close before it shuts down rather than after.
        gc.collect()
    # Whatever the stopped server left behind is collected here, inside this
    # test, not during a later one.
    gc.collect()


@pytest.fixture
def config_path(sandbox: SandboxServer, tmp_path: Path) -> Path:
    path, _ = write_config(
        tmp_path / "clghub.toml",
        SandboxEndpoints(
            sandbox.http_url, sandbox.https_url, sandbox.ca_path, as_of=AS_OF.isoformat()
        ),
    )
    return path


@pytest.fixture
def config(config_path: Path) -> ClghubConfig:
    loaded = load_config(config_path)
    # Fast retries: the sandbox's faults say Retry-After 1.
    for section in (loaded.sources.salesforce, loaded.sources.hubspot, loaded.slack):
        section.max_retry_wait_seconds = 2.0
    return loaded


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated SQLite store (for sandbox tests that need not run on both backends)."""
    engine = create_store_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()
