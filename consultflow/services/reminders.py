"""Reminder records: planned in the transaction that causes them, listed and cancelled here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select, update

from consultflow.domain.errors import NotFoundError, ValidationError
from consultflow.domain.reminders import plan_reminders
from consultflow.domain.roles import Action, role_for_action
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services.context import ServiceContext
from consultflow.store.bulk import insert_ignoring_duplicates
from consultflow.store.models import Delivery, DeliveryAttempt, Reminder
from consultflow.store.uow import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class StateEntry:
    """An opinion that has just entered (or is staying in) a state with a deadline."""

    opinion_id: int
    consultation_id: int
    round_no: int
    state: str
    entered_at: datetime


def record_reminders(
    uow: UnitOfWork, spec: WorkflowSpec, entries: Iterable[StateEntry], round_closes_at: datetime | None, now: datetime
) -> int:
    """Write the reminders each entry's state calls for; existing ones are left as they are."""
    rows = [
        {
            "consultation_id": e.consultation_id,
            "opinion_id": e.opinion_id,
            "round_no": e.round_no,
            "rule": p.rule,
            "offset_minutes": round(p.offset_days * 24 * 60),
            "state": e.state,
            "state_entered_at": e.entered_at,
            "recipient_role": p.recipient_role.value,
            "escalation": p.escalation,
            "due_at": p.due_at,
            "send_at": p.send_at,
            "status": "pending",
            "created_at": now,
        }
        for e in entries
        for p in plan_reminders(spec, e.state, e.entered_at, round_closes_at)
    ]
    uow.session.flush()
    insert_ignoring_duplicates(uow.session, Reminder, rows)
    return len(rows)


def cancel_for_opinions(uow: UnitOfWork, opinion_ids: Sequence[int], reason: str, now: datetime) -> None:
    """Cancel the pending reminders of opinions that left the state they were about."""
    if not opinion_ids:
        return
    uow.session.flush()
    uow.session.execute(
        update(Reminder)
        .where(Reminder.opinion_id.in_(opinion_ids), Reminder.status == "pending")
        .values(status="cancelled", closed_at=now, cancel_reason=reason)
        .execution_options(synchronize_session=False)
    )


def cancel_for_round(uow: UnitOfWork, consultation_id: int, states: Sequence[str], reason: str, now: datetime) -> None:
    """Cancel pending reminders that were due at a round's close (the round closed or moved)."""
    if not states:
        return
    uow.session.execute(
        update(Reminder)
        .where(Reminder.consultation_id == consultation_id, Reminder.state.in_(states), Reminder.status == "pending")
        .values(status="cancelled", closed_at=now, cancel_reason=reason)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class ReminderView:
    """A reminder as coordinators see it."""

    id: int
    consultation_id: int
    opinion_id: int
    round_no: int
    rule: str
    state: str
    recipient_role: str
    escalation: bool
    due_at: datetime
    send_at: datetime
    status: str
    cancel_reason: str | None


@dataclass(frozen=True)
class AttemptView:
    """One try at sending."""

    attempt: int
    at: datetime
    ok: bool
    error: str | None


@dataclass(frozen=True)
class DeliveryView:
    """A message in the outbox (the recipient's contact is never part of it)."""

    id: int
    idempotency_key: str
    kind: str
    reminder_id: int | None
    recipient: str
    channel: str
    lang: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    history: tuple[AttemptView, ...] = ()


def _reminder_view(r: Reminder) -> ReminderView:
    return ReminderView(
        r.id, r.consultation_id, r.opinion_id, r.round_no, r.rule, r.state, r.recipient_role,
        r.escalation, r.due_at, r.send_at, r.status, r.cancel_reason,
    )  # fmt: skip


def _delivery_view(d: Delivery, history: tuple[AttemptView, ...] = ()) -> DeliveryView:
    return DeliveryView(
        d.id, d.idempotency_key, d.kind, d.reminder_id, d.recipient_name, d.channel, d.lang, d.subject,
        d.status, d.attempts, d.next_attempt_at, d.last_error, d.sent_at, history,
    )  # fmt: skip


STATUSES = ("pending", "dispatched", "cancelled")


def list_reminders(
    ctx: ServiceContext, *, consultation_id: int | None = None, status: str | None = None, limit: int | None = None
) -> list[ReminderView]:
    """Reminders, soonest first."""
    if status is not None and status not in STATUSES:
        msg = f"unknown reminder status {status!r}; allowed: {', '.join(STATUSES)}"
        raise ValidationError(msg)
    with ctx.uow() as uow:
        stmt = select(Reminder).order_by(Reminder.send_at, Reminder.id)
        if consultation_id is not None:
            uow.consultations.get(consultation_id)
            stmt = stmt.where(Reminder.consultation_id == consultation_id)
        if status is not None:
            stmt = stmt.where(Reminder.status == status)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [_reminder_view(r) for r in uow.session.scalars(stmt)]


def list_deliveries(ctx: ServiceContext, *, failed_only: bool = False, limit: int | None = None) -> list[DeliveryView]:
    """The outbox; `failed_only` keeps deliveries that failed at least once and are not sent."""
    with ctx.uow() as uow:
        stmt = select(Delivery).order_by(Delivery.id)
        if failed_only:
            stmt = stmt.where(Delivery.status != "sent", Delivery.last_error.is_not(None))
        if limit is not None:
            stmt = stmt.limit(limit)
        return [_delivery_view(d) for d in uow.session.scalars(stmt)]


def show_reminder(ctx: ServiceContext, reminder_id: int) -> tuple[ReminderView, list[DeliveryView]]:
    """A reminder with its deliveries and every attempt at them."""
    with ctx.uow() as uow:
        reminder = uow.session.get(Reminder, reminder_id)
        if reminder is None:
            msg = f"unknown reminder {reminder_id}; list them with 'consultflow reminders list'"
            raise NotFoundError(msg)
        deliveries = list(
            uow.session.scalars(select(Delivery).where(Delivery.reminder_id == reminder.id).order_by(Delivery.id))
        )
        attempts: dict[int, list[AttemptView]] = {}
        for a in uow.session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.attempt)
        ):
            attempts.setdefault(a.delivery_id, []).append(AttemptView(a.attempt, a.at, a.ok, a.error))
        return _reminder_view(reminder), [_delivery_view(d, tuple(attempts.get(d.id, []))) for d in deliveries]


def cancel_reminders(
    ctx: ServiceContext, *, acting: str | None, reminder_ids: Sequence[int], reason: str | None = None
) -> list[ReminderView]:
    """Cancel pending reminders by hand (a coordinator's call)."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        actor, roles = uow.actors.require(acting)
        role_for_action(actor.name, roles, Action.MANAGE_REMINDERS)
        rows = list(uow.session.scalars(select(Reminder).where(Reminder.id.in_(reminder_ids))))
        missing = sorted(set(reminder_ids) - {r.id for r in rows})
        if missing:
            msg = f"unknown reminder(s): {', '.join(map(str, missing))}"
            raise NotFoundError(msg)
        for r in rows:
            if r.status != "pending":
                msg = f"reminder {r.id} is {r.status}; only pending reminders can be cancelled"
                raise ValidationError(msg)
            r.status, r.closed_at = "cancelled", now
            r.cancel_reason = (reason or "").strip() or f"cancelled by {actor.name}"
        uow.commit()
        views = [_reminder_view(r) for r in rows]
    log.info("reminders_cancelled", count=len(views), actor=actor.name)
    return views
