"""Personal information: never in the audit chain, erasable on request while the chain still verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from consultflow.domain.audit import EventKind
from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import PermissionDeniedError, ValidationError
from consultflow.domain.plan import parse_markdown
from consultflow.domain.sealing import FORGOTTEN
from consultflow.domain.vocabulary import Field
from consultflow.services import (
    consultations,
    opinion_views,
    opinions,
    participation,
    people,
    personal_data,
    plans,
    receipts,
    reports,
    rounds,
    sweep,
    themes,
    verify,
)
from consultflow.services.context import ServiceContext
from consultflow.store.models import AuditEvent, Delivery
from tests.conftest import engine_of, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, assert_loop_invariants, seed, submit
from tests.integration.test_reminders import SETTINGS, RecordingSender

NAME, CONTACT, VILLAGE = "张秀英", "13812345678", "青龙村"


def _every_kind_of_event(ctx: ServiceContext, clock: FixedClock) -> tuple[int, int]:
    """A consultation whose chain holds at least one event of every kind there is."""
    setup = seed(ctx)  # registers 张秀英 of 青龙村, 13812345678
    cid = setup.consultation_id
    consultations.set_auto_close(ctx, acting=COORD, consultation_id=cid, enabled=True)
    rounds.reschedule_round(ctx, acting=COORD, consultation_id=cid, closes_at=clock.now() + timedelta(days=9))
    carried = submit(ctx, setup, f"{VILLAGE}的路", assign=False)
    answered = submit(ctx, setup)
    opinions.fire(ctx, acting=EXPERT, opinion_id=answered, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=answered, trigger="give_feedback", fields={Field.TEXT: "已研究"})
    rounds.close_round(ctx, acting=COORD, consultation_id=cid)  # carries `carried` over, lapses `answered`
    rounds.open_round(ctx, acting=COORD, consultation_id=cid)
    opinions.fire(
        ctx, acting=PLANNER, opinion_id=answered, trigger="adopt", fields={Field.TEXT: "采纳", Field.PLAN_REF: "§2"}
    )
    opinions.correct(ctx, acting=EXPERT, opinion_id=carried, text=f"{VILLAGE}的道路", reason="录入笔误")
    receipts.issue_receipt(ctx, acting=EXPERT, opinion_id=carried)
    online = receipts.OnlineOpinion(cid, "industry", "建议修桥", VILLAGE, NAME, CONTACT, contact_consent=True)
    web = receipts.submit_online(ctx, online)  # the portal knows her again: her name and contact stay out too
    assert web.opinion.participant_id == setup.participant_id  # same name, village and contact: the same record
    groups = participation.groups_of(ctx)  # her group, changed: an event in each chain she took part in
    participation.set_participant_group(
        ctx, acting=EXPERT, participant_id=setup.participant_id, group="乡村乡贤", groups=groups
    )
    # themes coded and one taken off again
    themes.code(ctx, acting=PLANNER, theme="加强交通设施配套", add=True, opinion_ids=[answered])
    themes.code(ctx, acting=PLANNER, theme="道路", add=True, opinion_ids=[answered])
    themes.code(ctx, acting=PLANNER, theme="道路", add=False, opinion_ids=[answered])
    # the draft plan: imported, an opinion linked to a clause, and a review where she rates and comments
    draft = parse_markdown("## 1 交通\n\n1. 修缮村道桥梁\n")
    plans.import_plan(ctx, acting=PLANNER, consultation_id=cid, clauses=draft)
    plans.link_clauses(ctx, acting=PLANNER, opinion_id=answered, clauses=["1.1"])
    rounds.close_round(ctx, acting=COORD, consultation_id=cid)
    plans.open_review(ctx, acting=COORD, consultation_id=cid)
    rating = plans.RatingIn("1.1", "不满意", f"{VILLAGE}的桥要先修")
    plans.record_ratings(
        ctx, acting=EXPERT, consultation_id=cid, participant_id=setup.participant_id, ratings=(rating,)
    )
    erased = personal_data.erase_participant(
        ctx, acting=COORD, participant_id=setup.participant_id, reason="本人申请，编号2026-17"
    )
    assert erased.participant_ids == [setup.participant_id]
    return cid, carried


def _chain_text(ctx: ServiceContext, cid: int) -> tuple[set[str], str]:
    with sql_uow(ctx) as uow:
        rows = list(uow.session.scalars(select(AuditEvent).where(AuditEvent.consultation_id == cid)))
    kinds = {r.kind for r in rows}
    return kinds, "\n".join(f"{r.actor}|{r.payload}|{r.trigger}|{r.from_state}|{r.to_state}" for r in rows)


def test_no_event_of_any_kind_holds_a_name_or_contact(ctx: ServiceContext, clock: FixedClock) -> None:
    """Every kind of audit event there is appears in this chain, and none holds the participant's name or contact."""
    cid, _ = _every_kind_of_event(ctx, clock)
    kinds, chain = _chain_text(ctx, cid)
    every = {v for k, v in vars(EventKind).items() if k.isupper()}
    assert kinds == every, f"kinds not exercised: {every - kinds}"
    assert NAME not in chain and CONTACT not in chain


def test_erasure_removes_name_contact_and_village_and_the_chain_still_verifies(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    """After erasure: pseudonym in every table and report, no contact anywhere, verify intact, on record."""
    cid, carried = _every_kind_of_event(ctx, clock)
    assert verify.verify_chain(ctx, cid).intact
    assert_loop_invariants(ctx, cid)
    with engine_of(ctx).connect() as conn:
        for table in ("participant", "actor", "delivery", "opinion", "opinion_entry", "audit_event"):
            dump = "\n".join(str(tuple(r)) for r in conn.execute(text(f"SELECT * FROM {table}")))
            assert NAME not in dump and CONTACT not in dump, table
    listed = people.list_participants(ctx, acting=COORD, with_contact=True, purpose="核对")
    assert [(p.name, p.contact, p.village, p.erased) for p in listed] == [("张某某", None, "", True)]
    account = reports.account_report(ctx, cid, names="full", acting=COORD, purpose="核对")
    assert NAME not in repr(account) and "张某某" in repr(account)
    assert opinion_views.show_opinion(ctx, carried)[0].text == FORGOTTEN  # her text is gone; the opinion stays
    erasures = [r for r in personal_data.access_records(ctx) if r.what == "erasure"]
    assert [(r.actor, r.purpose, r.participants) for r in erasures] == [(COORD, "本人申请，编号2026-17", 1)]
    with pytest.raises(ValidationError, match="already erased"):
        personal_data.erase_participant(ctx, acting=COORD, participant_id=1, reason="again")


def test_erasure_gives_up_unsent_messages_to_them(ctx: ServiceContext, clock: FixedClock) -> None:
    """A reminder queued for the participant is not sent after erasure, and its copy of the name is gone."""
    setup = seed(ctx)
    rounds.reschedule_round(
        ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=clock.now() + timedelta(days=5)
    )
    oid = submit(ctx, setup)
    opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "请确认"})
    down = RecordingSender(failing=True)  # the reminder to re-participate is queued, but the gateway is down
    sweep.sweep(ctx, down, SETTINGS, now=clock.now() + timedelta(days=3, hours=1))
    with sql_uow(ctx) as uow:
        queued = list(uow.session.execute(select(Delivery.recipient_name, Delivery.status)))
    assert (NAME, "pending") in queued
    personal_data.erase_participant(ctx, acting=COORD, participant_id=setup.participant_id, reason="本人申请")
    up = RecordingSender()
    sweep.sweep(ctx, up, SETTINGS, now=clock.now() + timedelta(days=3, hours=5))
    assert not [m for m in up.sent if m.address == CONTACT or NAME in m.recipient_name]
    with sql_uow(ctx) as uow:
        after = list(uow.session.execute(select(Delivery.recipient_name, Delivery.status, Delivery.body)))
    assert ("张某某", "dead", "") in after and not [row for row in after if row[0] == NAME]


def test_erasure_is_for_coordinators_and_the_reason_may_not_name_them(ctx: ServiceContext) -> None:
    """A planner is refused; a reason holding the name or the contact is refused; nothing changes."""
    setup = seed(ctx)
    with pytest.raises(PermissionDeniedError, match="may not erase"):
        personal_data.erase_participant(ctx, acting=PLANNER, participant_id=setup.participant_id, reason="申请")
    for reason in (f"{NAME}本人申请", f"来电{CONTACT}"):
        with pytest.raises(ValidationError, match="may not contain the participant's name or contact"):
            personal_data.erase_participant(ctx, acting=COORD, participant_id=setup.participant_id, reason=reason)
    listed = people.list_participants(ctx, acting=COORD, full_names=True, purpose="核对")
    assert [p.name for p in listed] == [NAME]
