"""Column types: time kept in UTC on every backend, participants' texts opened where they are read."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Protocol

from sqlalchemy import ColumnElement, DateTime, Dialect, Text, type_coerce
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


class TextOpener(Protocol):
    """Opens sealed texts for the unit of work that reads them (consultflow.store.texts)."""

    def open(self, value: str) -> str:
        """The text a stored value holds (as written, or FORGOTTEN / UNREADABLE)."""
        ...

    def open_payload(self, payload: str) -> str:
        """An event payload (JSON) with its sealed texts opened."""
        ...


OPENER: ContextVar[TextOpener | None] = ContextVar("consultflow_text_opener", default=None)


class SealedText(TypeDecorator[str]):
    """A participant's free text, stored sealed (consultflow.domain.sealing); opened where it is read.

    Values are written as they are given: the services seal a text once and store the same sealed
    value in the live row and its audit event, so verify compares them as stored. Reading opens a
    sealed value with the participant's key through the unit of work's opener: the one place texts
    are opened. Without an opener (a raw read), the stored value comes back as it is stored.
    """

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:  # noqa: ARG002
        """The text, opened if it is sealed and a unit of work is reading."""
        if value is None:
            return None
        opener = OPENER.get()
        return str(value) if opener is None else opener.open(str(value))


class SealedPayload(TypeDecorator[str]):
    """An audit event's payload (JSON), whose participant texts are sealed; opened where it is read.

    Verify reads payloads as stored (`stored`, or the driver's own tuples): the chain hashes them so.
    """

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:  # noqa: ARG002
        """The payload, its sealed texts opened if a unit of work is reading."""
        if value is None:
            return None
        opener = OPENER.get()
        return str(value) if opener is None else opener.open_payload(str(value))


def stored(column: ColumnElement[str]) -> ColumnElement[str]:
    """A sealed text column read as it is stored (verify compares what the chain hashed), not opened."""
    return type_coerce(column, Text()).label(getattr(column, "name", None))
