"""Imports every table module so ``SQLModel.metadata`` knows the whole schema."""

from clghub.store import models, revenue, value

__all__ = ["models", "revenue", "value"]
