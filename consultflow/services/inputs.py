"""Checks on what people type, shared by the use cases."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import LANGS
from consultflow.domain.text import refuse_control_characters


def required_text(value: str | None, what: str, max_len: int) -> str:
    """`value` trimmed; refuses blank or over-long text (Chinese counts per character)."""
    cleaned = refuse_control_characters((value or "").strip(), what)
    if not cleaned:
        msg = f"{what} is required and may not be blank"
        raise ValidationError(msg)
    if len(cleaned) > max_len:
        msg = f"{what} is {len(cleaned)} characters; at most {max_len} are allowed"
        raise ValidationError(msg)
    return cleaned


def language(lang: str) -> str:
    """A supported label language."""
    if lang not in LANGS:
        msg = f"unknown language {lang!r}; allowed: {', '.join(LANGS)}"
        raise ValidationError(msg)
    return lang


# Times a person types are checked against these years: outside them, time zone arithmetic overflows
# (year 1, year 9999) and no consultation ever ran.
FIRST_YEAR, LAST_YEAR = 1970, 2999


def parse_time(text: str, tz: ZoneInfo) -> datetime:
    """A time typed by a person: ISO 8601, local to `tz` unless it names its own offset.

    A bare date means midnight at its start, local time.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        msg = f"cannot read time {text!r}; use ISO 8601 such as 2026-12-01 or 2026-12-01T18:00"
        raise ValidationError(msg) from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        msg = f"time {text!r} is outside the years {FIRST_YEAR}-{LAST_YEAR} a consultation can run in"
        raise ValidationError(msg)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(timezone.utc)


SMALLEST_INT, LARGEST_INT = -(2**31), 2**31 - 1  # the database's INTEGER columns
_EARLIEST, _LATEST = 1970, 2999  # the years a consultation can run in (parse_time says the same)


def refuse_unstorable(value: Any, where: str = "body") -> None:
    """Refuse what no database can store: a NUL or a lone surrogate, a number or date out of range, a negative limit.

    Checked on every decoded request before anything runs, so such input is one line (422),
    never an error inside the database.

    Raises:
        ValidationError: the first field holding such a value.
    """
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        field = where.rsplit(".", 1)[-1].split("[", 1)[0]
        if field == "limit" and value < 0:
            msg = f"{where}: {value} is negative; give 0 or more"
            raise ValidationError(msg)
        if not SMALLEST_INT <= value <= LARGEST_INT:
            msg = f"{where}: {value} is out of range; numbers here lie between {SMALLEST_INT} and {LARGEST_INT}"
            raise ValidationError(msg)
    elif isinstance(value, datetime):
        if not _EARLIEST <= value.year <= _LATEST:
            msg = f"{where}: {value.date().isoformat()} is out of range; give a date between {_EARLIEST} and {_LATEST}"
            raise ValidationError(msg)
    elif isinstance(value, str):
        if "\x00" in value:
            msg = f"{where}: text may not hold a NUL character (U+0000)"
            raise ValidationError(msg)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            msg = f"{where}: text is not valid Unicode (a lone surrogate)"
            raise ValidationError(msg) from None
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            refuse_unstorable(getattr(value, f.name), f"{where}.{f.name}" if where != "body" else f.name)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_unstorable(key, where)
            refuse_unstorable(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)) and value and isinstance(value[0], (str, int, list, tuple, dict)):
        for index, item in enumerate(value):
            refuse_unstorable(item, f"{where}[{index}]")
