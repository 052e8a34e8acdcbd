"""This database's roles, for the owner's `consultflow db roles` and `db login` (the store does the SQL).

Migration 0013 creates three group roles per database and schema: the server's (the only
writer), the reminder worker's (delivers, closes nothing) and the reader's (analysts with SQL,
no personal data). The owner gives logins these roles; nobody else needs a database login.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from consultflow.domain.identity import LoginChange, RoleMembers


class RoleAdmin(Protocol):
    """The owner's administration of this database's roles (PostgreSQL only)."""

    def members(self) -> Sequence[RoleMembers]:
        """The three roles of this database and schema, with their direct members.

        Raises:
            ConfigurationError: SQLite.
        """

    def add_login(self, name: str, kind: str, *, existing: bool, password: str | None) -> LoginChange:
        """Create login `name` holding `kind`'s role (`password`, or a generated one), or grant it to an existing login.

        Raises:
            ValidationError: a malformed name, a login that exists (or, with `existing`, does not).
            PermissionDeniedError: the connected login may not create roles.
            ConfigurationError: SQLite, or the schema has no roles yet.
        """

    def revoke_login(self, name: str) -> LoginChange:
        """Take every one of this database's roles from `name`; the login itself stays.

        Raises:
            ValidationError: a malformed name, or a login holding none of them.
        """

    def creating_sql(self) -> list[str]:
        """The statements a cluster administrator runs to create this database's three roles.

        Raises:
            ConfigurationError: SQLite.
        """

    def createrole_risk(self) -> str | None:
        """A warning when the connected login's CREATEROLE reaches other databases' roles (before PostgreSQL 16)."""

    def may_close_rounds(self) -> bool:
        """Whether the connected login may run the round-closing use case (True on SQLite)."""
