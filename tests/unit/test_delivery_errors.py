"""Delivery errors made safe to store and show, and a batch sent a few at a time per channel."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from consultflow.services import outbox
from consultflow.services.outbox import OutgoingMessage, SweepSettings, error_text, escape_unprintable, send_batch


def test_control_characters_are_escaped_and_nothing_unstorable_remains() -> None:
    """NUL, ESC, CR/LF, DEL, C1, bidi overrides and lone surrogates: each escaped, the rest kept."""
    raw = "HTTP/1.1 200\x00 OK\r\n\x1b[2J\x7f\x85 \u202eevil\ud800 村民"
    assert error_text(raw) == "HTTP/1.1 200\\x00 OK\\x0d\\x0a\\x1b[2J\\x7f\\x85 \\u202eevil\\ud800 村民"
    assert escape_unprintable("a\tb") == "a\\x09b"
    assert error_text("") == "(an error without text)"


def test_the_recipient_and_any_contact_are_masked() -> None:
    """Her name becomes 张某某, her number and any email address are masked as in logs."""
    text = error_text(
        "gateway: 张秀英 at 13812345678 refused; cc li@county.example", name="张秀英", contact="13812345678"
    )
    assert text == "gateway: 张某某 at *********78 refused; cc li***@county.example"


def test_a_huge_error_is_bounded_quickly() -> None:
    """A 50 MB answer quoted whole becomes 500 characters, without masking 50 MB."""
    started = time.monotonic()
    text = error_text("\x00" * 50_000_000)
    assert len(text) == outbox.MAX_ERROR_CHARS and text.endswith("…")
    assert time.monotonic() - started < 1


def _message(i: int, channel: str) -> OutgoingMessage:
    return OutgoingMessage(i, f"k{i}", "reminder", channel, "张秀英", None, "zh", "s", "b")


class _Sender:
    """Email hangs until released (or for good); every other channel sends at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.sent: list[tuple[str, float]] = []
        self.running = 0  # emails being sent
        self.most = 0
        self.lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> None:
        counted = message.channel == "email"
        with self.lock:
            self.running += counted
            self.most = max(self.most, self.running)
        try:
            if message.channel == "email":
                self.release.wait(10)
            self.sent.append((message.idempotency_key, time.monotonic()))
        finally:
            with self.lock:
                self.running -= counted


def test_a_stuck_channel_holds_up_only_itself_and_at_most_its_share_of_threads() -> None:
    """Six stuck emails use two threads; the log goes out at once; each outcome is reported once."""
    sender = _Sender()
    messages = [_message(i, "email") for i in range(6)] + [_message(10 + i, "log") for i in range(3)]
    done: list[tuple[str, BaseException | None, float]] = []
    started = time.monotonic()
    timer = threading.Timer(0.5, sender.release.set)
    timer.start()
    unsent = send_batch(
        sender,
        messages,
        SweepSettings(per_channel=2),
        lambda m, f: done.append((m.idempotency_key, f, time.monotonic())),
    )
    assert unsent == []
    assert sorted(k for k, f, _ in done if f is None) == sorted(m.idempotency_key for m in messages)
    logs = [at - started for k, _, at in done if k in ("k10", "k11", "k12")]
    assert max(logs) < 0.4  # not behind the emails
    assert sender.most == 2  # emails at once


def test_a_send_that_outlives_its_deadline_is_given_up_and_its_late_outcome_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A channel that ignores its deadline: the batch reports it failed after the grace and moves on."""
    monkeypatch.setattr(outbox, "DEADLINE_GRACE", timedelta(seconds=0.2))
    sender = _Sender()
    done: list[tuple[str, BaseException | None]] = []
    threads_before = set(threading.enumerate())
    started = time.monotonic()
    send_batch(
        sender,
        [_message(1, "email"), _message(2, "log")],
        SweepSettings(deadline=timedelta(seconds=0.3)),
        lambda m, f: done.append((m.idempotency_key, f)),
    )
    assert time.monotonic() - started < 2
    assert [k for k, f in done if f is None] == ["k2"]
    [(key, failure)] = [(k, f) for k, f in done if f is not None]
    assert key == "k1" and "no answer within 0.3 s" in str(failure)
    sender.release.set()
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(timeout=10)  # the stuck send ends: its success is late now
    assert [key for key, _at in sender.sent] == ["k2", "k1"]  # the email did go out, after the log
    assert len(done) == 2  # the email's late success is not reported


def test_messages_that_cannot_start_within_their_lease_are_returned_unsent() -> None:
    """Past the latest start, nothing is sent: the caller hands them back."""
    sender = _Sender()
    messages = [_message(1, "log"), _message(2, "webhook")]
    unsent = send_batch(sender, messages, SweepSettings(), lambda *_: None, latest_start=time.monotonic() - 1)
    assert sorted(m.delivery_id for m in unsent) == [1, 2] and sender.sent == []
