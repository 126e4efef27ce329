"""Seeded choices that depend only on (seed, key), never on worker, process or call order.

Python's `hash()` is salted per process and the global `random` state depends on what ran before,
so both would make a run's output depend on how it was split across workers. A keyed BLAKE2b digest
gives the same number for the same (seed, key) on every machine.
"""

from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

T = TypeVar("T")


def stable_hash(seed: int, key: str) -> int:
    """A 64-bit integer determined by `seed` and `key` alone."""
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def seeded_index(seed: int, key: str, n: int) -> int:
    """An index in [0, n) chosen by (seed, key); 0 without hashing when there is one choice."""
    if n <= 1:
        return 0
    return stable_hash(seed, key) % n


def seeded_subset(seed: int, key: str, items: Sequence[T], k: int) -> list[T]:
    """`k` of `items` chosen by (seed, key), returned in their original order (all of them when k >= len)."""
    if k >= len(items):
        return list(items)
    ranked = sorted(range(len(items)), key=lambda i: (stable_hash(seed, f"{key}\x1f{i}"), i))
    return [items[i] for i in sorted(ranked[:k])]
