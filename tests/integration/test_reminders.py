"""Reminders: planned from the workflow, sent once, cancelled when moot, retried when they fail."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consultflow.domain.clock import FixedClock
from consultflow.domain.reminders import StateEntry
from consultflow.domain.vocabulary import Field
from consultflow.services import consultations, digest, opinions, outbox, reminders, rounds, sweep
from consultflow.services.context import ServiceContext, spec_for
from consultflow.store.models import Delivery, DeliveryAttempt, Reminder
from tests.conftest import sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit

DAY = timedelta(days=1)


@dataclass
class RecordingSender:
    """Stands in for the channels: records what would be sent, or fails on demand."""

    sent: list[outbox.OutgoingMessage] = field(default_factory=list)
    failing: bool = False

    def send(self, message: outbox.OutgoingMessage) -> None:
        if self.failing:
            raise outbox.DeliveryError("gateway down")
        self.sent.append(message)


SETTINGS = outbox.SweepSettings(channels=frozenset({"log", "email", "webhook"}), max_attempts=3)


def under_review(ctx: ServiceContext, *, assign: bool = True) -> tuple[int, int]:
    setup = seed(ctx)
    oid = submit(ctx, setup, assign=False)
    opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    if assign:
        opinions.assign(ctx, acting=COORD, opinion_ids=[oid], planner=PLANNER)
    return setup.consultation_id, oid


def by_rule(ctx: ServiceContext) -> dict[tuple[str, int], str]:
    return {(r.rule, r.id): r.status for r in reminders.list_reminders(ctx)}


def test_entering_review_plans_the_planner_reminders_and_escalation(ctx: ServiceContext, clock: FixedClock) -> None:
    """7 days to give feedback: reminders 2 days before and on the day, escalation a day after."""
    _, oid = under_review(ctx)
    pending = [r for r in reminders.list_reminders(ctx, status="pending") if r.opinion_id == oid]
    assert [(r.rule, r.recipient_role, (r.send_at - r.due_at) / DAY) for r in pending] == [
        ("feedback_due", "planner", -2.0),
        ("feedback_due", "planner", 0.0),
        ("feedback_overdue", "coordinator", 1.0),
    ]
    screening = [r for r in reminders.list_reminders(ctx) if r.rule == "screening_due"]
    assert [r.status for r in screening] == ["cancelled"]  # screened before it was due


def test_reminders_go_out_in_time_once_each(ctx: ServiceContext, clock: FixedClock) -> None:
    """Across a week and more: the planner twice, then the coordinators' escalation; nothing twice."""
    under_review(ctx)
    sender = RecordingSender()
    start = clock.now()
    sweep.sweep(ctx, sender, SETTINGS, now=start + 4 * DAY)
    assert sender.sent == []
    sweep.sweep(ctx, sender, SETTINGS, now=start + 5 * DAY + timedelta(hours=1))
    assert [m.recipient_name for m in sender.sent] == [PLANNER]
    for _ in range(3):  # repeated sweeps send nothing new
        sweep.sweep(ctx, sender, SETTINGS, now=start + 5 * DAY + timedelta(hours=2))
    assert len(sender.sent) == 1
    report = sweep.sweep(ctx, sender, SETTINGS, now=start + 9 * DAY)
    assert (report.found, report.dispatched, report.sent) == (2, 2, 2)
    assert [m.recipient_name for m in sender.sent] == [PLANNER, PLANNER, COORD]
    assert "逾期督办" in sender.sent[-1].subject
    assert len({m.idempotency_key for m in sender.sent}) == 3


def test_downtime_sends_each_due_reminder_once(ctx: ServiceContext, clock: FixedClock) -> None:
    """A worker back after ten days sends the three overdue reminders once, not once per missed tick."""
    under_review(ctx)
    sender = RecordingSender()
    back = clock.now() + 10 * DAY
    sweep.sweep(ctx, sender, SETTINGS, now=back)
    sweep.sweep(ctx, sender, SETTINGS, now=back + timedelta(minutes=1))
    assert len(sender.sent) == 3
    assert all("Overdue" in m.subject or "已逾期" in m.subject or "逾期督办" in m.subject for m in sender.sent)


def test_reminder_for_a_state_the_opinion_left_is_cancelled_not_sent(ctx: ServiceContext, clock: FixedClock) -> None:
    """Feedback given in time: the planner hears nothing, the reminders say why."""
    _, oid = under_review(ctx)
    opinions.fire(ctx, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "已研究"})
    sender = RecordingSender()
    sweep.sweep(ctx, sender, SETTINGS, now=clock.now() + 10 * DAY)
    assert [m.recipient_name for m in sender.sent if m.kind == "reminder"] == []
    feedback = [r for r in reminders.list_reminders(ctx) if r.rule.startswith("feedback_")]
    assert {r.status for r in feedback} == {"cancelled"}
    assert {r.cancel_reason for r in feedback} == {"the opinion left the state"}


def test_unassigned_opinion_chases_the_coordinators(ctx: ServiceContext, clock: FixedClock) -> None:
    """No planner assigned: the planner reminders go to the coordinators."""
    under_review(ctx, assign=False)
    sender = RecordingSender()
    sweep.sweep(ctx, sender, SETTINGS, now=clock.now() + 6 * DAY)
    assert [m.recipient_name for m in sender.sent] == [COORD]


def test_reassignment_between_planning_and_sending_reaches_the_new_planner(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    """Recipients are resolved when the reminder is sent, so a reassigned opinion chases the right person."""
    _, oid = under_review(ctx, assign=False)
    opinions.assign(ctx, acting=COORD, opinion_ids=[oid], planner=PLANNER)
    sender = RecordingSender()
    sweep.sweep(ctx, sender, SETTINGS, now=clock.now() + 6 * DAY)
    assert [m.recipient_name for m in sender.sent] == [PLANNER]


def test_participant_reminder_follows_the_round_close_and_dies_with_it(ctx: ServiceContext, clock: FixedClock) -> None:
    """Re-participation is due at the round's close; the participant and their expert are told once; closing cancels the rest."""
    setup = seed(ctx, open_first_round=False)
    closes = clock.now() + 14 * DAY
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=closes)
    oid = submit(ctx, setup)
    opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "请确认"})
    planned = [r for r in reminders.list_reminders(ctx) if r.rule == "reparticipation_open"]
    assert [(r.status, r.due_at, r.send_at) for r in planned] == [("pending", closes, closes - 2 * DAY)]
    rounds.reschedule_round(ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=clock.now() + 20 * DAY)
    moved = [r for r in reminders.list_reminders(ctx) if r.rule == "reparticipation_open"]
    assert sorted(r.status for r in moved) == ["cancelled", "pending"]
    sender = RecordingSender()
    sweep.sweep(ctx, sender, SETTINGS, now=clock.now() + 19 * DAY)
    assert sorted((m.recipient_name, m.channel) for m in sender.sent) == [("张秀英", "webhook"), (EXPERT, "log")]
    assert all("再次发表意见" in m.body or "转告" in m.body for m in sender.sent)
    rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    assert {
        r.status for r in reminders.list_reminders(ctx, status="pending") if r.rule == "reparticipation_open"
    } == set()


def test_failed_deliveries_retry_with_backoff_then_dead_letter(ctx: ServiceContext, clock: FixedClock) -> None:
    """A failing channel is retried later, not at once, and gives up after max attempts; every try is recorded."""
    under_review(ctx)
    sender = RecordingSender(failing=True)
    t = clock.now() + 5 * DAY + timedelta(hours=1)
    sweep.sweep(ctx, sender, SETTINGS, now=t)
    sweep.sweep(ctx, sender, SETTINGS, now=t + timedelta(seconds=30))  # before the backoff: nothing
    failed = reminders.list_deliveries(ctx, failed_only=True)
    assert [(d.status, d.attempts, d.last_error) for d in failed] == [("pending", 1, "gateway down")]
    sweep.sweep(ctx, sender, SETTINGS, now=t + timedelta(minutes=1, seconds=1))
    sweep.sweep(ctx, sender, SETTINGS, now=t + timedelta(minutes=4))
    dead = reminders.list_deliveries(ctx, failed_only=True)
    assert [(d.status, d.attempts) for d in dead] == [("dead", 3)]
    sender.failing = False
    sweep.sweep(ctx, sender, SETTINGS, now=t + timedelta(hours=2))
    assert sender.sent == []  # dead letters stay dead
    with sql_uow(ctx) as uow:
        assert uow.session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 3


def test_crashed_sender_is_retried_after_its_lease(ctx: ServiceContext, clock: FixedClock) -> None:
    """A delivery claimed by a worker that died is sent by the next sweep once the lease ends, with the same key."""
    under_review(ctx)
    t = clock.now() + 5 * DAY + timedelta(hours=1)
    fixed = replace(ctx, clock=FixedClock(t))
    report = outbox.SweepReport()
    sweep.dispatch_due(fixed, SETTINGS, report)
    claimed = outbox._claim(fixed, SETTINGS, t)  # the worker dies right after claiming
    assert len(claimed) == 1
    sender = RecordingSender()
    sweep.sweep(ctx, sender, SETTINGS, now=t + timedelta(minutes=1))
    assert sender.sent == []  # still leased
    sweep.sweep(ctx, sender, SETTINGS, now=t + SETTINGS.lease + timedelta(seconds=1))
    assert [m.idempotency_key for m in sender.sent] == [claimed[0].idempotency_key]


def test_round_closes_itself_when_the_consultation_asks(ctx: ServiceContext, clock: FixedClock) -> None:
    """With auto-close on, the sweep closes a round past its closing time, as the system."""
    setup = seed(ctx, open_first_round=False)
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=clock.now() + 3 * DAY)
    submit(ctx, setup)
    sender = RecordingSender()
    assert sweep.sweep(ctx, sender, SETTINGS, now=clock.now() + 4 * DAY).rounds_closed == 0
    consultations.set_auto_close(ctx, acting=COORD, consultation_id=setup.consultation_id, enabled=True)
    assert sweep.sweep(ctx, sender, SETTINGS, now=clock.now() + 4 * DAY).rounds_closed == 1
    status = rounds.round_status(ctx, setup.consultation_id)
    assert status.open_round is None
    assert sweep.sweep(ctx, sender, SETTINGS, now=clock.now() + 5 * DAY).rounds_closed == 0


def test_the_worker_process_leaves_due_rounds_to_the_server(
    ctx: ServiceContext, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close_rounds=False (what `consultflow worker` passes) delivers reminders and closes no round."""
    from consultflow.scheduler import worker

    setup = seed(ctx, open_first_round=False)
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=clock.now() + 3 * DAY)
    submit(ctx, setup)
    consultations.set_auto_close(ctx, acting=COORD, consultation_id=setup.consultation_id, enabled=True)
    sender = RecordingSender()
    report = sweep.sweep(ctx, sender, SETTINGS, now=clock.now() + 4 * DAY, close_rounds=False)
    assert report.rounds_closed == 0
    assert report.sent > 0
    assert rounds.round_status(ctx, setup.consultation_id).open_round is not None
    asked: list[bool] = []
    monkeypatch.setattr(sweep, "sweep", lambda *_a, close_rounds=True, **_k: asked.append(close_rounds))
    worker._sweep_job(ctx, sender, SETTINGS)
    assert asked == [False]


def test_digest_is_queued_once_a_day(ctx: ServiceContext, clock: FixedClock) -> None:
    """Each planner and coordinator with open work gets one digest per local day, however often it is queued."""
    under_review(ctx)
    day = replace(ctx, clock=FixedClock(clock.now() + 8 * DAY))
    digest.queue_digests(day, SETTINGS)
    digest.queue_digests(day, SETTINGS)
    with sql_uow(ctx) as uow:
        digests = list(uow.session.scalars(select(Delivery).where(Delivery.kind == "digest")))
    assert sorted(d.recipient_name for d in digests) == sorted([PLANNER, COORD])
    assert all("逾期 1 条" in d.subject for d in digests)


def test_planning_twice_writes_nothing_twice(ctx: ServiceContext, clock: FixedClock) -> None:
    """The unique key makes re-planning the same reminders harmless."""
    setup = seed(ctx, open_first_round=False)
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=clock.now() + 9 * DAY)
    oid = submit(ctx, setup)
    with sql_uow(ctx) as uow:
        before = uow.session.scalar(select(func.count()).select_from(Reminder))
        spec_row = uow.opinions.get(oid)
        spec = spec_for(uow.workflows.get(spec_row.workflow_id))
        entry = StateEntry(oid, setup.consultation_id, 1, spec_row.state, spec_row.state_entered_at)
        uow.reminders.plan(spec, [entry, entry], None, clock.now())
        uow.commit()
    with sql_uow(ctx) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Reminder)) == before


def test_coordinators_digest_counts_opinions_waiting_to_be_screened(ctx: ServiceContext, clock: FixedClock) -> None:
    """Unscreened opinions are the coordinators' work: their digest counts them, and those overdue as late."""
    setup = seed(ctx)
    submit(ctx, setup)
    submit(ctx, setup)
    day = replace(ctx, clock=FixedClock(clock.now() + 4 * DAY))  # screening was due after 3 days
    digest.queue_digests(day, SETTINGS)
    with sql_uow(ctx) as uow:
        [coordinator] = list(uow.session.scalars(select(Delivery).where(Delivery.kind == "digest")))
    assert coordinator.recipient_name == COORD
    assert "待办意见 2 条，逾期 2 条" in coordinator.subject


def test_those_whose_opinions_were_merged_are_told_with_the_target(ctx: ServiceContext, clock: FixedClock) -> None:
    """A merged opinion's participant is answered with the target: the re-participation call reaches them too."""
    from consultflow.services import people

    setup = seed(ctx, open_first_round=False)
    closes = clock.now() + 14 * DAY
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=closes)
    other = people.add_participant(ctx, acting=EXPERT, name="李建国", village="白马村", contact="li@village.example")
    target = submit(ctx, setup, "建议硬化通组道路")
    copy = opinions.submit_opinion(
        ctx, acting=EXPERT, consultation_id=setup.consultation_id, participant_id=other.id,
        category="environment_roads", channel="villagers_assembly", text="建议硬化通组道路。",
    ).id  # fmt: skip
    fields = {Field.MERGE_TARGET: target, Field.TEXT: "合并办理"}
    opinions.fire(ctx, acting=COORD, opinion_id=copy, trigger="merge", fields=fields)
    opinions.fire(ctx, acting=EXPERT, opinion_id=target, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=target, trigger="give_feedback", fields={Field.TEXT: "请确认"})
    sender = RecordingSender()
    sweep.sweep(ctx, sender, SETTINGS, now=closes - DAY)
    told = sorted((m.recipient_name, m.channel) for m in sender.sent)
    assert told == [("张秀英", "webhook"), ("李建国", "email"), (EXPERT, "log")]
