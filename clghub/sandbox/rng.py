"""Deterministic randomness: per-entity generators and stateless hashes.

Every account draws from its own :class:`random.Random`, seeded from the
sandbox seed and the account's index, so account ``i`` looks the same whether
the org has 100 accounts or 100,000. Figures computed on demand (daily usage)
use :func:`mix` instead: a pure function of its integer inputs, with a numpy
twin that gives bit-identical results on whole arrays.
"""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt

__all__ = ["MASK64", "entity_rng", "mix", "mix_array", "unit", "unit_array"]

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TO_UNIT = 1.0 / float(1 << 53)


def _splitmix(value: int) -> int:
    value = (value + _GOLDEN) & MASK64
    value = ((value ^ (value >> 30)) * _M1) & MASK64
    value = ((value ^ (value >> 27)) * _M2) & MASK64
    return value ^ (value >> 31)


def mix(*parts: int) -> int:
    """A 64-bit hash of non-negative integers (splitmix64, chained)."""
    state = 0
    for part in parts:
        state = _splitmix(state ^ (part & MASK64))
    return state


def unit(*parts: int) -> float:
    """A uniform number in [0, 1) that depends only on ``parts``."""
    return (mix(*parts) >> 11) * _TO_UNIT


def entity_rng(seed: int, stream: int, index: int) -> random.Random:
    """The generator of one entity (``stream`` names the kind, ``index`` the entity)."""
    return random.Random(mix(seed, stream, index))


U64Array = npt.NDArray[np.uint64]


def _splitmix_array(value: U64Array) -> U64Array:
    # Array arithmetic on uint64 wraps modulo 2**64 like the masked ints above.
    value = value + np.uint64(_GOLDEN)
    value = (value ^ (value >> np.uint64(30))) * np.uint64(_M1)
    value = (value ^ (value >> np.uint64(27))) * np.uint64(_M2)
    return value ^ (value >> np.uint64(31))


def mix_array(*parts: int | U64Array) -> U64Array:
    """:func:`mix` over arrays: each part is a scalar or an array (broadcast)."""
    arrays = [
        np.asarray(part & MASK64 if isinstance(part, int) else part, dtype=np.uint64)
        for part in parts
    ]
    shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
    state = np.zeros(shape, dtype=np.uint64)
    for array in arrays:
        state = _splitmix_array(state ^ array)
    return state


def unit_array(*parts: int | U64Array) -> npt.NDArray[np.float64]:
    """:func:`unit` over arrays."""
    return (mix_array(*parts) >> np.uint64(11)).astype(np.float64) * _TO_UNIT
