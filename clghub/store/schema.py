"""Imports every table module so ``SQLModel.metadata`` knows the whole schema."""

from clghub.store import models, outputs, revenue, value

__all__ = ["models", "outputs", "revenue", "value"]
