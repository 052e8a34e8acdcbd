"""The database schema, for `consultflow db` and the demo (the CLI does not touch the store)."""

from __future__ import annotations

from dataclasses import dataclass

from consultflow.services.context import ServiceContext


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database's schema stands."""

    database: str | None
    head: str | None

    @property
    def current(self) -> bool:
        """Whether the database is at the newest revision."""
        return self.database == self.head


def status(ctx: ServiceContext) -> SchemaStatus:
    """The database's revision and the newest one this consultflow knows."""
    return SchemaStatus(ctx.database.schema_revision(), ctx.database.head_revision())


def upgrade(ctx: ServiceContext) -> tuple[SchemaStatus, SchemaStatus]:
    """Bring the schema to the newest revision; returns the status before and after."""
    before = status(ctx)
    ctx.database.upgrade()
    return before, status(ctx)
