"""Who is acting, proven: actors bound to database logins, and the group role each login gets.

On PostgreSQL an actor can be bound to a login. Once any actor is, the login a connection
authenticated as decides who acts (`--as` may only repeat it), and a login bound to nobody may
only read, or nothing, by a setting. The group roles (created by the migrations) make the database
itself refuse what a login's role may not do, whatever SQL it sends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from consultflow.domain.errors import ValidationError
from consultflow.domain.roles import Role

COORDINATOR_GROUP = "consultflow_coordinator"
STAFF_GROUP = "consultflow_staff"
AUDITOR_GROUP = "consultflow_auditor"
WORKER_GROUP = "consultflow_worker"

#: The actor the web portal acts as (seeded by migration 0007, role participant). Each request ties it to
#: the one participant whose receipt code was shown, so it acts on nobody else's opinions.
PORTAL_ACTOR = "web"

UnboundLogins = Literal["read", "none"]
UNBOUND_MODES: tuple[UnboundLogins, ...] = ("read", "none")

_LOGIN = re.compile(r"[a-z_][a-z0-9_$]{0,62}")


def checked_login(login: str) -> str:
    """A login name consultflow can name safely in a GRANT.

    Raises:
        ValidationError: anything but lower-case letters, digits, _ and $ (63 at most).
    """
    if not _LOGIN.fullmatch(login):
        msg = f"login {login!r}: use lower-case letters, digits, _ and $ (starting with a letter or _; 63 at most)"
        raise ValidationError(msg)
    return login


def group_for(roles: Iterable[Role]) -> str:
    """The database group role that fits an actor's roles: the most a login of theirs may do."""
    held = set(roles)
    if Role.COORDINATOR in held:
        return COORDINATOR_GROUP
    if held & {Role.PLANNER, Role.EXPERT, Role.PARTICIPANT}:
        return STAFF_GROUP
    return AUDITOR_GROUP


#: The roles migration 0013 creates per database and schema, in the order `db roles` lists them:
#: the server (the only writer), the reminder worker, and read-only analysts.
ROLE_KINDS = ("server", "worker", "reader")


@dataclass(frozen=True)
class RoleMembers:
    """One of this database's roles and the roles that are its direct members."""

    kind: str
    role: str
    exists: bool
    members: tuple[str, ...]


@dataclass(frozen=True)
class LoginChange:
    """What `db login` did: the login, the roles granted or revoked, and a generated password (shown once)."""

    login: str
    roles: tuple[str, ...]
    created: bool
    password: str | None
