"""Rendering: aligned tables that count Chinese characters as two columns, and JSON documents."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import click


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain aligned table."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], display_width(value))
    lines = ["  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(_pad(v, w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells)
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return str(value).replace("\n", " ")


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


def local_time(moment: datetime | None, tz: ZoneInfo) -> str:
    """A stored UTC moment as local wall time with its offset, for people."""
    if moment is None:
        return "-"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def to_jsonable(value: Any, tz: ZoneInfo) -> Any:
    """Dataclasses, enums and datetimes as JSON values; times in local ISO 8601 with offset."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), tz) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, tz) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, tz) for v in value]
    return value


def emit_json(value: Any, tz: ZoneInfo) -> None:
    """Exactly one JSON document on stdout."""
    click.echo(json.dumps(to_jsonable(value, tz), ensure_ascii=False, indent=2))
