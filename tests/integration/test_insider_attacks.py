"""Insider attacks on "evidence no insider can forge" (issue 20), each a test that the attack fails.

The attackers are people with database access: the server's, the worker's and a reader's logins
(PostgreSQL, with psycopg and the `psql` binary), another county's owner on the same cluster, and
the database's owner, who can drop triggers and rewrite anything in the database. What catches the
owner is what is kept outside it: the heads file, and a public key recorded before the attack.

An attack that works against the product as it stands is marked `xfail(strict=True)` with what it
does in its reason: the test asserts what the promise says, and fails (as expected) until the
product keeps it. Everything here that needs roles is PostgreSQL-only (marker `postgres`);
the rest runs on both backends.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from consultflow.domain.audit import ChainKey
from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import ConfigurationError, ValidationError
from consultflow.domain.heads import HeadPublishing, HeadSigner, SignedHead, checked, parse_lines
from consultflow.domain.vocabulary import Field
from consultflow.services import accounts, heads, opinions, verify
from consultflow.services.commands import Verify, registry
from consultflow.services.context import ServiceContext
from consultflow.store import migrate
from consultflow.store.database import SqlDatabase
from consultflow.store.engine import make_engine, normalize_url
from consultflow.store.roles import DatabaseRoles, current_roles
from consultflow.web.app import create_app
from consultflow.web.common import WebSettings, parse_limits
from tests.conftest import PG_ENV, WORKFLOWS, _pg_schema_url, engine_of, make_context
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit
from tests.integration.test_audit_trail import forge, small_consultation
from tests.integration.test_db_roles import _drop_roles, _libpq, _refused
from tests.integration.test_evidence import rehash_chain
from tests.web.portal import SECRET

KEY = ChainKey(b"k" * 32)
PASSWORD = "correct horse battery"
FULL_NAME, CONTACT = "张秀英", "13812345678"  # the participant `seed` registers
KINDS = ("server", "worker", "reader")


# --- helpers -------------------------------------------------------------------------------------


def _signer(tmp_path: Path, name: str = "signing.pem") -> tuple[HeadSigner, Path]:
    path = tmp_path / name
    path.write_bytes(HeadSigner.generate_pem())
    path.chmod(0o600)
    return HeadSigner.from_file(path), path


def _server_ctx(ctx: ServiceContext, tmp_path: Path) -> tuple[ServiceContext, Path, HeadSigner]:
    """The context as the server has it: the chain key, a signing key and a heads file outside the database."""
    signer, _ = _signer(tmp_path)
    heads_file = tmp_path / "heads.jsonl"
    return replace(ctx, chain_key=KEY, heads=HeadPublishing(signer, heads_file)), heads_file, signer


def _portal(ctx: ServiceContext) -> TestClient:
    app = create_app(replace(ctx, acting_proven=True), WebSettings(SECRET, parse_limits("")))
    return TestClient(app, follow_redirects=False, raise_server_exceptions=False)


def _portal_heads(ctx: ServiceContext, cid: int) -> str:
    """What `audit verify --heads https://portal/c/ID/heads.jsonl` downloads."""
    with _portal(ctx) as web:
        answer = web.get(f"/c/{cid}/heads.jsonl")
    assert answer.status_code == 200
    return str(answer.text)


def _verify_against(ctx: ServiceContext, published: str, cid: int, public_key: str | None) -> verify.ChainReport:
    """`audit verify CID --heads … [--public-key …]`, as the CLI runs it (signatures first, then the chain)."""
    found = tuple(parse_lines(published, "heads", public_key))
    (report,) = registry()["audit.verify"].run(ctx, None, Verify(cid, heads=found)).reports
    assert isinstance(report, verify.ChainReport)
    return report


def _owner_sql(ctx: ServiceContext, *statements: str) -> None:
    """The owner's SQL, around every append-only trigger (SQLite: the triggers dropped for good)."""
    engine = engine_of(ctx)
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            for name in ("audit_event", "signed_head"):
                for verb in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {name}_no_{verb}"))
            for statement in statements:
                conn.execute(text(statement))
        return
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        conn.execute(text("ALTER TABLE signed_head DISABLE TRIGGER USER"))
        for statement in statements:
            conn.execute(text(statement))
        conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
        conn.execute(text("ALTER TABLE signed_head ENABLE TRIGGER USER"))


def _row(ctx: ServiceContext, table: str, row_id: int) -> dict[str, Any]:
    with engine_of(ctx).connect() as conn:
        return dict(conn.execute(text(f"SELECT * FROM {table} WHERE id = {row_id}")).mappings().one())


def _restore(ctx: ServiceContext, table: str, row: dict[str, Any]) -> str:
    """An UPDATE that puts a row back as it was (the owner covering a cut tail)."""
    sets = ", ".join(f"{k} = :{k}" for k in row if k != "id")
    with engine_of(ctx).begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {sets} WHERE id = :id"), row)
    return sets


def _keyed_consultation(ctx: ServiceContext) -> tuple[int, list[int]]:
    cid, ids = small_consultation(ctx)
    with engine_of(ctx).connect() as conn:
        assert conn.execute(text(f"SELECT chain_key_id FROM consultation WHERE id = {cid}")).scalar_one() == KEY.key_id
    return cid, ids


# --- the database's own tools, as every login (PostgreSQL) ---------------------------------------


@pytest.fixture(name="logins")
def _logins(clock: FixedClock) -> Iterator[tuple[ServiceContext, dict[str, str], dict[str, str], str]]:
    """A migrated schema with a keyed consultation, one login per role; (owner context, logins, roles, url)."""
    gen = _pg_schema_url()
    url = next(gen)
    owner = replace(make_context(url, clock), chain_key=KEY)
    small_consultation(owner)
    suffix = uuid.uuid4().hex[:8]
    logins = {kind: f"cf_ia_{kind}_{suffix}" for kind in KINDS}
    admin = DatabaseRoles(engine_of(owner))
    for kind, login in logins.items():
        admin.add_login(login, kind, existing=False, password="pw")
    with engine_of(owner).connect() as conn:
        roles = current_roles(conn)
    try:
        yield owner, logins, roles, url
    finally:
        _drop_roles(engine_of(owner), *logins.values())
        owner.database.dispose()
        next(gen, None)


ESCALATIONS = (
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "COPY audit_event FROM PROGRAM 'true'",
    "COPY audit_event TO '/tmp/consultflow-insider.csv'",
    "COPY audit_event FROM '/etc/hostname'",
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT pg_read_binary_file('/etc/hostname')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/hostname')",
    "SELECT lo_export(1, '/tmp/consultflow-insider.lo')",
    "SELECT * FROM pg_largeobject",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    "CREATE ROLE cf_insider_made",
    "ALTER ROLE CURRENT_USER CREATEROLE",
    "ALTER ROLE CURRENT_USER SUPERUSER",
    "GRANT pg_execute_server_program TO CURRENT_USER",
    "GRANT pg_read_server_files TO CURRENT_USER",
    "CREATE SCHEMA insider",
    "CREATE TABLE shadow (id int)",
    "CREATE VIEW audit_view AS SELECT 1",
    "CREATE FUNCTION forge() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS 'BEGIN RETURN NEW; END'",
    "CREATE EXTENSION IF NOT EXISTS dblink",
    "ALTER TABLE audit_event OWNER TO CURRENT_USER",
    "ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_change",
    "ALTER TABLE signed_head DISABLE TRIGGER ALL",
    "DROP FUNCTION IF EXISTS audit_event_append_only() CASCADE",
    "SET session_replication_role = replica",
    "SELECT set_config('session_replication_role', 'replica', false)",
    "UPDATE audit_event SET hash = prev_hash",
    "DELETE FROM audit_event WHERE chain_seq > 3",
    "TRUNCATE audit_event, signed_head",
    "UPDATE signed_head SET signature = ''",
    "DELETE FROM signed_head",
    "DELETE FROM personal_data_access",
    "UPDATE account_event SET actor = 'nobody'",
    "UPDATE alembic_version SET version_num = '0012'",
    "REINDEX TABLE audit_event",
    "CLUSTER audit_event",
    "VACUUM FULL audit_event",
    "LOCK TABLE audit_event IN ACCESS EXCLUSIVE MODE",
)


@pytest.mark.postgres
@pytest.mark.parametrize("kind", KINDS)
def test_no_login_escapes_its_role_with_the_databases_own_tools(
    logins: tuple[ServiceContext, dict[str, str], dict[str, str], str], kind: str
) -> None:
    """Server programs, server files, large objects, other roles, DDL, triggers, append-only tables: all refused."""
    owner, names, roles, url = logins
    conninfo = _libpq(url, names[kind])
    # GRANT to oneself of a role one is not admin of, and SET ROLE to a role not held.
    others = [r for k, r in roles.items() if k != kind]
    statements = (*ESCALATIONS, *(f"SET ROLE {r}" for r in others), *(f"GRANT {r} TO CURRENT_USER" for r in others))
    for statement in statements:
        if statement.startswith(("VACUUM", "LOCK")):  # VACUUM only warns and skips; LOCK needs a transaction
            continue
        _refused(conninfo, statement)
    # LOCK ... ACCESS EXCLUSIVE (which would stop the server) needs more than SELECT and INSERT.
    with psycopg.connect(conninfo) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("LOCK TABLE audit_event IN ACCESS EXCLUSIVE MODE")
    assert verify.verify_chain(owner, 1).intact


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("psql") is None, reason="the psql binary is not installed")
@pytest.mark.parametrize("kind", KINDS)
def test_psql_as_each_login_cannot_touch_the_evidence(
    logins: tuple[ServiceContext, dict[str, str], dict[str, str], str], kind: str
) -> None:
    """The same insider with `psql` (its \\copy, \\lo_import and meta-commands) changes nothing."""
    owner, names, _roles, url = logins
    script = """\\set ON_ERROR_STOP off
UPDATE audit_event SET actor = 'x';
DELETE FROM signed_head;
ALTER TABLE audit_event DISABLE TRIGGER ALL;
\\lo_import /etc/hostname
SELECT lo_put(oid, 0, 'x') FROM pg_largeobject_metadata;
COPY (SELECT 1) TO PROGRAM 'touch /tmp/consultflow-insider-pwned';
\\copy audit_event FROM '/dev/null'
"""
    done = subprocess.run(
        ["psql", "-X", _libpq(url, names[kind])],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "permission denied" in done.stderr or "must be" in done.stderr
    assert "UPDATE 1" not in done.stdout and "DELETE" not in done.stdout.replace("DELETE 0", "")
    assert not Path("/tmp/consultflow-insider-pwned").exists()
    assert verify.verify_chain(owner, 1).intact
    with engine_of(owner).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM signed_head")).scalar_one() == 0


@pytest.mark.postgres
def test_a_temp_table_named_audit_event_fools_only_its_own_session(
    logins: tuple[ServiceContext, dict[str, str], dict[str, str], str],
) -> None:
    """pg_temp comes first in search_path, but only for the session that made it: the server sees the real table."""
    owner, names, _roles, url = logins
    with psycopg.connect(_libpq(url, names["server"])) as conn:
        conn.execute("CREATE TEMP TABLE audit_event (id int, hash text)")
        conn.execute("CREATE TEMP TABLE signed_head (id int)")
        conn.execute(
            "CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT 'epoch'::timestamptz$$"
        )
        conn.execute("INSERT INTO audit_event VALUES (1, 'forged')")
        assert conn.execute("SELECT count(*) FROM audit_event").fetchone() == (1,)
        conn.commit()
        with psycopg.connect(_libpq(url, names["server"])) as other:  # another session of the same login
            count = other.execute("SELECT count(*) FROM audit_event").fetchone()
        assert count is not None and count[0] > 1
    assert verify.verify_chain(owner, 1).intact


@pytest.mark.postgres
def test_no_function_in_the_schema_runs_with_its_owners_rights(
    logins: tuple[ServiceContext, dict[str, str], dict[str, str], str],
) -> None:
    """No SECURITY DEFINER function a login could call to act as the owner; trigger functions run as the caller."""
    owner, _names, _roles, _url = logins
    with engine_of(owner).connect() as conn:
        definers = conn.execute(
            text("SELECT proname FROM pg_proc WHERE prosecdef AND pronamespace = current_schema()::regnamespace")
        ).all()
    assert definers == []


@pytest.mark.postgres
def test_the_server_login_forges_an_event_and_rewinds_nothing_unseen(
    logins: tuple[ServiceContext, dict[str, str], dict[str, str], str], tmp_path: Path
) -> None:
    """The server's login (not its key) may INSERT events and UPDATE the head: verify names it, signing refuses."""
    owner, names, _roles, url = logins
    with psycopg.connect(_libpq(url, names["server"])) as conn:
        seq, head = conn.execute("SELECT chain_seq, chain_head FROM consultation WHERE id = 1").fetchone()  # type: ignore[misc]
        forged = "ab" * 32
        conn.execute(
            "INSERT INTO audit_event (consultation_id, chain_seq, kind, completes_cycle, actor, role, at, payload, prev_hash, hash) "
            "VALUES (1, %s, 'settings_changed', false, %s, 'coordinator', now(), '{\"auto_close\":true}', %s, %s)",
            (seq + 1, COORD, head, forged),
        )
        conn.execute("UPDATE consultation SET chain_seq = %s, chain_head = %s, auto_close = true", (seq + 1, forged))
    report = verify.verify_chain(owner, 1)
    assert not report.intact and report.broken is not None and report.broken.chain_seq == seq + 1
    signer, _ = _signer(tmp_path)
    (outcome,) = heads.sign_heads(replace(owner, heads=HeadPublishing(signer, tmp_path / "heads.jsonl")), 1)
    assert not outcome.signed and outcome.problem is not None


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE opinion SET text = '他们从没说过的话' WHERE id = 1",
        "UPDATE opinion SET category = 'industry' WHERE id = 1",
        "UPDATE opinion SET channel = 'online_questionnaire' WHERE id = 1",
        "UPDATE opinion SET plan_ref = 'v9 §9' WHERE id = 1",
        "UPDATE opinion SET state = 'adopted', outcome = 'adopted' WHERE id = 3",
        "UPDATE opinion SET rounds_count = 7 WHERE id = 2",
        "UPDATE opinion SET merged_into_id = 1 WHERE id = 2",
        "UPDATE consultation_round SET closes_at = COALESCE(closes_at, now()) + interval '9 days' WHERE number = 2",
        "UPDATE consultation_round SET status = 'closed', closed_at = now() WHERE number = 2",
        "UPDATE consultation SET title = '另一个标题'",
        "UPDATE consultation SET chain_key_id = NULL",
    ],
)
def test_the_server_login_edits_a_live_fact_and_verify_names_it(
    logins: tuple[ServiceContext, dict[str, str], dict[str, str], str], statement: str
) -> None:
    """What the server's role may UPDATE, an insider with its login may too: verify, without heads, catches each."""
    owner, names, _roles, url = logins
    with psycopg.connect(_libpq(url, names["server"])) as conn:
        assert conn.execute(statement).rowcount >= 1
    if "chain_key_id" in statement:
        report = verify.verify_chain(replace(owner, chain_key=None), 1)
    else:
        report = verify.verify_chain(owner, 1)
    assert not report.intact


@pytest.mark.postgres
def test_the_server_login_cannot_change_recorded_texts_or_the_workflow(
    logins: tuple[ServiceContext, dict[str, str], dict[str, str], str],
) -> None:
    """Feedback and replies, the stored workflow and its digest are not the server's to UPDATE."""
    _owner, names, _roles, url = logins
    conninfo = _libpq(url, names["server"])
    for statement in (
        "UPDATE opinion_entry SET text = 'rewritten'",
        "DELETE FROM opinion_entry",
        "UPDATE workflow SET source = '', digest = repeat('0', 64)",
        "DELETE FROM workflow",
        "DELETE FROM consultation_round",
        "DELETE FROM opinion",
    ):
        _refused(conninfo, statement)


@pytest.mark.postgres
def test_the_server_login_cannot_make_the_portal_show_its_own_key(
    logins: tuple[ServiceContext, dict[str, str], dict[str, str], str], tmp_path: Path
) -> None:
    """A head row signed by a key the insider made must not become the head (and key) the portal shows."""
    owner, names, _roles, url = logins
    real, _ = _signer(tmp_path, "real.pem")
    server = replace(owner, heads=HeadPublishing(real, tmp_path / "heads.jsonl"))
    heads.sign_heads(server, 1)
    mine, _ = _signer(tmp_path, "mine.pem")
    with psycopg.connect(_libpq(url, names["server"])) as conn:
        seq, head = conn.execute("SELECT chain_seq, chain_head FROM consultation WHERE id = 1").fetchone()  # type: ignore[misc]
        forged = mine.sign(1, seq + 1000, head, datetime.now(timezone.utc))
        conn.execute(
            "INSERT INTO signed_head (consultation_id, seq, head, signed_at, key_id, public_key, statement, signature) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (1, forged.seq, forged.head, forged.signed_at, forged.key_id, forged.public_key, forged.statement,
             forged.signature),
        )  # fmt: skip
    with _portal(server) as web:
        page = web.get("/c/1").text
    assert mine.public_key not in page
    assert real.public_key in page


@pytest.mark.postgres
def test_a_reader_finds_no_personal_data_in_anything_it_may_read(
    logins: tuple[ServiceContext, dict[str, str], dict[str, str], str],
) -> None:
    """Every column the reader's role may SELECT, read whole: no participant's name or contact anywhere."""
    owner, names, _roles, url = logins
    from consultflow.services import people

    people.list_participants(owner, acting=COORD, with_contact=True, full_names=True, purpose="回访核实")
    found: list[str] = []
    with psycopg.connect(_libpq(url, names["reader"])) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND has_column_privilege(current_user, quote_ident(table_name), column_name, 'SELECT')"
        ).fetchall()
        assert columns
        for table, column in columns:
            for (value,) in conn.execute(f'SELECT "{column}"::text FROM "{table}"'):
                if value and (FULL_NAME in value or CONTACT in value):
                    found.append(f"{table}.{column}")
    assert found == []


@pytest.mark.postgres
def test_the_other_countys_logins_reach_nothing_here(clock: FixedClock) -> None:
    """County Y's server, worker and reader logins connect to county X's schema and can read and write nothing."""
    x_gen, y_gen = _pg_schema_url(), _pg_schema_url()
    x_url, y_url = next(x_gen), next(y_gen)
    x, y = make_context(x_url, clock), make_context(y_url, clock)
    seed(x)
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"cf_iy_{kind}_{suffix}" for kind in KINDS}
    admin = DatabaseRoles(engine_of(y))
    for kind, login in names.items():
        admin.add_login(login, kind, existing=False, password="pw")
    with engine_of(x).connect() as conn:
        x_roles = current_roles(conn)
        s = conn.execute(text("SELECT current_schema()")).scalar_one()
    try:
        for login in names.values():
            conninfo = _libpq(x_url, login)  # county X's search_path, county Y's login
            for statement in (
                f"SELECT * FROM {s}.consultation",
                f"SELECT name FROM {s}.participant",
                f"INSERT INTO {s}.signed_head (consultation_id) VALUES (1)",
                f"UPDATE {s}.opinion SET state = 'adopted'",
                f"CREATE TABLE {s}.shadow (id int)",
                *(f"SET ROLE {r}" for r in x_roles.values()),
            ):
                _refused(conninfo, statement)
    finally:
        _drop_roles(engine_of(y), *names.values())
        x.database.dispose()
        y.database.dispose()
        next(x_gen, None)
        next(y_gen, None)


@pytest.fixture(name="documented_owner")
def _documented_owner(clock: FixedClock) -> Iterator[tuple[str, str, dict[str, str], str]]:
    """County X set up as docs/operators/postgresql.md says: a superuser creates its roles (`db roles --sql`) and its
    owner, with no CREATEROLE, migrates it; and county Y beside it on the same cluster."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    admin = create_engine(normalize_url(base))
    owner = f"cf_ia_owner_{uuid.uuid4().hex[:8]}"
    schema = f"cf_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f"CREATE ROLE {owner} LOGIN NOCREATEROLE NOSUPERUSER PASSWORD 'pw'"))
        conn.execute(text(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}"))
    y_gen = _pg_schema_url()
    y_url = next(y_gen)
    y = make_context(y_url, clock)
    with engine_of(y).connect() as conn:
        y_roles = current_roles(conn)
    x_url = (
        make_url(normalize_url(base))
        .set(username=owner, password="pw", query={"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    as_admin = make_engine(
        make_url(normalize_url(base))
        .set(query={"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    x_engine = make_engine(x_url)
    try:
        with as_admin.begin() as conn:  # the statements `consultflow db roles --sql` prints
            for statement in DatabaseRoles(as_admin).creating_sql():
                conn.execute(text(statement))
        migrate.upgrade(x_engine)
        x_engine.dispose()
        yield owner, _libpq(x_url, owner), y_roles, x_url
    finally:
        x_engine.dispose()
        as_admin.dispose()
        y.database.dispose()
        next(y_gen, None)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            database = conn.execute(text("SELECT current_database()")).scalar_one()
            from consultflow.store.roles import role_names

            for role in role_names(database, schema).values():
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
            conn.execute(text(f"DROP OWNED BY {owner}"))
            conn.execute(text(f"DROP ROLE {owner}"))
        admin.dispose()


@pytest.mark.postgres
def test_one_countys_owner_cannot_take_another_countys_server_role(
    documented_owner: tuple[str, str, dict[str, str], str],
) -> None:
    """Two counties on one cluster share nothing: county X's owner cannot give itself county Y's roles."""
    owner, conninfo, y_roles, _url = documented_owner
    for role in y_roles.values():
        _refused(conninfo, f"GRANT {role} TO {owner}")
    _refused(conninfo, f"ALTER ROLE {y_roles['server']} LOGIN PASSWORD 'stolen'")


@pytest.mark.postgres
def test_the_owner_cannot_grant_itself_server_programs(documented_owner: tuple[str, str, dict[str, str], str]) -> None:
    """The owner (migrations only) must not reach the operating system through built-in roles."""
    owner, conninfo, _y_roles, _url = documented_owner
    _refused(conninfo, f"GRANT pg_execute_server_program, pg_read_server_files TO {owner}")
    _refused(conninfo, "COPY (SELECT 1) TO PROGRAM 'id'")


@pytest.mark.postgres
def test_an_owner_holding_createrole_is_warned_at_upgrade(
    documented_owner: tuple[str, str, dict[str, str], str],
) -> None:
    """An owner given CREATEROLE anyway hears at `db upgrade`, before PostgreSQL 16, what that allows and what to do."""
    owner, _conninfo, _y_roles, x_url = documented_owner
    admin = create_engine(normalize_url(os.environ[PG_ENV]))
    with admin.begin() as conn:
        conn.execute(text(f"ALTER ROLE {owner} CREATEROLE"))
        version = conn.execute(text("SELECT current_setting('server_version_num')::int")).scalar_one()
    admin.dispose()
    engine = make_engine(x_url)
    try:
        risk = DatabaseRoles(engine).createrole_risk()
    finally:
        engine.dispose()
    if version >= 160000:
        assert risk is None
    else:
        assert risk is not None and "NOCREATEROLE" in risk and owner in risk


# --- the owner: rebuilt chains, cut tails, edited live rows (both backends) ---------------------


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ("UPDATE opinion SET text = '改过的' WHERE id = {a}", "text"),
        ("UPDATE opinion SET category = 'industry' WHERE id = {a}", "category"),
        ("UPDATE opinion SET channel = 'online_questionnaire' WHERE id = {a}", "channel"),
        ("UPDATE opinion SET plan_ref = 'v9' WHERE id = {a}", "plan"),
        ("UPDATE opinion SET merged_into_id = {a} WHERE id = {c}", "merge"),
        ("UPDATE opinion SET rounds_count = 5 WHERE id = {a}", "rounds"),
        ("UPDATE opinion SET state = 'rejected', outcome = 'rejected' WHERE id = {a}", "state"),
        ("UPDATE opinion_entry SET text = '改过的答复' WHERE opinion_id = {a}", "text"),
        ("UPDATE opinion_entry SET stance = 'agree' WHERE opinion_id = {a}", ""),
        ("UPDATE consultation_round SET status = 'open' WHERE number = 1", "round"),
        ("UPDATE workflow SET source = source || ' '", "workflow"),
        ("UPDATE workflow SET digest = '" + "0" * 64 + "'", "workflow"),
    ],
)
def test_the_owner_edits_a_live_fact_and_verify_without_heads_names_it(
    ctx: ServiceContext, statement: str, says: str
) -> None:
    """Every live fact the published figures rest on, changed behind consultflow's back, is named by verify."""
    cid, ids = small_consultation(ctx)
    with engine_of(ctx).begin() as conn:
        conn.execute(text(statement.format(a=ids[0], c=ids[2])))
    report = verify.verify_chain(ctx, cid)
    assert not report.intact and report.broken is not None
    assert says in report.broken.problem


@pytest.mark.parametrize(
    "payload",
    [
        '{"reason":"不可行","reason":"可行"}',  # a key given twice
        '{"reason":"不可行","note":"x"}',  # a field a transition is never written with
    ],
)
def test_an_event_with_a_duplicate_key_or_an_unknown_field_is_named(ctx: ServiceContext, payload: str) -> None:
    """The owner rewrites a payload and rehashes it over the same text: verify names the payload itself."""
    cid, ids = small_consultation(ctx)
    with engine_of(ctx).connect() as conn:
        seq = conn.execute(
            text(f"SELECT chain_seq FROM audit_event WHERE opinion_id = {ids[1]} AND trigger = 'reject'")
        ).scalar_one()
    forge(ctx, f"UPDATE audit_event SET payload = '{payload}' WHERE consultation_id = {cid} AND chain_seq = {seq}")
    report = verify.verify_chain(ctx, cid)
    assert not report.intact and report.broken is not None and report.broken.chain_seq == seq


def test_a_chain_the_owner_rebuilt_with_the_key_is_caught_by_the_heads_file_and_the_pinned_key(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    """The owner (who got the key) rebuilds and rewrites the head: verify alone passes, the heads file does not."""
    server, heads_file, signer = _server_ctx(ctx, tmp_path)
    cid, _ids = _keyed_consultation(server)
    heads.sign_heads(server, cid)
    new_head = rehash_chain(server, cid, KEY)
    _owner_sql(server, f"UPDATE consultation SET chain_head = '{new_head}' WHERE id = {cid}")
    assert verify.verify_chain(server, cid).intact  # the database agrees with itself
    caught = _verify_against(server, heads_file.read_text(), cid, signer.public_key)
    assert not caught.intact and caught.broken is not None and "rebuilt" in caught.broken.problem


def _rebuild_without_the_key(server: ServiceContext, cid: int) -> None:
    """The owner, who lacks the chain key, turns the chain into a plain one, edits event #3 and rehashes all."""
    _owner_sql(server, f"UPDATE consultation SET chain_key_id = NULL WHERE id = {cid}")
    new_head = rehash_chain(server, cid, None)
    _owner_sql(
        server,
        f"UPDATE consultation SET chain_head = '{new_head}' WHERE id = {cid}",
        f"DELETE FROM signed_head WHERE consultation_id = {cid}",  # the heads the rebuilt chain no longer holds
    )


def test_a_chain_rebuilt_without_the_key_is_caught_by_the_heads_file_and_require_keyed(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    """The owner clears the key id and rehashes as SHA-256: --require-keyed and the heads file both catch it."""
    server, heads_file, signer = _server_ctx(ctx, tmp_path)
    cid, _ids = _keyed_consultation(server)
    heads.sign_heads(server, cid)
    _rebuild_without_the_key(server, cid)
    assert not verify.verify_chain(server, cid, require_keyed=True).intact
    caught = _verify_against(server, heads_file.read_text(), cid, signer.public_key)
    assert not caught.intact and caught.broken is not None


def test_a_chain_rebuilt_without_the_key_is_caught_by_the_portals_heads(ctx: ServiceContext, tmp_path: Path) -> None:
    """The auditors' guide's own check (`--heads https://portal/c/1/heads.jsonl --public-key …`) must catch the rebuild."""
    server, _heads_file, signer = _server_ctx(ctx, tmp_path)
    cid, _ids = _keyed_consultation(server)
    heads.sign_heads(server, cid)
    _rebuild_without_the_key(server, cid)
    (outcome,) = heads.sign_heads(server, cid)  # the server's schedule, an hour later
    assert not outcome.signed and outcome.problem is not None  # its own heads file says the chain was rebuilt
    caught = _verify_against(server, _portal_heads(server, cid), cid, signer.public_key)
    assert not caught.intact


def _cut_the_tail(server: ServiceContext, cid: int, ids: list[int]) -> int:
    """A decision after the last signed head but one, erased by the owner with every trace; the new end."""
    heads.sign_heads(server, cid)
    before = _row(server, "opinion", ids[2])
    with engine_of(server).connect() as conn:
        end = int(conn.execute(text(f"SELECT chain_seq FROM consultation WHERE id = {cid}")).scalar_one())
    opinions.fire(server, acting=PLANNER, opinion_id=ids[2], trigger="reject", fields={Field.REASON: "不采纳"})
    heads.sign_heads(server, cid)  # published: the head after the rejection
    _owner_sql(
        server,
        f"DELETE FROM audit_event WHERE consultation_id = {cid} AND chain_seq > {end}",
        f"UPDATE consultation SET chain_seq = {end}, chain_head = (SELECT hash FROM audit_event "
        f"WHERE consultation_id = {cid} AND chain_seq = {end}) WHERE id = {cid}",
        f"DELETE FROM opinion_entry WHERE opinion_id = {ids[2]} AND opinion_seq > {before['last_seq']}",
        f"DELETE FROM signed_head WHERE consultation_id = {cid} AND seq > {end}",
    )
    _restore(server, "opinion", before)
    return end


def test_a_cut_tail_with_every_trace_removed_is_caught_by_the_heads_file(ctx: ServiceContext, tmp_path: Path) -> None:
    """Verify alone passes the cut chain; the head in the heads file beyond its end does not."""
    server, heads_file, signer = _server_ctx(ctx, tmp_path)
    cid, ids = _keyed_consultation(server)
    end = _cut_the_tail(server, cid, ids)
    assert verify.verify_chain(server, cid).intact
    caught = _verify_against(server, heads_file.read_text(), cid, signer.public_key)
    assert not caught.intact and caught.broken is not None and caught.broken.chain_seq > end
    assert "beyond this chain's end" in caught.broken.problem


def test_a_cut_tail_is_caught_by_the_portals_heads(ctx: ServiceContext, tmp_path: Path) -> None:
    """The portal's heads must still show the head beyond the cut."""
    server, _heads_file, signer = _server_ctx(ctx, tmp_path)
    cid, ids = _keyed_consultation(server)
    _cut_the_tail(server, cid, ids)
    caught = _verify_against(server, _portal_heads(server, cid), cid, signer.public_key)
    assert not caught.intact


# --- forged heads files ---------------------------------------------------------------------------


def _published(server: ServiceContext, heads_file: Path, cid: int) -> list[dict[str, Any]]:
    heads.sign_heads(server, cid)
    return [json.loads(line) for line in heads_file.read_text().splitlines()]


def test_a_forged_heads_file_is_refused(ctx: ServiceContext, tmp_path: Path) -> None:
    """Bad signature, another key (pinned), a head moved to another consultation or place: refused, naming the line."""
    server, heads_file, signer = _server_ctx(ctx, tmp_path)
    cid, _ids = _keyed_consultation(server)
    lines = _published(server, heads_file, cid)
    good = lines[-1]
    other, _ = _signer(tmp_path, "other.pem")
    statement = json.loads(good["statement"])
    at = datetime.fromisoformat(statement["signed_at"].replace("Z", "+00:00"))
    by_other = json.loads(other.sign(cid, good["seq"], good["head"], at).line())
    forgeries = {
        "bad signature": {**good, "signature": "00" * 64},
        "statement altered": {**good, "statement": good["statement"].replace(good["head"], "0" * 64)},
        "record moved to another consultation": {**good, "consultation_id": cid + 1},
        "record moved to another place": {**good, "seq": good["seq"] - 1},
        "record's head replaced": {**good, "head": "0" * 64},
        "another key claiming this one": {**by_other, "public_key": signer.public_key, "key_id": signer.key_id},
        "truncated signature": {**good, "signature": good["signature"][:64]},
        "key not base64": {**good, "public_key": "not a key"},
    }
    for what, record in forgeries.items():
        with pytest.raises(ValidationError, match="line 2"):
            parse_lines(json.dumps(lines[0]) + "\n" + json.dumps(record), what, signer.public_key)
    with pytest.raises(ValidationError, match=f"signed with key {other.key_id}, not the trusted key"):
        parse_lines(json.dumps(by_other), "another key", signer.public_key)
    # Another key, unpinned: the signature holds, and the chain shows the head is not its own.
    report = _verify_against(server, json.dumps(by_other | {"head": good["head"]}), cid, None)
    assert report.intact  # the same (true) head, signed by someone else: nothing to catch ...
    wrong = other.sign(cid, good["seq"], "cd" * 32, at)
    report = _verify_against(server, wrong.line(), cid, None)
    assert not report.intact  # ... and a false one is caught by the chain itself


def test_a_replayed_older_head_proves_only_what_it_said(ctx: ServiceContext, tmp_path: Path) -> None:
    """An older head, replayed with a new date or a later place in its record, keeps its signed date and place."""
    server, heads_file, signer = _server_ctx(ctx, tmp_path)
    cid, _ids = _keyed_consultation(server)
    opinions.fire(server, acting=PLANNER, opinion_id=3, trigger="reject", fields={Field.REASON: "不采纳"})
    lines = _published(server, heads_file, cid)
    oldest = lines[0]
    replayed = {**oldest, "signed_at": "2099-01-01T00:00:00Z", "key_id": "0" * 16}
    (head,) = parse_lines(json.dumps(replayed), "replayed", signer.public_key)
    assert head.seq == oldest["seq"] and head.signed_at.year != 2099 and head.key_id == signer.key_id
    assert _verify_against(server, json.dumps(replayed), cid, signer.public_key).intact


def test_heads_of_another_consultation_do_not_vouch_for_this_one(ctx: ServiceContext, tmp_path: Path) -> None:
    """A heads file that holds no head of the consultation checked must not pass it as checked."""
    server, heads_file, signer = _server_ctx(ctx, tmp_path)
    cid, _ids = _keyed_consultation(server)
    heads.sign_heads(server, cid)
    rebuilt = rehash_chain(server, cid, KEY)
    _owner_sql(server, f"UPDATE consultation SET chain_head = '{rebuilt}' WHERE id = {cid}")
    other = signer.sign(cid + 1, 1, "ab" * 32, datetime.now(timezone.utc))  # another consultation's head
    assert _verify_against(server, heads_file.read_text(), cid, signer.public_key).intact is False
    with pytest.raises(ValidationError, match=f"none of the published heads is of consultation {cid}"):
        _verify_against(server, other.line(), cid, signer.public_key)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o666, 0o700, 0o610])
def test_a_signing_key_others_could_read_is_refused(tmp_path: Path, mode: int) -> None:
    """Only 0600 (or stricter) starts the server: any group or other bit is refused."""
    _, path = _signer(tmp_path)
    path.chmod(mode)
    if mode & 0o077:
        with pytest.raises(ConfigurationError, match="readable by others"):
            HeadSigner.from_file(path)
    else:
        assert HeadSigner.from_file(path).key_id


# --- through the server: tokens, actors, and the chain key ---------------------------------------


def test_through_the_server_no_client_sets_the_actor_or_token_and_the_key_never_leaks(
    ctx: ServiceContext, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Extra fields naming another actor or token are not taken; every event carries the request's token id;
    the chain key's secret is in no row, no log line and no answer."""
    server = _server_ctx(ctx, tmp_path)[0]
    secret = KEY.secret.decode()
    setup = seed(server)
    oid = submit(server, setup, assign=False)
    for name in (COORD, EXPERT, PLANNER):
        accounts.set_password(server, acting=None, name=name, password=PASSWORD)
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []
    with _portal(server) as web:
        signin = web.post("/api/v1/auth/signin", json={"name": EXPERT, "password": PASSWORD})
        assert signin.status_code == 200
        token, token_id = signin.json()["token"], signin.json()["token_id"]
        auth = {"Authorization": f"Bearer {token}"}
        forged = {"acting": COORD, "actor": COORD, "token": 999, "token_id": 999, "via": "forged"}
        for command, body in (
            ("opinion.fire", {"opinion_ids": [oid], "trigger": "screen", **forged}),
            ("opinion.submit", {"consultation_id": setup.consultation_id, "participant_id": setup.participant_id,
                                "category": "industry", "channel": "villagers_assembly", "text": "建议修桥",
                                **forged}),
        ):  # fmt: skip
            answer = web.post(f"/api/v1/commands/{command}", json=body, headers=auth)
            answers.append(answer.text)
        answers.append(web.post("/api/v1/commands/audit.verify", json={"consultation_id": 1}, headers=auth).text)
        for path in ("/", f"/c/{setup.consultation_id}", f"/c/{setup.consultation_id}/heads.jsonl", "/heads.jsonl",
                     "/openapi.json", "/api/v1/auth/whoami"):  # fmt: skip
            answers.append(web.get(path, headers=auth).text)
        web.post("/api/v1/auth/signin", json={"name": EXPERT, "password": "wrong"})
    with engine_of(server).connect() as conn:
        events = conn.execute(
            text(
                "SELECT actor, payload FROM audit_event WHERE chain_seq > (SELECT max(chain_seq) - 2 FROM audit_event)"
            )
        ).all()
        everything = []
        for (table,) in conn.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                if engine_of(server).dialect.name == "sqlite"
                else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ):
            everything += [str(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]
    assert [e.actor for e in events] == [EXPERT, EXPERT]
    for e in events:
        payload = json.loads(e.payload)
        assert payload["token"] == token_id and payload.get("via") != "forged"
        assert "acting" not in payload and "actor" not in payload and "token_id" not in payload
    logs = caplog.text + "".join(capfd.readouterr())
    for where, found in (("database", "\n".join(everything)), ("logs", logs), ("answers", "\n".join(answers))):
        assert secret not in found, where
        assert base64.b64encode(KEY.secret).decode() not in found, where
        assert KEY.secret.hex() not in found, where
    assert "correct horse battery" not in logs


def test_every_event_the_server_wrote_for_a_request_carries_its_token(ctx: ServiceContext, tmp_path: Path) -> None:
    """A whole round through the staff API: not one event without the token id of the request that wrote it."""
    server = _server_ctx(ctx, tmp_path)[0]
    setup = seed(server)
    for name in (COORD, EXPERT, PLANNER):
        accounts.set_password(server, acting=None, name=name, password=PASSWORD)
    with engine_of(server).connect() as conn:
        before = conn.execute(text("SELECT max(chain_seq) FROM audit_event")).scalar_one()
    with _portal(server) as web:
        tokens = {}
        for name in (COORD, EXPERT, PLANNER):
            answer = web.post("/api/v1/auth/signin", json={"name": name, "password": PASSWORD})
            tokens[name] = (answer.json()["token"], answer.json()["token_id"])

        def call(who: str, command: str, body: dict[str, Any]) -> None:
            answer = web.post(
                f"/api/v1/commands/{command}", json=body, headers={"Authorization": f"Bearer {tokens[who][0]}"}
            )
            assert answer.status_code == 200 and '"error"' not in answer.text, answer.text

        call(EXPERT, "opinion.submit", {"consultation_id": setup.consultation_id,
                                        "participant_id": setup.participant_id, "category": "environment_roads",
                                        "channel": "villagers_assembly", "text": "建议硬化通组道路"})  # fmt: skip
        call(EXPERT, "opinion.fire", {"opinion_ids": [1], "trigger": "screen"})
        call(COORD, "opinion.assign", {"opinion_ids": [1], "planner": PLANNER})
        call(PLANNER, "opinion.fire", {"opinion_ids": [1], "trigger": "give_feedback", "text": "请确认"})
        call(COORD, "round.close", {"consultation_id": setup.consultation_id})
    by_name = {name: tid for name, (_t, tid) in tokens.items()}
    with engine_of(server).connect() as conn:
        rows = conn.execute(text(f"SELECT actor, payload FROM audit_event WHERE chain_seq > {before}")).all()
    assert len(rows) >= 5
    for actor, payload in rows:
        assert json.loads(payload).get("token") == by_name[actor], (actor, payload)


def test_a_head_signed_for_one_database_is_refused_by_another_countys_pinned_key(tmp_path: Path) -> None:
    """County Y's head for its consultation 1 carries county Y's key: pinned to county X's key it is refused."""
    x, _ = _signer(tmp_path, "x.pem")
    y, _ = _signer(tmp_path, "y.pem")
    head: SignedHead = y.sign(1, 5, "ab" * 32, datetime.now(timezone.utc) - timedelta(days=1))
    with pytest.raises(ValidationError, match="not the trusted key"):
        checked(json.loads(head.line()), "county y", x.public_key)


def test_the_chain_key_is_only_on_the_server(tmp_path: Path, clock: FixedClock) -> None:
    """A database written through the server holds the key's id, never the key (checked on a fresh SQLite file)."""
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    ctx = ServiceContext(database=SqlDatabase(engine), workflows_dir=WORKFLOWS, clock=clock, chain_key=KEY)
    small_consultation(ctx)
    raw = (tmp_path / "x.sqlite").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("x.sqlite-*"))
    assert KEY.secret not in raw and KEY.key_id.encode() in raw
    ctx.database.dispose()
