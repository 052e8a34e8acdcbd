"""Rendering for the terminal: local times and JSON documents (tables live in `consultflow.export`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import click

from consultflow.domain.model import MAX_ID
from consultflow.export.text import shorten, table
from consultflow.export.values import local_time, to_jsonable

# Every id and round number a command takes: a whole number the database can hold, or a usage error.
ID = click.IntRange(1, MAX_ID)

__all__ = ["ChunkedEcho", "echo_lines", "emit_json", "local_time", "shorten", "table", "to_jsonable"]


def emit_json(value: Any, tz: ZoneInfo) -> None:
    """Exactly one JSON document on stdout; a list goes out item by item, as `json.dumps` would indent it.

    A bulk command's results (800,000 moved opinions, say) are never turned into one string.
    """
    if not isinstance(value, (list, tuple)) or not value:
        click.echo(json.dumps(to_jsonable(value, tz), ensure_ascii=False, indent=2))
        return
    out = ChunkedEcho()
    for n, item in enumerate(value):
        text = json.dumps(to_jsonable(item, tz), ensure_ascii=False, indent=2).replace("\n", "\n  ")
        out.write(("," if n else "[") + "\n  " + text)
    out.write("\n]\n")
    out.flush()


def echo_lines(lines: Iterable[str]) -> None:
    """Each line on stdout as it comes (the lines are never joined into one string)."""
    out = ChunkedEcho()
    for line in lines:
        out.write(line + "\n")
    out.flush()


class ChunkedEcho:
    """A text stream onto click.echo in 64 KiB chunks: long output reaches the terminal as it is written."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        """Queue `text`; echoed once enough has gathered."""
        self.parts.append(text)
        self.size += len(text)
        if self.size >= 1 << 16:
            self.flush()
        return len(text)

    def flush(self) -> None:
        """Echo what has gathered."""
        if self.parts:
            click.echo("".join(self.parts), nl=False)
        self.parts.clear()
        self.size = 0
