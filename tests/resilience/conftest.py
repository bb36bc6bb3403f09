"""One sandbox for the resilience tests, and the outcome of a clean, fault-free run on it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clghub.sandbox.server import SandboxServer
from clghub.store.engine import create_store_engine
from tests.support.chaos import (
    Outcome,
    capture_outcome,
    chaos_sandbox,
    cli,
    fresh_org,
    stage_seconds,
    write_run_config,
)
from tests.support.store_state import SOURCE_CLOCK, full_snapshot

ACCOUNTS = 30


@dataclass
class Reference:
    """What an uninterrupted run leaves behind, and how long each of its stages took."""

    outcome: Outcome
    seconds: dict[str, float]
    echoed: Outcome
    """The outcome once a second run has read back the first one's CRM writes."""


@dataclass
class Org:
    server: SandboxServer
    folder: Path
    reference: Reference

    def fresh_run(self, name: str, *, extra: str = "") -> tuple[Path, Path]:
        """A reset org and an empty store: the config and the store's path."""
        folder = self.folder / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        config = write_run_config(self.server, folder, extra=extra)
        fresh_org(self.server, config)
        return config, folder / "clghub.db"

    def outcome(self, store: Path, *, clocks: frozenset[str] = frozenset()) -> Outcome:
        return capture_outcome(self.server, f"sqlite:///{store}", clocks=clocks)

    def echoed_reference(self, clocks: frozenset[str]) -> Outcome:
        """The reference after its second run, its store compared with other ``clocks``."""
        engine = create_store_engine(f"sqlite:///{self.folder / 'reference' / 'clghub.db'}")
        try:
            store = full_snapshot(engine, clocks=clocks)
        finally:
            engine.dispose()
        echoed = self.reference.echoed
        return Outcome(store, echoed.crm, echoed.slack)


@pytest.fixture(scope="package")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    folder = tmp_path_factory.mktemp("resilience")
    with chaos_sandbox(ACCOUNTS) as server:
        empty = Outcome({}, {}, [])
        placeholder = Org(server, folder, Reference(empty, {}, empty))
        config, store = placeholder.fresh_run("reference")
        clean = cli(config, "run")
        assert clean.code == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
        outcome, seconds = placeholder.outcome(store), stage_seconds(store)
        again = cli(config, "run")
        assert again.code == 0, again.stdout[-3000:] + again.stderr[-3000:]
        echoed = placeholder.outcome(store, clocks=SOURCE_CLOCK)
        placeholder.reference = Reference(outcome, seconds, echoed)
        yield placeholder
