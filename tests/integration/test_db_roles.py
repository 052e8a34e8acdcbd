"""Roles per database: the server's, the worker's and the reader's logins against an insider's SQL.

Each login connects as itself (psycopg, and the `psql` binary) and tries what an insider with
that login would try; PostgreSQL refuses. The server's login runs the use cases end to end, the
worker's delivers, a second schema's roles cannot touch the first, and per-person logins from
before the server (migration 0005's groups) can change nothing once the schema is upgraded.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from consultflow.cli.main import main
from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import PermissionDeniedError
from consultflow.domain.vocabulary import Field
from consultflow.services import (
    accounts,
    consultations,
    digest,
    identity,
    opinions,
    people,
    personal_data,
    rounds,
    sweep,
    verify,
)
from consultflow.services.context import ServiceContext
from consultflow.services.outbox import SweepSettings
from consultflow.store import migrate
from consultflow.store.database import SqlDatabase
from consultflow.store.engine import make_engine, normalize_url
from consultflow.store.roles import DatabaseRoles, current_roles, role_names, scram_verifier
from tests.conftest import WORKFLOWS, Cli, _pg_schema_url, engine_of, make_context
from tests.helpers import COORD, EXPERT, PLANNER, Setup, assert_loop_invariants, seed, submit
from tests.integration.test_reminders import RecordingSender

pytestmark = pytest.mark.postgres

KINDS = ("server", "worker", "reader")
DAY = timedelta(days=1)


def _url_as(url: str, login: str, password: str | None = None) -> str:
    return make_url(normalize_url(url)).set(username=login, password=password).render_as_string(hide_password=False)


def _context_as(url: str, login: str, clock: FixedClock) -> ServiceContext:
    engine = make_engine(_url_as(url, login, "pw"))
    return ServiceContext(database=SqlDatabase(engine), workflows_dir=WORKFLOWS, clock=clock)


def _libpq(url: str, login: str) -> str:
    """A libpq connection string for `login` on the same database and schema (psycopg and psql take it)."""
    parsed = make_url(normalize_url(url))
    options = parsed.query.get("options", "")
    assert isinstance(options, str)
    return f"host={parsed.host} port={parsed.port or 5432} dbname={parsed.database} user={login} options='{options}'"


def _drop_roles(owner: Engine, *names: str) -> None:
    with owner.begin() as conn:
        for name in names:
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first():
                conn.execute(text(f'DROP OWNED BY "{name}"'))
                conn.execute(text(f'DROP ROLE "{name}"'))


@dataclass
class County:
    """A migrated schema with data, one login per role, and a context over each."""

    url: str
    owner: ServiceContext
    setup: Setup
    opinion_id: int
    logins: dict[str, str]
    roles: dict[str, str]
    ctx: dict[str, ServiceContext]


@pytest.fixture(name="county")
def _county(clock: FixedClock) -> Iterator[County]:
    gen = _pg_schema_url()
    url = next(gen)
    owner = make_context(url, clock)
    setup = seed(owner)
    oid = submit(owner, setup)
    opinions.fire(owner, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    suffix = uuid.uuid4().hex[:8]
    logins = {kind: f"cf_t_{kind}_{suffix}" for kind in KINDS}
    admin = DatabaseRoles(engine_of(owner))
    for kind, login in logins.items():
        admin.add_login(login, kind, existing=False, password="pw")
    with engine_of(owner).connect() as conn:
        roles = current_roles(conn)
    contexts = {kind: _context_as(url, login, clock) for kind, login in logins.items()}
    try:
        yield County(url, owner, setup, oid, logins, roles, contexts)
    finally:
        for c in contexts.values():
            c.database.dispose()
        _drop_roles(engine_of(owner), *logins.values())
        owner.database.dispose()
        next(gen, None)


def _refused(conninfo: str, statement: str) -> str:
    """Run `statement` as the login; it must be refused for want of a privilege. Returns the message."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        try:
            conn.execute(statement)  # the insider's SQL, as typed
        except psycopg.errors.InsufficientPrivilege as exc:
            return str(exc)
        except psycopg.Error as exc:  # pragma: no cover - a refusal for another reason is a failure
            pytest.fail(f"{statement!r} failed, but not for want of privilege: {exc.sqlstate} {exc}")
    pytest.fail(f"{statement!r} was allowed")


def _allowed(conninfo: str, statement: str) -> None:
    with psycopg.connect(conninfo) as conn:
        conn.execute(statement)
        conn.rollback()


# What no login but the owner may do, whatever role it holds.
EVERYONE_REFUSED = (
    "UPDATE audit_event SET actor = 'someone else'",
    "DELETE FROM audit_event",
    "TRUNCATE audit_event",
    "UPDATE signed_head SET head = repeat('0', 64)",
    "DELETE FROM signed_head",
    "TRUNCATE signed_head",
    "UPDATE personal_data_access SET purpose = 'nothing to see'",
    "DELETE FROM personal_data_access_item",
    "DELETE FROM account_event",
    "DROP TRIGGER audit_event_no_change ON audit_event",
    "ALTER TABLE audit_event DISABLE TRIGGER ALL",
    "ALTER TABLE signed_head DISABLE TRIGGER signed_head_no_change",
    "ALTER TABLE opinion ADD COLUMN note text",
    "DROP TABLE opinion",
    "CREATE TABLE shadow (id int)",
    "CREATE FUNCTION noop() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE TRIGGER t BEFORE INSERT ON opinion FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    "SET session_replication_role = replica",
    "UPDATE alembic_version SET version_num = '0001'",
    "DELETE FROM opinion",
    "DELETE FROM participant",
    "DELETE FROM consultation_round",
    "UPDATE workflow SET source = ''",
    "UPDATE opinion_entry SET text = 'rewritten'",
)
# What only the server may do: the live tables' writes and the credentials.
NOT_SERVER_REFUSED = (
    (
        "INSERT INTO audit_event (id, consultation_id, chain_seq, kind, actor, role, at, payload, prev_hash, hash) "
        "VALUES (999, 1, 999, 'forged', 'x', 'coordinator', now(), '{}', 'x', 'x')"
    ),
    (
        "INSERT INTO signed_head (consultation_id, seq, head, signed_at, key_id, statement, signature) "
        "VALUES (1, 1, 'x', now(), 'x', 'x', 'x')"
    ),
    "UPDATE opinion SET text = 'what they never said', category = 'industry'",
    "UPDATE consultation_round SET status = 'open'",
    "UPDATE consultation SET chain_head = repeat('0', 64), chain_seq = 0",
    "UPDATE participant SET contact = '13900000000'",
    (
        "INSERT INTO opinion_entry (opinion_id, opinion_seq, round_no, kind, text, actor_id, created_at) "
        "VALUES (1, 99, 1, 'feedback', 'x', 1, now())"
    ),
    "SELECT * FROM staff_credential",
    "SELECT token_hash FROM access_token",
    "SELECT * FROM signin_throttle",
    "UPDATE account_chain SET seq = 0",
)
WORKER_REFUSED = (
    "UPDATE reminder SET send_at = now() + interval '1 year'",
    "UPDATE reminder SET recipient_role = 'planner'",
    "INSERT INTO reminder (consultation_id) VALUES (1)",
    "DELETE FROM delivery",
    "UPDATE delivery_attempt SET ok = true",
    "SELECT * FROM consultation",
    "SELECT * FROM audit_event",
    "SELECT secret FROM participant_key",  # the keys that open participants' texts
    "SELECT secret FROM privacy_secret",  # the secret match keys are keyed with
    "DELETE FROM participant_key",
)
READER_REFUSED = (
    "SELECT name FROM participant",
    "SELECT contact FROM participant",
    "SELECT match_key FROM participant",
    "SELECT * FROM participant",
    "SELECT intake_key FROM opinion",
    "SELECT contact FROM actor",
    "SELECT recipient_name, body FROM delivery",
    "SELECT * FROM delivery_attempt",
    "SELECT * FROM account_event",
    "UPDATE reminder SET status = 'cancelled'",
    "INSERT INTO delivery (idempotency_key) VALUES ('x')",
    "SELECT secret FROM participant_key",
    "SELECT * FROM participant_key",
    "SELECT secret FROM privacy_secret",
)


def test_the_insiders_sql_is_refused_to_every_login(county: County) -> None:
    """Each login tries the insider's SQL; PostgreSQL refuses it for want of a privilege."""
    for kind, login in county.logins.items():
        conninfo = _libpq(county.url, login)
        refused = list(EVERYONE_REFUSED)
        refused += [f'SET ROLE "{role}"' for k, role in county.roles.items() if k != kind]
        refused += ["SET ROLE postgres", "SET SESSION AUTHORIZATION postgres"]
        refused += [f'GRANT "{role}" TO "{login}"' for role in county.roles.values()]
        refused += [] if kind == "server" else list(NOT_SERVER_REFUSED)
        refused += {"server": (), "worker": WORKER_REFUSED, "reader": READER_REFUSED}[kind]
        for statement in refused:
            said = _refused(conninfo, statement)
            assert any(w in said for w in ("permission denied", "must be owner", "must have admin")), (kind, said)


def test_granting_itself_more_gives_nothing(county: County) -> None:
    """GRANT of what a login lacks, to itself: PostgreSQL refuses or grants nothing (no grant option)."""
    for kind, login in county.logins.items():
        with psycopg.connect(_libpq(county.url, login), autocommit=True) as conn:
            for statement in (
                f'GRANT ALL ON audit_event TO "{login}"',
                f'GRANT UPDATE, DELETE ON opinion TO "{login}"',
                f'GRANT CREATE ON SCHEMA {conn.execute("SELECT current_schema()").fetchone()[0]} TO "{login}"',  # type: ignore[index]
            ):
                with contextlib.suppress(psycopg.errors.InsufficientPrivilege):  # else "no privileges were granted"
                    conn.execute(statement)
            can = conn.execute(
                "SELECT has_table_privilege('audit_event', 'UPDATE'), has_table_privilege('audit_event', 'DELETE'), "
                "has_table_privilege('opinion', 'DELETE'), has_schema_privilege(current_schema(), 'CREATE')"
            ).fetchone()
        assert can == (False, False, False, False), (kind, can)


def test_each_login_may_do_what_its_process_needs(county: County) -> None:
    """The worker reads contacts and sets a reminder's status; the reader reads the record without names."""
    worker, reader = (_libpq(county.url, county.logins[k]) for k in ("worker", "reader"))
    for statement in (
        "SELECT contact FROM participant",
        "UPDATE reminder SET status = status, closed_at = closed_at, cancel_reason = cancel_reason",
        "SELECT id FROM reminder FOR UPDATE SKIP LOCKED",
    ):
        _allowed(worker, statement)
    for statement in (
        "SELECT id, village, lang, created_at, created_by_id, erased_at FROM participant",
        "SELECT * FROM audit_event",
        "SELECT * FROM signed_head",
        "SELECT id, text, state, outcome, rounds_count FROM opinion",
        "SELECT * FROM personal_data_access JOIN personal_data_access_item ON access_id = id",
        "SELECT id, name FROM actor",
        "SELECT * FROM reminder",
    ):
        _allowed(reader, statement)


@pytest.mark.skipif(shutil.which("psql") is None, reason="the psql binary is not installed")
def test_the_databases_own_tools_are_refused_too(county: County) -> None:
    """psql, as the reader and as the worker: the same refusals, whatever client sends the SQL."""
    for kind, statement in (
        ("reader", "UPDATE audit_event SET actor = 'x'"),
        ("reader", "SELECT name, contact FROM participant"),
        ("worker", "INSERT INTO audit_event (id) VALUES (999)"),
        ("worker", "ALTER TABLE audit_event DISABLE TRIGGER ALL"),
        ("server", "TRUNCATE audit_event"),
        ("server", "DROP TRIGGER audit_event_no_change ON audit_event"),
    ):
        done = subprocess.run(
            ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", statement, _libpq(county.url, county.logins[kind])],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "PGPASSWORD": "pw"},
        )
        assert done.returncode != 0, (kind, statement, done.stdout)
        assert "permission denied" in done.stderr or "must be owner" in done.stderr, (kind, statement, done.stderr)
    with engine_of(county.owner).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_event WHERE actor = 'x'")).scalar_one() == 0


def test_the_servers_login_runs_every_use_case(clock: FixedClock) -> None:
    """From an empty schema, as the server's login: people, a consultation, rounds, opinions, erasure, sign-in."""
    gen = _pg_schema_url()
    url = next(gen)
    owner_engine = make_engine(url)
    migrate.upgrade(owner_engine)
    login = f"cf_t_srv_{uuid.uuid4().hex[:8]}"
    DatabaseRoles(owner_engine).add_login(login, "server", existing=False, password="pw")
    server = _context_as(url, login, clock)
    try:
        setup = seed(server)
        first = submit(server, setup)
        second = submit(server, setup, "建议增设村卫生室", "public_services")
        opinions.fire(server, acting=EXPERT, opinion_id=first, trigger="screen", fields={})
        opinions.fire(server, acting=PLANNER, opinion_id=first, trigger="give_feedback", fields={Field.TEXT: "已研究"})
        opinions.correct(server, acting=EXPERT, opinion_id=second, text="建议增设村卫生室一处", reason="录入笔误")
        rounds.close_round(server, acting=COORD, consultation_id=setup.consultation_id)
        rounds.open_round(server, acting=COORD, consultation_id=setup.consultation_id)
        opinions.fire(
            server,
            acting=PLANNER,
            opinion_id=first,
            trigger="adopt",
            fields={Field.TEXT: "已纳入规划", Field.PLAN_REF: "v2 §5.3"},
        )
        shown = people.list_participants(server, acting=COORD, with_contact=True, purpose="第二轮电话回访")
        assert [p.contact for p in shown] == ["13812345678"]
        personal_data.erase_participant(server, acting=COORD, participant_id=setup.participant_id, reason="本人申请")
        people.add_actor(server, acting=COORD, name="钱规划", roles=["planner"])
        accounts.set_password(server, acting=None, name=PLANNER, password="a long passphrase 2026")
        token = accounts.sign_in(
            server, name=PLANNER, password="a long passphrase 2026", totp_code=None, client="t", token_name="cli"
        )
        assert accounts.authenticate(server, token.token).name == PLANNER
        with pytest.raises(PermissionDeniedError):  # a wrong password is counted, and the count cleared later
            accounts.sign_in(server, name=PLANNER, password="wrong", totp_code=None, client="t", token_name="cli")
        accounts.sign_in(
            server, name=PLANNER, password="a long passphrase 2026", totp_code=None, client="t", token_name="cli"
        )
        assert verify.verify_chain(server, setup.consultation_id).intact
        assert_loop_invariants(server, setup.consultation_id)
        cli = Cli(_url_as(url, login, "pw"), clock)  # the CLI on the same login, as a local owner would run it
        cli.ok("opinion", "fire", str(second), "screen", actor=EXPERT)
        cli.ok("round", "close", str(setup.consultation_id), actor=COORD)
    finally:
        server.database.dispose()
        _drop_roles(owner_engine, login)
        owner_engine.dispose()
        next(gen, None)


def test_the_workers_login_delivers_and_closes_no_round(county: County, clock: FixedClock) -> None:
    """The worker's sweep (close_rounds=False) turns due reminders into sent messages; closing a round is refused."""
    rounds.reschedule_round(
        county.owner, acting=COORD, consultation_id=county.setup.consultation_id, closes_at=clock.now() + DAY
    )
    consultations.set_auto_close(county.owner, acting=COORD, consultation_id=county.setup.consultation_id, enabled=True)
    worker = county.ctx["worker"]
    sender = RecordingSender()
    report = sweep.sweep(worker, sender, SweepSettings(), now=clock.now() + 10 * DAY, close_rounds=False)
    assert report.dispatched > 0
    assert report.sent == len(sender.sent) > 0
    assert report.rounds_closed == 0
    assert digest.queue_digests(replace(worker, clock=FixedClock(clock.now() + 10 * DAY)), SweepSettings()) > 0
    with pytest.raises(PermissionDeniedError, match="the database refused this to your login"):
        rounds.close_round(worker, acting="system", consultation_id=county.setup.consultation_id)
    with pytest.raises(PermissionDeniedError, match="the database refused this to your login"):
        sweep.sweep(worker, sender, SweepSettings(), now=clock.now() + 10 * DAY)  # asked to close rounds: refused
    cli = Cli(_url_as(county.url, county.logins["worker"], "pw"), clock)  # run-once, as the worker: delivers only
    said = cli.ok("reminders", "run-once", "--now", (clock.now() + 11 * DAY).strftime("%Y-%m-%dT%H:%M")).output
    assert "rounds closed 0" in said
    assert rounds.round_status(county.owner, county.setup.consultation_id).open_round is not None
    owner_cli = Cli(_url_as(county.url, "postgres"), clock)  # the owner's run-once still closes due rounds
    assert (
        "rounds closed 1"
        in owner_cli.ok("reminders", "run-once", "--now", (clock.now() + 11 * DAY).strftime("%Y-%m-%dT%H:%M")).output
    )


def test_a_second_schemas_roles_cannot_touch_the_first(county: County, clock: FixedClock) -> None:
    """Two counties (here two schemas) on one cluster: the other's server login reaches nothing of this one."""
    gen = _pg_schema_url()
    other_url = next(gen)
    other = make_context(other_url, clock)
    login = f"cf_t_other_{uuid.uuid4().hex[:8]}"
    try:
        with engine_of(other).connect() as conn:
            other_roles = current_roles(conn)
        assert set(other_roles.values()).isdisjoint(county.roles.values())
        DatabaseRoles(engine_of(other)).add_login(login, "server", existing=False, password="pw")
        schema = make_url(normalize_url(county.url)).query["options"]
        assert isinstance(schema, str)
        first = schema.removeprefix("-csearch_path=")
        conninfo = _libpq(other_url, login)
        for statement in (
            f"SELECT * FROM {first}.opinion",
            f"UPDATE {first}.opinion SET text = 'x'",
            f"INSERT INTO {first}.audit_event (id) VALUES (1)",
            f'SET ROLE "{county.roles["server"]}"',
        ):
            _refused(conninfo, statement)
        _allowed(conninfo, "SELECT * FROM opinion")  # its own schema
    finally:
        other.database.dispose()
        _drop_roles(engine_of(county.owner), login)
        next(gen, None)


def test_per_person_logins_can_change_nothing_once_upgraded(clock: FixedClock) -> None:
    """A planner's login granted consultflow_staff (migration 0005) writes at 0011; after the upgrade it cannot."""
    gen = _pg_schema_url()
    url = next(gen)
    engine = make_engine(url)
    migrate.upgrade(engine)
    owner = ServiceContext(database=SqlDatabase(engine), workflows_dir=WORKFLOWS, clock=clock)
    setup = seed(owner)
    oid = submit(owner, setup)
    migrate.downgrade(engine, "0011")  # a county's database as it was at 0011, with its opinion
    login = f"cf_t_person_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {login} LOGIN"))
    people.bind_login(owner, acting=COORD, name=PLANNER, login=login)  # grants consultflow_staff, as before
    conninfo = _libpq(url, login)
    tamper = f"UPDATE opinion SET text = 'what they never said' WHERE id = {oid}"
    try:
        with psycopg.connect(conninfo) as conn:  # before: the database let a planner's login rewrite an opinion
            assert conn.execute(tamper).rowcount == 1
            conn.rollback()
        migrate.upgrade(engine)
        for statement in (
            tamper,
            "SELECT * FROM opinion",
            "INSERT INTO account_event (chain_seq) VALUES (99)",
            "UPDATE consultation_round SET status = 'open'",
            "SELECT nextval(pg_get_serial_sequence('opinion', 'id'))",
        ):
            _refused(conninfo, statement)
        DatabaseRoles(engine).add_login(login, "reader", existing=True, password=None)  # an auditor's login: reader
        _allowed(conninfo, "SELECT count(*) FROM audit_event")
        _refused(conninfo, tamper)
        _refused(conninfo, "SELECT name, contact FROM participant")
    finally:
        _drop_roles(engine, login)
        engine.dispose()
        next(gen, None)


def _grants_of(engine: Engine, roles: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Every table, column, sequence and schema privilege `roles` hold in the schema."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, '', g.rolname, a.privilege_type FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() "
                "CROSS JOIN aclexplode(c.relacl) a JOIN pg_roles g ON g.oid = a.grantee WHERE g.rolname = ANY(:r) "
                "UNION ALL SELECT c.relname, at.attname, g.rolname, a.privilege_type FROM pg_attribute at "
                "JOIN pg_class c ON c.oid = at.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() "
                "CROSS JOIN aclexplode(at.attacl) a JOIN pg_roles g ON g.oid = a.grantee WHERE g.rolname = ANY(:r) "
                "UNION ALL SELECT n.nspname, '', g.rolname, a.privilege_type FROM pg_namespace n "
                "CROSS JOIN aclexplode(n.nspacl) a JOIN pg_roles g ON g.oid = a.grantee "
                "WHERE n.nspname = current_schema() AND g.rolname = ANY(:r)"
            ),
            {"r": list(roles)},
        ).all()
    return {tuple(map(str, r)) for r in rows}


def test_downgrade_restores_the_groups_grants_as_they_were() -> None:
    """0013 down: the four groups hold exactly what 0005, 0006 and 0011 gave them; the new roles hold nothing."""
    old = ("consultflow_coordinator", "consultflow_staff", "consultflow_auditor", "consultflow_worker")
    gen = _pg_schema_url()
    url = next(gen)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, "0012")
        before = _grants_of(engine, old)
        assert before
        migrate.upgrade(engine)
        with engine.connect() as conn:
            new = tuple(current_roles(conn).values())
        schema_usage = {g for g in before if g[3] == "USAGE" and g[1] == "" and g[0].startswith("cf_")}
        assert _grants_of(engine, old) == schema_usage  # nothing on a table or sequence: "permission denied"
        assert _grants_of(engine, new)
        migrate.downgrade(engine, "0012")
        assert _grants_of(engine, old) == before
        assert _grants_of(engine, new) == set()
        migrate.upgrade(engine)  # and up again: the roles exist already
        assert _grants_of(engine, old) == schema_usage
    finally:
        engine.dispose()
        next(gen, None)


def test_an_owner_without_createrole_gets_one_line(clock: FixedClock) -> None:
    """The migration, and db login, say which privilege the owner lacks; nothing is changed."""
    base = os.environ.get("CONSULTFLOW_TEST_PG")
    if not base:
        pytest.skip("PostgreSQL tests need CONSULTFLOW_TEST_PG (a URL such as postgresql://postgres@127.0.0.1/test)")
    admin = create_engine(normalize_url(base))
    suffix = uuid.uuid4().hex[:8]
    owner, schema = f"cf_t_owner_{suffix}", f"cf_t_{suffix}"
    with admin.begin() as conn:
        conn.execute(text(f"CREATE ROLE {owner} LOGIN CREATEROLE"))
        conn.execute(text(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}"))
    url = _url_as(f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}", owner)
    try:
        engine = make_engine(url)
        migrate.upgrade(engine, "0012")
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"ALTER ROLE {owner} NOCREATEROLE"))
        cli = Cli(url, clock)
        result = cli("db", "upgrade")
        assert result.exit_code == 1, result.output
        assert "may not create roles" in result.output
        assert "CREATEROLE" in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert "Traceback" not in result.output
        assert "database: 0012" in cli("db", "current").output
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            names = role_names(make_url(normalize_url(base)).database or "", schema)
            for name in names.values():
                if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first():
                    conn.execute(text(f'DROP ROLE "{name}"'))
            conn.execute(text(f"DROP OWNED BY {owner}"))
            conn.execute(text(f"DROP ROLE {owner}"))
        admin.dispose()


def test_the_owners_commands_list_create_grant_and_revoke(county: County, clock: FixedClock, tmp_path: Path) -> None:
    """db roles and db login: each way in, each refusal one line with its exit code."""
    cli = Cli(county.url, clock)
    listed = cli.ok("db", "roles").output
    for kind, role in county.roles.items():
        assert f"{role}: {county.logins[kind]}" in listed
    suffix = uuid.uuid4().hex[:8]
    made, piped, filed, person = (f"cf_t_{w}_{suffix}" for w in ("made", "piped", "filed", "person"))
    try:
        said = cli.ok("db", "login", made, "--role", "worker").output
        assert f"created login {made} with {county.roles['worker']}" in said
        password = said.strip().splitlines()[-1].rsplit(" ", 1)[-1]
        assert len(password) >= 30
        from_stdin = cli.runner.invoke(
            main, ["--db", county.url, "-q", "db", "login", piped, "--role", "reader"], input="from stdin\n"
        )
        assert from_stdin.exit_code == 0, from_stdin.output
        assert "password" not in from_stdin.output
        secret = tmp_path / "password"
        secret.write_text("from a file\n", encoding="utf-8")
        assert "password" not in cli.ok("db", "login", filed, "--role", "server", "--password-file", str(secret)).output
        with engine_of(county.owner).begin() as conn:
            conn.execute(text(f"CREATE ROLE {person} LOGIN"))
            stored: dict[str, str] = dict(
                conn.execute(
                    text("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(:n)"), {"n": [piped, filed]}
                ).all()
            )
        for name, given in ((piped, "from stdin"), (filed, "from a file")):
            head, keys = stored[name].split("$", 2)[1:]
            salt = head.split(":", 1)[1]
            assert stored[name] == scram_verifier(given, salt=base64.b64decode(salt)), name
            assert keys
        assert (
            f"granted {county.roles['reader']} to the existing login {person}"
            in cli.ok("db", "login", person, "--existing", "--role", "reader").output
        )
        listed = cli.ok("db", "roles").output
        assert person in listed and made in listed and filed in listed
        for args, code, says in (
            (("db", "login", made, "--role", "worker"), 1, "exists already; add --existing"),
            (("db", "login", f"cf_t_none_{suffix}", "--existing", "--role", "reader"), 1, "there is no role"),
            (("db", "login", 'x"; DROP TABLE opinion; --', "--role", "server"), 1, "use lower-case letters"),
            (("db", "login", county.roles["server"], "--existing", "--role", "reader"), 1, "group roles, not a login"),
            (("db", "login", "postgres", "--existing", "--role", "reader"), 1, "the login running this command"),
            (("db", "login", f"cf_t_none_{suffix}", "--revoke"), 1, "holds none of this database's roles"),
            (("db", "login", made), 2, "give --role"),
            (("db", "login", made, "--revoke", "--role", "server"), 2, "--revoke takes every one"),
            (("db", "login", made, "--role", "boss"), 2, "Invalid value"),
        ):
            result = cli(*args)
            assert result.exit_code == code, (args, result.output)
            assert says in result.output, (args, result.output)
        assert f"revoked {county.roles['reader']} from {person}" in cli.ok("db", "login", person, "--revoke").output
        assert person not in cli.ok("db", "roles").output
        assert '"members"' in cli.ok("--json", "db", "roles").output
    finally:
        _drop_roles(engine_of(county.owner), made, piped, filed, person)


def test_roles_are_for_postgresql_only(sqlite_url: str, clock: FixedClock) -> None:
    """On SQLite: one line, exit 1."""
    cli = Cli(sqlite_url, clock)
    cli.ok("db", "upgrade")
    for args in (("db", "roles"), ("db", "login", "cf_x", "--role", "server")):
        result = cli(*args)
        assert result.exit_code == 1
        assert "database roles exist only on PostgreSQL" in result.output


def test_with_unbound_logins_refused_this_databases_roles_still_read(county: County) -> None:
    """CONSULTFLOW_UNBOUND_LOGINS=none refuses a bound-to-nobody person's login, not the server's, worker's or reader's."""
    people.bind_login(county.owner, acting=COORD, name=COORD, login="postgres")  # logins are bound here now
    for kind in KINDS:
        strict = replace(county.ctx[kind], unbound_logins="none")
        identity.check_reader(strict)  # no refusal
    stranger = f"cf_t_stranger_{uuid.uuid4().hex[:8]}"
    with engine_of(county.owner).begin() as conn:
        conn.execute(text(f"CREATE ROLE {stranger} LOGIN"))
    try:
        clock = county.owner.clock
        assert isinstance(clock, FixedClock)
        ctx = replace(_context_as(county.url, stranger, clock), unbound_logins="none")
        try:
            with pytest.raises(
                PermissionDeniedError, match="bound to no actor|refused this to your login|sees no consultflow tables"
            ):
                identity.check_reader(ctx)
        finally:
            ctx.database.dispose()
    finally:
        _drop_roles(engine_of(county.owner), stranger)
