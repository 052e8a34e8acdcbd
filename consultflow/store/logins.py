"""PostgreSQL logins: who the database says is connected, and the group roles that limit them.

Authentication stays PostgreSQL's own (passwords, peer, certificates); consultflow only reads
`session_user` and grants the group role that fits an actor's role. On SQLite there are no logins.
"""

from __future__ import annotations

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from consultflow.domain.identity import checked_login
from consultflow.store.models import Actor


class Logins:
    """The connected login, the logins bound to actors, and group memberships."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def session_login(self) -> str | None:
        """The login this connection authenticated as (None on SQLite)."""
        if not self._postgres:
            return None
        info = self.session.connection().info  # one dict per pooled connection: ask once per connection
        if "consultflow_login" not in info:
            info["consultflow_login"] = str(self.session.scalar(text("SELECT session_user")))
        return str(info["consultflow_login"])

    def binding(self, login: str) -> tuple[bool, Actor | None]:
        """(whether any actor is bound to a login at all, the actor bound to `login`), in one query."""
        mine = Actor.login == login
        stmt = select(Actor, mine).where(Actor.login.is_not(None)).order_by(mine.desc()).limit(1)
        row = self.session.execute(stmt).first()
        if row is None:
            return False, None
        actor, is_mine = row
        return True, actor if is_mine else None

    def bind(self, actor_id: int, login: str) -> None:
        """Record that `login` proves this actor."""
        self.session.execute(update(Actor).where(Actor.id == actor_id).values(login=login))

    def exists(self, login: str) -> bool:
        """Whether the cluster has a role that may log in under this name."""
        stmt = text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :login")
        return bool(self.session.scalar(stmt, {"login": login}))

    def is_member(self, login: str, group: str) -> bool:
        """Whether `login` is (directly or not) a member of `group`."""
        stmt = text("SELECT pg_has_role(:login, :group, 'MEMBER')")
        return bool(self.session.scalar(stmt, {"login": login, "group": group}))

    def holds_database_role(self, login: str) -> bool:
        """Whether `login` holds one of this database's roles (server, worker, reader: see migration 0013)."""
        from consultflow.store.roles import role_names  # noqa: PLC0415 - PostgreSQL only

        database, schema = self.session.execute(text("SELECT current_database(), current_schema()")).one()
        if schema is None:  # no schema it may use: it holds none of the roles that could
            return False
        names = list(role_names(str(database), str(schema)).values())
        stmt = text(
            "SELECT bool_or(pg_has_role(:login, r.rolname, 'MEMBER')) FROM pg_roles r WHERE r.rolname = ANY(:names)"
        )
        return bool(self.session.scalar(stmt, {"login": login, "names": names}))

    def grant(self, group: str, login: str) -> None:
        """Make `login` a member of `group` (both checked names: GRANT takes no parameters)."""
        self.session.execute(text(f'GRANT "{checked_login(group)}" TO "{checked_login(login)}"'))
