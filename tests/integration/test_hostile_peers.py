"""Hostile peers: whatever a webhook or SMTP server sends, it costs one delivery one failed attempt.

Real servers on loopback play the peer. The webhook peer is hostile to one message only (it reads
the request's idempotency key) and answers every other one properly, so the good deliveries of
the same sweep go to the same server and are counted there. For each peer: the victim's attempt
is recorded as failed with a stored error that is masked, escaped and bounded; every other
delivery (good webhook, log, email) is sent once and on time; nothing stays "sending"; the sweep
ends within the deadline plus a margin. On SQLite and PostgreSQL, in-process and as a real
`reminders run-once` process.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select

from consultflow.domain.clock import FixedClock
from consultflow.scheduler.channels import SmtpSettings, build_router
from consultflow.services import outbox, people, sweep
from consultflow.services.context import ServiceContext
from consultflow.store.models import Delivery, DeliveryAttempt
from tests.conftest import ROOT, Cli, make_context, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, seed
from tests.servers import webhook_server

DEADLINE = 1.5  # seconds, per delivery
MARGIN = 3.0  # what a sweep may take beyond one deadline on a loaded 2-core machine (a bound, not a benchmark)
VICTIM, VICTIM_PHONE = "张秀英", "13812345678"  # seed's participant: the webhook peer echoes her back
EMAIL = "liu@plan.example"
GOOD_WEBHOOKS = 3

Play = Callable[[socket.socket], None]


def _forever(conn: socket.socket, first: bytes, piece: bytes, pause: float) -> None:
    conn.sendall(first)
    for _ in range(int(120 / max(pause, 0.01))):  # two minutes at most, if nobody cuts it
        conn.sendall(piece)
        time.sleep(pause)


def _answer(raw: bytes) -> Play:
    return lambda conn: conn.sendall(raw)


def _huge(sent: list[int]) -> Play:
    def play(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 52428800\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(800):  # 50 MB
            conn.sendall(chunk)
            sent[0] += len(chunk)

    return play


CONTROL_BODY = "\x00\x1b]0;pwned\x07 号码13812345678 张秀英 \u202e".encode()
CONTROL_ANSWER = (
    b"HTTP/1.1 500 \x1b[31mBad\x07 Gateway\r\nX-Ctl: \x01\x02\x7f\r\n"
    + f"Content-Length: {len(CONTROL_BODY)}\r\n\r\n".encode()
    + CONTROL_BODY
)


@dataclass
class HostileWebhook:
    """A raw HTTP peer: plays `play` for the victim's key, answers 200 to every other POST."""

    victim: str
    play: Play
    url: str = ""
    good: list[tuple[str, float]] = field(default_factory=list)  # key, when (time.monotonic())
    victim_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def good_keys(self) -> Counter[str]:
        with self.lock:
            return Counter(k for k, _ in self.good)

    def handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError, ValueError):
            conn.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += conn.recv(65536)
            key = json.loads(body)["idempotency_key"]
            if key == self.victim:
                with self.lock:
                    self.victim_requests += 1
                self.play(conn)
                return
            with self.lock:
                self.good.append((key, time.monotonic()))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@contextlib.contextmanager
def serve(handler: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on a free loopback port, one thread per connection; yields the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _smtp(script: Callable[[socket.socket, Callable[[], bytes]], None]) -> Callable[[socket.socket], None]:
    """An SMTP peer: `script(conn, read_line)`."""

    def handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(30)
            reader = conn.makefile("rb")
            script(conn, reader.readline)

    return handle


def _drop_mid_data(conn: socket.socket, line: Callable[[], bytes]) -> None:
    conn.sendall(b"220 mail.county.example ESMTP\r\n")
    while True:
        command = line().upper()
        if not command or command.startswith(b"QUIT"):
            return
        if command.startswith(b"DATA"):
            conn.sendall(b"354 go ahead\r\n")
            line()  # the first line of the message, then the line drops
            conn.shutdown(socket.SHUT_RDWR)
            return
        conn.sendall(b"250 ok\r\n")


def _drip_greeting(conn: socket.socket, _line: Callable[[], bytes]) -> None:
    _forever(conn, b"2", b"2", 0.3)


def _garbage_greeting(conn: socket.socket, _line: Callable[[], bytes]) -> None:
    conn.sendall(b"\x00\xff\x1b[2J\x07 not smtp " + VICTIM.encode() + b"\r\n")
    while conn.recv(4096):  # the line stays up until the client hangs up: it must judge the garbage itself
        pass


def _endless_reply(conn: socket.socket, _line: Callable[[], bytes]) -> None:
    _forever(conn, b"", b"220-hello\r\n", 0)


WEBHOOK_PEERS: dict[str, Callable[[list[int]], Play]] = {
    "nul_in_status_line": lambda _: _answer(b"HTTP/1.1 200\x00 OK\r\nContent-Length: 0\r\n\r\n"),
    "control_bytes": lambda _: _answer(CONTROL_ANSWER),
    "endless_headers": lambda _: lambda conn: _forever(conn, b"HTTP/1.1 200 OK\r\n", b"X-More: yes\r\n", 0),
    "drip": lambda _: lambda conn: _forever(conn, b"HTTP/1.1 200 OK\r\n", b"X", 0.3),
    "redirect": lambda _: _answer(
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /hook\x1b[2J\r\nContent-Length: 0\r\n\r\n"
    ),
    "huge_answer": _huge,
    "garbage": lambda _: _answer(b"\xff\xfe\x00\x1b[2J SSH-2.0-not-http\r\n\r\n"),
    "dropped": lambda _: lambda conn: conn.shutdown(socket.SHUT_RDWR),
}
SMTP_PEERS = {
    "smtp_dropped_mid_data": _drop_mid_data,
    "smtp_drip": _drip_greeting,
    "smtp_garbage": _garbage_greeting,
    "smtp_endless_reply": _endless_reply,
}
SAYS = {  # what the stored error shows of each peer (escaped, masked)
    "nul_in_status_line": "200\\x00 OK",
    "control_bytes": "HTTP 500 \\x1b[31mBad\\x07 Gateway: \\x00\\x1b]0;pwned\\x07 号码*********78 张某某 \\u202e",
    "endless_headers": "got more than 100 headers",
    "drip": f"no complete answer within {DEADLINE:g} s",
    "redirect": "redirect (HTTP 307 to /hook\\x1b[2J); redirects are not followed",
    "huge_answer": "HTTP 500 Internal Server Error: xxxx",
    "garbage": "BadStatusLine",
    "dropped": "RemoteDisconnected",
    "smtp_dropped_mid_data": "SMTPServerDisconnected",
    "smtp_drip": f"no complete answer within {DEADLINE:g} s",
    "smtp_garbage": "\\x07 not smtp",  # smtplib quotes the greeting as bytes: b'[2J\x07 not smtp...'
    "smtp_endless_reply": "Reply too long",
}


def queue_deliveries(ctx: ServiceContext, *, email: bool) -> dict[str, str]:
    """The victim's message, good webhooks, log messages (and an email): idempotency key -> channel."""
    seed(ctx)
    recipients = [outbox.Recipient("participant", 1, VICTIM, VICTIM_PHONE, "zh")]
    for i in range(GOOD_WEBHOOKS):
        p = people.add_participant(ctx, acting=EXPERT, name=f"村民{i}", village="青龙村", contact=f"1390000100{i}")
        recipients.append(outbox.Recipient("participant", p.id, f"村民{i}", p.contact, "zh"))
    actors = {a.name: a for a in people.list_actors(ctx)}
    recipients += [outbox.Recipient("actor", actors[n].id, n, None, "zh") for n in (COORD, PLANNER)]  # no contact: log
    if email:
        liu = people.add_actor(ctx, acting=COORD, name="刘规划", roles=["planner"], contact=EMAIL)
        recipients.append(outbox.Recipient("actor", liu.id, "刘规划", EMAIL, "zh"))
    settings = outbox.SweepSettings(channels=frozenset({"log", "email", "webhook"}))
    now = ctx.clock.now()
    rows = [
        outbox.delivery_row(
            key=f"msg-{i}-{r.kind}-{r.id}",
            kind="reminder",
            reminder_id=None,
            recipient=r,
            subject="【提醒】意见 #1 截止",
            body="请处理",
            settings=settings,
            now=now,
        )
        for i, r in enumerate(recipients)
    ]
    with ctx.uow() as uow:
        uow.outbox.queue(rows)
        uow.commit()
    return {str(row["idempotency_key"]): str(row["channel"]) for row in rows}


def settings_for(channels: frozenset[str]) -> outbox.SweepSettings:
    return outbox.SweepSettings(channels=channels, deadline=timedelta(seconds=DEADLINE), max_attempts=3)


def check_stored(ctx: ServiceContext, victim: str, says: str) -> None:
    """The victim failed once, its error stored escaped, masked and bounded; every other delivery sent."""
    with sql_uow(ctx) as uow:
        deliveries = {d.idempotency_key: d for d in uow.session.scalars(select(Delivery))}
        attempts = list(uow.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.ok.is_(False))))
    bad = deliveries.pop(victim)
    assert (bad.status, bad.attempts) == ("pending", 1), bad.last_error
    assert {d.status for d in deliveries.values()} == {"sent"}
    [attempt] = attempts
    for error in (bad.last_error or "", attempt.error or ""):
        assert says in error, error
        assert error.isprintable() and len(error) <= outbox.MAX_ERROR_CHARS
        assert VICTIM_PHONE not in error and VICTIM not in error and EMAIL not in error


def check_shown(cli: Cli, says: str) -> None:
    """`reminders list --failed` prints the error escaped: no control character reaches the terminal."""
    shown = cli.ok("reminders", "list", "--failed", actor=COORD).output
    assert says[:20] in shown
    assert all(ch.isprintable() or ch == "\n" for ch in shown)


@pytest.mark.parametrize("peer", sorted(WEBHOOK_PEERS))
def test_a_hostile_webhook_costs_one_delivery_one_attempt(peer: str, ctx: ServiceContext, cli: Cli) -> None:
    """The victim's delivery fails alone; the good webhooks and the log go out once, on time; a retry resends none."""
    keys = queue_deliveries(ctx, email=False)
    victim = next(k for k, ch in keys.items() if ch == "webhook")
    sent_bytes = [0]
    hostile = HostileWebhook(victim, WEBHOOK_PEERS[peer](sent_bytes))
    with serve(hostile.handle) as port:
        router = build_router(
            channels="log,webhook",
            smtp=None,
            webhook_url=f"http://127.0.0.1:{port}/hook",
            webhook_allow_private=True,
            deadline=DEADLINE,
        )
        settings = settings_for(router.enabled)
        started = time.monotonic()
        report = sweep.sweep(ctx, router, settings)
        took = time.monotonic() - started
        assert (report.sent, report.failed, report.dead) == (len(keys) - 1, 1, 0)
        assert took < DEADLINE + MARGIN, f"the sweep took {took:.1f} s"
        good = {k for k, ch in keys.items() if ch == "webhook" and k != victim}
        assert hostile.good_keys() == Counter(good)  # each once; the redirect was not followed
        assert all(at - started < DEADLINE for _, at in hostile.good), "a good webhook waited behind the victim"
        retry = sweep.sweep(ctx, router, settings, now=ctx.clock.now() + timedelta(minutes=2))
        assert (retry.sent, retry.failed, retry.dead) == (0, 1, 0)
        assert hostile.good_keys() == Counter(good) and hostile.victim_requests == 2
    check_stored_after_retry(ctx, victim, SAYS[peer])
    check_shown(cli, SAYS[peer])
    if peer == "huge_answer":
        assert sent_bytes[0] < 20 * 1024 * 1024, f"{sent_bytes[0]} bytes of a 50 MB answer were taken"


def check_stored_after_retry(ctx: ServiceContext, victim: str, says: str) -> None:
    """As `check_stored`, after the victim's second failed attempt."""
    with sql_uow(ctx) as uow:
        bad = uow.session.scalars(select(Delivery).where(Delivery.idempotency_key == victim)).one()
        errors = list(uow.session.scalars(select(DeliveryAttempt.error).where(DeliveryAttempt.ok.is_(False))))
        statuses = Counter(uow.session.scalars(select(Delivery.status)))
    assert (bad.status, bad.attempts) == ("pending", 2)
    assert statuses == {"sent": statuses["sent"], "pending": 1}
    assert len(errors) == 2
    for error in [bad.last_error or "", *(e or "" for e in errors)]:
        assert says in error, error
        assert error.isprintable() and len(error) <= outbox.MAX_ERROR_CHARS
        assert VICTIM_PHONE not in error and VICTIM not in error


@pytest.mark.parametrize("peer", sorted(SMTP_PEERS))
def test_a_hostile_smtp_server_holds_up_email_only(peer: str, ctx: ServiceContext, cli: Cli) -> None:
    """The email fails alone within the deadline; webhooks and the log go out once, without waiting for it."""
    keys = queue_deliveries(ctx, email=True)
    victim = next(k for k, ch in keys.items() if ch == "email")
    with serve(_smtp(SMTP_PEERS[peer])) as port, webhook_server() as hook:
        router = build_router(
            channels="log,email,webhook",
            smtp=SmtpSettings(host="127.0.0.1", port=port, timeout=10),
            webhook_url=hook.url,
            webhook_allow_private=True,
            check_smtp=False,
            deadline=DEADLINE,
        )
        started = time.monotonic()
        report = sweep.sweep(ctx, router, settings_for(router.enabled))
        took = time.monotonic() - started
        assert (report.sent, report.failed, report.dead) == (len(keys) - 1, 1, 0)
        assert took < DEADLINE + MARGIN, f"the sweep took {took:.1f} s"
        assert Counter(hook.keys()) == Counter(k for k, ch in keys.items() if ch == "webhook")
    check_stored(ctx, victim, SAYS[peer])
    check_shown(cli, SAYS[peer])


@pytest.mark.slow
@pytest.mark.parametrize("peer", ["nul_in_status_line", "drip"])
def test_a_real_run_once_process_survives_a_hostile_webhook(peer: str, db_url: str, clock: FixedClock) -> None:
    """`consultflow reminders run-once` as its own process: exit 0, no traceback, one failed attempt, the rest sent."""
    cli = Cli(db_url, clock)
    ctx = make_context(db_url, clock)  # migrated: on SQLite a copy of the file `db upgrade` makes
    try:
        keys = queue_deliveries(ctx, email=False)
        victim = next(k for k, ch in keys.items() if ch == "webhook")
        hostile = HostileWebhook(victim, WEBHOOK_PEERS[peer]([0]))
        with serve(hostile.handle) as port:
            args = [
                sys.executable, "-m", "consultflow", "reminders", "run-once", "--channels", "log,webhook",
                "--webhook-url", f"http://127.0.0.1:{port}/hook", "--webhook-allow-private",
                "--send-deadline", str(DEADLINE),
            ]  # fmt: skip
            env = {**os.environ, "CONSULTFLOW_DB": db_url}
            started = time.monotonic()
            done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)
            took = time.monotonic() - started
        stderr = done.stderr.decode("utf-8", errors="replace")
        assert done.returncode == 0, stderr
        assert "Traceback" not in stderr and "internal error" not in stderr.lower()
        assert f"sent {len(keys) - 1}, failed 1, dead 0" in done.stdout.decode()
        assert took < 30, f"run-once took {took:.1f} s"  # the drip alone would last two minutes
        assert hostile.good_keys() == Counter(k for k, ch in keys.items() if ch == "webhook" and k != victim)
        check_stored(ctx, victim, SAYS[peer])
        check_shown(cli, SAYS[peer])
    finally:
        ctx.database.dispose()
