"""Erasure as an insider would check it: after `participant erase`, nothing in any table names her.

张秀英 of 青龙村, 13812345678, is registered twice: by staff (participant add) and by the portal
(the same phone written +86 138-1234-5678). Her opinion quotes her name and phone, the planner's
feedback quotes her name, a reminder to the planner quotes her opinion, a delivery failed with an
error naming her, and an older attempt's error (stored before errors were masked) gives her phone.
After one erasure, every table of the database is read with plain SQL as its owner, and none of her
name, given name, phone or the hashes of them is anywhere; her texts read （已删除）; the chain
verifies; another villager's texts are untouched.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import ValidationError
from consultflow.domain.sealing import FORGOTTEN
from consultflow.domain.vocabulary import Field
from consultflow.services import (
    opinion_views,
    opinions,
    outbox,
    people,
    personal_data,
    receipts,
    reports,
    rounds,
    sweep,
    verify,
)
from consultflow.services.context import ServiceContext
from consultflow.store.models import Delivery, Opinion, Participant
from consultflow.store.roles import DatabaseRoles
from tests.conftest import Cli, _pg_schema_url, engine_of, make_context, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, assert_loop_invariants, seed, submit
from tests.integration.test_db_roles import _context_as, _drop_roles
from tests.integration.test_reminders import SETTINGS, RecordingSender

NAME, GIVEN, CONTACT, VILLAGE = "张秀英", "秀英", "13812345678", "青龙村"
PORTAL_CONTACT = "+86 138-1234-5678"  # the same phone, as she typed it on the portal
HER_TEXT = f"{VILLAGE}{NAME}建议硬化三组通组道路，电话138-1234-5678"
FEEDBACK = f"已研究{NAME}反映的问题，{GIVEN}的意见转乡镇"
OTHER_TEXT = "白石村李明建议修建文化广场，电话13999998888"
REASON = "本人申请，编号2026-17"
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Story:
    """What `_her_story` made."""

    consultation_id: int
    her_records: tuple[int, ...]
    her_opinions: tuple[int, ...]
    other_opinion: int


@dataclass
class NamingSender(RecordingSender):
    """A gateway that refuses, its error naming the person the message is about (names are not masked)."""

    def send(self, message: outbox.OutgoingMessage) -> None:
        if self.failing:
            msg = f"550 refused: content filter matched '{NAME}'"
            raise outbox.DeliveryError(msg)
        self.sent.append(message)


def _her_story(ctx: ServiceContext, clock: FixedClock) -> Story:
    setup = seed(ctx)  # registers 张秀英 of 青龙村, 13812345678 (participant 1)
    cid = setup.consultation_id
    rounds.reschedule_round(ctx, acting=COORD, consultation_id=cid, closes_at=clock.now() + 20 * DAY)
    people.add_actor(
        ctx, acting=COORD, name="villager-17", roles=["participant"], participant_id=1, contact=CONTACT
    )  # she uses consultflow herself, under a handle
    other = people.add_participant(ctx, acting=EXPERT, name="李明", village="白石村", contact="13999998888")
    other_opinion = opinions.submit_opinion(
        ctx,
        acting=EXPERT,
        consultation_id=cid,
        participant_id=other.id,
        category="environment_roads",
        channel="villagers_assembly",
        text=OTHER_TEXT,
    ).id
    hers = submit(ctx, setup, HER_TEXT, assign=True)
    opinions.fire(ctx, acting=EXPERT, opinion_id=hers, trigger="screen", fields={})
    down = NamingSender(failing=True)
    sweep.sweep(ctx, down, SETTINGS, now=clock.now() + 5 * DAY + timedelta(hours=1))  # the planner's reminder fails
    opinions.fire(ctx, acting=PLANNER, opinion_id=hers, trigger="give_feedback", fields={Field.TEXT: FEEDBACK})
    sweep.sweep(ctx, down, SETTINGS, now=clock.now() + 3 * DAY + timedelta(hours=1))  # hers is queued, fails
    online = receipts.OnlineOpinion(
        cid, "industry", f"我是{NAME}，建议修桥", VILLAGE, NAME, PORTAL_CONTACT, contact_consent=True, form_key="f1"
    )
    web = receipts.submit_online(ctx, online)
    sweep.sweep(ctx, down, SETTINGS, now=clock.now() + 18 * DAY + timedelta(hours=1))  # hers: the round ends soon
    with engine_of(ctx).begin() as conn:
        planner = conn.execute(text("SELECT id FROM actor WHERE name = :n"), {"n": PLANNER}).scalar_one()
        reminder = conn.execute(
            text("SELECT id FROM reminder WHERE opinion_id = :o AND recipient_role = 'planner'"), {"o": hers}
        ).scalars()
        # a reminder composed before reminders stopped quoting opinions, still queued for the planner
        conn.execute(
            text(
                "INSERT INTO delivery (idempotency_key, kind, reminder_id, recipient_kind, recipient_id, recipient_name,"
                " channel, lang, subject, body, status, attempts, next_attempt_at, created_at)"
                " VALUES ('legacy-1', 'reminder', :r, 'actor', :p, :pn, 'log', 'zh', :s, :b, 'pending', 0, :at, :at)"
            ),
            {
                "r": next(iter(reminder)),
                "p": planner,
                "pn": PLANNER,
                "s": f"【提醒】意见 #{hers}（研究办理中）截止 2026-03-08 09:00 CST",
                "b": f"意见 #{hers}：{HER_TEXT}\n当前状态：研究办理中\n事项：请对意见给出反馈或办理结论\n截止时间：2026-03-08\n",
                "at": clock.now(),
            },
        )
        # an attempt recorded before errors were masked: it gives her phone
        delivery_id = conn.execute(text("SELECT min(id) FROM delivery")).scalar_one()
        conn.execute(
            text("INSERT INTO delivery_attempt (delivery_id, attempt, at, ok, error) VALUES (:d, 99, :at, :ok, :e)"),
            {"d": delivery_id, "at": clock.now(), "ok": False, "e": f"SMS gateway: number {CONTACT} unreachable"},
        )
    before = _dump(ctx)
    # the story really put her in the messages and errors it means to test
    assert NAME in before["delivery"] and "138-1234-5678" in before["delivery"]
    assert NAME in before["delivery_attempt"] and CONTACT in before["delivery_attempt"]
    assert f"'participant', {setup.participant_id}, '{NAME}'" in before["delivery"]  # a message to her
    return Story(cid, (setup.participant_id, web.opinion.participant_id), (hers, web.opinion.id), other_opinion)


def _dump(ctx: ServiceContext) -> dict[str, str]:
    """Every table of the database, every row, as the owner reads them with plain SQL."""
    with engine_of(ctx).connect() as conn:
        tables = inspect(conn).get_table_names()
        assert {"participant", "opinion", "delivery", "delivery_attempt", "audit_event"} <= set(tables)
        return {t: "\n".join(str(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{t}"'))) for t in tables}


def _hashes() -> set[str]:
    """SHA-256 of every name|village|contact combination that could identify her (unkeyed, as before 0014)."""
    names, villages = (NAME, GIVEN, ""), (VILLAGE, "")
    contacts = (CONTACT, "+8613812345678", PORTAL_CONTACT, "")
    return {
        hashlib.sha256("\x1f".join(combo).encode("utf-8")).hexdigest()
        for combo in itertools.product(names, villages, contacts)
    }


def _assert_nothing_names_her(ctx: ServiceContext, story: Story) -> None:
    dump = _dump(ctx)
    needles = (NAME, GIVEN, CONTACT, "138-1234-5678", "1234-5678", "12345678", *_hashes())
    for table, rows in dump.items():
        for needle in needles:
            assert needle not in rows, f"{needle!r} is still in table {table}"
    with sql_uow(ctx) as uow:
        records = uow.session.execute(
            select(Participant.match_key, Participant.contact, Participant.village, Participant.erased_at).where(
                Participant.id.in_(story.her_records)
            )
        ).all()
        assert [(m, c, v) for m, c, v, _ in records] == [(None, None, "")] * len(story.her_records)
        assert all(erased is not None for *_, erased in records)
        keys = uow.session.scalars(select(Opinion.intake_key).where(Opinion.participant_id.in_(story.her_records)))
        assert set(keys) == {None}


def _assert_her_texts_forgotten_and_his_kept(ctx: ServiceContext, story: Story) -> None:
    for opinion_id in story.her_opinions:
        view, entries = opinion_views.show_opinion(ctx, opinion_id)
        assert view.text == FORGOTTEN
        assert {e.text for e in entries if e.text} <= {FORGOTTEN}
    _view, entries = opinion_views.show_opinion(ctx, story.her_opinions[0])
    assert [e.text for e in entries if e.kind == "feedback"] == [FORGOTTEN]
    assert opinion_views.show_opinion(ctx, story.other_opinion)[0].text == OTHER_TEXT
    account = repr(reports.account_report(ctx, story.consultation_id, names="full", acting=COORD, purpose="核对"))
    assert FORGOTTEN in account and OTHER_TEXT in account and NAME not in account
    assert verify.verify_chain(ctx, story.consultation_id).intact
    assert_loop_invariants(ctx, story.consultation_id)


def test_erasure_leaves_nothing_of_her_in_any_table(ctx: ServiceContext, clock: FixedClock) -> None:
    """Both records erased by one request; no table names her; her texts are forgotten, his are not."""
    story = _her_story(ctx, clock)
    done = personal_data.erase_participant(ctx, acting=COORD, participant_id=1, reason=REASON)
    assert done.participant_ids == list(story.her_records)
    assert [r.found_by for r in done.records] == ["asked", "contact"]
    assert (done.keys_destroyed, done.unsealed_texts, done.dry_run) == (2, 0, False)
    _assert_nothing_names_her(ctx, story)
    _assert_her_texts_forgotten_and_his_kept(ctx, story)
    erasures = [r for r in personal_data.access_records(ctx) if r.what == "erasure"]
    assert [(r.purpose, r.participants) for r in erasures] == [(REASON, 2)]
    with sql_uow(ctx) as uow:
        kinds = uow.session.execute(text("SELECT payload FROM audit_event WHERE kind = 'participant_erased'"))
        erased = sorted(json.loads(p)["participant_id"] for (p,) in kinds)
    assert erased == sorted(story.her_records)  # one event each, in the consultation they took part in

    up = RecordingSender()  # the gateway is back: the planner's reminder goes out, without her in it
    sweep.sweep(ctx, up, SETTINGS, now=clock.now() + 9 * DAY)
    assert up.sent, "the planner's reminder about her opinion is still sent"
    for message in up.sent:
        assert message.address != CONTACT and NAME not in message.body and GIVEN not in message.body
        assert "1234" not in message.body
    with sql_uow(ctx) as uow:
        legacy = uow.session.scalar(select(Delivery.body).where(Delivery.idempotency_key == "legacy-1"))
    assert (
        legacy
        == f"意见 #{story.her_opinions[0]}：{FORGOTTEN}\n当前状态：研究办理中\n事项：请对意见给出反馈或办理结论\n截止时间：2026-03-08\n"
    )


def test_dry_run_lists_the_records_and_writes_nothing(ctx: ServiceContext, clock: FixedClock) -> None:
    """A dry run finds both records, shows no full name, and changes no row; full names need a purpose."""
    story = _her_story(ctx, clock)
    before = _dump(ctx)
    dry = personal_data.erase_participant(ctx, acting=COORD, participant_id=1, reason=REASON, dry_run=True)
    assert dry.dry_run and dry.participant_ids == list(story.her_records)
    assert [(r.pseudonym, r.village, r.opinions, r.name) for r in dry.records] == [
        ("张某某", VILLAGE, 1, None),
        ("张某某", VILLAGE, 1, None),
    ]
    assert _dump(ctx) == before
    with pytest.raises(ValidationError, match="--purpose"):
        personal_data.erase_participant(
            ctx, acting=COORD, participant_id=1, reason=REASON, dry_run=True, full_names=True
        )
    with pytest.raises(ValidationError, match="--dry-run"):
        personal_data.erase_participant(
            ctx, acting=COORD, participant_id=1, reason=REASON, full_names=True, purpose="核对"
        )
    assert _dump(ctx) == before
    named = personal_data.erase_participant(
        ctx, acting=COORD, participant_id=1, reason=REASON, dry_run=True, full_names=True, purpose="核对申请人"
    )
    assert [r.name for r in named.records] == [NAME, NAME]
    assert [(r.what, r.purpose, r.participants) for r in personal_data.access_records(ctx)][:1] == [
        ("erasure dry run", "核对申请人", 2)
    ]


@pytest.mark.parametrize("reason", [f"{GIVEN}本人申请", "来电138 1234 5678", "来电+8613812345678"])
def test_a_reason_naming_her_is_refused_whatever_record_it_names(
    ctx: ServiceContext, clock: FixedClock, reason: str
) -> None:
    """The reason goes into the chain: her given name, or her phone written any way, is refused; nothing changes."""
    _her_story(ctx, clock)
    before = _dump(ctx)
    with pytest.raises(ValidationError, match="may not contain the participant's name or contact"):
        personal_data.erase_participant(ctx, acting=COORD, participant_id=1, reason=reason)
    assert _dump(ctx) == before


def test_same_name_and_village_only_when_asked(ctx: ServiceContext, clock: FixedClock) -> None:
    """A record with her name and village but no contact is hers only with same_name_village."""
    story = _her_story(ctx, clock)
    paper = people.add_participant(ctx, acting=EXPERT, name=NAME, village=VILLAGE).id
    namesake = people.add_participant(ctx, acting=EXPERT, name=NAME, village="白石村").id  # another village
    dry = personal_data.erase_participant(ctx, acting=COORD, participant_id=1, reason=REASON, dry_run=True)
    assert dry.participant_ids == list(story.her_records)
    done = personal_data.erase_participant(ctx, acting=COORD, participant_id=1, reason=REASON, same_name_village=True)
    assert done.participant_ids == [*story.her_records, paper]
    assert done.records[-1].found_by == "name and village"
    listed = {p.id: p.erased for p in people.list_participants(ctx, acting=COORD)}
    assert listed[paper] and not listed[namesake]


def test_erasing_one_person_leaves_anothers_texts_readable(ctx: ServiceContext, clock: FixedClock) -> None:
    """Her key is destroyed, not his: his opinion, and the feedback on it, still read as written."""
    story = _her_story(ctx, clock)
    opinions.fire(ctx, acting=EXPERT, opinion_id=story.other_opinion, trigger="screen", fields={})
    opinions.assign(ctx, acting=COORD, opinion_ids=[story.other_opinion], planner=PLANNER)
    opinions.fire(
        ctx, acting=PLANNER, opinion_id=story.other_opinion, trigger="give_feedback", fields={Field.TEXT: "已转交"}
    )
    personal_data.erase_participant(ctx, acting=COORD, participant_id=1, reason=REASON)
    view, entries = opinion_views.show_opinion(ctx, story.other_opinion)
    assert (view.text, [e.text for e in entries if e.kind == "feedback"]) == (OTHER_TEXT, ["已转交"])
    assert verify.verify_chain(ctx, story.consultation_id).intact


def test_a_text_recorded_before_sealing_stays_and_is_counted(ctx: ServiceContext, clock: FixedClock) -> None:
    """A text stored plain (as before migration 0014) cannot be forgotten: the result says so, it stays."""
    story = _her_story(ctx, clock)
    with engine_of(ctx).begin() as conn:
        conn.execute(text("UPDATE opinion SET text = '旧的意见' WHERE id = :o"), {"o": story.her_opinions[1]})
    done = personal_data.erase_participant(ctx, acting=COORD, participant_id=1, reason=REASON)
    assert done.unsealed_texts == 1
    assert opinion_views.show_opinion(ctx, story.her_opinions[1])[0].text == "旧的意见"


def test_erasure_through_the_cli(cli: Cli, clock: FixedClock) -> None:
    """`participant erase`: the dry run lists ids and pseudonyms only; the real run lists every id erased."""
    ctx = make_context(cli.url, clock)
    try:
        story = _her_story(ctx, clock)
        before = _dump(ctx)
        dry = cli.ok("participant", "erase", "1", "--reason", REASON, "--dry-run", actor=COORD).output
        assert "would erase 2 participant record(s): 1, 3" in dry and "张某某" in dry and VILLAGE in dry
        assert NAME not in dry and CONTACT not in dry
        listed = json.loads(
            cli.ok("participant", "erase", "1", "--reason", REASON, "--dry-run", "--json", actor=COORD).output
        )
        assert [(r["participant_id"], r["pseudonym"], r["name"]) for r in listed["records"]] == [
            (1, "张某某", None),
            (3, "张某某", None),
        ]
        assert _dump(ctx) == before
        refused = cli("participant", "erase", "1", "--reason", REASON, "--names", "full", "--dry-run", actor=COORD)
        assert refused.exit_code == 1 and "--purpose" in refused.output and NAME not in refused.output
        assert _dump(ctx) == before
        refused = cli("participant", "erase", "1", "--reason", f"{NAME}申请", actor=COORD)
        assert refused.exit_code == 1 and NAME not in refused.output
        assert _dump(ctx) == before
        done = cli.ok("participant", "erase", "1", "--reason", REASON, actor=COORD).output
        assert "erased 2 participant record(s): 1, 3" in done and "2 key(s) destroyed" in done
        assert NAME not in done and VILLAGE not in done
        again = cli("participant", "erase", "3", "--reason", REASON, actor=COORD)
        assert again.exit_code == 1 and "already erased" in again.output
        shown = cli.ok("opinion", "show", str(story.her_opinions[0]), actor=COORD).output
        assert FORGOTTEN in shown and NAME not in shown
        report = cli.ok("report", "account", str(story.consultation_id), actor=COORD).output
        assert FORGOTTEN in report and NAME not in report
        cli.ok("audit", "verify", str(story.consultation_id), actor=COORD)
        _assert_nothing_names_her(ctx, story)
    finally:
        ctx.database.dispose()


@pytest.mark.postgres
def test_the_servers_login_erases_everywhere(clock: FixedClock) -> None:
    """PostgreSQL, as the server's own login (the only writer): the same erasure, with the grants it has."""
    gen = _pg_schema_url()
    url = next(gen)
    owner = make_context(url, clock)
    login = f"cf_t_erase_{uuid.uuid4().hex[:8]}"
    try:
        story = _her_story(owner, clock)
        DatabaseRoles(engine_of(owner)).add_login(login, "server", existing=False, password="pw")
        server = _context_as(url, login, clock)
        try:
            done = personal_data.erase_participant(server, acting=COORD, participant_id=1, reason=REASON)
        finally:
            server.database.dispose()
        assert done.participant_ids == list(story.her_records)
        _assert_nothing_names_her(owner, story)
        _assert_her_texts_forgotten_and_his_kept(owner, story)
    finally:
        _drop_roles(engine_of(owner), login)
        owner.database.dispose()
        next(gen, None)
