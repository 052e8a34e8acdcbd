"""The composition root: settings in, a ready service context out."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from consultflow.config import Settings
from consultflow.domain.clock import Clock, SystemClock
from consultflow.domain.errors import ConfigurationError
from consultflow.services.context import ServiceContext
from consultflow.store.database import SqlDatabase


def build_context(settings: Settings, *, clock: Clock | None = None, check_schema: bool = True) -> ServiceContext:
    """Connect to the database and wire the use cases.

    Raises:
        ConfigurationError: the database cannot be opened, or its schema is missing or old.
    """
    database = SqlDatabase.from_url(settings.db_url)
    try:
        current = database.schema_revision()
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())  # drivers' messages span lines
        msg = f"cannot open database {settings.db_url!r}: {reason}"
        raise ConfigurationError(msg) from None
    if check_schema:
        head = database.head_revision()
        if current != head:
            state = "has no consultflow schema" if current is None else f"is at revision {current}, not {head}"
            msg = f"database {settings.db_url!r} {state}; run 'consultflow db upgrade'"
            raise ConfigurationError(msg)
    return ServiceContext(
        database=database,
        workflows_dir=settings.workflows,
        clock=clock or SystemClock(),
        tz=settings.tz,
    )
