"""The database schema, for `consultflow db` and the demo (the CLI does not touch the store)."""

from __future__ import annotations

from dataclasses import dataclass

from consultflow.domain.errors import ConfigurationError
from consultflow.services.context import ServiceContext

SCHEMA_MISMATCH_EXIT_CODE = 78  # EX_CONFIG: the database's schema is not the one this consultflow was built for


class SchemaMismatchError(ConfigurationError):
    """The database's schema is at a revision this consultflow was not built for, older or newer.

    Its own exit code (78), so a service manager can tell it from a crash and stop restarting.
    """

    exit_code = SCHEMA_MISMATCH_EXIT_CODE


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database's schema stands."""

    database: str | None
    head: str | None

    @property
    def current(self) -> bool:
        """Whether the database is at the newest revision."""
        return self.database == self.head

    @property
    def newer(self) -> bool:
        """Whether a later release migrated the database: its revision is not one this consultflow knows.

        Revisions are numbered 0001, 0002, … without gaps (a test holds migrations/versions to it),
        so any other revision, or a higher number, is a later release's.
        """
        if self.database is None or self.head is None or self.database == self.head:
            return False
        ours = len(self.database) == len(self.head) and self.database.isdigit()
        return not ours or self.database > self.head

    @property
    def older(self) -> bool:
        """Whether the database was migrated by an earlier release and not upgraded since."""
        return self.database is not None and not self.current and not self.newer

    def refusal(self, subject: str) -> ConfigurationError | None:
        """Why a process may not start on `subject` ("database 'URL'"), in one line; None when it may."""
        if self.database is None:
            return ConfigurationError(f"{subject} has no consultflow schema; run 'consultflow db upgrade'")
        if self.older:
            msg = (
                f"{subject} is at schema {self.database}, older than this consultflow's {self.head}: "
                "run 'consultflow db upgrade' as the database's owner, then start this again"
            )
            return SchemaMismatchError(msg)
        if self.newer:
            msg = (
                f"{subject} is at schema {self.database}, newer than this consultflow's {self.head} "
                "(a later release migrated it): run that release's consultflow instead"
            )
            return SchemaMismatchError(msg)
        return None


def status(ctx: ServiceContext) -> SchemaStatus:
    """The database's revision and the newest one this consultflow knows."""
    return SchemaStatus(ctx.database.schema_revision(), ctx.database.head_revision())


def upgrade(ctx: ServiceContext) -> tuple[SchemaStatus, SchemaStatus]:
    """Bring the schema to the newest revision; returns the status before and after."""
    before = status(ctx)
    if before.newer:  # Alembic would not find the revision; say what it means instead
        refused = before.refusal("the database")
        assert refused is not None
        raise refused
    ctx.database.upgrade()
    return before, status(ctx)
