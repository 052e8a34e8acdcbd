"""The reminder sweep: close rounds that are due (unless told not to), turn due reminders into messages, send them.

A reminder is dispatched in one transaction that writes its deliveries, so it is recorded once
however many workers sweep; whether it still applies (and to whom) is decided at that moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import ConsultflowError
from consultflow.domain.reminders import compose
from consultflow.domain.roles import Role
from consultflow.logconfig import get_logger
from consultflow.services import rounds
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.outbox import (
    Recipient,
    Sender,
    SweepReport,
    SweepSettings,
    actor_recipient,
    coordinators,
    deliver_due,
    delivery_row,
)
from consultflow.services.ports import ActorRow, OpinionRow, ReminderRow, UnitOfWork

log = get_logger(__name__)


def sweep(
    ctx: ServiceContext,
    sender: Sender,
    settings: SweepSettings,
    now: datetime | None = None,
    *,
    close_rounds: bool = True,
) -> SweepReport:
    """One pass: close rounds that are due, dispatch due reminders, send due deliveries.

    `close_rounds=False`: leave due rounds alone. The reminder worker's process passes it: closing a
    round is a use case (audit events, opinions moved) that only the server's login may run; the
    worker's login may only deliver.
    """
    at = now or ctx.clock.now()
    fixed = replace(ctx, clock=FixedClock(at))
    report = SweepReport()
    if close_rounds:
        report.rounds_closed = auto_close_rounds(fixed, report)
    dispatch_due(fixed, settings, report)
    deliver_due(fixed, sender, settings, report)
    log.info(
        "sweep",
        at=at.isoformat(),
        found=report.found,
        dispatched=report.dispatched,
        cancelled=report.cancelled,
        skipped=report.skipped,
        sent=report.sent,
        failed=report.failed,
        dead=report.dead,
        rounds_closed=report.rounds_closed,
    )
    return report


def auto_close_rounds(ctx: ServiceContext, report: SweepReport) -> int:
    """Close open rounds past their closing time, for consultations that asked for it."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        due = uow.consultations.due_for_auto_close(now)
    closed = 0
    for consultation_id in due:
        try:
            rounds.close_round(ctx, acting="system", consultation_id=consultation_id)
            closed += 1
        except ConsultflowError as exc:  # another worker closed it first, say
            report.errors.append(f"auto-close of consultation {consultation_id}: {exc}")
    return closed


class _Lookups:
    """What a batch of reminders needs, each looked up once per batch rather than per reminder."""

    def __init__(self, uow: UnitOfWork, due: Sequence[ReminderRow]) -> None:
        self.uow = uow
        self.opinions = {o.id: o for o in uow.opinions.get_many(list(dict.fromkeys(r.opinion_id for r in due)))}
        self.open_rounds = uow.consultations.open_rounds([r.consultation_id for r in due])
        self._actors: dict[int, ActorRow | None] = {}
        self._coordinators: list[Recipient] | None = None

    def actor(self, actor_id: int | None) -> ActorRow | None:
        if actor_id is None:
            return None
        if actor_id not in self._actors:
            self._actors[actor_id] = self.uow.actors.get(actor_id)
        return self._actors[actor_id]

    def coordinators(self) -> list[Recipient]:
        if self._coordinators is None:
            self._coordinators = coordinators(self.uow)
        return self._coordinators


def _recipients(lookups: _Lookups, role: Role, opinion: OpinionRow) -> list[Recipient]:
    """Who a reminder for `role` goes to, resolved now (an opinion may have been reassigned)."""
    if role is Role.PLANNER:
        planner = lookups.actor(opinion.assigned_planner_id)
        return [actor_recipient(planner)] if planner else lookups.coordinators()
    if role is Role.COORDINATOR:
        return lookups.coordinators()
    recorder = lookups.actor(opinion.recorded_by_id)
    speaks_for = recorder is not None and Role.EXPERT in lookups.uow.actors.roles(recorder.id)
    out = [actor_recipient(recorder)] if recorder is not None and (speaks_for or role is Role.EXPERT) else []
    if role is Role.PARTICIPANT:
        # Whoever raised an opinion merged into this one is answered with it, so is told with it.
        merged = [participant for _merged, participant in lookups.uow.opinions.merged_into(opinion.id)]
        speakers = list(dict.fromkeys([opinion.participant_id, *merged]))
        found = {p.id: p for p in lookups.uow.participants.many(speakers)}
        told = [
            Recipient("participant", p.id, p.name, p.contact, "en" if p.lang == "en" else "zh")
            for p in (found.get(i) for i in speakers)
            if p is not None and p.contact
        ]
        out[:0] = told
    return out


def _still_relevant(lookups: _Lookups, reminder: ReminderRow, opinion: OpinionRow) -> str | None:
    """Why a reminder must not be sent any more, or None when it still applies."""
    if opinion.state != reminder.state or opinion.state_entered_at != reminder.state_entered_at:
        return "the opinion left the state"
    spec = spec_for(lookups.uow.workflows.get(opinion.workflow_id))
    deadline = spec.states[reminder.state].deadline
    at_close = deadline is not None and deadline.at_round_close
    if at_close and (reminder.consultation_id, reminder.round_no) not in lookups.open_rounds:
        return f"round {reminder.round_no} closed"
    return None


def dispatch_due(ctx: ServiceContext, settings: SweepSettings, report: SweepReport) -> None:
    """Turn due reminders into deliveries, a batch per transaction, until none is due."""
    now = ctx.clock.now()
    while True:
        with ctx.uow() as uow:
            due = uow.reminders.due(now, settings.batch)
            if not due:
                return
            report.found += len(due)
            lookups = _Lookups(uow, due)
            rows: list[dict[str, object]] = []
            for reminder in due:
                opinion = lookups.opinions[reminder.opinion_id]
                reason = _still_relevant(lookups, reminder, opinion)
                reminder.closed_at = now
                if reason is not None:
                    reminder.status, reminder.cancel_reason = "cancelled", reason
                    report.cancelled += 1
                    continue
                reminder.status = "dispatched"
                report.dispatched += 1
                recipients = _recipients(lookups, Role(reminder.recipient_role), opinion)
                if not recipients:
                    report.skipped += 1
                    log.info(
                        "reminder_skipped", reminder_id=reminder.id, reason="no recipient with a way to reach them"
                    )
                rows += [_reminder_row(ctx, uow, reminder, opinion, r, settings, now) for r in recipients]
            uow.outbox.queue(rows)
            uow.commit()


def _reminder_row(
    ctx: ServiceContext,
    uow: UnitOfWork,
    reminder: ReminderRow,
    opinion: OpinionRow,
    recipient: Recipient,
    settings: SweepSettings,
    now: datetime,
) -> dict[str, object]:
    spec = spec_for(uow.workflows.get(opinion.workflow_id))
    message = compose(
        lang=recipient.lang,
        recipient_role=Role(reminder.recipient_role),
        escalation=reminder.escalation,
        opinion_id=opinion.id,
        state_label=spec.states[reminder.state].label.get(recipient.lang),
        due_local=reminder.due_at.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M %Z"),
        overdue=reminder.due_at < now,
    )
    return delivery_row(
        key=f"reminder-{reminder.id}-{recipient.kind}-{recipient.id}",
        kind="reminder",
        reminder_id=reminder.id,
        recipient=recipient,
        subject=message.subject,
        body=message.body,
        settings=settings,
        now=now,
    )
