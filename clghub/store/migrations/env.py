"""Alembic environment: runs on the connection clghub hands it."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import clghub.store.schema  # noqa: F401  (registers every table on the metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through clghub (clghub migrate), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
