"""A report as data: titled tables plus the same figures structured, ready for any format.

A table's rows are either held (a tuple) or streamed: a `Reread` runs its query again on every
pass, so a report of a million opinions is written row by row and never held. Renderers may pass
over a table twice (column widths first); they never keep its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import islice
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
    cut: bool = False  # more rows exist than are held (a web page shows the first ones)


@dataclass(frozen=True)
class Document:
    """A whole report."""

    title: str
    subtitle: str
    tables: tuple[Table, ...]
    figures: Mapping[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def held(doc: Document, *, at_most: int | None = None) -> Document:
    """`doc` with every streamed part read once and kept: for a web page, which renders all at once.

    With `at_most`, each table and each streamed list keeps its first rows only, and a cut table
    says so: a public page of a province's account stays small whatever the consultation's size.
    """
    return replace(
        doc,
        tables=tuple(_held_table(t, at_most) for t in doc.tables),
        figures={k: _held(v, at_most) for k, v in doc.figures.items()},
    )


def _held_table(table: Table, at_most: int | None) -> Table:
    rows = tuple(table.rows if at_most is None else islice(table.rows, at_most + 1))
    if at_most is not None and len(rows) > at_most:
        return replace(table, rows=rows[:at_most], cut=True)
    return replace(table, rows=rows)


def _held(value: object, at_most: int | None) -> object:
    if isinstance(value, Reread):
        return [_held(v, at_most) for v in (value if at_most is None else islice(value, at_most))]
    if isinstance(value, Mapping):
        return {k: _held(v, at_most) for k, v in value.items()}
    if isinstance(value, list):
        return [_held(v, at_most) for v in value]
    return value
