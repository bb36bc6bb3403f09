"""Sandbox fixtures: small generated orgs, in-process and over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from clghub.sandbox.generator import generate
from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import SandboxOptions, SandboxState

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session")
def small_state() -> Iterator[SandboxState]:
    """A generated org of 150 accounts, shared read-only by tests that only look."""
    state = SandboxState(SandboxOptions(seed=11, accounts=150, as_of=AS_OF))
    generate(state)
    yield state
    state.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """A running sandbox (HTTP and HTTPS on free loopback ports), shared by a module."""
    options = SandboxOptions(seed=5, accounts=60, as_of=AS_OF, slack_message_interval=0.0)
    with SandboxServer(options) as server:
        yield server
