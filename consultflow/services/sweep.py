"""The reminder sweep: due reminders become outbox deliveries, and deliveries get sent.

Database effects happen exactly once: a reminder is dispatched in one transaction that writes
its deliveries (each with a unique idempotency key), and a delivery is claimed with a lease before
it is sent. Sending is at least once: a worker killed after sending but before recording it sends
again once the lease runs out, with the same idempotency key so the receiver can drop the repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy import and_, or_, select, update

from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import ConsultflowError
from consultflow.domain.labels import Lang
from consultflow.domain.reminders import compose, due_time
from consultflow.domain.roles import Role
from consultflow.services import rounds
from consultflow.services.context import ServiceContext, spec_for
from consultflow.store.bulk import insert_ignoring_duplicates
from consultflow.store.models import (
    Actor,
    ActorRole,
    Consultation,
    Delivery,
    DeliveryAttempt,
    Opinion,
    Participant,
    Reminder,
    Round,
)
from consultflow.store.uow import UnitOfWork

log = structlog.get_logger(__name__)

CHANNELS = ("log", "email", "webhook")


class DeliveryError(Exception):
    """A channel could not deliver a message; the sweep retries it later."""


@dataclass(frozen=True)
class OutgoingMessage:
    """What a channel needs to send one delivery."""

    delivery_id: int
    idempotency_key: str
    kind: str
    channel: str
    recipient_name: str
    address: str | None
    lang: str
    subject: str
    body: str


class Sender(Protocol):
    """Sends a message through its channel, or raises `DeliveryError`."""

    def send(self, message: OutgoingMessage) -> None:
        """Deliver `message` once."""
        ...


@dataclass(frozen=True)
class SweepSettings:
    """How the sweep dispatches and retries."""

    channels: frozenset[str] = frozenset({"log"})
    max_attempts: int = 5
    backoff_base: timedelta = timedelta(minutes=1)
    backoff_max: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=5)
    batch: int = 200


@dataclass
class SweepReport:
    """What one sweep found and did."""

    rounds_closed: int = 0
    found: int = 0
    dispatched: int = 0
    cancelled: int = 0
    skipped: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def channel_for(contact: str | None, enabled: frozenset[str]) -> str:
    """Email for an email address, the webhook (SMS, messaging gateways) for anything else, else log."""
    if contact and "@" in contact and "email" in enabled:
        return "email"
    if contact and "@" not in contact and "webhook" in enabled:
        return "webhook"
    return "log"


def backoff(attempts: int, settings: SweepSettings) -> timedelta:
    """Exponential backoff after the `attempts`-th failure, capped."""
    delay: timedelta = settings.backoff_base * (2 ** max(attempts - 1, 0))
    return min(delay, settings.backoff_max)


def sweep(ctx: ServiceContext, sender: Sender, settings: SweepSettings, now: datetime | None = None) -> SweepReport:
    """One pass: close rounds that are due, dispatch due reminders, send due deliveries."""
    at = now or ctx.clock.now()
    fixed = replace(ctx, clock=FixedClock(at))
    report = SweepReport()
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
        due = list(
            uow.session.scalars(
                select(Round.consultation_id)
                .join(Consultation, Consultation.id == Round.consultation_id)
                .where(Consultation.auto_close.is_(True), Round.status == "open", Round.closes_at <= now)
            )
        )
    closed = 0
    for consultation_id in due:
        try:
            rounds.close_round(ctx, acting="system", consultation_id=consultation_id)
            closed += 1
        except ConsultflowError as exc:  # another worker closed it first, say
            report.errors.append(f"auto-close of consultation {consultation_id}: {exc}")
    return closed


@dataclass(frozen=True)
class _Recipient:
    kind: str
    id: int
    name: str
    contact: str | None
    lang: Lang


def _coordinators(uow: UnitOfWork) -> list[_Recipient]:
    rows = uow.session.execute(
        select(Actor).join(ActorRole, ActorRole.actor_id == Actor.id).where(ActorRole.role == Role.COORDINATOR.value)
    ).scalars()
    return [_actor(a) for a in rows]


def _actor(a: Actor) -> _Recipient:
    return _Recipient("actor", a.id, a.name, a.contact, "en" if a.lang == "en" else "zh")


def _recipients(uow: UnitOfWork, role: Role, opinion: Opinion) -> list[_Recipient]:
    """Who a reminder for `role` goes to, resolved now (an opinion may have been reassigned)."""
    if role is Role.PLANNER:
        planner = uow.session.get(Actor, opinion.assigned_planner_id) if opinion.assigned_planner_id else None
        return [_actor(planner)] if planner else _coordinators(uow)
    if role is Role.COORDINATOR:
        return _coordinators(uow)
    recorder = uow.session.get(Actor, opinion.recorded_by_id)
    speaks_for = recorder is not None and Role.EXPERT in uow.actors.roles(recorder.id)
    out = [_actor(recorder)] if recorder is not None and (speaks_for or role is Role.EXPERT) else []
    if role is Role.PARTICIPANT:
        p = uow.session.get(Participant, opinion.participant_id)
        if p is not None and p.contact:
            out.insert(0, _Recipient("participant", p.id, p.name, p.contact, "en" if p.lang == "en" else "zh"))
    return out


def _still_relevant(uow: UnitOfWork, reminder: Reminder, opinion: Opinion) -> str | None:
    """Why a reminder must not be sent any more, or None when it still applies."""
    if opinion.state != reminder.state or opinion.state_entered_at != reminder.state_entered_at:
        return "the opinion left the state"
    spec = spec_for(uow.consultations.workflow(opinion.workflow_id))
    deadline = spec.states[reminder.state].deadline
    if deadline is not None and deadline.at_round_close:
        rnd = uow.session.scalar(
            select(Round).where(Round.consultation_id == reminder.consultation_id, Round.number == reminder.round_no)
        )
        if rnd is None or rnd.status != "open":
            return f"round {reminder.round_no} closed"
    return None


def dispatch_due(ctx: ServiceContext, settings: SweepSettings, report: SweepReport) -> None:
    """Turn due reminders into deliveries, a batch per transaction, until none is due."""
    now = ctx.clock.now()
    while True:
        with ctx.uow() as uow:
            stmt = (
                select(Reminder)
                .where(Reminder.status == "pending", Reminder.send_at <= now)
                .order_by(Reminder.send_at, Reminder.id)
                .limit(settings.batch)
                .with_for_update(skip_locked=True)
            )
            due = list(uow.session.scalars(stmt))
            if not due:
                return
            report.found += len(due)
            rows: list[dict[str, object]] = []
            for reminder in due:
                opinion = uow.opinions.get(reminder.opinion_id)
                reason = _still_relevant(uow, reminder, opinion)
                reminder.closed_at = now
                if reason is not None:
                    reminder.status, reminder.cancel_reason = "cancelled", reason
                    report.cancelled += 1
                    continue
                reminder.status = "dispatched"
                report.dispatched += 1
                recipients = _recipients(uow, Role(reminder.recipient_role), opinion)
                if not recipients:
                    report.skipped += 1
                    log.info(
                        "reminder_skipped", reminder_id=reminder.id, reason="no recipient with a way to reach them"
                    )
                rows += [_delivery_row(ctx, uow, reminder, opinion, r, settings, now) for r in recipients]
            insert_ignoring_duplicates(uow.session, Delivery, rows)
            uow.commit()


def _delivery_row(
    ctx: ServiceContext,
    uow: UnitOfWork,
    reminder: Reminder,
    opinion: Opinion,
    recipient: _Recipient,
    settings: SweepSettings,
    now: datetime,
) -> dict[str, object]:
    spec = spec_for(uow.consultations.workflow(opinion.workflow_id))
    message = compose(
        lang=recipient.lang,
        recipient_role=Role(reminder.recipient_role),
        escalation=reminder.escalation,
        opinion_id=opinion.id,
        opinion_text=opinion.text,
        state_label=spec.states[reminder.state].label.get(recipient.lang),
        due_local=reminder.due_at.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M %Z"),
        overdue=reminder.due_at < now,
    )
    return {
        "idempotency_key": f"reminder-{reminder.id}-{recipient.kind}-{recipient.id}",
        "kind": "reminder",
        "reminder_id": reminder.id,
        "recipient_kind": recipient.kind,
        "recipient_id": recipient.id,
        "recipient_name": recipient.name,
        "channel": channel_for(recipient.contact, settings.channels),
        "lang": recipient.lang,
        "subject": message.subject,
        "body": message.body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def queue_digests(ctx: ServiceContext, settings: SweepSettings) -> int:
    """Queue today's digest for each planner and coordinator with open work (once per local day)."""
    now = ctx.clock.now()
    day = now.astimezone(ctx.tz).date().isoformat()
    rows: list[dict[str, object]] = []
    with ctx.uow() as uow:
        open_ops = list(uow.session.scalars(select(Opinion).where(Opinion.outcome.is_(None))))
        overdue: dict[int | None, list[Opinion]] = {}
        waiting: dict[int | None, list[Opinion]] = {}
        for op in open_ops:
            spec = spec_for(uow.consultations.workflow(op.workflow_id))
            deadline = spec.states[op.state].deadline
            if deadline is None or deadline.owner is not Role.PLANNER:
                continue
            waiting.setdefault(op.assigned_planner_id, []).append(op)
            due = due_time(spec, op.state, op.state_entered_at, None)
            if due is not None and due < now:
                overdue.setdefault(op.assigned_planner_id, []).append(op)
        people = {a.id: a for a in uow.session.scalars(select(Actor))}
        for planner_id, ops in waiting.items():
            if planner_id is None or planner_id not in people:
                continue
            rows.append(_digest_row(_actor(people[planner_id]), ops, overdue.get(planner_id, []), day, settings, now))
        if open_ops:
            late = [op for ops in overdue.values() for op in ops]
            for coordinator in _coordinators(uow):
                rows.append(_digest_row(coordinator, [*waiting.get(None, []), *late], late, day, settings, now))
        insert_ignoring_duplicates(uow.session, Delivery, rows)
        uow.commit()
    log.info("digests_queued", day=day, recipients=len(rows))
    return len(rows)


def _digest_row(
    recipient: _Recipient,
    waiting: Sequence[Opinion],
    late: Sequence[Opinion],
    day: str,
    settings: SweepSettings,
    now: datetime,
) -> dict[str, object]:
    ids = ", ".join(f"#{op.id}" for op in sorted(late, key=lambda o: o.id)[:20])
    if recipient.lang == "zh":
        subject = f"【每日汇总】{day} 待办意见 {len(waiting)} 条，逾期 {len(late)} 条"
        body = f"待办意见：{len(waiting)} 条\n已逾期：{len(late)} 条\n" + (f"逾期意见：{ids}\n" if ids else "")
    else:
        subject = f"[Daily digest] {day}: {len(waiting)} opinion(s) waiting, {len(late)} overdue"
        body = f"Waiting: {len(waiting)}\nOverdue: {len(late)}\n" + (f"Overdue opinions: {ids}\n" if ids else "")
    return {
        "idempotency_key": f"digest-{day}-{recipient.kind}-{recipient.id}",
        "kind": "digest",
        "reminder_id": None,
        "recipient_kind": recipient.kind,
        "recipient_id": recipient.id,
        "recipient_name": recipient.name,
        "channel": channel_for(recipient.contact, settings.channels),
        "lang": recipient.lang,
        "subject": subject,
        "body": body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def deliver_due(ctx: ServiceContext, sender: Sender, settings: SweepSettings, report: SweepReport) -> None:
    """Claim due deliveries under a lease, send each, and record every attempt."""
    now = ctx.clock.now()
    while True:
        claimed = _claim(ctx, settings, now)
        if not claimed:
            return
        for message in claimed:
            _attempt(ctx, sender, message, settings, now, report)


def _claim(ctx: ServiceContext, settings: SweepSettings, now: datetime) -> list[OutgoingMessage]:
    """Take a batch of due deliveries for this worker: status 'sending' until the lease ends."""
    with ctx.uow() as uow:
        due = or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
            and_(Delivery.status == "sending", Delivery.locked_until < now),
        )
        rows = list(
            uow.session.scalars(
                select(Delivery)
                .where(due)
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(settings.batch)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return []
        uow.session.execute(
            update(Delivery)
            .where(Delivery.id.in_([d.id for d in rows]), due)
            .values(status="sending", locked_until=now + settings.lease, attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        out = [
            OutgoingMessage(
                d.id,
                d.idempotency_key,
                d.kind,
                d.channel,
                d.recipient_name,
                _address(uow, d),
                d.lang,
                d.subject,
                d.body,
            )
            for d in rows
        ]
        uow.commit()
    return out


def _address(uow: UnitOfWork, d: Delivery) -> str | None:
    """The recipient's contact, read at send time and never stored with the message."""
    row = uow.session.get(Actor if d.recipient_kind == "actor" else Participant, d.recipient_id)
    return row.contact if isinstance(row, (Actor, Participant)) else None


def _attempt(
    ctx: ServiceContext,
    sender: Sender,
    message: OutgoingMessage,
    settings: SweepSettings,
    now: datetime,
    report: SweepReport,
) -> None:
    error: str | None = None
    try:
        sender.send(message)
    except DeliveryError as exc:
        error = str(exc) or type(exc).__name__
    with ctx.uow() as uow:
        d = uow.session.get(Delivery, message.delivery_id)
        assert d is not None
        uow.session.add(
            DeliveryAttempt(delivery_id=d.id, attempt=d.attempts, at=ctx.clock.now(), ok=error is None, error=error)
        )
        d.locked_until = None
        if error is None:
            d.status, d.sent_at = "sent", ctx.clock.now()
            report.sent += 1
        elif d.attempts >= settings.max_attempts:
            d.status, d.last_error = "dead", error
            report.dead += 1
        else:
            d.status, d.last_error = "pending", error
            d.next_attempt_at = now + backoff(d.attempts, settings)
            report.failed += 1
        uow.commit()
    if error is not None:
        log.warning(
            "delivery_failed", delivery_id=message.delivery_id, channel=message.channel, error=error, attempt=d.attempts
        )
