"""Imports every table module so ``SQLModel.metadata`` knows the whole schema."""

from clghub.store import models

__all__ = ["models"]
