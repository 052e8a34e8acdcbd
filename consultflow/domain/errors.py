"""One error tree, so the CLI can tell a user's mistake from a bug.

Every `ConsultflowError` is something a user can act on: its message is one line naming what is
wrong and what is allowed. Anything else escaping a command is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class ConsultflowError(Exception):
    """Base of every error a user can cause or fix."""

    exit_code = 1


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
    """Someone else changed the same thing first; the operation may be retried."""


class WorkflowInvalidError(ConsultflowError):
    """A workflow file with problems; `problems` lists every one with its path."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        head = f"{source}: {len(self.problems)} problem(s): "
        super().__init__(head + "; ".join(self.problems))


class ConfigurationError(ConsultflowError):
    """A setting that cannot work (bad URL, unknown time zone, missing directory)."""
