"""One error tree, so the CLI can tell a user's mistake from a bug.

Every `ConsultflowError` is something a user can act on: its message is one line naming what is
wrong and what is allowed. Anything else escaping a command is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


class ConsultflowError(Exception):
    """Base of every error a user can cause or fix."""

    exit_code = 1


INTERNAL_ERROR_EXIT_CODE = 70  # EX_SOFTWARE: a bug, never something the user did


class NotFoundError(ConsultflowError):
    """An id or name that does not exist."""


class PermissionDeniedError(ConsultflowError):
    """The acting person's role may not do this."""


class ValidationError(ConsultflowError):
    """Input that is missing, malformed or contradicts the rules."""


class InvalidTransitionError(ConsultflowError):
    """A trigger that the opinion's current state does not allow."""


class RoundStateError(ConsultflowError):
    """A round operation that contradicts the consultation's rounds (none open, already open)."""


class ConflictError(ConsultflowError):
    """Someone else changed the same thing first; nothing was written and the same command may be run again.

    Its own exit code (75, EX_TEMPFAIL) lets scripts tell "try again" from "refused".
    """

    exit_code = 75


class RetryableConflictError(ConflictError):
    """A conflict the use-case pipeline retries by itself (deadlock, serialization failure, busy file)."""


class TooManyAttemptsError(ConsultflowError):
    """Too many failed sign-ins for an account or from one client: refused until `until`, whatever is typed.

    Kept apart from `PermissionDeniedError` so a server can answer 429 with a Retry-After.
    """

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class AppendOnlyError(ConsultflowError):
    """A write that would change or remove audit events, which the database refuses."""

    def __init__(self) -> None:
        super().__init__("the audit log is append-only: events cannot be changed or deleted")


class DatabaseUnavailableError(ConsultflowError):
    """The database cannot be reached or written (connection lost, read-only file)."""


class DatabaseUnreachableError(DatabaseUnavailableError):
    """The database server is down, restarting or refusing connections; nothing was written.

    Its own exit code (69, EX_UNAVAILABLE): the same command can be run once the database is back.
    """

    exit_code = 69


class DatabaseStorageError(DatabaseUnavailableError):
    """The database's disk is full or failing (I/O error); the change was rolled back.

    Exit code 74 (EX_IOERR).
    """

    exit_code = 74


class DatabaseDamagedError(DatabaseUnavailableError):
    """The database file is damaged (malformed, not a database): it must be restored from a backup.

    Exit code 65 (EX_DATAERR).
    """

    exit_code = 65


class AddressInUseError(ConsultflowError):
    """The server's port is taken by another process; nothing was started.

    Exit code 71 (EX_OSERR).
    """

    exit_code = 71


class WorkflowInvalidError(ConsultflowError):
    """A workflow file with problems; `problems` lists every one with its path."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        head = f"{source}: {len(self.problems)} problem(s): "
        super().__init__(head + "; ".join(self.problems))


class ConfigurationError(ConsultflowError):
    """A setting that cannot work (bad URL, unknown time zone, missing directory)."""
