"""Who is acting: the `--as` name, or, once logins are bound on PostgreSQL, the database login.

On SQLite (one person, one file) and on a PostgreSQL database where no actor is bound to a login,
`--as` names the actor: anyone who can open the database may type any name. Once any actor is
bound, the login the connection authenticated as decides: `--as` may only repeat that actor's
name, a login bound to nobody may only read (or nothing, by `CONSULTFLOW_UNBOUND_LOGINS=none`),
and a login in the worker group may act as consultflow's system actor (round auto-close).
"""

from __future__ import annotations

from consultflow.domain.errors import PermissionDeniedError
from consultflow.domain.identity import WORKER_GROUP
from consultflow.domain.model import ActorRow
from consultflow.domain.roles import Role
from consultflow.services.context import ServiceContext
from consultflow.services.ports import UnitOfWork

SYSTEM = "system"


def acting_actor(uow: UnitOfWork, acting: str | None, login: str | None) -> tuple[ActorRow, list[Role]]:
    """The actor a change is made by, and their roles.

    Raises:
        NotFoundError: no actor named (in `--as` mode), or an unknown one.
        PermissionDeniedError: `--as` names someone other than the login's actor, or the login is
            bound to nobody.
    """
    if login is None:
        return uow.actors.require(acting)
    any_bound, bound = uow.logins.binding(login)
    if not any_bound:
        return uow.actors.require(acting)
    if bound is None:
        if acting == SYSTEM and uow.logins.is_member(login, WORKER_GROUP):
            return uow.actors.require(SYSTEM)
        msg = (
            f"database login {login!r} is bound to no actor, so it may only read; "
            f"a coordinator binds it with 'consultflow actor bind NAME --login {login}'"
        )
        raise PermissionDeniedError(msg)
    if acting and acting != bound.name:
        msg = f"--as {acting!r} does not match this database login, which is bound to {bound.name!r}"
        raise PermissionDeniedError(msg)
    return bound, uow.actors.roles(bound.id)


def check_reader(ctx: ServiceContext) -> None:
    """Refuse even reads to a login bound to nobody, when the setting says so.

    Raises:
        PermissionDeniedError: logins are bound, this one is not, and unbound logins may not read.
    """
    if ctx.unbound_logins == "read":
        return
    with ctx.uow() as uow:
        login = uow.logins.session_login()
        if login is None:
            return
        if uow.logins.holds_database_role(login) or uow.logins.is_member(login, WORKER_GROUP):
            return  # this database's server, worker or reader (the reader may not even see who is bound)
        any_bound, bound = uow.logins.binding(login)
        if any_bound and bound is None:
            msg = f"database login {login!r} is bound to no actor, and unbound logins may not read here"
            raise PermissionDeniedError(msg)
