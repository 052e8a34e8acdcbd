"""An insider's SQL against the newest tables: groups and programmes (0017), themes (0018), plan drafts and reviews (0019).

The attackers hold a database login: the server's, the worker's and a reader's (migration 0013's
roles), a per-person login from before the server (a member of 0005's consultflow_staff), and
another county's server login on the same cluster (a second schema). Each tries, with psycopg,
SQLAlchemy and the `psql` binary, to change a recorded review, rating, comment, theme coding,
plan version or programme membership, to read review comments and who rated what, to reach the
keys that open sealed comments, to alter or drop the tables and their triggers, to grant itself
more, to COPY, and to move the sequences. PostgreSQL refuses each for want of a privilege; what
the server's login may write because its use cases do (a rating, a clause link, a draft version,
a group, a theme, a programme membership) is named by `audit verify` afterwards.

One schema (with its logins) serves the whole module: a refused statement changes nothing, and
the tests that tamper put the rows back as they were.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from consultflow.domain.clock import FixedClock
from consultflow.domain.plan import parse_markdown
from consultflow.services import participation, plans, programmes, rounds, themes, verify
from consultflow.services.context import ServiceContext
from consultflow.services.plans import RatingIn
from consultflow.store import migrate
from consultflow.store.engine import make_engine, normalize_url
from consultflow.store.roles import DatabaseRoles, current_roles
from tests.conftest import START, _pg_schema_url, engine_of, make_context
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit
from tests.integration.test_db_roles import _drop_roles, _libpq, _url_as

pytestmark = pytest.mark.postgres

DRAFT = "# 草案\n\n## 一、交通\n\n1. 环线公路\n2. 通组道路硬化\n"
COMMENT = "路太窄，会车困难"  # a participant's comment on clause 1.2: sealed, and an opinion too
FULL_NAME, CONTACT = "张秀英", "13812345678"  # the participant `seed` registers
THEME = "农村路网"
LOGINS = ("server", "worker", "reader", "person", "other")
NEW_TABLES = (
    "programme",
    "opinion_theme",
    "plan_version",
    "plan_clause",
    "plan_clause_text",
    "plan_review",
    "plan_rating",
    "opinion_clause",
)
SEQUENCES = (
    "programme_id_seq",
    "opinion_theme_id_seq",
    "plan_version_id_seq",
    "plan_clause_id_seq",
    "plan_rating_id_seq",
)


@dataclass
class Scene:
    """A schema with a programme, a participant's group, a coded theme, a plan, a review and its ratings."""

    url: str
    schema: str
    owner: ServiceContext
    consultation_id: int
    opinion_id: int
    participant_id: int
    conninfo: dict[str, str]  # libpq connection strings, one per attacker in LOGINS
    logins: dict[str, str]
    roles: dict[str, str]


def _scene_data(owner: ServiceContext) -> tuple[int, int, int]:
    setup = seed(owner)
    cid, pid = setup.consultation_id, setup.participant_id
    oid = submit(owner, setup)
    programmes.create_programme(owner, acting=COORD, name="five-areas", title="五大片区")
    programmes.add_area(owner, acting=COORD, programme="five-areas", consultation_id=cid)
    groups = participation.groups_of(owner, cid)
    participation.set_participant_group(owner, acting=COORD, participant_id=pid, group="officials", groups=groups)
    themes.code(owner, acting=PLANNER, theme=THEME, add=True, opinion_ids=[oid])
    plans.import_plan(owner, acting=PLANNER, consultation_id=cid, clauses=parse_markdown(DRAFT))
    plans.link_clauses(owner, acting=PLANNER, opinion_id=oid, clauses=["1.1"])
    rounds.close_round(owner, acting=COORD, consultation_id=cid)
    plans.open_review(owner, acting=COORD, consultation_id=cid)
    plans.record_ratings(
        owner,
        acting=EXPERT,
        consultation_id=cid,
        participant_id=pid,
        ratings=(RatingIn("1.1", "满意"), RatingIn("1.2", "不满意", COMMENT)),
    )
    assert verify.verify_chain(owner, cid).intact
    return cid, oid, pid


@pytest.fixture(name="scene", scope="module")
def _scene() -> Iterator[Scene]:
    clock = FixedClock(START, tick=timedelta(seconds=1))
    gen, other_gen = _pg_schema_url(), _pg_schema_url()
    url = next(gen)
    owner = make_context(url, clock)
    other_url = next(other_gen)
    other = make_context(other_url, clock)  # another county's schema on the same cluster
    suffix = uuid.uuid4().hex[:8]
    logins = {kind: f"cf_nt_{kind}_{suffix}" for kind in LOGINS}
    try:
        cid, oid, pid = _scene_data(owner)
        admin = DatabaseRoles(engine_of(owner))
        for kind in ("server", "worker", "reader"):
            admin.add_login(logins[kind], kind, existing=False, password="pw")
        DatabaseRoles(engine_of(other)).add_login(logins["other"], "server", existing=False, password="pw")
        with engine_of(owner).begin() as conn:
            conn.execute(text(f"CREATE ROLE {logins['person']} LOGIN PASSWORD 'pw'"))
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'consultflow_staff'")).first():
                conn.execute(text(f"GRANT consultflow_staff TO {logins['person']}"))  # a planner's own login (0005)
            roles = current_roles(conn)
            schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
        conninfo = {kind: _libpq(url, login) for kind, login in logins.items()}
        conninfo["other"] = _libpq(other_url, logins["other"])  # connected to its own schema
        yield Scene(url, schema, owner, cid, oid, pid, conninfo, logins, roles)
    finally:
        _drop_roles(engine_of(owner), *logins.values())
        owner.database.dispose()
        other.database.dispose()
        next(gen, None)
        next(other_gen, None)


def _refused(conninfo: str, statement: str) -> str:
    """Run `statement` as the login (COPY through psycopg's copy); PostgreSQL must refuse it for want of a privilege."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        try:
            if statement.startswith("COPY"):
                with conn.cursor().copy(statement) as copy:
                    if "FROM STDIN" in statement:
                        copy.write("1\t1\t1\tx\t1\t2026-01-01\n")
                    else:
                        for _ in copy:
                            pass
            else:
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            return str(exc)
        except psycopg.Error as exc:
            pytest.fail(f"{statement!r} failed, but not for want of a privilege: {exc.sqlstate} {exc}")
    pytest.fail(f"{statement!r} was allowed")


def _fingerprint(scene: Scene) -> dict[str, Any]:
    """Every new table's rows, and the columns 0017 added, as the owner reads them (to prove nothing changed)."""
    rows = "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t"
    with engine_of(scene.owner).connect() as conn:
        found = {table: conn.execute(text(rows.format(table))).scalar_one() for table in NEW_TABLES}
        for column in ("participant.group_id", "consultation.programme_id"):
            table, name = column.split(".")
            found[column] = conn.execute(text(f"SELECT array_agg({name} ORDER BY id) FROM {table}")).scalar_one()
        found["sequences"] = [conn.execute(text(f"SELECT last_value FROM {s}")).scalar_one() for s in SEQUENCES]
    return found


def _qualified(scene: Scene, statements: tuple[str, ...]) -> list[str]:
    """The statements with `{s}` naming the scene's schema (another county's login has its own search_path)."""
    return [s.format(s=f'"{scene.schema}"') for s in statements]


# --- changing what was recorded ------------------------------------------------------------------

# Refused to every login, the server's too (its UPDATE on the plan's tables and programme went in 0020).
REWRITES = (
    "UPDATE {s}.plan_rating SET rating = 'satisfied'",  # a 不满意 turned into a 满意
    "UPDATE {s}.plan_rating SET comment = NULL, opinion_id = NULL",  # a comment dropped from the results
    "UPDATE {s}.plan_rating SET clause_id = (SELECT min(id) FROM {s}.plan_clause)",  # a comment moved to another clause
    "UPDATE {s}.plan_rating SET participant_id = participant_id, form_key = NULL",
    "DELETE FROM {s}.plan_rating",
    "TRUNCATE {s}.plan_rating",
    "UPDATE {s}.plan_review SET version_id = version_id, category = 'x'",  # the version a review rated
    "DELETE FROM {s}.plan_review",
    "UPDATE {s}.plan_version SET label = 'x', clauses = 0",
    "DELETE FROM {s}.plan_version",
    "TRUNCATE {s}.plan_version CASCADE",
    "UPDATE {s}.plan_clause_text SET text = '改写过的条文'",  # what the public rated, rewritten
    "DELETE FROM {s}.plan_clause_text",
    "UPDATE {s}.plan_clause SET number = '9.9'",
    "DELETE FROM {s}.plan_clause",
    "UPDATE {s}.opinion_clause SET clause_id = clause_id",
    "DELETE FROM {s}.opinion_clause",
    "TRUNCATE {s}.opinion_clause",
    "UPDATE {s}.opinion_theme SET theme = '改写'",
    "TRUNCATE {s}.opinion_theme",
    "UPDATE {s}.programme SET title = '另一个规划', name = 'x'",
    "DELETE FROM {s}.programme",
    "TRUNCATE {s}.programme CASCADE",
)
# What the server's use cases write (its login may too; see the verify tests below); no other login.
SERVERS_WRITES = (
    "DELETE FROM {s}.opinion_theme",
    (
        "INSERT INTO {s}.opinion_theme (consultation_id, opinion_id, theme, added_by_id, added_at) "
        "SELECT consultation_id, id, 'forged', 1, now() FROM {s}.opinion"
    ),
    (
        "INSERT INTO {s}.plan_rating (round_id, clause_id, participant_id, rating, recorded_by_id, at) "
        "SELECT round_id, clause_id, participant_id, 'satisfied', recorded_by_id, at FROM {s}.plan_rating"
    ),
    "INSERT INTO {s}.opinion_clause (opinion_id, clause_id, linked_at, linked_by_id) VALUES (1, 2, now(), 1)",
    "INSERT INTO {s}.programme (name, title, created_at, created_by_id) VALUES ('x', 'x', now(), 1)",
    "INSERT INTO {s}.plan_version (consultation_id, number, clauses, imported_at, imported_by_id) VALUES (1, 9, 0, now(), 1)",
    "UPDATE {s}.participant SET group_id = 'companies'",
    "UPDATE {s}.consultation SET programme_id = NULL",
)


@pytest.mark.parametrize("kind", LOGINS)
def test_no_login_rewrites_or_removes_a_recorded_review_plan_theme_or_programme(scene: Scene, kind: str) -> None:
    """An auditor relies on a recorded rating, comment, plan text, review, link, theme and programme staying as recorded.

    Every login (the server's included) is refused UPDATE, DELETE and TRUNCATE on them; the
    server alone may add (and remove a theme), which the audit chain records.
    """
    before = _fingerprint(scene)
    statements = _qualified(scene, REWRITES if kind == "server" else REWRITES + SERVERS_WRITES)
    for statement in statements:
        said = _refused(scene.conninfo[kind], statement)
        assert any(w in said for w in ("permission denied", "must be owner")), (kind, statement, said)
    assert _fingerprint(scene) == before


def test_before_0020_the_servers_login_could_rewrite_a_rating_and_downgrade_gives_that_back(scene: Scene) -> None:
    """An auditor relies on the fix being the schema's, not the test's: at 0019 the server's role held UPDATE on the
    recorded ratings, plan texts and programmes (and `audit verify` never noticed); 0020 takes it, and downgrade gives it back.
    """
    engine = engine_of(scene.owner)
    ask = text("SELECT bool_or(has_table_privilege(:r, t, 'UPDATE')) FROM unnest(CAST(:t AS text[])) t")
    written_once = [t for t in NEW_TABLES if t != "opinion_theme"]
    try:
        migrate.downgrade(engine, "0019")
        with engine.connect() as conn:
            assert conn.execute(ask, {"r": scene.roles["server"], "t": written_once}).scalar_one() is True
    finally:
        migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(ask, {"r": scene.roles["server"], "t": written_once}).scalar_one() is False
        for kind in ("worker", "reader"):
            assert conn.execute(ask, {"r": scene.roles[kind], "t": list(NEW_TABLES)}).scalar_one() is False


# --- reading what is personal -------------------------------------------------------------------

PERSONAL = (
    "SELECT comment FROM {s}.plan_rating",  # the sealed comment
    "SELECT participant_id FROM {s}.plan_rating",  # who rated what
    "SELECT form_key, recorded_by_id FROM {s}.plan_rating",
    "SELECT * FROM {s}.plan_rating",
    "COPY {s}.plan_rating TO STDOUT",
    "COPY {s}.plan_rating (comment) TO STDOUT",
    "COPY (SELECT participant_id, rating FROM {s}.plan_rating) TO STDOUT",
    "SELECT secret FROM {s}.participant_key",  # the keys that open sealed comments
    "COPY {s}.participant_key TO STDOUT",
    "SELECT secret FROM {s}.privacy_secret",
)
NAMES = (
    "SELECT name, contact, group_id FROM {s}.participant",  # a group tied to a name
    "SELECT match_key, group_id FROM {s}.participant",
    "SELECT p.name FROM {s}.participant p JOIN {s}.opinion o ON o.participant_id = p.id",
)
EVERYTHING_NEW = (
    *tuple(f"SELECT * FROM {{s}}.{t}" for t in NEW_TABLES),
    "SELECT id, rating FROM {s}.plan_rating",
    "SELECT group_id FROM {s}.participant",
)


@pytest.mark.parametrize("kind", ["worker", "reader", "person", "other"])
def test_review_comments_raters_and_keys_are_not_read_without_the_need(scene: Scene, kind: str) -> None:
    """An auditor relies on review comments, who rated what and the keys that open comments being read only by the server.

    The reader reads the figures (ratings per clause, themes, programmes, groups) but no comment,
    no rater and no name; the worker none of the new tables (it reads contacts to deliver); a
    per-person login and another county's login nothing at all.
    """
    refused = list(PERSONAL)
    if kind != "worker":  # the worker reads names and contacts (it addresses reminders)
        refused += NAMES
    if kind != "reader":
        refused += [s for s in EVERYTHING_NEW if kind != "worker" or "group_id" not in s]  # participant: the worker's
    for statement in _qualified(scene, tuple(refused)):
        said = _refused(scene.conninfo[kind], statement)
        assert "permission denied" in said, (kind, statement, said)


def test_what_the_reader_reads_of_the_new_tables_holds_no_comment_and_no_name(scene: Scene) -> None:
    """An auditor's SQL login reads every column it may of the new tables: no comment, name or contact in any of them.

    The comment opinion's text is readable as the sealed value only; opening it needs
    participant_key, which the reader may not read.
    """
    found: list[str] = []
    with psycopg.connect(scene.conninfo["reader"]) as conn:
        columns = conn.execute(
            "SELECT c.relname::text, a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND a.attnum > 0 "
            "AND NOT a.attisdropped AND has_column_privilege(c.oid, a.attnum, 'SELECT')"
        ).fetchall()
        readable = {t for t, _c in columns}
        assert {"plan_rating", "opinion_theme", "programme", "plan_clause_text", "participant"} <= readable
        assert ("participant", "group_id") in columns  # a group is a figure; the name it could be tied to is not read
        assert ("plan_rating", "comment") not in columns and ("plan_rating", "participant_id") not in columns
        for table, column in columns:
            for (value,) in conn.execute(f'SELECT "{column}"::text FROM "{table}"'):
                if value and any(p in value for p in (COMMENT, FULL_NAME, CONTACT)):
                    found.append(f"{table}.{column}")
    assert found == []


# --- the tables themselves: DDL, triggers, rules, grants, sequences, COPY ----------------------

DDL = (
    "ALTER TABLE {s}.plan_rating DISABLE TRIGGER ALL",
    "ALTER TABLE {s}.opinion_theme DISABLE TRIGGER ALL",
    "CREATE TRIGGER insider BEFORE UPDATE ON {s}.plan_rating FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    "CREATE TRIGGER insider AFTER DELETE ON {s}.opinion_theme FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    "CREATE RULE insider AS ON INSERT TO {s}.opinion_theme DO INSTEAD NOTHING",
    "CREATE POLICY insider ON {s}.plan_rating USING (true)",
    "ALTER TABLE {s}.plan_rating ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE {s}.plan_rating DROP CONSTRAINT ck_plan_rating_rating",
    "ALTER TABLE {s}.plan_rating DROP CONSTRAINT uq_plan_rating_round_id_clause_id_participant_id",
    "ALTER TABLE {s}.plan_rating ADD COLUMN note text",
    "ALTER TABLE {s}.plan_clause_text ALTER COLUMN text DROP NOT NULL",
    "ALTER TABLE {s}.programme OWNER TO CURRENT_USER",
    "ALTER TABLE {s}.opinion_theme RENAME TO opinion_theme_old",
    "DROP TABLE {s}.plan_rating",
    "DROP TABLE {s}.opinion_theme CASCADE",
    "DROP TABLE {s}.programme CASCADE",
    "CREATE TABLE {s}.plan_rating_shadow (id int)",
    "CREATE VIEW {s}.plan_results AS SELECT 1 AS one",
    "CREATE INDEX insider ON {s}.plan_rating (rating)",
    "COMMENT ON TABLE {s}.plan_rating IS 'nothing to see'",
    "REINDEX TABLE {s}.plan_rating",
    "CLUSTER {s}.plan_rating USING pk_plan_rating",
    "SET session_replication_role = replica",  # would skip triggers and foreign keys
)


@pytest.mark.parametrize("kind", LOGINS)
def test_no_login_alters_drops_or_disarms_the_new_tables(scene: Scene, kind: str) -> None:
    """An auditor relies on the tables, their constraints and triggers being as the migrations made them.

    ALTER, DROP, CREATE TRIGGER / RULE / POLICY, DISABLE TRIGGER, a new table or view next to
    them, and replication mode (no triggers, no foreign keys): the owner's, refused to every login.
    """
    for statement in _qualified(scene, DDL):
        said = _refused(scene.conninfo[kind], statement)
        assert any(w in said for w in ("permission denied", "must be owner")), (kind, statement, said)


@pytest.mark.parametrize("kind", LOGINS)
def test_granting_itself_more_on_the_new_tables_gives_nothing(scene: Scene, kind: str) -> None:
    """An auditor relies on a login's privileges being what 0013-0020 gave its role, whatever it GRANTs itself."""
    s = f'"{scene.schema}"'
    with psycopg.connect(scene.conninfo[kind], autocommit=True) as conn:
        for statement in (
            f"GRANT UPDATE, DELETE, TRUNCATE, TRIGGER ON {s}.plan_rating TO CURRENT_USER",
            f"GRANT ALL ON {s}.opinion_theme, {s}.programme, {s}.plan_clause_text TO CURRENT_USER",
            f"GRANT SELECT (comment, participant_id) ON {s}.plan_rating TO CURRENT_USER",
            f"GRANT UPDATE ON SEQUENCE {s}.plan_rating_id_seq TO CURRENT_USER",
            f"GRANT SELECT ON {s}.participant_key TO CURRENT_USER",
            *(f'GRANT "{role}" TO CURRENT_USER' for k, role in scene.roles.items() if k != kind),
        ):
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):  # else "no privileges were granted"
                conn.execute(statement)
    with engine_of(scene.owner).connect() as conn:  # asked as the owner: another county's login cannot even look
        held = conn.execute(
            text(
                "SELECT has_table_privilege(:l, :t, 'UPDATE'), has_table_privilege(:l, :t, 'DELETE'), "
                "has_table_privilege(:l, :t, 'TRUNCATE'), has_table_privilege(:l, :t, 'TRIGGER'), "
                "has_table_privilege(:l, :o, 'UPDATE'), has_table_privilege(:l, :p, 'UPDATE'), "
                "has_sequence_privilege(:l, :q, 'UPDATE'), "
                "has_column_privilege(:l, :t, 'comment', 'SELECT') AND :l <> :server, "
                "has_table_privilege(:l, :k, 'SELECT') AND :l <> :server"
            ),
            {
                "l": scene.logins[kind],
                "server": scene.logins["server"],
                "t": f"{s}.plan_rating",
                "o": f"{s}.opinion_theme",
                "p": f"{s}.programme",
                "q": f"{s}.plan_rating_id_seq",
                "k": f"{s}.participant_key",
            },
        ).one()
    assert tuple(held) == (False,) * 9, (kind, held)


@pytest.mark.parametrize("kind", LOGINS)
def test_no_login_moves_a_sequence_to_collide_ids(scene: Scene, kind: str) -> None:
    """An auditor relies on ids of ratings, themes, plan versions and programmes never being handed out twice.

    setval and ALTER SEQUENCE are refused to every login; the server's may only draw the next id.
    """
    before = _fingerprint(scene)["sequences"]
    statements = [f"SELECT setval('{{s}}.{q}', 1)" for q in SEQUENCES]
    statements += [f"SELECT setval('{{s}}.{q}', 1, false)" for q in SEQUENCES[-2:]]
    statements += [f"ALTER SEQUENCE {{s}}.{q} RESTART WITH 1" for q in SEQUENCES[-2:]]
    statements += [f"ALTER SEQUENCE {{s}}.{q} INCREMENT BY -1 MINVALUE -100" for q in SEQUENCES[:1]]
    if kind != "server":
        statements += [f"SELECT nextval('{{s}}.{q}')" for q in SEQUENCES]
    for statement in _qualified(scene, tuple(statements)):
        said = _refused(scene.conninfo[kind], statement)
        assert any(w in said for w in ("permission denied", "must be owner")), (kind, statement, said)
    assert _fingerprint(scene)["sequences"] == before


@pytest.mark.parametrize("kind", LOGINS)
def test_copy_reads_and_writes_no_more_than_select_and_insert(scene: Scene, kind: str) -> None:
    """An auditor relies on COPY being no way around the grants: no server files, no programs, no rows but INSERT's."""
    statements = [
        "COPY {s}.plan_rating TO '/tmp/consultflow-insider-ratings.csv'",
        "COPY {s}.opinion_theme FROM '/etc/hostname'",
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/consultflow-insider-new-tables'",
        "COPY {s}.plan_rating FROM PROGRAM 'true'",
    ]
    if kind != "server":
        statements += [
            "COPY {s}.opinion_theme (consultation_id, opinion_id, added_by_id, theme, id, added_at) FROM STDIN",
            "COPY {s}.programme (name, title, created_at, created_by_id) FROM STDIN",
        ]
    for statement in _qualified(scene, tuple(statements)):
        said = _refused(scene.conninfo[kind], statement)
        assert any(w in said for w in ("permission denied", "must be superuser")), (kind, statement, said)
    assert not Path("/tmp/consultflow-insider-new-tables").exists()
    assert not Path("/tmp/consultflow-insider-ratings.csv").exists()


PSQL_WRITES = (
    "UPDATE {s}.plan_rating SET rating = 'satisfied';",
    "DELETE FROM {s}.plan_rating;",
    "TRUNCATE {s}.plan_review CASCADE;",
    "UPDATE {s}.plan_clause_text SET text = '改写过的条文';",
    "UPDATE {s}.opinion_theme SET theme = 'x';",
    "UPDATE {s}.programme SET title = 'x';",
    "ALTER TABLE {s}.plan_rating DISABLE TRIGGER ALL;",
    "DROP TABLE {s}.opinion_clause;",
    "SELECT setval('{s}.plan_rating_id_seq', 1);",
)
PSQL_NOT_SERVER = (  # what the server reads and adds as its use cases do
    "SELECT comment, participant_id FROM {s}.plan_rating;",
    "SELECT secret FROM {s}.participant_key;",
    "\\copy {s}.plan_rating (comment) TO STDOUT",
    "\\copy {s}.opinion_theme FROM '/dev/null'",
)


@pytest.mark.skipif(shutil.which("psql") is None, reason="the psql binary is not installed")
@pytest.mark.parametrize("kind", LOGINS)
def test_psql_as_each_login_changes_and_reads_nothing_of_the_new_tables(scene: Scene, kind: str) -> None:
    """An auditor relies on the database's own client getting no further than the application's driver.

    `psql` with a password in its URL, a script of the insider's statements and its \\copy: every
    statement is refused, and no row, comment or key comes back.
    """
    parsed = make_url(normalize_url(scene.url))
    login = scene.logins[kind]
    uri = f"postgresql://{login}:pw@{parsed.host}:{parsed.port or 5432}/{parsed.database}"
    statements = [line.format(s=f'"{scene.schema}"') for line in PSQL_WRITES]
    statements += [] if kind == "server" else [line.format(s=f'"{scene.schema}"') for line in PSQL_NOT_SERVER]
    script = "\\set ON_ERROR_STOP off\n" + "\n".join(statements) + "\n"
    before = _fingerprint(scene)
    done = subprocess.run(
        ["psql", "-X", "-q", uri],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PGOPTIONS": ""},
    )
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == len(statements), (kind, done.stderr)
    assert all(any(w in e for w in ("permission denied", "must be owner")) for e in errors), (kind, done.stderr)
    assert done.stdout.strip() == "", (kind, done.stdout)
    one = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", statements[0], uri],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert one.returncode != 0 and "permission denied" in one.stderr, (kind, one.stderr)
    assert _fingerprint(scene) == before


# --- what the server's login may write: `audit verify` names it --------------------------------


def _as_server(scene: Scene) -> Engine:
    return make_engine(_url_as(scene.url, scene.logins["server"], "pw"))


def _owner_sql(scene: Scene, *statements: str, params: dict[str, Any] | None = None) -> None:
    """The owner puts rows back (around the audit log's append-only triggers)."""
    with engine_of(scene.owner).begin() as conn:
        conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        for statement in statements:
            conn.execute(text(statement), params or {})
        conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))


FORGED_EVENT = (
    "INSERT INTO audit_event (consultation_id, chain_seq, opinion_id, kind, completes_cycle, actor, role, at, "
    "payload, prev_hash, hash) SELECT id, chain_seq + 1, :oid, 'theme_added', false, :actor, 'planner', now(), "
    "'{\"theme\":\"forged\"}', chain_head, repeat('ab', 32) FROM consultation WHERE id = :cid"
)


@pytest.mark.parametrize(
    ("attack", "undo", "named"),
    [
        pytest.param(
            ["DELETE FROM opinion_theme WHERE opinion_id = :oid"],
            [("INSERT INTO opinion_theme (consultation_id, opinion_id, theme, added_by_id, added_at) "
             "SELECT :cid, :oid, :theme, id, now() FROM actor WHERE name = :planner")],
            "live themes",
            id="theme-uncoded",
        ),
        pytest.param(
            [("INSERT INTO opinion_theme (consultation_id, opinion_id, theme, added_by_id, added_at) "
             "VALUES (:cid, :oid, 'forged', 1, now())")],
            ["DELETE FROM opinion_theme WHERE theme = 'forged'"],
            "live themes",
            id="theme-forged",
        ),
        pytest.param(
            ["UPDATE consultation SET programme_id = NULL WHERE id = :cid"],
            ["UPDATE consultation SET programme_id = (SELECT min(id) FROM programme) WHERE id = :cid"],
            "programme",
            id="area-left-its-programme",
        ),
        pytest.param(
            ["INSERT INTO programme (name, title, created_at, created_by_id) VALUES ('other', '别的规划', now(), 1)",
             "UPDATE consultation SET programme_id = (SELECT max(id) FROM programme) WHERE id = :cid"],
            ["UPDATE consultation SET programme_id = (SELECT min(id) FROM programme) WHERE id = :cid",
             "DELETE FROM programme WHERE name = 'other'"],
            "programme",
            id="area-moved-to-a-forged-programme",
        ),
        pytest.param(
            [("INSERT INTO opinion_theme (consultation_id, opinion_id, theme, added_by_id, added_at) "
             "VALUES (:cid, :oid, 'forged', 1, now())"),
             FORGED_EVENT,
             "UPDATE consultation SET chain_seq = chain_seq + 1, chain_head = repeat('ab', 32) WHERE id = :cid"],
            ["DELETE FROM opinion_theme WHERE theme = 'forged'",
             "DELETE FROM audit_event WHERE payload = '{\"theme\":\"forged\"}'",
             ("UPDATE consultation SET chain_seq = chain_seq - 1, chain_head = (SELECT hash FROM audit_event "
             "WHERE consultation_id = :cid ORDER BY chain_seq DESC LIMIT 1) WHERE id = :cid")],
            "",
            id="theme-forged-with-its-event",
        ),
    ],
)  # fmt: skip
def test_what_the_servers_login_writes_behind_the_use_cases_verify_names(
    scene: Scene, attack: list[str], undo: list[str], named: str
) -> None:
    """An auditor relies on `audit verify` naming a theme coding or a programme membership the server's login changed
    with plain SQL (its role may write them, as its use cases do), and a forged event to cover it.
    """
    params = {
        "cid": scene.consultation_id,
        "oid": scene.opinion_id,
        "theme": THEME,
        "planner": PLANNER,
        "actor": PLANNER,
    }
    server = _as_server(scene)
    try:
        with server.begin() as conn:  # SQLAlchemy, as the server's login
            for statement in attack:
                assert conn.execute(text(statement), params).rowcount >= 1, statement
        report = verify.verify_chain(scene.owner, scene.consultation_id)
    finally:
        server.dispose()
        _owner_sql(scene, *undo, params=params)
    assert not report.intact and report.broken is not None, attack
    assert named in (report.broken.problem or ""), report.broken
    assert verify.verify_chain(scene.owner, scene.consultation_id).intact  # put back as it was


@pytest.mark.parametrize(
    ("attack", "undo", "named"),
    [
        pytest.param(
            [("INSERT INTO participant (name, village, lang, created_at, created_by_id) "
             "VALUES ('nobody', '青龙村', 'zh', now(), 1)"),
             ("INSERT INTO plan_rating (round_id, clause_id, participant_id, rating, recorded_by_id, at) "
             "SELECT round_id, clause_id, (SELECT max(id) FROM participant), 'satisfied', recorded_by_id, at "
             "FROM plan_rating")],
            ["DELETE FROM plan_rating WHERE participant_id = (SELECT max(id) FROM participant)",
             "DELETE FROM participant WHERE name = 'nobody'"],
            "the live ratings count 2 but the clause_rated events record 1",
            id="ballots-stuffed",
        ),
        pytest.param(
            [("INSERT INTO opinion_clause (opinion_id, clause_id, linked_at, linked_by_id) "
             "SELECT :oid, max(id), now(), 1 FROM plan_clause WHERE id NOT IN "
             "(SELECT clause_id FROM opinion_clause WHERE opinion_id = :oid)")],
            ["DELETE FROM opinion_clause WHERE opinion_id = :oid AND linked_by_id = 1"],
            "no clauses_linked or clause_rated event records",
            id="clause-link-forged",
        ),
        pytest.param(
            [("INSERT INTO plan_version (consultation_id, number, label, clauses, imported_at, imported_by_id) "
             "VALUES (:cid, 2, '第二稿', 0, now(), 1)")],
            ["DELETE FROM plan_version WHERE consultation_id = :cid AND number = 2"],
            "plan version 2: the live tables have it but no plan_imported event",
            id="plan-version-forged",
        ),
        pytest.param(
            ["UPDATE participant SET group_id = 'companies' WHERE id = :pid"],
            ["UPDATE participant SET group_id = 'officials' WHERE id = :pid"],
            "the live group is 'companies' but the last group event",
            id="group-changed",
        ),
    ],
)  # fmt: skip
def test_rows_the_servers_login_adds_without_an_event_are_named(
    scene: Scene, attack: list[str], undo: list[str], named: str
) -> None:
    """An auditor relies on `audit verify` naming a rating, a clause link, a draft version or a group the server's
    login wrote with plain SQL and no event; PostgreSQL cannot refuse these, as the server's use cases write them too.
    """
    params = {"cid": scene.consultation_id, "oid": scene.opinion_id, "pid": scene.participant_id}
    server = _as_server(scene)
    try:
        with server.begin() as conn:
            for statement in attack:
                assert conn.execute(text(statement), params).rowcount >= 1, statement
        report = verify.verify_chain(scene.owner, scene.consultation_id)
    finally:
        server.dispose()
        _owner_sql(scene, *undo, params=params)
    assert verify.verify_chain(scene.owner, scene.consultation_id).intact  # put back as it was
    assert not report.intact and report.broken is not None, attack
    assert named in (report.broken.problem or ""), report.broken
    for personal in (FULL_NAME, CONTACT, COMMENT):  # the subject is named, never the person or their words
        assert personal not in report.broken.problem, report.broken


SQLALCHEMY_REFUSED = (
    "UPDATE plan_rating SET rating = 'satisfied'",
    "DELETE FROM plan_review",
    "UPDATE programme SET title = 'x'",
    "ALTER TABLE opinion_theme DISABLE TRIGGER ALL",
)


def test_sqlalchemy_as_the_servers_login_is_refused_the_same(scene: Scene) -> None:
    """An auditor relies on the refusals holding whatever driver sends the SQL (here SQLAlchemy's, as the server's own)."""
    server = _as_server(scene)
    try:
        for statement in SQLALCHEMY_REFUSED:
            with pytest.raises(ProgrammingError, match="permission denied|must be owner"), server.begin() as conn:
                conn.execute(text(statement))
    finally:
        server.dispose()
