"""Values for people and for JSON: local times, and dataclasses as JSON-ready data (CLI and web alike)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from consultflow.domain.document import Reread


def local_time(moment: datetime | None, tz: ZoneInfo) -> str:
    """A stored UTC moment as local wall time with its offset, for people."""
    if moment is None:
        return "-"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def to_jsonable(value: Any, tz: ZoneInfo) -> Any:
    """Dataclasses, enums and datetimes as JSON values; times in local ISO 8601 with offset.

    A streamed part (`Reread`) stays streamed: its items are made JSON-ready as they are read.
    """
    if isinstance(value, Reread):
        items: Reread[Any] = value
        return Reread(lambda: (to_jsonable(v, tz) for v in items))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), tz) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, tz) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, tz) for v in value]
    return _scalar(value, tz)


def _scalar(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat()
    if isinstance(value, Enum):
        return value.value
    return value
