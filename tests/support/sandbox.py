"""A running sandbox and a clghub config pointing at it, for integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from clghub.config import ClghubConfig, load_config
from clghub.sandbox.config_out import SandboxEndpoints, write_config
from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import SandboxOptions

__all__ = ["AS_OF", "Sandbox", "running_sandbox"]

AS_OF = date(2026, 6, 30)


@dataclass
class Sandbox:
    server: SandboxServer
    config_path: Path

    @property
    def http_url(self) -> str:
        return self.server.http_url

    def config(self, **overrides: Any) -> ClghubConfig:
        """A fresh config (store url may be replaced) with short client timeouts."""
        config = load_config(self.config_path)
        for section in (config.sources.salesforce, config.sources.hubspot):
            section.timeout_seconds = 5
            section.max_retry_wait_seconds = 2
        if config.sources.product_usage.rest is not None:
            config.sources.product_usage.rest.timeout_seconds = 5
            config.sources.product_usage.rest.max_retry_wait_seconds = 2
        for key, value in overrides.items():
            target: Any = config
            *path, leaf = key.split("__")
            for part in path:
                target = getattr(target, part)
            setattr(target, leaf, value)
        return config

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method, self.http_url + path, json=body, timeout=30, headers={"Connection": "close"}
        )
        response.raise_for_status()
        return response.json()


@contextmanager
def running_sandbox(
    tmp_path: Path, *, accounts: int = 40, seed: int = 11, **options: Any
) -> Iterator[Sandbox]:
    with SandboxServer(
        SandboxOptions(accounts=accounts, seed=seed, as_of=AS_OF, **options)
    ) as server:
        path, _ = write_config(
            tmp_path / "clghub.toml",
            SandboxEndpoints(server.http_url, server.https_url, server.ca_path, AS_OF.isoformat()),
        )
        yield Sandbox(server, path)
