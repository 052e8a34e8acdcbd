"""The outbox: messages to send, leased to one worker at a time, retried, dead-lettered.

Database effects happen exactly once: each delivery row has a unique idempotency key and is
claimed with a lease before it is sent. Sending is at least once: a worker killed after sending
but before recording it sends again once the lease runs out, with the same key, so the receiver
can drop the repeat.
"""

from __future__ import annotations

import contextvars
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from consultflow.domain.labels import Lang
from consultflow.domain.privacy import mask_contact, mask_text, pseudonymise
from consultflow.domain.roles import Role
from consultflow.logconfig import get_logger
from consultflow.services.context import ServiceContext
from consultflow.services.ports import ActorRow, UnitOfWork

log = get_logger(__name__)

CHANNELS = ("log", "email", "webhook")
MAX_ERROR_CHARS = 500
# What a stored error is made from at most: a 50 MB answer's text is not masked whole.
_ERROR_INPUT_CHARS = 4 * MAX_ERROR_CHARS
# Control characters (C0, DEL, C1), lone surrogates (PostgreSQL cannot store them), and the
# invisible characters that reorder or hide text on a terminal (bidi overrides, zero widths, BOM).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]")
# After its deadline a channel has cut its connection; past this grace the sweep stops waiting for it.
DEADLINE_GRACE = timedelta(seconds=5)


def _escaped(found: re.Match[str]) -> str:
    code = ord(found.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_unprintable(text: str) -> str:
    r"""`text` on one line with nothing a terminal would act on: NUL, ESC, CR, LF... as \xNN, others as \uNNNN."""
    return _UNPRINTABLE.sub(_escaped, text)


def error_text(raw: str, *, name: str | None = None, contact: str | None = None) -> str:
    """A delivery error as it may be stored and shown: masked, escaped, bounded.

    Whatever a peer sent (a NUL in a status line, escape sequences, a 50 MB body) ends up one line
    of at most `MAX_ERROR_CHARS` printable characters, which both backends store (PostgreSQL's
    text holds no NUL). The recipient's contact and name are masked wherever the peer echoed
    them, and every other email address and phone number as in logs.
    """
    text = raw[:_ERROR_INPUT_CHARS]
    if contact:
        text = text.replace(contact, mask_contact(contact))
    if name and name.strip():
        text = text.replace(name.strip(), pseudonymise(name))
    text = escape_unprintable(mask_text(text))
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return text or "(an error without text)"


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
    # One delivery's whole time on any channel: the channel cuts its connection then.
    deadline: timedelta = timedelta(seconds=30)
    # Deliveries sent at once on one channel: a stuck SMTP server holds up email only.
    per_channel: int = 4


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
    """Claim due deliveries under a lease, send them a few at a time per channel, and record every attempt.

    Each delivery's outcome is recorded as soon as it is known, whatever the others are doing.
    A delivery that would start too late to finish within its lease (later than the lease less the
    deadline, or half the lease if that is longer) is released unsent, since another worker could
    claim it meanwhile; the sweep then stops and the next one takes it.
    """
    now = ctx.clock.now()
    while True:
        claimed_at = time.monotonic()
        claimed = _claim(ctx, settings, now, report)
        if not claimed:
            return
        lease = settings.lease.total_seconds()
        latest_start = claimed_at + max(lease - (settings.deadline + DEADLINE_GRACE).total_seconds(), lease / 2)
        unsent = send_batch(
            sender,
            claimed,
            settings,
            lambda message, failure: _record(ctx, message, failure, settings, now, report),
            latest_start=latest_start,
        )
        if unsent:
            _release(ctx, unsent)
            log.warning("deliveries_released", count=len(unsent), reason="their lease would end before they were sent")
            return


_UNSENT = object()


def send_batch(
    sender: Sender,
    messages: Sequence[OutgoingMessage],
    settings: SweepSettings,
    done: Callable[[OutgoingMessage, BaseException | None], None],
    *,
    latest_start: float | None = None,
) -> list[OutgoingMessage]:
    """Send `messages`, at most `settings.per_channel` at once per channel, calling `done` in this thread.

    `done(message, None)` for a delivered message, `done(message, exc)` for one that failed. A send
    still running `settings.deadline` plus a grace after it started is given up as a failure
    (its late outcome is ignored) and its place taken by a new thread. Messages not started by
    `latest_start` (time.monotonic()) are returned unsent.
    """
    results: queue.SimpleQueue[tuple[OutgoingMessage, object]] = queue.SimpleQueue()
    lock = threading.Lock()
    waiting: dict[str, deque[OutgoingMessage]] = {}
    for m in messages:
        waiting.setdefault(m.channel, deque()).append(m)
    started: dict[int, float] = {}

    def work(channel: str) -> None:
        while True:
            with lock:
                if not waiting[channel]:
                    return
                message = waiting[channel].popleft()
                late = latest_start is not None and time.monotonic() > latest_start
                if not late:
                    started[message.delivery_id] = time.monotonic()
            if late:
                results.put((message, _UNSENT))
                continue
            outcome: object = None
            try:
                sender.send(message)
            except BaseException as exc:  # noqa: BLE001 - whatever one message does to a channel, it fails alone
                outcome = exc
            results.put((message, outcome))

    def spawn(channel: str) -> None:
        context = contextvars.copy_context()  # log lines from the thread keep the command's bound fields
        threading.Thread(target=context.run, args=(work, channel), name=f"send-{channel}", daemon=True).start()

    for channel, queued in waiting.items():
        for _ in range(min(settings.per_channel, len(queued))):
            spawn(channel)
    give_up = (settings.deadline + DEADLINE_GRACE).total_seconds()
    pending = {m.delivery_id: m for m in messages}
    unsent: list[OutgoingMessage] = []
    while pending:
        with lock:
            running = [(i, t) for i, t in started.items() if i in pending]
        wait = min((t + give_up - time.monotonic() for _, t in running), default=give_up)
        try:
            message, outcome = results.get(timeout=max(0.01, wait))
        except queue.Empty:
            for delivery_id, t in running:
                if time.monotonic() - t >= give_up:
                    overdue = pending.pop(delivery_id)
                    seconds = settings.deadline.total_seconds()
                    done(overdue, DeliveryError(f"{overdue.channel}: no answer within {seconds:g} s; given up"))
                    spawn(overdue.channel)  # the stuck thread keeps its socket; the channel keeps its threads
            continue
        if pending.pop(message.delivery_id, None) is None:
            continue  # given up already: its late outcome changes nothing
        if outcome is _UNSENT:
            unsent.append(message)
        else:
            done(message, outcome if isinstance(outcome, BaseException) else None)
    return unsent


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


def _record(
    ctx: ServiceContext,
    message: OutgoingMessage,
    failure: BaseException | None,
    settings: SweepSettings,
    now: datetime,
    report: SweepReport,
) -> None:
    """Record one attempt; a record that cannot be written is logged and left to the lease, never raised."""
    error: str | None = None
    if failure is not None:
        raw = str(failure) if isinstance(failure, DeliveryError) else f"{type(failure).__name__}: {failure}"
        error = error_text(raw or type(failure).__name__, name=message.recipient_name, contact=message.address)
    try:
        _store_attempt(ctx, message, error, settings, now, report)
    except Exception as exc:  # noqa: BLE001 - one delivery's record must not stop the batch's others
        log.error(  # noqa: TRY400 - no traceback: the text of a database error can quote the values
            "delivery_not_recorded",
            delivery_id=message.delivery_id,
            error=error_text(f"{type(exc).__name__}: {exc}"),
            outcome="sent" if error is None else "failed",
        )
        return
    if error is not None:
        log.warning("delivery_failed", delivery_id=message.delivery_id, channel=message.channel, error=error)


def _store_attempt(
    ctx: ServiceContext,
    message: OutgoingMessage,
    error: str | None,
    settings: SweepSettings,
    now: datetime,
    report: SweepReport,
) -> None:
    with ctx.uow() as uow:
        d = uow.outbox.get(message.delivery_id)
        uow.outbox.add_attempt(d.id, d.attempts, ctx.clock.now(), error)
        d.locked_until = None
        if error is None:
            d.status, d.sent_at = "sent", ctx.clock.now()
            outcome = "sent"
        elif d.attempts >= settings.max_attempts:
            d.status, d.last_error = "dead", error
            outcome = "dead"
        else:
            d.status, d.last_error = "pending", error
            d.next_attempt_at = now + backoff(d.attempts, settings)
            outcome = "failed"
        uow.commit()
    if outcome == "sent":
        report.sent += 1
    elif outcome == "dead":
        report.dead += 1
    else:
        report.failed += 1


def _release(ctx: ServiceContext, messages: Sequence[OutgoingMessage]) -> None:
    """Hand claimed deliveries back unsent: pending again, their claim not counted as an attempt."""
    with ctx.uow() as uow:
        for message in messages:
            d = uow.outbox.get(message.delivery_id)
            d.status, d.locked_until, d.attempts = "pending", None, max(0, d.attempts - 1)
        uow.commit()
