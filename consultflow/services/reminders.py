"""Reminder records: planned in the transaction that causes them, listed and cancelled here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from consultflow.domain.document import Reread
from consultflow.domain.errors import ValidationError
from consultflow.domain.privacy import pseudonymise
from consultflow.domain.roles import Action
from consultflow.logconfig import get_logger
from consultflow.services.context import ServiceContext
from consultflow.services.personal_data import read_on_record
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import DeliveryRow, ReminderRow, UnitOfWork

T = TypeVar("T")

log = get_logger(__name__)


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
    """A message in the outbox (the recipient's contact is never part of it).

    A villager is named pseudonymised and no body is given (it quotes an opinion, and greets its
    reader), unless a coordinator asked for full names on record; then both are.
    """

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
    body: str | None = None


def _reminder_view(r: ReminderRow) -> ReminderView:
    return ReminderView(
        r.id, r.consultation_id, r.opinion_id, r.round_no, r.rule, r.state, r.recipient_role,
        r.escalation, r.due_at, r.send_at, r.status, r.cancel_reason,
    )  # fmt: skip


NAMED_KINDS = ("actor", "publication")  # staff, and the addresses signed heads are mailed to


def _delivery_view(d: DeliveryRow, history: tuple[AttemptView, ...] = (), *, full: bool = False) -> DeliveryView:
    # A villager is shown as staff see villagers everywhere else: pseudonymised (their full name is
    # for coordinators who state why, on record); staff are named. A kind this code does not know
    # counts as a villager. The body is shown only with full names: it may quote the villager.
    named = full or d.recipient_kind in NAMED_KINDS
    recipient = d.recipient_name if named else pseudonymise(d.recipient_name)
    return DeliveryView(
        d.id, d.idempotency_key, d.kind, d.reminder_id, recipient, d.channel, d.lang, d.subject,
        d.status, d.attempts, d.next_attempt_at, d.last_error, d.sent_at, history, d.body if full else None,
    )  # fmt: skip


def _villagers(deliveries: Sequence[DeliveryRow]) -> list[int]:
    """The participants these deliveries go to: whose names a full-name read shows."""
    return sorted({d.recipient_id for d in deliveries if d.recipient_kind not in NAMED_KINDS})


STATUSES = ("pending", "dispatched", "cancelled")


def list_reminders(
    ctx: ServiceContext, *, consultation_id: int | None = None, status: str | None = None, limit: int | None = None
) -> list[ReminderView]:
    """Reminders, soonest first, held (see `use_reminder_list`)."""
    return use_reminder_list(ctx, list, consultation_id=consultation_id, status=status, limit=limit)


def use_reminder_list(
    ctx: ServiceContext,
    use: Callable[[Reread[ReminderView]], T],
    *,
    consultation_id: int | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> T:
    """Reminders, soonest first, given to `use` while they can be read (streamed on each pass).

    A province plans millions of reminders; the list is written out as it is read.
    """
    if status is not None and status not in STATUSES:
        msg = f"unknown reminder status {status!r}; allowed: {', '.join(STATUSES)}"
        raise ValidationError(msg)
    with ctx.reading() as uow:
        if consultation_id is not None:
            uow.consultations.get(consultation_id)
        return use(Reread(lambda: (_reminder_view(r) for r in uow.reminders.search(consultation_id, status, limit))))


def list_deliveries(
    ctx: ServiceContext,
    *,
    failed_only: bool = False,
    limit: int | None = None,
    acting: str | None = None,
    full_names: bool = False,
    purpose: str | None = None,
) -> list[DeliveryView]:
    """The outbox; `failed_only` keeps deliveries that failed at least once and are not sent.

    Villagers are pseudonymised and bodies left out, unless `full_names`: then a coordinator must
    give `purpose`, and the read is on record (see `personal_data.read_on_record`).

    Raises:
        ValidationError: full names without a purpose.
        PermissionDeniedError: full names asked for by someone not a coordinator.
    """

    def read(uow: UnitOfWork, *, full: bool) -> list[DeliveryView]:
        return [_delivery_view(d, full=full) for d in uow.reminders.deliveries(failed_only=failed_only, limit=limit)]

    if not full_names:
        with ctx.uow() as uow:
            return read(uow, full=False)
    return read_on_record(
        ctx,
        acting=acting,
        what="failed deliveries with full names" if failed_only else "deliveries with full names",
        purpose=purpose,
        shown=lambda uow: _villagers(uow.reminders.deliveries(failed_only=failed_only, limit=limit)),
        read=lambda uow: read(uow, full=True),
    )


def show_reminder(
    ctx: ServiceContext,
    reminder_id: int,
    *,
    acting: str | None = None,
    full_names: bool = False,
    purpose: str | None = None,
) -> tuple[ReminderView, list[DeliveryView]]:
    """A reminder with its deliveries and every attempt at them.

    Villagers are pseudonymised and bodies left out, unless `full_names` (a coordinator, with
    `purpose`, on record: see `list_deliveries`).
    """

    def read(uow: UnitOfWork, *, full: bool) -> tuple[ReminderView, list[DeliveryView]]:
        (reminder,) = uow.reminders.get_many([reminder_id])
        deliveries = uow.reminders.deliveries_of(reminder.id)
        attempts: dict[int, list[AttemptView]] = {}
        for a in uow.reminders.attempts_of([d.id for d in deliveries]):
            attempts.setdefault(a.delivery_id, []).append(AttemptView(a.attempt, a.at, a.ok, a.error))
        views = [_delivery_view(d, tuple(attempts.get(d.id, [])), full=full) for d in deliveries]
        return _reminder_view(reminder), views

    if not full_names:
        with ctx.uow() as uow:
            return read(uow, full=False)

    def shown(uow: UnitOfWork) -> list[int]:
        uow.reminders.get_many([reminder_id])  # an unknown reminder is refused before anything is recorded
        return _villagers(uow.reminders.deliveries_of(reminder_id))

    return read_on_record(
        ctx,
        acting=acting,
        what=f"reminder {reminder_id} with full names",
        purpose=purpose,
        shown=shown,
        read=lambda uow: read(uow, full=True),
    )


def cancel_reminders(
    ctx: ServiceContext, *, acting: str | None, reminder_ids: Sequence[int], reason: str | None = None
) -> list[ReminderView]:
    """Cancel pending reminders by hand (a coordinator's call)."""

    def body(change: Change) -> list[ReminderView]:
        rows = change.uow.reminders.get_many(reminder_ids)
        for r in rows:
            if r.status != "pending":
                msg = f"reminder {r.id} is {r.status}; only pending reminders can be cancelled"
                raise ValidationError(msg)
            r.status, r.closed_at = "cancelled", change.now
            r.cancel_reason = (reason or "").strip() or f"cancelled by {change.actor.name}"
        return [_reminder_view(r) for r in rows]

    return run(
        ctx,
        acting=acting,
        action=Action.MANAGE_REMINDERS,
        event="reminders_cancelled",
        body=body,
        describe=lambda views: {"count": len(views)},
    )


def requeue_dead_letters(ctx: ServiceContext, *, acting: str | None, delivery_ids: Sequence[int] | None) -> list[int]:
    """Give dead-lettered deliveries (these, or every one) one more try at the next sweep."""

    def body(change: Change) -> list[int]:
        requeued = change.uow.outbox.requeue_dead(delivery_ids, change.now)
        if delivery_ids is not None:
            missing = sorted(set(delivery_ids) - set(requeued))
            if missing:
                listed = ", ".join(map(str, missing))
                msg = f"not dead-lettered (or unknown): {listed}; see 'consultflow reminders list --failed'"
                raise ValidationError(msg)
        return requeued

    return run(
        ctx,
        acting=acting,
        action=Action.MANAGE_REMINDERS,
        event="deliveries_requeued",
        body=body,
        describe=lambda ids: {"count": len(ids)},
    )
