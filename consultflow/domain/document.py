"""A report as data: titled tables plus the same figures structured, ready for any format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    """One titled table; `key` names it in file formats (a sheet, a JSON member)."""

    key: str
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Document:
    """A whole report."""

    title: str
    subtitle: str
    tables: tuple[Table, ...]
    figures: Mapping[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
