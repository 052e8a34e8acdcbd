"""The one error boundary: each driver error a user can meet becomes the consultflow error it means."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from consultflow.domain.errors import (
    AppendOnlyError,
    ConfigurationError,
    ConflictError,
    DatabaseDamagedError,
    DatabaseStorageError,
    DatabaseUnavailableError,
    DatabaseUnreachableError,
    RetryableConflictError,
    ValidationError,
)
from consultflow.store.engine import make_engine
from consultflow.store.errors import translate


@dataclass
class _Diag:
    constraint_name: str | None = None


class _PgError(Exception):
    """Shaped like psycopg's errors: a SQLSTATE and a diagnostic with the constraint's name."""

    def __init__(self, message: str, sqlstate: str, constraint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.diag = _Diag(constraint)


def _pg(sqlstate: str, message: str = "boom", constraint: str | None = None) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, _PgError(message, sqlstate, constraint))


@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (_pg("40P01"), RetryableConflictError, "deadlock"),
        (_pg("40001"), RetryableConflictError, "serialization failure"),
        (_pg("55P03"), RetryableConflictError, "lock another transaction holds"),
        (_pg("23505", constraint="uq_actor_name"), ValidationError, "an actor with that name is already registered"),
        (_pg("23505", constraint="uq_audit_event_consultation_id"), RetryableConflictError, "audit chain"),
        (_pg("23505", constraint="uq_something_new"), ConflictError, "uq_something_new"),
        (_pg("23503", constraint="fk_opinion_participant_id_participant"), ValidationError, "does not exist"),
        (_pg("22003"), ValidationError, "larger than the database can hold"),
        (_pg("P0001", "audit_event is append-only"), AppendOnlyError, "append-only"),
        (_pg("08006"), DatabaseUnreachableError, "connection failed"),
        (
            _pg("57P01", "terminating connection due to administrator command"),
            DatabaseUnreachableError,
            "shutting down",
        ),
        (_pg("57P03", "the database system is starting up"), DatabaseUnreachableError, "starting up"),
        (_pg("53100", "could not extend file"), DatabaseStorageError, "disk full"),
        (OperationalError("x", {}, Exception("database disk image is malformed")), DatabaseDamagedError, "db restore"),
        (OperationalError("x", {}, Exception("file is not a database")), DatabaseDamagedError, "is damaged"),
        (OperationalError("x", {}, Exception("database or disk is full")), DatabaseStorageError, "disk full"),
        (OperationalError("x", {}, Exception("disk I/O error")), DatabaseStorageError, "rolled back"),
        (OperationalError("x", {}, Exception("database is locked")), RetryableConflictError, "busy"),
        (IntegrityError("x", {}, Exception("UNIQUE constraint failed: actor.name")), ValidationError, "already"),
        (IntegrityError("x", {}, Exception("audit_event is append-only")), AppendOnlyError, "append-only"),
        (
            OperationalError("x", {}, Exception("attempt to write a readonly database")),
            DatabaseUnavailableError,
            "cannot be written",
        ),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), ValidationError, "larger than"),
    ],
)
def test_driver_errors_become_what_they_mean(error: BaseException, kind: type[Exception], words: str) -> None:
    """PostgreSQL by SQLSTATE and constraint, SQLite by message: each gets its kind and its words."""
    translated = translate(error)
    assert type(translated) is kind
    assert words in str(translated)


@pytest.mark.parametrize(
    "error",
    [_pg("XX000", "internal"), ValueError("a bug"), OverflowError("date value out of range")],
)
def test_anything_else_is_left_to_surface_as_an_internal_error(error: BaseException) -> None:
    """What no user can cause is not dressed up as a user's mistake."""
    assert translate(error) is None


def test_a_refused_connection_names_the_database_and_its_exit_code() -> None:
    """psycopg's own connection errors (no SQLSTATE) are "not reachable", exit code 69, with the database named."""
    import psycopg

    refused = psycopg.OperationalError('connection failed: connection to server at "127.0.0.1", port 1 failed: '
                                       "Connection refused")  # fmt: skip
    translated = translate(OperationalError("x", {}, refused), "postgresql+psycopg://cf@127.0.0.1:1/county")
    assert isinstance(translated, DatabaseUnreachableError) and translated.exit_code == 69
    assert str(translated) == (
        "the database at postgresql+psycopg://cf@127.0.0.1:1/county is not reachable (connection refused); "
        "nothing was written"
    )
    assert DatabaseStorageError.exit_code == 74 and DatabaseDamagedError.exit_code == 65


def test_several_hosts_with_ports_is_one_line_not_a_crash() -> None:
    """libpq takes h1:5432,h2:5432, SQLAlchemy's URL parser does not: one line saying how to write it."""
    with pytest.raises(ConfigurationError, match="give them without ports"):
        make_engine("postgresql://u@h1:5432,h2:5432/county")
