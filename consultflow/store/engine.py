"""Engines: SQLite set up for a tool that writes (WAL, foreign keys, immediate transactions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from consultflow import extras
from consultflow.domain.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalize_url(url: str) -> str:
    """Accept `postgresql://` as psycopg 3 and a bare path as a SQLite file."""
    if "://" not in url:
        return f"sqlite:///{url}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def display_url(url: str) -> str:
    """The database as it may be shown in messages and logs: never with its password."""
    try:
        return make_url(normalize_url(url)).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<an unreadable database URL>"


def shown_database(engine: Engine) -> str:
    """The engine's database as messages name it: a SQLite file's path, or the URL without its password."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        return engine.url.database
    return engine.url.render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (None for PostgreSQL); refuses an empty or in-memory database.

    Raises:
        ConfigurationError: `url` is empty or names an in-memory database, where nothing would persist.
    """
    if not url.strip():
        msg = "the database is empty (--db ''); give a SQLite file path or a postgresql:// URL"
        raise ConfigurationError(msg)
    try:
        parsed = make_url(normalize_url(url))
    except ArgumentError as exc:
        msg = f"cannot use database URL {display_url(url)!r}: {exc}"
        raise ConfigurationError(msg) from None
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:"):
        msg = "an in-memory SQLite database keeps nothing; give a file path such as consultflow.sqlite"
        raise ConfigurationError(msg)
    database = parsed.database
    if parsed.query.get("uri") == "true" and database.startswith("file:"):  # sqlite:///file:x.sqlite?mode=ro&uri=true
        database = database.removeprefix("file:")
    return Path(database)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE.

    BEGIN IMMEDIATE takes SQLite's write lock when a transaction starts, so two processes never
    both read and then fail to upgrade to a write (a deferred upgrade ignores the busy timeout).

    Raises:
        ConfigurationError: the URL cannot be parsed or names a driver that is not installed (for
            PostgreSQL: one line naming the postgres extra).
    """
    try:
        parsed = make_url(normalize_url(url))
        if parsed.drivername == "postgresql+psycopg":
            extras.require(extras.POSTGRES)  # psycopg is the postgres extra
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        msg = f"cannot use database URL {display_url(url)!r}: {exc}"
        raise ConfigurationError(msg) from None
    except ValueError:  # SQLAlchemy's parser on a port it cannot read (several hosts with ports: h1:5432,h2:5432)
        msg = (
            f"cannot use database URL {display_url(url)!r}: a port there is not a number; for several hosts "
            "give them without ports (postgresql://user@h1,h2/db) or with ?port=5432,5433"
        )
        raise ConfigurationError(msg) from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Up to 32 MB of pages per connection (2 MB by default): a bulk import inserts keyed hashes at
        # random places in its indexes, and with the default it rereads their pages from the OS.
        cursor.execute("PRAGMA cache_size=-32768")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write takes the file's write lock at once (no upgrade deadlock); a read (SNAPSHOT) takes
        # none: in WAL mode it sees one snapshot and writers go on while a long report streams.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(SNAPSHOT) else "BEGIN IMMEDIATE")


SNAPSHOT = "consultflow_snapshot"  # the execution option of read-only units of work


def snapshot_engine(engine: Engine) -> Engine:
    """The same engine for reads that see one snapshot from their first statement to their last.

    SQLite: a deferred BEGIN (no write lock). PostgreSQL: REPEATABLE READ, so the passes a streamed
    report makes over its rows (widths, then rows; figures, then tables) see the same data, and
    READ ONLY, so a read that tried to write would be refused by the database itself.
    """
    options: dict[str, Any] = {SNAPSHOT: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
        options["postgresql_readonly"] = True
    return engine.execution_options(**options)
