"""One database as the services see it: units of work, the schema's revision, migrations."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from consultflow.store import migrate
from consultflow.store.engine import make_engine, shown_database, snapshot_engine
from consultflow.store.errors import translate
from consultflow.store.uow import UnitOfWork, session_factory
from consultflow.store.workflows import StoredWorkflow


class SqlDatabase:
    """A SQLAlchemy engine with the sessions, migrations and clean-up that go with it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions: sessionmaker[Session] = session_factory(engine)
        self._reads: sessionmaker[Session] = session_factory(snapshot_engine(engine))
        self._workflows: dict[int, StoredWorkflow] = {}  # committed workflow rows, which never change

    @classmethod
    def from_url(cls, url: str) -> SqlDatabase:
        """Connect lazily to `url` (a SQLite path or a database URL)."""
        return cls(make_engine(url))

    def unit_of_work(self) -> UnitOfWork:
        """A fresh unit of work (use it as a context manager)."""
        return UnitOfWork(self._sessions, self._workflows)

    def reading(self) -> UnitOfWork:
        """A unit of work that only reads, on one snapshot, without blocking writers (nothing to commit)."""
        return UnitOfWork(self._reads, self._workflows)

    def schema_revision(self) -> str | None:
        """The revision the database is at, None when never migrated.

        Raises:
            DatabaseUnavailableError: the database is unreachable, full or damaged (in words).
        """
        try:
            return migrate.current_revision(self.engine)
        except DBAPIError as exc:
            translated = translate(exc, shown_database(self.engine))
            if translated is None:
                raise
            raise translated from exc

    def head_revision(self) -> str | None:
        """The newest revision this consultflow ships."""
        return migrate.head_revision()

    def upgrade(self) -> None:
        """Bring the schema to the newest revision.

        Raises:
            ConflictError: a table lock was not had after every attempt (a server held it).
            DatabaseUnavailableError: the database is unreachable, full or damaged (in words).
        """
        try:
            migrate.upgrade(self.engine)
        except DBAPIError as exc:
            translated = translate(exc, shown_database(self.engine))
            if translated is None:
                raise
            raise translated from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
