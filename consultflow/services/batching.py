"""Taking a streamed read a bounded batch at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size`, as they come (a streamed query is never held whole)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
