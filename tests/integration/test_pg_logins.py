"""Identities proven by PostgreSQL logins, and group roles the database itself enforces.

Real logins connect for each role; what they may not do is refused by PostgreSQL, whatever SQL
they send, and by consultflow with one clear line.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import PermissionDeniedError
from consultflow.domain.vocabulary import Field
from consultflow.services import identity, opinion_views, opinions, people, rounds, verify
from consultflow.services.context import ServiceContext
from consultflow.store.engine import normalize_url
from tests.conftest import _pg_schema_url, engine_of, make_context
from tests.helpers import AUDITOR, COORD, EXPERT, PLANNER, Setup, assert_loop_invariants, seed, submit

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


def _bind_everyone(lg: Logins) -> None:
    """The first binding by the schema's owner (as the coordinator); the rest by the coordinator's login."""
    assert people.bind_login(lg.owner, acting=COORD, name=COORD, login=lg.names["coord"]) == "consultflow_coordinator"
    coord = lg.ctx["coord"]
    assert people.bind_login(coord, acting=None, name=PLANNER, login=lg.names["planner"]) == "consultflow_staff"
    assert people.bind_login(coord, acting=None, name=EXPERT, login=lg.names["expert"]) == "consultflow_staff"
    assert people.bind_login(coord, acting=None, name=AUDITOR, login=lg.names["auditor"]) == "consultflow_auditor"


def _refused_sql(ctx: ServiceContext, statement: str) -> str:
    with pytest.raises(DBAPIError) as refused, engine_of(ctx).begin() as conn:
        conn.execute(text(statement))
    return str(refused.value.orig)


def test_a_login_acts_as_its_actor_and_only_as_it(logins: Logins) -> None:
    """Once bound, the login decides who acts: --as may only repeat it; an unbound login may only read."""
    lg = logins
    oid = submit(lg.owner, setup_of(lg))  # before any binding: --as, as on SQLite
    _bind_everyone(lg)
    planner, expert, unbound = lg.ctx["planner"], lg.ctx["expert"], lg.ctx["unbound"]
    with pytest.raises(
        PermissionDeniedError, match=f"does not match this database login, which is bound to '{PLANNER}'"
    ):
        opinions.assign(planner, acting=COORD, opinion_ids=[oid], planner=PLANNER)
    opinions.fire(expert, acting=None, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(planner, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "已研究"})
    for who in (lg.owner, unbound):  # the owner's own login is bound to nobody too
        with pytest.raises(PermissionDeniedError, match="is bound to no actor, so it may only read"):
            opinions.fire(who, acting=COORD, opinion_id=oid, trigger="lapse", fields={})
    assert opinion_views.show_opinion(unbound, oid)[0].state == "feedback_given"  # reading is allowed
    with pytest.raises(PermissionDeniedError, match="unbound logins may not read"):
        identity.check_reader(replace(unbound, unbound_logins="none"))
    identity.check_reader(replace(planner, unbound_logins="none"))  # a bound login reads
    rounds.close_round(lg.ctx["worker"], acting="system", consultation_id=lg.consultation_id)  # auto-close
    assert verify.verify_chain(lg.ctx["auditor"], lg.consultation_id).intact
    assert_loop_invariants(lg.owner, lg.consultation_id)


def test_the_database_refuses_what_a_role_may_not_do_whatever_sql_is_sent(logins: Logins) -> None:
    """Contacts, the audit table and the schema are out of reach of staff and auditors at the SQL level."""
    lg = logins
    _bind_everyone(lg)
    planner, auditor, coord, worker = (lg.ctx[k] for k in ("planner", "auditor", "coord", "worker"))
    for ctx in (planner, auditor):
        assert "permission denied" in _refused_sql(ctx, "SELECT contact FROM participant")
    for ctx in (planner, coord, worker):
        for statement in (
            "UPDATE audit_event SET actor = 'x'",
            "DELETE FROM audit_event",
            "TRUNCATE audit_event",
            "ALTER TABLE audit_event DISABLE TRIGGER ALL",
            "ALTER TABLE opinion ADD COLUMN note text",
            "DROP TABLE opinion",
            "UPDATE personal_data_access SET purpose = 'x'",
        ):
            said = _refused_sql(ctx, statement)
            assert "permission denied" in said or "must be owner" in said, (statement, said)
    for statement in ("INSERT INTO audit_event (id) VALUES (1)", "UPDATE opinion SET state = 'adopted'"):
        assert "permission denied" in _refused_sql(auditor, statement)
    with engine_of(worker).connect() as conn:  # the worker sends reminders: it reads contacts
        assert conn.execute(text("SELECT contact FROM participant")).scalars().all() == ["13812345678"]
    with engine_of(auditor).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one() > 0
    with pytest.raises(PermissionDeniedError, match="may not see participants' full names or contacts"):
        people.list_participants(planner, with_contact=True, purpose="回访")
    shown = people.list_participants(coord, with_contact=True, purpose="第二轮电话回访")
    assert [p.contact for p in shown] == ["13812345678"]


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
    _bind_everyone(lg)
    with pytest.raises(ValidationError, match="already bound to another actor"):
        people.bind_login(lg.ctx["coord"], acting=None, name=EXPERT, login=lg.names["planner"])


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
