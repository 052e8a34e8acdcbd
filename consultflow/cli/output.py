"""Rendering for the terminal: local times and JSON documents (tables live in `consultflow.export`)."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import click

from consultflow.domain.model import MAX_ID
from consultflow.export.text import shorten, table
from consultflow.export.values import local_time, to_jsonable

# Every id and round number a command takes: a whole number the database can hold, or a usage error.
ID = click.IntRange(1, MAX_ID)

__all__ = ["emit_json", "local_time", "shorten", "table", "to_jsonable"]


def emit_json(value: Any, tz: ZoneInfo) -> None:
    """Exactly one JSON document on stdout."""
    click.echo(json.dumps(to_jsonable(value, tz), ensure_ascii=False, indent=2))
