"""Aligned text tables that count Chinese characters as two columns."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return str(value).replace("\n", " ")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain aligned table."""
    return "\n".join(table_lines(headers, rows))


def table_lines(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The aligned table line by line: one pass over `rows` for the widths, one to write (rows re-readable)."""
    widths = [display_width(h) for h in headers]
    for row in rows:
        for i, value in enumerate(row):
            width = display_width(_cell(value))
            widths[i] = max(widths[i], width)
    yield "  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()
    yield "  ".join("-" * w for w in widths)
    for row in rows:
        yield "  ".join(_pad(_cell(v), w) for v, w in zip(row, widths, strict=True)).rstrip()


def shorten(text: str, width: int = 40) -> str:
    """`text` cut to about `width` columns with an ellipsis."""
    out: list[str] = []
    used = 0
    for ch in text.replace("\n", " "):
        w = display_width(ch)
        if used + w > width - 1:
            return "".join(out) + "…"
        out.append(ch)
        used += w
    return "".join(out)
