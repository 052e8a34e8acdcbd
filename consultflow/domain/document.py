"""A report as data: titled tables plus the same figures structured, ready for any format.

A table's rows are either held (a tuple) or streamed: a `Reread` runs its query again on every
pass, so a report of a million opinions is written row by row and never held. Renderers may pass
over a table twice (column widths first); they never keep its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

Cell = str | int | float | None
Row = tuple[Cell, ...]
T = TypeVar("T")


class Reread(Generic[T]):
    """Items read afresh from their source on every iteration: rows too many to hold."""

    __slots__ = ("_source",)

    def __init__(self, source: Callable[[], Iterator[T]]) -> None:
        self._source = source

    def __iter__(self) -> Iterator[T]:
        return self._source()


@dataclass(frozen=True)
class Table:
    """One titled table; `key` names it in file formats (a sheet, a JSON member)."""

    key: str
    title: str
    headers: tuple[str, ...]
    rows: Iterable[Row]  # a tuple, or a Reread; never a one-shot iterator


@dataclass(frozen=True)
class Document:
    """A whole report."""

    title: str
    subtitle: str
    tables: tuple[Table, ...]
    figures: Mapping[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def held(doc: Document) -> Document:
    """`doc` with every streamed part read once and kept: for a web page, which renders all at once."""
    return replace(
        doc,
        tables=tuple(replace(t, rows=tuple(t.rows)) for t in doc.tables),
        figures={k: _held(v) for k, v in doc.figures.items()},
    )


def _held(value: object) -> object:
    if isinstance(value, Reread):
        return [_held(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _held(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_held(v) for v in value]
    return value
