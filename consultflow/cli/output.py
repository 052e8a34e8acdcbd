"""Rendering for the terminal: local times and JSON documents (tables live in `consultflow.export`)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TextIO, cast
from zoneinfo import ZoneInfo

import click

from consultflow.domain.model import MAX_ID
from consultflow.export.formats import dump_json
from consultflow.export.text import shorten, table
from consultflow.export.values import local_time, to_jsonable

# Every id and round number a command takes: a whole number the database can hold, or a usage error.
ID = click.IntRange(1, MAX_ID)

__all__ = [
    "ChunkedEcho",
    "echo_lines",
    "emit_json",
    "held_back",
    "local_time",
    "shorten",
    "show_held",
    "table",
    "to_jsonable",
]


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


def held_back(write: Callable[[], None]) -> IO[str]:
    """What `write` puts on stdout, kept in a spool file instead (memory, then disk past 8 MB).

    Personal information read on record is shown only once the record has committed:
    `show_held` writes the spool out after the transaction.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=1 << 23, mode="w+", encoding="utf-8")  # noqa: SIM115
    with contextlib.redirect_stdout(spool):
        write()
    return spool


def show_held(spool: IO[str] | None) -> None:
    """Write out what `held_back` kept, and let it go."""
    if spool is None:
        return
    with spool:
        spool.seek(0)
        while chunk := spool.read(1 << 16):
            click.echo(chunk, nl=False)


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
