"""The one place where database driver errors become consultflow errors.

Drivers report the same problems differently: PostgreSQL (psycopg 3) by SQLSTATE and constraint
name, SQLite by message text. Everything a user can cause or retry becomes a `ConsultflowError`
that says so in words; anything else is left alone, so it surfaces as an internal error.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError

from consultflow.domain.errors import (
    AppendOnlyError,
    ConflictError,
    ConsultflowError,
    DatabaseDamagedError,
    DatabaseStorageError,
    DatabaseUnavailableError,
    DatabaseUnreachableError,
    PermissionDeniedError,
    RetryableConflictError,
    ValidationError,
)

# SQLSTATEs (PostgreSQL appendix A) that mean "another transaction got there first; run it again".
_RETRYABLE_SQLSTATES = {
    "40P01": "a deadlock with another transaction",
    "40001": "a serialization failure with another transaction",
    "55P03": "a lock another transaction holds",
}
_UNIQUE_VIOLATION = "23505"
_FOREIGN_KEY_VIOLATION = "23503"
_CHECK_VIOLATION = "23514"
_RAISE_EXCEPTION = "P0001"
_OUT_OF_RANGE = "22003"
_INSUFFICIENT_PRIVILEGE = "42501"
_UNDEFINED_TABLE = "42P01"
_CONNECTION_CLASSES = ("08", "57P0", "53")  # connection exceptions, shutdown, insufficient resources
_PG_UNREACHABLE = {
    "57P01": "the server is shutting down",
    "57P02": "the server is shutting down",
    "57P03": "the server is starting up or shutting down",
    "53300": "too many connections",
    "53200": "out of memory",
}
_PG_DISK_FULL = "53100"
# What a psycopg error without a SQLSTATE (raised by the client library, not the server) says, in words.
_PG_CLIENT_REASONS = (
    ("connection refused", "connection refused"),
    ("server closed the connection", "the connection was lost"),
    ("consuming input failed", "the connection was lost"),
    ("connection timeout", "the connection timed out"),
    ("timeout expired", "the connection timed out"),
    ("could not translate host name", "unknown host"),
    ("no such file or directory", "no server at the socket"),
    ("the connection is closed", "the connection was lost"),
    ("the database system is", "the server is starting up or shutting down"),
)
# SQLite: (words in the message, what they mean); the file is damaged, or its disk is full or failing.
_SQLITE_DAMAGED = ("database disk image is malformed", "file is not a database")
_SQLITE_STORAGE = ("database or disk is full", "disk I/O error")

# What each unique constraint means to a user (constraint names follow models.NAMING_CONVENTION).
_UNIQUE_IN_WORDS = {
    "uq_actor_name": "an actor with that name is already registered",
    "uq_workflow_name": "that workflow version is already stored",
    "uq_round_consultation_id": "that round number already exists in the consultation",
    "uq_audit_event_consultation_id": "another change was appended to the consultation's audit chain at the same time",
    "uq_audit_event_opinion_id": "another change was made to the same opinion at the same time",
    "uq_reminder_opinion_id": "that reminder is already planned",
    "uq_delivery_idempotency_key": "that message is already in the outbox",
    "uq_actor_login": "that database login is already bound to another actor",
    "ix_actor_login": "that database login is already bound to another actor",
    "ix_opinion_consultation_id_intake_key": "another import recorded the same rows at the same time",
    "uq_opinion_consultation_id": "another import recorded the same rows at the same time",
}
# Collisions that mean "someone else got there first": the pipeline runs the change again.
_RETRY_ON = ("uq_audit_event", "ix_opinion_consultation_id_intake_key", "uq_opinion_consultation_id")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<table>\w+)\.(?P<column>\w+)")
_TOO_LARGE = "a number is larger than the database can hold; ids run from 1 to 2147483647"
_SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked")


def translate(exc: BaseException, database: str = "") -> ConsultflowError | None:  # noqa: PLR0911 - one return per kind of driver error
    """The consultflow error a driver error stands for, or None when it is not a user's concern.

    Retryable conflicts come back as `RetryableConflictError`, which the use-case pipeline retries
    a bounded number of times before reporting a `ConflictError`. `database` (shown without its
    password) names the database in what an unreachable, full or damaged one says.
    """
    if isinstance(exc, ConsultflowError):
        return exc
    if isinstance(exc, OverflowError) and "SQLite INTEGER" in str(exc):  # raised while binding, unwrapped
        return ValidationError(_TOO_LARGE)
    if isinstance(exc, StaleDataError):
        return RetryableConflictError("someone else changed the same opinion at the same time")
    the = f"the database at {database}" if database else "the database"
    if isinstance(exc, PoolTimeoutError):
        return DatabaseUnreachableError(f"{the} has no free connection (every pooled one is busy); nothing was written")
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    message = " ".join(str(orig).split())
    if isinstance(sqlstate, str):
        return _translate_postgresql(sqlstate, orig, message, the)
    if type(orig).__module__.startswith("psycopg"):  # raised by the client library: no SQLSTATE
        return _translate_psycopg_client(message, the)
    return _translate_sqlite(message, the)


def _translate_psycopg_client(message: str, the: str) -> ConsultflowError | None:
    low = message.lower()
    for words, reason in _PG_CLIENT_REASONS:
        if words in low:
            return DatabaseUnreachableError(f"{the} is not reachable ({reason}); nothing was written")
    if low.startswith(("connection failed", "connection is bad", "connection to server")):
        return DatabaseUnreachableError(f"{the} is not reachable ({message[:200]}); nothing was written")
    return None


def _translate_postgresql(sqlstate: str, orig: object, message: str, the: str) -> ConsultflowError | None:  # noqa: PLR0911 - one return per SQLSTATE class reads best
    if sqlstate == _PG_DISK_FULL:
        return DatabaseStorageError(
            f"{the} reports its disk full ({sqlstate}); the change was rolled back, nothing was written"
        )
    if sqlstate in _PG_UNREACHABLE:
        return DatabaseUnreachableError(
            f"{the} is not reachable ({_PG_UNREACHABLE[sqlstate]}, {sqlstate}); nothing was written"
        )
    if sqlstate in _RETRYABLE_SQLSTATES:
        return RetryableConflictError(_RETRYABLE_SQLSTATES[sqlstate])
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    if sqlstate == _UNIQUE_VIOLATION:
        return _unique(constraint)
    if sqlstate == _FOREIGN_KEY_VIOLATION:
        return ValidationError(f"a referenced record does not exist or is still referenced ({constraint})")
    if sqlstate == _CHECK_VIOLATION:
        return ValidationError(f"a value is outside what the database allows ({constraint})")
    if sqlstate == _OUT_OF_RANGE:
        return ValidationError(_TOO_LARGE)
    if sqlstate == _INSUFFICIENT_PRIVILEGE:
        return PermissionDeniedError(f"the database refused this to your login ({message}); nothing was written")
    if sqlstate == _UNDEFINED_TABLE:
        return PermissionDeniedError(
            f"this login sees no consultflow tables ({message}): is the schema migrated, on the search_path, "
            "and is the login granted a consultflow group role?"
        )
    if sqlstate == _RAISE_EXCEPTION and "append-only" in message:
        return AppendOnlyError()
    if sqlstate.startswith(_CONNECTION_CLASSES):
        return DatabaseUnreachableError(
            f"{the} is not reachable (the connection failed, {sqlstate}); nothing was written"
        )
    return None


def _translate_sqlite(message: str, the: str) -> ConsultflowError | None:  # noqa: PLR0911 - one return per message kind
    damaged = next((words for words in _SQLITE_DAMAGED if words in message), None)
    if damaged is not None:
        return DatabaseDamagedError(f"{the} is damaged ({damaged}): restore it with 'consultflow db restore'")
    storage = next((words for words in _SQLITE_STORAGE if words in message), None)
    if storage is not None:
        why = "disk full" if "full" in storage else storage
        return DatabaseStorageError(f"{the}: {why}; the change was rolled back, nothing was written")
    if "append-only" in message:
        return AppendOnlyError()
    if any(busy in message for busy in _SQLITE_BUSY):
        return RetryableConflictError("the database file is busy with another writer")
    unique = _SQLITE_UNIQUE.search(message)
    if unique:
        return _unique(f"uq_{unique['table']}_{unique['column']}")
    if "FOREIGN KEY constraint failed" in message:
        return ValidationError("a referenced record does not exist or is still referenced")
    if "CHECK constraint failed" in message:
        return ValidationError(f"a value is outside what the database allows ({message.rsplit(':', 1)[-1].strip()})")
    if "readonly database" in message or "unable to open database" in message:
        return DatabaseUnavailableError(f"the database cannot be written: {message}")
    return None


def _unique(constraint: str) -> ConsultflowError:
    words = _UNIQUE_IN_WORDS.get(constraint)
    if words is None:
        return ConflictError(f"a record with the same values already exists ({constraint or 'unique constraint'})")
    if constraint.startswith(_RETRY_ON):
        return RetryableConflictError(words)
    return ValidationError(words)
