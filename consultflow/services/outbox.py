"""The outbox: messages to send, leased to one worker at a time, retried, dead-lettered.

Database effects happen exactly once: each delivery row has a unique idempotency key and is
claimed with a lease before it is sent. Sending is at least once: a worker killed after sending
but before recording it sends again once the lease runs out, with the same key, so the receiver
can drop the repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from consultflow.domain.labels import Lang
from consultflow.domain.privacy import mask_text, pseudonymise
from consultflow.domain.roles import Role
from consultflow.logconfig import get_logger
from consultflow.services.context import ServiceContext
from consultflow.services.ports import ActorRow, UnitOfWork

log = get_logger(__name__)

CHANNELS = ("log", "email", "webhook")
MAX_ERROR_CHARS = 500


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
    # "participant" (a villager: never named in a log), "actor" (staff) or "publication" (signed heads
    # mailed out); anything else counts as a villager.
    recipient_kind: str = "participant"

    @property
    def loggable_recipient(self) -> str:
        """Who the message is for, as a log line may say it: a villager only pseudonymised (张某某)."""
        return (
            self.recipient_name
            if self.recipient_kind in ("actor", "publication")
            else pseudonymise(self.recipient_name)
        )


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


@dataclass(frozen=True)
class Recipient:
    """Someone a message goes to, with what the channel needs."""

    kind: str
    id: int
    name: str
    contact: str | None
    lang: Lang


def coordinators(uow: UnitOfWork) -> list[Recipient]:
    """Everyone with the coordinator role."""
    return [actor_recipient(a) for a in uow.actors.with_role(Role.COORDINATOR)]


def actor_recipient(a: ActorRow) -> Recipient:
    """An actor as a recipient."""
    return Recipient("actor", a.id, a.name, a.contact, "en" if a.lang == "en" else "zh")


def delivery_row(
    *,
    key: str,
    kind: str,
    reminder_id: int | None,
    recipient: Recipient,
    subject: str,
    body: str,
    settings: SweepSettings,
    now: datetime,
) -> dict[str, object]:
    """A new outbox row for `recipient`, through the channel their contact calls for."""
    return {
        "idempotency_key": key,
        "kind": kind,
        "reminder_id": reminder_id,
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
        claimed = _claim(ctx, settings, now, report)
        if not claimed:
            return
        for message in claimed:
            _attempt(ctx, sender, message, settings, now, report)


def _claim(
    ctx: ServiceContext, settings: SweepSettings, now: datetime, report: SweepReport | None = None
) -> list[OutgoingMessage]:
    """Take a batch of due deliveries for this worker: status 'sending' until the lease ends."""
    with ctx.uow() as uow:
        abandoned = uow.outbox.dead_letter_abandoned(now, settings.max_attempts)
        if abandoned:
            if report is not None:
                report.dead += abandoned
            log.warning("deliveries_dead_lettered", count=abandoned, reason="the worker stopped while sending them")
        rows = uow.outbox.claim(now, settings.batch, settings.lease)
        contacts = uow.outbox.contacts(rows) if rows else {}
        out = [
            OutgoingMessage(
                d.id,
                d.idempotency_key,
                d.kind,
                d.channel,
                d.recipient_name,
                contacts[d.id],
                d.lang,
                d.subject,
                d.body,
                d.recipient_kind,
            )
            for d in rows
        ]
        uow.commit()
    return out


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
        error = mask_text(str(exc) or type(exc).__name__)[:MAX_ERROR_CHARS]
    except Exception as exc:  # noqa: BLE001 - whatever one message does to a channel, it fails alone
        error = mask_text(f"{type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS]
    with ctx.uow() as uow:
        d = uow.outbox.get(message.delivery_id)
        uow.outbox.add_attempt(d.id, d.attempts, ctx.clock.now(), error)
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
