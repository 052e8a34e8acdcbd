"""Rendering for the terminal: local times and JSON documents (tables live in `consultflow.export`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, cast
from zoneinfo import ZoneInfo

import click

from consultflow.domain.model import MAX_ID
from consultflow.export.formats import dump_json
from consultflow.export.text import shorten, table
from consultflow.export.values import local_time, to_jsonable

# Every id and round number a command takes: a whole number the database can hold, or a usage error.
ID = click.IntRange(1, MAX_ID)

__all__ = ["ChunkedEcho", "echo_lines", "emit_json", "local_time", "shorten", "table", "to_jsonable"]


def emit_json(value: Any, tz: ZoneInfo) -> None:
    """Exactly one JSON document on stdout, written as it is read.

    A list (or any iterator) goes out item by item, as `json.dumps` would indent it: a bulk
    command's 800,000 results are never one string. A streamed part of a result (a `Reread`,
    such as every opinion of `audit rounds --json`) is written as its rows are read.
    """
    out = ChunkedEcho()
    if isinstance(value, (list, tuple, Iterator)):
        count = 0
        for count, item in enumerate(value, 1):
            text = json.dumps(to_jsonable(item, tz), ensure_ascii=False, indent=2).replace("\n", "\n  ")
            out.write(("," if count > 1 else "[") + "\n  " + text)
        out.write("\n]\n" if count else "[]\n")
    else:
        dump_json(to_jsonable(value, tz), cast("TextIO", out))
        out.write("\n")
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
