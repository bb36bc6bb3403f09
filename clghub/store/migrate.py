"""Schema migrations (Alembic), run on start-up or by ``clghub migrate``.

Developers add a revision after changing ``clghub/store/models.py``::

    python -m clghub.store.migrate revision "add clv tables"

which autogenerates against a scratch SQLite database at head; review the
generated file before committing it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

__all__ = ["current_revision", "head_revision", "upgrade"]

_SCRIPT_LOCATION = str(Path(__file__).parent / "migrations")
# Any constant works: it keys a PostgreSQL advisory lock so that two
# processes starting at once do not both run the same migration.
_MIGRATION_LOCK_KEY = 0x636C6768


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the store's schema to ``revision`` (idempotent)."""
    if revision == "head" and current_revision(engine) == head_revision():
        return
    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _revision(message: str) -> None:
    from clghub.store.engine import create_store_engine

    with tempfile.TemporaryDirectory() as scratch:
        engine = create_store_engine(f"sqlite:///{scratch}/scratch.db")
        upgrade(engine)
        config = _config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True)
        engine.dispose()


if __name__ == "__main__":  # pragma: no cover - a developer tool
    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit('usage: python -m clghub.store.migrate revision "message"')
    _revision(sys.argv[2])
