"""Checks on what people type, shared by the use cases."""

from __future__ import annotations

from datetime import datetime, timezone
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
