"""Seeded random streams: one independent ``random.Random`` per purpose, derived from the seed.

A stream's seed is the first 8 bytes of SHA-256 over ``"<seed>:<label>"``, so it depends on
nothing but the run's seed and the stream's name: not on ``PYTHONHASHSEED`` (``hash()`` of a
string changes from process to process), not on the order in which streams are made, and not
on the machine. Adding an agent therefore leaves every other agent's stream unchanged.

>>> derive_rng(1, "agent:ann").random() == derive_rng(1, "agent:ann").random()
True
>>> derive_rng(1, "agent:ann").random() == derive_rng(2, "agent:ann").random()
False
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["derive_rng", "derive_seed"]


def derive_seed(seed: int, label: str) -> int:
    """A 64-bit seed for the stream ``label`` of run ``seed``."""
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def derive_rng(seed: int, label: str) -> random.Random:
    """The stream ``label`` of run ``seed``: a ``random.Random`` (Mersenne Twister, which
    gives the same numbers on every platform)."""
    return random.Random(derive_seed(seed, label))
