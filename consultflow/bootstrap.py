"""The composition root: settings in, a ready service context out."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from consultflow.config import Settings, head_publishing
from consultflow.domain.clock import Clock, SystemClock
from consultflow.domain.errors import ConfigurationError
from consultflow.services import identity, schema
from consultflow.services.context import ServiceContext
from consultflow.services.database_roles import RoleAdmin
from consultflow.store.database import SqlDatabase
from consultflow.store.engine import display_url, sqlite_file

if TYPE_CHECKING:
    from consultflow.services.backup import Backups
    from consultflow.services.health import HealthQueries

_log = logging.getLogger(__name__)


def build_context(
    settings: Settings,
    *,
    clock: Clock | None = None,
    check_schema: bool = True,
    create: bool = False,
    acting_proven: bool = False,
) -> ServiceContext:
    """Connect to the database and wire the use cases.

    Only commands that build a database (`create`: db upgrade, the demo) may make a new SQLite
    file; every other command refuses a missing one instead of leaving an empty file behind.

    `acting_proven`: the server, which proves who acts by their sign-in (its own database login
    proves nothing about them).

    Raises:
        ConfigurationError: the database cannot be opened, is missing, or has no schema.
        SchemaMismatchError: its schema is older or newer than this consultflow's (exit 78).
    """
    shown = display_url(settings.db_url)
    path = sqlite_file(settings.db_url)
    if path is not None and not create and not path.exists():
        msg = f"database file {path} does not exist; run 'consultflow db upgrade' to create it (or check --db)"
        if not settings.db_given:  # no --db: perhaps this person meant to work through a server
            msg += ", or sign in to your team's server with 'consultflow login URL'"
        raise ConfigurationError(msg)
    chain_key = settings.chain_key()  # bad settings are refused before any connection is opened
    heads = head_publishing()
    unbound_logins = settings.unbound_logins
    database = SqlDatabase.from_url(settings.db_url)
    ctx = ServiceContext(
        database=database,
        workflows_dir=settings.workflows,
        clock=clock or SystemClock(),
        tz=settings.tz,
        chain_key=chain_key,
        unbound_logins=unbound_logins,
        acting_proven=acting_proven,
        heads=heads,
    )
    try:
        # The server's worker processes (acting_proven) start after `serve` checked the schema strictly,
        # before listening; uvicorn restarts one that dies, and during a rolling upgrade the database may
        # be a step ahead by then (expand-only: docs/operators/upgrading.md). They serve on rather than crash.
        _check_schema(database, shown, check_schema=check_schema, newer_ok=acting_proven)
        if check_schema and not acting_proven:
            identity.check_reader(ctx)
    except BaseException:
        database.dispose()
        raise
    return ctx


def role_admin(ctx: ServiceContext) -> RoleAdmin:
    """The owner's administration of the database's roles, over the context's connection."""
    from consultflow.store.roles import DatabaseRoles  # noqa: PLC0415 - only `db roles`, `db login` and run-once need it

    if not isinstance(ctx.database, SqlDatabase):
        msg = "database roles need a SQL database"
        raise ConfigurationError(msg)
    return DatabaseRoles(ctx.database.engine)


def health_queries(ctx: ServiceContext) -> HealthQueries:
    """The read-only queries behind readiness and `/metrics`, over the context's database."""
    from consultflow.store.health import SqlHealthQueries  # noqa: PLC0415 - only the server needs them

    if not isinstance(ctx.database, SqlDatabase):
        msg = "health figures need a SQL database"
        raise ConfigurationError(msg)
    return SqlHealthQueries(ctx.database.engine)


def backups(settings: Settings) -> Backups:
    """Backups of the configured database and restores into it (SQLite's backup API; pg_dump, pg_restore)."""
    from consultflow.store.backup import SqlBackups  # noqa: PLC0415 - only `db backup` and `db restore` need it

    return SqlBackups(settings.db_url)


def restore_grants(settings: Settings, path: Path) -> str:
    """Give this database's roles the grants a PostgreSQL backup's roles had (`db restore --grants-only`)."""
    from consultflow.store.backup import grants_only  # noqa: PLC0415

    return grants_only(settings.db_url, path)


def _check_schema(database: SqlDatabase, shown: str, *, check_schema: bool, newer_ok: bool = False) -> None:
    try:
        current = database.schema_revision()
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())  # drivers' messages span lines
        msg = f"cannot open database {shown!r}: {reason}"
        raise ConfigurationError(msg) from None
    if check_schema:
        found = schema.SchemaStatus(current, database.head_revision())
        if newer_ok and found.newer:  # a running server's worker process, (re)started by uvicorn
            _log.warning(
                "database at schema %s, newer than this server's %s: serving on (expand-only); roll the servers "
                "to the new release",
                found.database,
                found.head,
            )
            return
        refused = found.refusal(f"database {shown!r}")
        if refused is not None:
            raise refused
