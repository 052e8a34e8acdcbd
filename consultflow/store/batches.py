"""Bounded batches: no statement grows with the input (PostgreSQL takes at most 65,535 parameters)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

BATCH_SIZE = 1000


def chunked(items: Sequence[T], size: int = BATCH_SIZE) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items, in order."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
