"""Clocks: real time in production, a settable one in tests and for `--now`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    """Tells the current time, always timezone-aware UTC."""

    def now(self) -> datetime:
        """The current moment in UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """The current moment in UTC."""
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that moves only when told, so tests cross days without sleeping."""

    def __init__(self, start: datetime, tick: timedelta = timedelta(0)) -> None:
        if start.tzinfo is None:
            msg = "FixedClock needs a timezone-aware start"
            raise ValueError(msg)
        self._now = start.astimezone(timezone.utc)
        self._tick = tick

    def now(self) -> datetime:
        """The set moment; advances by `tick` after each reading (0 by default)."""
        current = self._now
        self._now = current + self._tick
        return current

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward."""
        self._now += delta

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (timezone-aware)."""
        self._now = moment.astimezone(timezone.utc)
