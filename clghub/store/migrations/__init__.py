"""Alembic migrations of the clghub store."""
