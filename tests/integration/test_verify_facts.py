"""Verify compares every live fact with what the events say: an edited row is named, normal use is not."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from consultflow.domain.audit import AuditContent, canonical_text, chain_hash, text_hash, utc_iso
from consultflow.domain.clock import FixedClock
from consultflow.domain.vocabulary import Field
from consultflow.services import consultations, opinions, people, personal_data, rounds, verify
from consultflow.services.context import ServiceContext
from consultflow.store.models import AuditEvent, Consultation
from tests.conftest import engine_of, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit
from tests.integration.test_audit_trail import forge

LONG = "建议在村口修建一座可以通行农用车的桥梁，并在两侧加装护栏和路灯，方便夜间出行" * 3


@dataclass(frozen=True)
class Story:
    """Ids of what `story` did."""

    cid: int
    answered: int  # feedback, a reply, then adopted in round 2 with a plan reference
    rejected: int
    merged: int  # merged into `answered`
    withdrawn: int
    corrected: int  # its text corrected, carried over
    participant: int
    other_participant: int  # erased after submitting `long`
    long: int  # a long text


def story(ctx: ServiceContext, clock: FixedClock) -> Story:
    """Every normal way the live rows change: feedback, replies, decisions, merge, withdrawal,
    correction, erasure, a rescheduled round, a round close with carry-over and lapse, a new round."""
    setup = seed(ctx)
    cid = setup.consultation_id
    other = people.add_participant(ctx, acting=EXPERT, name="李四", village="白马村", contact="13900000000")
    rounds.reschedule_round(ctx, acting=COORD, consultation_id=cid, closes_at=clock.now() + timedelta(days=9))
    answered, rejected, merged, withdrawn, corrected = (submit(ctx, setup, f"意见{i}") for i in range(5))
    long = opinions.submit_opinion(
        ctx,
        acting=EXPERT,
        consultation_id=cid,
        participant_id=other.id,
        category="industry",
        channel="open_air_meeting",
        text=LONG,
    ).id
    for oid in (answered, rejected, merged):
        opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=answered, trigger="give_feedback", fields={Field.TEXT: "请确认位置"})
    opinions.fire(
        ctx,
        acting=EXPERT,
        opinion_id=answered,
        trigger="reparticipate",
        fields={Field.STANCE: "revise", Field.TEXT: "在东头"},
    )
    opinions.fire(ctx, acting=PLANNER, opinion_id=rejected, trigger="reject", fields={Field.REASON: "不可行"})
    opinions.fire(ctx, acting=PLANNER, opinion_id=merged, trigger="merge", fields={Field.MERGE_TARGET: answered})
    opinions.fire(ctx, acting=COORD, opinion_id=withdrawn, trigger="withdraw", fields={})
    opinions.correct(ctx, acting=EXPERT, opinion_id=corrected, text="意见四（更正）", reason="录入笔误")
    personal_data.erase_participant(ctx, acting=COORD, participant_id=other.id, reason="本人申请")
    rounds.close_round(ctx, acting=COORD, consultation_id=cid)
    rounds.open_round(ctx, acting=COORD, consultation_id=cid, closes_at=clock.now() + timedelta(days=20))
    rounds.reschedule_round(ctx, acting=COORD, consultation_id=cid, closes_at=clock.now() + timedelta(days=30))
    opinions.fire(
        ctx,
        acting=PLANNER,
        opinion_id=answered,
        trigger="adopt",
        fields={Field.TEXT: "采纳", Field.PLAN_REF: "v2 §4.3"},
    )
    consultations.set_auto_close(ctx, acting=COORD, consultation_id=cid, enabled=True)
    return Story(cid, answered, rejected, merged, withdrawn, corrected, setup.participant_id, other.id, long)


def _sql(ctx: ServiceContext, statement: str) -> None:
    with engine_of(ctx).begin() as conn:
        conn.execute(text(statement))


def _problem(ctx: ServiceContext, cid: int) -> str:
    report = verify.verify_chain(ctx, cid)
    assert not report.intact and report.broken is not None, "verify should have named the edit"
    return report.broken.problem


def _seq_of(ctx: ServiceContext, opinion_id: int, trigger: str) -> int:
    with engine_of(ctx).connect() as conn:
        found = conn.execute(
            text('SELECT max(opinion_seq) FROM audit_event WHERE opinion_id = :o AND "trigger" = :t'),
            {"o": opinion_id, "t": trigger},
        ).scalar_one()
    return int(found)


def test_every_normal_use_case_leaves_verify_intact(ctx: ServiceContext, clock: FixedClock) -> None:
    """Corrections, erasure, merges, withdrawals, reschedules, carry-over: no false alarm."""
    s = story(ctx, clock)
    report = verify.verify_chain(ctx, s.cid)
    assert report.intact, report.broken


# (what the insider runs, given the story; what verify must say, given the story)
EDITS: dict[str, tuple[Callable[[Story], str], Callable[[Story], str]]] = {
    "opinion text": (
        lambda s: f"UPDATE opinion SET text = '改过的' WHERE id = {s.rejected}",
        lambda s: f"opinion {s.rejected}: the live text is '改过的' but its events say '意见1' (a live row was edited)",
    ),
    "corrected text": (
        lambda s: f"UPDATE opinion SET text = '意见4' WHERE id = {s.corrected}",
        lambda s: f"opinion {s.corrected}: the live text is '意见4' but its events say '意见四（更正）'",
    ),
    "category": (
        lambda s: f"UPDATE opinion SET category = 'industry' WHERE id = {s.withdrawn}",
        lambda s: f"opinion {s.withdrawn}: the live category is 'industry' but its events say 'environment_roads'",
    ),
    "channel": (
        lambda s: f"UPDATE opinion SET channel = 'online_survey' WHERE id = {s.answered}",
        lambda s: f"opinion {s.answered}: the live channel is 'online_survey' but its events say 'villagers_assembly'",
    ),
    "participant": (
        lambda s: f"UPDATE opinion SET participant_id = {s.other_participant} WHERE id = {s.rejected}",
        lambda s: (
            f"opinion {s.rejected}: the live participant id is {s.other_participant} but its events say {s.participant}"
        ),
    ),
    "plan reference": (
        lambda s: f"UPDATE opinion SET plan_ref = 'v9 §1' WHERE id = {s.answered}",
        lambda s: f"opinion {s.answered}: the live plan reference is 'v9 §1' but its events say 'v2 §4.3'",
    ),
    "merge target": (
        lambda s: f"UPDATE opinion SET merged_into_id = {s.rejected} WHERE id = {s.merged}",
        lambda s: f"opinion {s.merged}: the live merge target is {s.rejected} but its events say {s.answered}",
    ),
    "feedback text": (
        lambda s: (
            f"UPDATE opinion_entry SET text = '不予研究' WHERE opinion_id = {s.answered} AND kind = 'feedback' "
            "AND round_no = 1"
        ),
        lambda s: f"opinion {s.answered}: the live text of its feedback #",
    ),
    "reason of a rejection": (
        lambda s: f"UPDATE opinion_entry SET text = '可行' WHERE opinion_id = {s.rejected}",
        lambda s: f"opinion {s.rejected}: the live text of its feedback #",
    ),
    "reply text": (
        lambda s: (
            f"UPDATE opinion_entry SET text = '在西头' WHERE opinion_id = {s.answered} AND kind = 'reparticipation'"
        ),
        lambda s: f"opinion {s.answered}: the live text of its reply #",
    ),
    "reply stance": (
        lambda s: (
            f"UPDATE opinion_entry SET stance = 'agree' WHERE opinion_id = {s.answered} AND kind = 'reparticipation'"
        ),
        lambda s: f"opinion {s.answered}: the live stance of its reply #",
    ),
    "feedback deleted": (
        lambda s: f"DELETE FROM opinion_entry WHERE opinion_id = {s.rejected}",
        lambda s: f"opinion {s.rejected}: its events record a feedback at #",
    ),
    "round status": (
        lambda _s: "UPDATE consultation_round SET status = 'closed' WHERE number = 2",
        lambda _s: "round 2: the live status is 'closed' but its events say 'open' (a live row was edited)",
    ),
    "round opened": (
        lambda _s: "UPDATE consultation_round SET opened_at = closes_at WHERE number = 1",
        lambda _s: "round 1: the live opening time is",
    ),
    "round closed": (
        lambda _s: "UPDATE consultation_round SET closed_at = closes_at WHERE number = 1",
        lambda _s: "round 1: the live time it closed is",
    ),
    "round closing time": (
        lambda _s: "UPDATE consultation_round SET closes_at = opened_at WHERE number = 2",
        lambda _s: "round 2: the live closing time is",
    ),
    "workflow text": (
        lambda _s: "UPDATE workflow SET source = replace(source, 'roles: [planner]', 'roles: [planner, expert]')",
        lambda _s: "its stored text no longer has its digest",
    ),
    "consultation title": (
        lambda s: f"UPDATE consultation SET title = '别的' WHERE id = {s.cid}",
        lambda s: f"consultation {s.cid}: the live title is '别的' but its events say '片区规划意见征集'",
    ),
}


@pytest.mark.parametrize("fact", list(EDITS))
def test_each_live_fact_edited_is_named(ctx: ServiceContext, clock: FixedClock, fact: str) -> None:
    """After normal use verify is intact; an insider's plain UPDATE of one fact is named with the row."""
    s = story(ctx, clock)
    assert verify.verify_chain(ctx, s.cid).intact
    statement, said = EDITS[fact]
    _sql(ctx, statement(s))
    assert said(s) in _problem(ctx, s.cid)


def test_a_workflow_rewritten_with_a_matching_digest_is_named(ctx: ServiceContext, clock: FixedClock) -> None:
    """Editing the stored workflow and its digest together still disagrees with the digest the events recorded."""
    s = story(ctx, clock)
    with engine_of(ctx).connect() as conn:
        wid, source, digest = conn.execute(text("SELECT id, source, digest FROM workflow")).one()
    edited = source.replace("roles: [planner]", "roles: [planner, expert]")
    new_digest = hashlib.sha256(edited.encode("utf-8")).hexdigest()
    with engine_of(ctx).begin() as conn:
        conn.execute(
            text("UPDATE workflow SET source = :s, digest = :d WHERE id = :i"), {"s": edited, "d": new_digest, "i": wid}
        )
    problem = _problem(ctx, s.cid)
    assert f"(id {wid}): the live digest is '{new_digest[:39]}…' but its events say '{digest[:39]}…'" in problem


def test_messages_shorten_long_texts_and_name_no_person(ctx: ServiceContext, clock: FixedClock) -> None:
    """A long text is cut short; a changed participant is named by id, never by name or contact."""
    s = story(ctx, clock)
    with engine_of(ctx).connect() as conn:  # as stored: sealed with the participant's key
        stored = conn.execute(text(f"SELECT text FROM opinion WHERE id = {s.long}")).scalar_one()
    # its participant was erased, so its events' text is forgotten: the long text is the live one
    _sql(ctx, f"UPDATE opinion SET text = '{LONG}。' WHERE id = {s.long}")
    problem = _problem(ctx, s.cid)
    assert f"opinion {s.long}: the live text is '{LONG[:20]}" in problem and "（已删除）" in problem
    assert "…" in problem and LONG not in problem
    _sql(ctx, f"UPDATE opinion SET text = '{stored}', participant_id = {s.participant} WHERE id = {s.long}")
    problem = _problem(ctx, s.cid)
    assert f"participant id is {s.participant} but its events say {s.other_participant}" in problem
    assert all(secret not in problem for secret in ("张秀英", "13812345678", "李四", "13900000000"))


def test_a_feedback_row_no_event_records_is_named(ctx: ServiceContext, clock: FixedClock) -> None:
    """An entry slipped in beside an opinion's real ones is named as added."""
    s = story(ctx, clock)
    _sql(
        ctx,
        "INSERT INTO opinion_entry (opinion_id, opinion_seq, round_no, kind, stance, text, actor_id, created_at) "
        f"SELECT opinion_id, opinion_seq + 100, round_no, kind, stance, text, actor_id, created_at "
        f"FROM opinion_entry WHERE opinion_id = {s.rejected}",
    )
    assert f"opinion {s.rejected}: the live tables have a feedback at #" in _problem(ctx, s.cid)


def _forge_event(ctx: ServiceContext, cid: int, kind: str, payload: str) -> int:
    """Append an event with a correct hash to an unkeyed chain, as someone with a database login could."""
    with sql_uow(ctx) as uow:
        consultation = uow.session.get(Consultation, cid)
        assert consultation is not None and consultation.chain_key_id is None
        seq, prev = consultation.chain_seq + 1, consultation.chain_head
        at = FixedClock(consultation.created_at).now() + timedelta(days=400)
        canonical = canonical_text(
            actor=COORD,
            at=utc_iso(at),
            chain_seq=seq,
            completes_cycle=False,
            consultation_id=cid,
            from_state=None,
            kind=kind,
            opinion_id=None,
            opinion_seq=None,
            payload=payload,
            role="coordinator",
            round_no=None,
            to_state=None,
            trigger=None,
        )
        digest = text_hash(prev, canonical)
        if payload == json.dumps(json.loads(payload), sort_keys=True, ensure_ascii=False, separators=(",", ":")):
            content = AuditContent(kind, at, COORD, "coordinator", cid, seq, payload=json.loads(payload))
            assert chain_hash(prev, content) == digest  # the forged event hashes as consultflow's own would
        uow.session.add(
            AuditEvent(
                consultation_id=cid,
                chain_seq=seq,
                kind=kind,
                completes_cycle=False,
                actor=COORD,
                role="coordinator",
                at=at,
                payload=payload,
                prev_hash=prev,
                hash=digest,
            )
        )
        consultation.chain_seq, consultation.chain_head = seq, digest
        uow.session.commit()
    return seq


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ('{"auto_close":true,"auto_close":true}', "its payload repeats the key 'auto_close'"),
        ('{"auto_close":true,"x":1}', "its payload has an unknown field 'x'"),
    ],
)
def test_a_forged_event_with_a_repeated_key_or_an_unknown_field_is_named(
    ctx: ServiceContext, clock: FixedClock, payload: str, said: str
) -> None:
    """An event hashed correctly but with a payload consultflow never writes is named at that event."""
    s = story(ctx, clock)
    seq = _forge_event(ctx, s.cid, "settings_changed", payload)
    report = verify.verify_chain(ctx, s.cid)
    assert not report.intact and report.broken is not None
    assert report.broken.chain_seq == seq
    assert said in report.broken.problem


def test_a_forged_event_with_known_fields_passes_the_payload_check(ctx: ServiceContext, clock: FixedClock) -> None:
    """The forging helper itself writes a valid event: with "via" and "token" the chain stays intact."""
    s = story(ctx, clock)
    _forge_event(ctx, s.cid, "settings_changed", '{"auto_close":true,"token":"t-1","via":"web"}')
    report = verify.verify_chain(ctx, s.cid)
    assert report.intact, report.broken


def test_events_written_before_they_recorded_the_text_raise_no_false_alarm(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    """Submitted events without a text (an older chain, rehashed here) skip the text, not the rest."""
    s = story(ctx, clock)
    with sql_uow(ctx) as uow:
        rows = list(
            uow.session.scalars(
                select(AuditEvent).where(AuditEvent.consultation_id == s.cid).order_by(AuditEvent.chain_seq)
            )
        )
        fields = [f for f in AuditContent.__dataclass_fields__ if f != "payload"]
        stored: dict[int, str] = dict(uow.session.execute(text("SELECT id, payload FROM audit_event")).all())
        prev, changes = rows[0].prev_hash, []
        for row in rows:
            payload = json.loads(stored[row.id])
            if row.kind == "submitted":
                payload.pop("text")
            content = AuditContent(**{f: getattr(row, f) for f in fields}, payload=payload)
            digest = chain_hash(prev, content)
            changes.append(
                (row.id, json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")), prev, digest)
            )
            prev = digest
    for event_id, payload, before, digest in changes:
        quoted = payload.replace("'", "''")
        if engine_of(ctx).dialect.name != "sqlite":  # sent through SQLAlchemy's text(): a colon starts a parameter
            quoted = quoted.replace(":", "\\:")
        forge(
            ctx,
            f"UPDATE audit_event SET payload = '{quoted}', prev_hash = '{before}', hash = '{digest}' WHERE id = {event_id}",
        )
    _sql(ctx, f"UPDATE consultation SET chain_head = '{prev}' WHERE id = {s.cid}")
    assert verify.verify_chain(ctx, s.cid).intact
    _sql(ctx, f"UPDATE opinion SET text = '改过的' WHERE id = {s.rejected}")
    assert verify.verify_chain(ctx, s.cid).intact  # nothing recorded the text: nothing to compare
    with engine_of(ctx).connect() as conn:  # as stored: sealed with the participant's key
        corrected = conn.execute(text(f"SELECT text FROM opinion WHERE id = {s.corrected}")).scalar_one()
    _sql(ctx, f"UPDATE opinion SET text = '改过的' WHERE id = {s.corrected}")
    assert f"opinion {s.corrected}: the live text is '改过的' but its events say '意见四（更正）'" in _problem(
        ctx, s.cid
    )
    _sql(ctx, f"UPDATE opinion SET text = '{corrected}', category = 'industry' WHERE id = {s.corrected}")
    assert f"opinion {s.corrected}: the live category is 'industry'" in _problem(ctx, s.cid)
