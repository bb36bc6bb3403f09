"""What every command shares: the config path, loading, the store, output helpers."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import typer
from sqlalchemy import Engine

from clghub.config import ClghubConfig, default_config_path, load_config
from clghub.config.secrets import REDACTOR
from clghub.logs import configure_logging

__all__ = ["AppState", "fail", "state_of"]


@dataclass
class AppState:
    config_option: Path | None = None
    debug: bool = False
    _config: ClghubConfig | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return default_config_path(str(self.config_option) if self.config_option else None)

    def config(self) -> ClghubConfig:
        """Load the config once (a ConfigError becomes exit 2 in ``main``)."""
        if self._config is None:
            self._config = load_config(self.config_path)
            configure_logging(
                "DEBUG" if self.debug else self._config.logging.level,
                json_format=self._config.logging.json_format,
            )
        return self._config

    def engine(self, *, read_only: bool = False) -> Engine:
        from clghub.store.engine import open_store

        if self._engine is None:
            self._engine = open_store(self.config(), read_only=read_only)
        return self._engine


def state_of(ctx: typer.Context) -> AppState:
    state = ctx.find_root().obj
    if not isinstance(state, AppState):  # commands invoked outside the app (tests)
        state = AppState()
        ctx.find_root().obj = state
    return state


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {REDACTOR.redact(message)}", err=True)
    sys.exit(code)
