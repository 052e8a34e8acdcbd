"""A sweep that nothing stops: poison messages fail alone, dying workers dead-letter, dead letters requeue."""

from __future__ import annotations

import http.client
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest

from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import PermissionDeniedError, ValidationError
from consultflow.services import opinions, outbox, reminders, sweep
from consultflow.services.context import ServiceContext
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit

DAY = timedelta(days=1)
SETTINGS = outbox.SweepSettings(max_attempts=2)
POISONS: list[BaseException] = [
    http.client.BadStatusLine("SSH-2.0-OpenSSH_9.2"),  # a webhook port that does not speak HTTP
    ValueError("Header values may not contain linefeed or carriage return characters"),  # CR/LF in a contact
    RuntimeError("gateway for 13812345678 exploded"),  # anything at all, with a contact in its text
]


@dataclass
class PoisonedSender:
    """Sends everything, except that the messages it is told to poison raise, each its own exception."""

    poison: dict[str, BaseException] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)

    def send(self, message: outbox.OutgoingMessage) -> None:
        if message.idempotency_key in self.poison:
            raise self.poison[message.idempotency_key]
        self.sent.append(message.idempotency_key)


def _due_deliveries(ctx: ServiceContext, n: int) -> datetime:
    """n opinions under review, and the moment their planner reminders are due."""
    setup = seed(ctx)
    for i in range(n):
        oid = submit(ctx, setup, text=f"意见 {i}")
        opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
        opinions.assign(ctx, acting=COORD, opinion_ids=[oid], planner=PLANNER)
    return ctx.clock.now() + 5 * DAY + timedelta(hours=1)


def test_poison_messages_fail_alone_and_every_other_delivery_goes_once(ctx: ServiceContext) -> None:
    """Non-HTTP answers, CR/LF, any exception: recorded as that delivery's failures, masked; the rest is sent."""
    t = _due_deliveries(ctx, 6)
    fixed = replace(ctx, clock=FixedClock(t))
    sweep.dispatch_due(fixed, SETTINGS, outbox.SweepReport())
    keys = sorted(d.idempotency_key for d in reminders.list_deliveries(ctx))
    assert len(keys) == 6
    sender = PoisonedSender(poison=dict(zip(keys, POISONS, strict=False)))
    first = sweep.sweep(ctx, sender, SETTINGS, now=t)
    assert (first.sent, first.failed, first.dead) == (3, 3, 0)
    later = sweep.sweep(ctx, sender, SETTINGS, now=t + timedelta(hours=2))
    assert (later.sent, later.failed, later.dead) == (0, 0, 3)
    assert sorted(sender.sent) == sorted(set(keys) - set(sender.poison))  # each good one once
    dead = reminders.list_deliveries(ctx, failed_only=True)
    assert sorted((d.status, d.attempts) for d in dead) == [("dead", 2)] * 3
    errors = " ".join(d.last_error or "" for d in dead)
    assert "BadStatusLine" in errors and "ValueError" in errors and "RuntimeError" in errors
    assert "13812345678" not in errors and "*********78" in errors  # stored masked


def test_a_delivery_whose_worker_keeps_dying_is_dead_lettered_not_claimed_forever(ctx: ServiceContext) -> None:
    """Claimed, then the worker dies, as many times as attempts allow: the next sweep dead-letters it unsent."""
    t = _due_deliveries(ctx, 1)
    fixed = replace(ctx, clock=FixedClock(t))
    sweep.dispatch_due(fixed, SETTINGS, outbox.SweepReport())
    moment = t
    for _ in range(SETTINGS.max_attempts):
        assert len(outbox._claim(fixed, SETTINGS, moment)) == 1
        moment += SETTINGS.lease + timedelta(seconds=1)
    sender = PoisonedSender()
    sweep.sweep(ctx, sender, SETTINGS, now=moment)
    assert sender.sent == []
    [dead] = reminders.list_deliveries(ctx, failed_only=True)
    assert dead.status == "dead" and "worker stopped while sending it" in (dead.last_error or "")


def test_dead_letters_can_be_requeued_by_a_coordinator(ctx: ServiceContext) -> None:
    """A coordinator gives a dead letter one more try; others may not; a letter that is not dead is refused."""
    t = _due_deliveries(ctx, 2)
    fixed = replace(ctx, clock=FixedClock(t))
    sweep.dispatch_due(fixed, SETTINGS, outbox.SweepReport())
    [bad, good] = sorted(reminders.list_deliveries(ctx), key=lambda d: d.id)
    sender = PoisonedSender(poison={bad.idempotency_key: RuntimeError("down")})
    sweep.sweep(ctx, sender, SETTINGS, now=t)
    sweep.sweep(ctx, sender, SETTINGS, now=t + timedelta(hours=2))
    with pytest.raises(PermissionDeniedError):
        reminders.requeue_dead_letters(ctx, acting=PLANNER, delivery_ids=[bad.id])
    with pytest.raises(ValidationError, match=f"not dead-lettered \\(or unknown\\): {good.id}"):
        reminders.requeue_dead_letters(ctx, acting=COORD, delivery_ids=[bad.id, good.id])
    assert reminders.requeue_dead_letters(ctx, acting=COORD, delivery_ids=[bad.id]) == [bad.id]
    sender.poison.clear()
    sweep.sweep(ctx, sender, SETTINGS, now=t + timedelta(hours=3))
    assert sender.sent.count(bad.idempotency_key) == 1
    assert reminders.list_deliveries(ctx, failed_only=True) == []
