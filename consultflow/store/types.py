"""Column types that keep time in UTC on every backend."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; reads them back aware.

    SQLite drops a datetime's offset, so a naive UTC value is stored there and the zone is put back
    on reading; PostgreSQL keeps `timestamptz`. Naive input is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware in, UTC out (naive UTC for SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to the database; use timezone-aware UTC"
            raise ValueError(msg)
        utc = value.astimezone(timezone.utc)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        """Aware UTC, whatever the backend returned."""
        if value is None:
            return None
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
