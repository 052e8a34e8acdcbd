"""The worker as a real process: killed mid-sweep and restarted, stopped cleanly, run twice at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from consultflow.domain.clock import FixedClock
from consultflow.domain.vocabulary import Field
from consultflow.services import opinions, people, rounds
from consultflow.services.context import ServiceContext
from consultflow.store.models import Delivery, Reminder
from tests.conftest import ROOT, make_context, sql_uow
from tests.helpers import COORD, EXPERT, seed, submit
from tests.servers import smtp_server, webhook_server

pytestmark = pytest.mark.slow


def prepare(url: str, opinions_count: int = 4) -> ServiceContext:
    """Opinions that entered review and got feedback ten days ago: planner, escalation and participant reminders are all due now."""
    now = datetime.now(timezone.utc)
    ctx = make_context(url, FixedClock(now - timedelta(days=10), tick=timedelta(seconds=1)))
    setup = seed(ctx, open_first_round=False)
    people.add_actor(ctx, acting=COORD, name="刘规划", roles=["planner"], contact="liu@plan.example")
    people.add_actor(ctx, acting=COORD, name="陈协调", roles=["coordinator"], contact="chen@county.example", lang="en")
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=now + timedelta(days=1))
    for i in range(opinions_count):
        oid = submit(ctx, setup, f"意见{i}")
        opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
        opinions.assign(ctx, acting=COORD, opinion_ids=[oid], planner="刘规划")
        if i % 2:
            opinions.fire(ctx, acting="刘规划", opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "请确认"})
    return ctx


def start_worker(url: str, smtp_port: int, webhook_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CONSULTFLOW_DB": url}
    args = [
        sys.executable, "-m", "consultflow", "--log-json", "worker", "--interval", "0.3", "--digest-cron", "off",
        "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_port), "--webhook-url", webhook_url, "--webhook-allow-private",
        "--lease-seconds", "2", "--retry-seconds", "0.5",
    ]  # fmt: skip
    with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sink)


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail("timed out waiting for the worker")


def delivery_counts(ctx: ServiceContext) -> Counter[str]:
    with sql_uow(ctx) as uow:
        return Counter(dict(uow.session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()))


def test_worker_killed_mid_sweep_loses_nothing_and_records_nothing_twice(sqlite_url: str, tmp_path: Path) -> None:
    """SIGKILL while a slow webhook holds a delivery; the restarted worker finishes every delivery, each recorded once."""
    ctx = prepare(sqlite_url)
    log = tmp_path / "worker.log"
    with smtp_server() as inbox, webhook_server(delay=0.8) as hook:
        worker = start_worker(sqlite_url, inbox.port, hook.url, log)
        try:
            wait_for(lambda: delivery_counts(ctx)["sending"] > 0 or hook.received)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
        interrupted = delivery_counts(ctx)
        assert interrupted["pending"] + interrupted["sending"] > 0, "the kill came too late to test anything"
        worker = start_worker(sqlite_url, inbox.port, hook.url, log)
        try:
            wait_for(lambda: set(delivery_counts(ctx)) == {"sent"})
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=20) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
        with sql_uow(ctx) as uow:
            deliveries = list(uow.session.scalars(select(Delivery)))
            reminders = list(uow.session.scalars(select(Reminder).where(Reminder.status == "dispatched")))
        keys = [d.idempotency_key for d in deliveries]
        assert len(keys) == len(set(keys))
        by_channel = Counter(d.channel for d in deliveries)
        # Two opinions under review: two planner emails each, and an escalation to each coordinator
        # (one by email, one without a contact by log). Two with feedback: the participant by
        # webhook and the expert who speaks for them by log.
        assert by_channel == {"email": 6, "webhook": 2, "log": 4}
        email_keys = [m["X-Idempotency-Key"] for m in inbox.messages]
        assert set(email_keys) == {d.idempotency_key for d in deliveries if d.channel == "email"}
        assert set(hook.keys()) == {d.idempotency_key for d in deliveries if d.channel == "webhook"}
        repeats = [k for k, n in Counter(email_keys + hook.keys()).items() if n > 1]
        # Only what was in flight when the worker died (up to --channel-concurrency a channel) may go
        # again, under the same key, which the receiver uses to drop the repeat.
        assert len(repeats) <= interrupted["sending"]
        escalations = [m for m in inbox.messages if "Escalation" in str(m["Subject"])]
        assert escalations  # the English-speaking coordinator got the escalation
        assert len(reminders) == len({(r.opinion_id, r.rule, r.offset_minutes) for r in reminders})
    text = log.read_text(encoding="utf-8")
    assert '"event": "worker_stopped"' in text
    assert "liu@plan.example" not in text  # contacts are masked in logs


def test_two_run_once_sweeps_at_the_same_time_send_each_message_once(sqlite_url: str) -> None:
    """Two sweeps on one SQLite file overlap and still deliver every message exactly once."""
    ctx = prepare(sqlite_url, opinions_count=6)
    with webhook_server(delay=0.2) as hook:
        env = {**os.environ, "CONSULTFLOW_DB": sqlite_url}
        args = [
            sys.executable,
            "-m",
            "consultflow",
            "-q",
            "reminders",
            "run-once",
            "--channels",
            "log,webhook",
            "--webhook-allow-private",
            "--webhook-url",
            hook.url,
        ]
        procs = [
            subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
        counts = Counter(hook.keys())
    assert counts
    assert max(counts.values()) == 1
    assert set(delivery_counts(ctx)) == {"sent"}
