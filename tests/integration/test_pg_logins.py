"""Per-person PostgreSQL logins (migration 0005's groups) after migration 0013: they can do nothing.

Real logins connect as each kind of person; since the server became the only writer, the
database refuses them whatever SQL they send, and consultflow says so in one clear line.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import PermissionDeniedError
from consultflow.services import opinion_views, opinions, people, rounds, verify
from consultflow.services.context import ServiceContext
from consultflow.store.engine import normalize_url
from tests.conftest import _pg_schema_url, engine_of, make_context
from tests.helpers import COORD, EXPERT, PLANNER, Setup, assert_loop_invariants, seed, submit

pytestmark = pytest.mark.postgres

KINDS = ("coord", "planner", "expert", "auditor", "unbound", "worker")


@dataclass
class Logins:
    """One login per kind, and a context connected as each."""

    names: dict[str, str]
    ctx: dict[str, ServiceContext]
    owner: ServiceContext
    consultation_id: int
    participant_id: int


def _as(url: str, login: str, clock: FixedClock) -> ServiceContext:
    from consultflow.store.database import SqlDatabase
    from tests.conftest import WORKFLOWS

    engine = create_engine(normalize_url(str(make_url(url).set(username=login))))
    return ServiceContext(database=SqlDatabase(engine), workflows_dir=WORKFLOWS, clock=clock)


@pytest.fixture(name="logins")
def _logins(clock: FixedClock) -> Iterator[Logins]:
    url = next(gen := _pg_schema_url())
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"cf_{kind}_{suffix}" for kind in KINDS}
    owner = make_context(url, clock)
    setup = seed(owner)
    with engine_of(owner).begin() as conn:  # what the county's database administrator does once
        for login in names.values():
            conn.execute(text(f"CREATE ROLE {login} LOGIN"))
        conn.execute(
            text(
                "GRANT consultflow_coordinator, consultflow_staff, consultflow_auditor "
                f"TO {names['coord']} WITH ADMIN OPTION"
            )
        )
        conn.execute(text(f"GRANT consultflow_worker TO {names['worker']}"))
        # What `actor bind` granted each person before migration 0013.
        conn.execute(text(f"GRANT consultflow_staff TO {names['planner']}, {names['expert']}"))
        conn.execute(text(f"GRANT consultflow_auditor TO {names['auditor']}"))
        # A login bound to no actor reads what auditors read only if the administrator says so.
        conn.execute(text(f"GRANT consultflow_auditor TO {names['unbound']}"))
    contexts = {kind: _as(url, login, clock) for kind, login in names.items()}
    try:
        yield Logins(names, contexts, owner, setup.consultation_id, setup.participant_id)
    finally:
        for c in contexts.values():
            c.database.dispose()
        with engine_of(owner).begin() as conn:
            for login in names.values():
                conn.execute(text(f"DROP OWNED BY {login}"))
                conn.execute(text(f"DROP ROLE {login}"))
        owner.database.dispose()
        next(gen, None)


def _refused_sql(ctx: ServiceContext, statement: str) -> str:
    with pytest.raises(DBAPIError) as refused, engine_of(ctx).begin() as conn:
        conn.execute(text(statement))
    return str(refused.value.orig)


def test_per_person_logins_can_do_nothing_once_the_server_is_the_writer(logins: Logins) -> None:
    """Migration 0013 took the 0005 groups' grants: a bound login is refused by the database, in one line.

    (Before 0013 these logins acted as their actors and wrote through their groups; that is gone:
    the server is the only writer. The database-level attacks per role are in test_db_roles.py.)
    """
    lg = logins
    oid = submit(lg.owner, setup_of(lg))
    assert people.bind_login(lg.owner, acting=COORD, name=COORD, login=lg.names["coord"]) == "consultflow_coordinator"
    for kind, acting in (("coord", None), ("expert", EXPERT), ("planner", PLANNER), ("worker", "system")):
        with pytest.raises(PermissionDeniedError, match="the database refused this to your login"):
            opinions.fire(lg.ctx[kind], acting=acting, opinion_id=oid, trigger="screen", fields={})
    with pytest.raises(PermissionDeniedError, match="the database refused this to your login"):
        rounds.close_round(lg.ctx["worker"], acting="system", consultation_id=lg.consultation_id)
    with pytest.raises(PermissionDeniedError, match="the database refused this to your login"):
        opinion_views.show_opinion(lg.ctx["auditor"], oid)
    for ctx in (lg.ctx["planner"], lg.ctx["coord"], lg.ctx["worker"], lg.ctx["auditor"]):
        for statement in (
            "SELECT contact FROM participant",
            "UPDATE audit_event SET actor = 'x'",
            "DELETE FROM audit_event",
            "ALTER TABLE audit_event DISABLE TRIGGER ALL",
            "UPDATE opinion SET state = 'adopted'",
            "INSERT INTO account_event (chain_seq) VALUES (99)",
        ):
            said = _refused_sql(ctx, statement)
            assert "permission denied" in said or "must be owner" in said, (statement, said)
    with pytest.raises(PermissionDeniedError, match="bound to no actor, so it may only read"):
        opinions.fire(
            lg.owner, acting=COORD, opinion_id=oid, trigger="screen", fields={}
        )  # the owner, once any is bound
    assert opinion_views.show_opinion(lg.owner, oid)[0].state == "submitted"  # nothing was written
    assert verify.verify_chain(lg.owner, lg.consultation_id).intact
    assert_loop_invariants(lg.owner, lg.consultation_id)


def test_binding_needs_a_real_login_and_a_coordinator(logins: Logins) -> None:
    """No such login, a malformed one, or a planner binding: one clear line each, nothing bound."""
    from consultflow.domain.errors import ValidationError

    lg = logins
    with pytest.raises(ValidationError, match="the database has no login 'nobody_here'"):
        people.bind_login(lg.owner, acting=COORD, name=PLANNER, login="nobody_here")
    with pytest.raises(ValidationError, match="use lower-case letters"):
        people.bind_login(lg.owner, acting=COORD, name=PLANNER, login='x"; DROP TABLE opinion; --')
    with pytest.raises(PermissionDeniedError, match="may not add actors"):
        people.bind_login(lg.owner, acting=PLANNER, name=PLANNER, login=lg.names["planner"])


def setup_of(lg: Logins) -> Setup:
    return Setup(lg.consultation_id, lg.participant_id)


def test_a_login_granted_nothing_gets_one_clear_line(logins: Logins, clock: FixedClock) -> None:
    """A login the administrator granted no group role sees no table: one line that says why, no traceback."""
    lg = logins
    bare = f"cf_bare_{uuid.uuid4().hex[:8]}"
    with engine_of(lg.owner).begin() as conn:
        conn.execute(text(f"CREATE ROLE {bare} LOGIN"))
    url = engine_of(lg.owner).url.render_as_string(hide_password=False)
    ctx = _as(url, bare, clock)
    try:
        with pytest.raises(PermissionDeniedError, match="this login sees no consultflow tables"):
            opinion_views.list_opinions(ctx, consultation_id=lg.consultation_id)
    finally:
        ctx.database.dispose()
        with engine_of(lg.owner).begin() as conn:
            conn.execute(text(f"DROP ROLE {bare}"))
