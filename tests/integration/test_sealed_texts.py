"""Participants' free text is stored sealed with their own key, and forgotten when the key is destroyed.

Attacks as an insider runs them: plain SQL over every table (the owner's view of the database),
a sealed text moved to another participant, a match key tested against a guess, and, on
PostgreSQL, the reader's and the worker's logins asking for the keys.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import make_url, text

from consultflow.domain import sealing
from consultflow.domain.clock import FixedClock
from consultflow.domain.vocabulary import Field
from consultflow.services import audit, opinion_views, opinions, people, personal_data, verify
from consultflow.services.context import ServiceContext
from consultflow.services.intake import ImportRequest, import_opinions
from consultflow.store import migrate
from consultflow.store.database import SqlDatabase
from consultflow.store.engine import make_engine, normalize_url
from consultflow.store.roles import DatabaseRoles
from tests.conftest import WORKFLOWS, _pg_schema_url, engine_of, make_context, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit

SHE = "张秀英"
PHONE = "13812345678"
HER_TEXT = f"青龙村{SHE}建议硬化通组道路（{PHONE}）"
FEEDBACK = f"{SHE}同志：已转交交通部门研究"
REPLY = f"我是{SHE}，补充：希望雨季前完工"


def _everything(ctx: ServiceContext) -> str:
    """Every row of every table, as the database's owner reads it with plain SQL."""
    engine = engine_of(ctx)
    with engine.connect() as conn:
        tables = (
            conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            if engine.dialect.name == "sqlite"
            else conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
        )
        found = []
        for (table,) in list(tables):
            found += [str(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]
    return "\n".join(found)


def _loop(ctx: ServiceContext) -> tuple[int, int]:
    """Her opinion, the planner's feedback quoting her, her reply; another villager's opinion. Their ids."""
    setup = seed(ctx)
    oid = submit(ctx, setup, text=HER_TEXT)
    opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: FEEDBACK})
    opinions.fire(
        ctx,
        acting=EXPERT,
        opinion_id=oid,
        trigger="reparticipate",
        fields={Field.STANCE: "revise", Field.TEXT: REPLY},
    )
    other = people.add_participant(ctx, acting=EXPERT, name="李四", village="金田村", contact="13900000000")
    other_oid = opinions.submit_opinion(
        ctx,
        acting=EXPERT,
        consultation_id=setup.consultation_id,
        participant_id=other.id,
        category="industry",
        channel="villagers_assembly",
        text="建议发展油菜产业",
    ).id
    return oid, other_oid


def test_no_participant_text_is_stored_readable(ctx: ServiceContext) -> None:
    """Opinion, feedback and reply texts are sealed in the live tables and the events; readers see them whole."""
    oid, _ = _loop(ctx)
    stored = _everything(ctx)
    for secret in (HER_TEXT, FEEDBACK, REPLY, "硬化通组道路", "交通部门", "雨季前完工"):
        assert secret not in stored, secret
    assert stored.count(sealing.SEALED_PREFIX) >= 6  # live opinion, 2 entries, and their 3 events
    view, entries = opinion_views.show_opinion(ctx, oid)
    assert view.text == HER_TEXT
    assert [e.text for e in entries] == [FEEDBACK, REPLY]
    _, history = audit.history(ctx, oid)
    assert any(e.payload.get("text") == FEEDBACK for e in history)
    assert verify.verify_chain(ctx, 1).intact


def test_destroying_her_key_forgets_her_texts_and_the_chain_still_verifies(ctx: ServiceContext) -> None:
    """Her texts read （已删除） everywhere; another villager's stay readable; verify passes."""
    oid, other_oid = _loop(ctx)
    with sql_uow(ctx) as uow:
        participant_id = uow.opinions.get(oid).participant_id
        assert uow.texts.destroy([participant_id]) == 1
        uow.commit()
    view, entries = opinion_views.show_opinion(ctx, oid)
    assert view.text == sealing.FORGOTTEN
    assert [e.text for e in entries] == [sealing.FORGOTTEN, sealing.FORGOTTEN]
    _, history = audit.history(ctx, oid)
    assert {e.payload["text"] for e in history if "text" in e.payload} == {sealing.FORGOTTEN}
    assert opinion_views.show_opinion(ctx, other_oid)[0].text == "建议发展油菜产业"
    assert verify.verify_chain(ctx, 1).intact
    with engine_of(ctx).connect() as conn:
        keys = conn.execute(text(f"SELECT count(*) FROM participant_key WHERE participant_id = {participant_id}"))
        assert keys.scalar_one() == 0


def test_a_sealed_text_moved_to_another_participant_does_not_open(ctx: ServiceContext) -> None:
    """The participant is bound to the ciphertext: relabelled for another key, it opens as damaged, not as theirs."""
    oid, other_oid = _loop(ctx)
    with engine_of(ctx).begin() as conn:
        mine = conn.execute(text(f"SELECT text, participant_id FROM opinion WHERE id = {oid}")).one()
        theirs = conn.execute(text(f"SELECT participant_id FROM opinion WHERE id = {other_oid}")).scalar_one()
        moved = mine[0].replace(f"{sealing.SEALED_PREFIX}{mine[1]}:", f"{sealing.SEALED_PREFIX}{theirs}:", 1)
        conn.execute(text("UPDATE opinion SET text = :t WHERE id = :i"), {"t": moved, "i": other_oid})
    assert opinion_views.show_opinion(ctx, other_oid)[0].text == sealing.DAMAGED
    report = verify.verify_chain(ctx, 1)
    assert not report.intact and report.broken is not None and f"opinion {other_oid}" in report.broken.problem


def test_match_keys_cannot_be_tested_against_a_guess_and_still_match(ctx: ServiceContext) -> None:
    """The stored key is not the plain hash of name, village and phone; a re-import still finds its rows."""
    setup = seed(ctx)
    rows = [
        (2, ["王五", "金田村", "13700000000", "公共服务配套", "建议修建文化广场"]),
        (3, ["赵六", "高峰村", "", "环境卫生与农村路网", "建议完善垃圾转运"]),
    ]
    request = ImportRequest(
        consultation_id=setup.consultation_id,
        headers=["姓名", "村", "联系方式", "类别", "意见内容"],
        rows=lambda: rows,
        default_channel="villagers_assembly",
    )
    first = import_opinions(ctx, acting=EXPERT, request=request)
    again = import_opinions(ctx, acting=EXPERT, request=request)
    assert (first.imported, again.imported, again.already) == (2, 0, 2)
    plain = hashlib.sha256("王五\x1f金田村\x1f13700000000".encode()).hexdigest()
    stored = _everything(ctx)
    assert plain not in stored
    with engine_of(ctx).connect() as conn:
        keys = conn.execute(text("SELECT match_key FROM participant WHERE match_key IS NOT NULL")).scalars().all()
    assert len(keys) == 3 and all(len(k) == 64 for k in keys)  # seed's participant and the two imported


def test_upgrading_to_sealed_texts_keeps_matching_what_was_imported_before(tmp_path: Path, clock: FixedClock) -> None:
    """A database imported into at revision 0013 is rekeyed by 0014: the same file then adds nothing twice."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine, "0013")
    person = hashlib.sha256("王五\x1f金田村\x1f13700000000".encode()).hexdigest()
    with engine.begin() as conn:  # what 0013's code wrote: a person keyed by plain SHA-256
        conn.execute(
            text(
                "INSERT INTO participant (id, name, village, contact, lang, created_at, created_by_id, match_key) "
                "SELECT 1, '王五', '金田村', '13700000000', 'zh', '2026-03-01 00:00:00', min(id), :k FROM actor"
            ),
            {"k": person},
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT match_key FROM participant WHERE id = 1")).scalar_one()
        secret = bytes.fromhex(conn.execute(text("SELECT secret FROM privacy_secret")).scalar_one())
        keys = conn.execute(text("SELECT count(*) FROM participant_key")).scalar_one()
    assert stored != person and stored == sealing.keyed(secret, person)
    assert keys == 1  # a key for the participant who was there
    ctx = ServiceContext(database=SqlDatabase(engine), workflows_dir=WORKFLOWS, clock=clock)
    with sql_uow(ctx) as uow:
        found = uow.intake._participant_ids([person])  # the lookup a re-import makes
    assert found == {person: 1}
    engine.dispose()


@given(st.text(max_size=300), st.integers(min_value=1, max_value=2**31 - 1))
def test_sealing_round_trips_and_binds_the_participant(value: str, participant_id: int) -> None:
    """Any text opens as written with its key, and with no other key or participant."""
    key = sealing.new_key()
    if value.startswith(sealing.SEALED_PREFIX):
        return
    sealed = sealing.seal(key, participant_id, value)
    assert sealing.sealed_by(sealed) == participant_id
    assert sealing.unseal(key, sealed) == value
    assert sealing.unseal(sealing.new_key(), sealed) is None
    relabelled = sealed.replace(f":{participant_id}:", f":{participant_id + 1}:", 1)
    assert sealing.unseal(key, relabelled) is None


@pytest.fixture(name="logins")
def _logins(clock: FixedClock) -> Iterator[tuple[ServiceContext, dict[str, str], str]]:
    gen = _pg_schema_url()
    url = next(gen)
    owner = make_context(url, clock)
    _loop(owner)
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"cf_s_{kind}_{suffix}" for kind in ("server", "worker", "reader")}
    admin = DatabaseRoles(engine_of(owner))
    for kind, login in names.items():
        admin.add_login(login, kind, existing=False, password="pw")
    try:
        yield owner, names, url
    finally:
        with engine_of(owner).begin() as conn:
            for login in names.values():
                conn.execute(text(f'DROP ROLE IF EXISTS "{login}"'))
        owner.database.dispose()
        next(gen, None)


def _as(url: str, login: str) -> str:
    return make_url(normalize_url(url)).set(username=login, password="pw").render_as_string(hide_password=False)


def _libpq(url: str, login: str) -> str:
    parsed = make_url(normalize_url(url))
    options = parsed.query.get("options", "")
    return f"host={parsed.host} port={parsed.port or 5432} dbname={parsed.database} user={login} options='{options}'"


@pytest.mark.postgres
def test_only_the_servers_login_reads_the_keys(
    logins: tuple[ServiceContext, dict[str, str], str], clock: FixedClock
) -> None:
    """The reader and the worker read sealed texts only, and are refused the keys and the secret."""
    _owner, names, url = logins
    for kind in ("reader", "worker"):
        with psycopg.connect(_libpq(url, names[kind])) as conn:
            for statement in ("SELECT secret FROM participant_key", "SELECT secret FROM privacy_secret"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
                conn.rollback()
            if kind == "reader":
                texts = [str(t) for (t,) in conn.execute("SELECT text FROM opinion")]
                assert texts and all(t.startswith(sealing.SEALED_PREFIX) for t in texts)
    server = make_engine(_as(url, names["server"]))
    ctx = ServiceContext(database=SqlDatabase(server), workflows_dir=WORKFLOWS, clock=clock)
    assert opinion_views.show_opinion(ctx, 1)[0].text == HER_TEXT
    server.dispose()
    reader = make_engine(_as(url, names["reader"]))
    with SqlDatabase(reader).reading() as uow:  # a reader's own session: sealed texts stay sealed
        stored = str(uow.session.execute(text("SELECT text FROM opinion ORDER BY id")).scalars().first())
        assert uow.texts.open(stored) == sealing.UNREADABLE
    reader.dispose()


def test_erasure_clears_the_keyed_hashes_of_her_imported_rows(ctx: ServiceContext) -> None:
    """An imported row's intake and content keys (HMACs of her name, contact and text) go with her."""
    setup = seed(ctx)
    request = ImportRequest(
        consultation_id=setup.consultation_id,
        headers=["姓名", "村", "联系方式", "类别", "意见内容"],
        rows=lambda: [(2, ["王五", "金田村", "13700000000", "公共服务配套", "建议修建文化广场"])],
        default_channel="villagers_assembly",
    )
    assert import_opinions(ctx, acting=EXPERT, request=request).imported == 1
    query = text("SELECT participant_id, intake_key, content_key FROM opinion WHERE participant_id <> :p")
    with engine_of(ctx).connect() as conn:
        (participant_id, intake_key, content_key) = conn.execute(query, {"p": setup.participant_id}).one()
    assert intake_key and content_key
    personal_data.erase_participant(ctx, acting=COORD, participant_id=participant_id, reason="本人申请")
    with engine_of(ctx).connect() as conn:
        assert conn.execute(query, {"p": setup.participant_id}).one()[1:] == (None, None)
