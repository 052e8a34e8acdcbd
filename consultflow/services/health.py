"""Readiness and the figures `/metrics` reads at scrape time: read-only, one bounded query each.

The figures come from the database when asked, never from memory, so every server process (and a
scrape of any of them) sees the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from consultflow.domain.errors import DatabaseUnavailableError
from consultflow.services.context import ServiceContext
from consultflow.services.schema import SchemaStatus

MAX_CONSULTATIONS = 1000  # chain heads' ages are reported for at most this many consultations


@dataclass(frozen=True)
class Figures:
    """What the database holds now that an operator watches."""

    deliveries: Mapping[str, int]  # by status: pending, sending, sent, dead
    pending_reminders: int
    open_rounds: int
    head_ages: Mapping[int, float]  # consultation id -> seconds since its last signed head (or last event)
    pool_checked_out: int  # connections this process holds now


class HealthQueries(Protocol):
    """The store's side: counts and ages, each one bounded query."""

    def deliveries_by_status(self) -> dict[str, int]:
        """Deliveries counted by status."""

    def pending_reminders(self) -> int:
        """Reminders still pending."""

    def open_rounds(self) -> int:
        """Rounds open now."""

    def last_heads(self, at_most: int) -> dict[int, datetime]:
        """Each consultation's last signed head's time, or its last event's when none is signed."""

    def pool_checked_out(self) -> int:
        """Connections checked out of this process's pool."""


@dataclass(frozen=True)
class Readiness:
    """Whether this server can answer: the database answers and its schema is the one this consultflow knows."""

    ready: bool
    revision: str | None
    expected: str | None
    problem: str = ""
    exit_code: int = 0  # the CLI's exit code for the problem: 69 unreachable, 65 damaged, 78 another schema
    kind: str = ""


def readiness(ctx: ServiceContext) -> Readiness:
    """The database's answer and schema revision; a database that cannot be reached is "not ready", not an error."""
    expected = ctx.database.head_revision()
    try:
        revision = ctx.database.schema_revision()
    except DatabaseUnavailableError as exc:
        kind = type(exc).__name__.removesuffix("Error").removeprefix("Database").lower() or "unavailable"
        return Readiness(False, None, expected, str(exc), exc.exit_code, f"database_{kind}")
    refused = SchemaStatus(revision, expected).refusal("the database")  # what a starting server says, and its code
    if refused is not None:
        return Readiness(False, revision, expected, str(refused), refused.exit_code, "schema")
    return Readiness(ready=True, revision=revision, expected=expected)


def figures(ctx: ServiceContext, queries: HealthQueries) -> Figures:
    """The gauges, read now.

    Raises:
        DatabaseUnavailableError: the database is unreachable, full or damaged.
    """
    now = ctx.clock.now()
    heads = queries.last_heads(MAX_CONSULTATIONS)
    return Figures(
        deliveries=queries.deliveries_by_status(),
        pending_reminders=queries.pending_reminders(),
        open_rounds=queries.open_rounds(),
        head_ages={cid: max(0.0, (now - at).total_seconds()) for cid, at in heads.items()},
        pool_checked_out=queries.pool_checked_out(),
    )
