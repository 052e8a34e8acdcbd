"""Real delivery: an SMTP server and a webhook receiver on loopback, and clear errors for bad settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from consultflow.cli.main import main
from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import ConfigurationError
from consultflow.domain.vocabulary import Field
from consultflow.scheduler.channels import SmtpSettings, build_router
from consultflow.services import opinions, outbox, people, reminders, rounds, sweep
from consultflow.services.context import ServiceContext
from tests.conftest import WORKFLOWS
from tests.helpers import COORD, EXPERT, seed, submit
from tests.servers import free_port, smtp_server, webhook_server

DAY = timedelta(days=1)


def overdue_opinion(ctx: ServiceContext) -> None:
    """An opinion under review, assigned to a planner who has an email address."""
    setup = seed(ctx)
    people.add_actor(ctx, acting=COORD, name="刘规划", roles=["planner"], contact="liu@plan.example", lang="zh")
    oid = submit(ctx, setup)
    opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.assign(ctx, acting=COORD, opinion_ids=[oid], planner="刘规划")


def test_reminder_arrives_by_email_with_its_idempotency_key(sqlite_ctx: ServiceContext, clock: FixedClock) -> None:
    """The planner's reminder reaches a real SMTP server, in Chinese, keyed for de-duplication."""
    overdue_opinion(sqlite_ctx)
    with smtp_server() as inbox:
        router = build_router(channels=None, smtp=SmtpSettings(host=inbox.host, port=inbox.port), webhook_url=None)
        settings = outbox.SweepSettings(channels=router.enabled)
        report = sweep.sweep(sqlite_ctx, router, settings, now=clock.now() + 5 * DAY + timedelta(hours=1))
    assert report.sent == 1
    [message] = inbox.messages
    assert message["To"] == "liu@plan.example"
    liu = next(a.id for a in people.list_actors(sqlite_ctx) if a.name == "刘规划")
    assert message["X-Idempotency-Key"] == f"reminder-2-actor-{liu}"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "请对意见给出反馈" in body.decode("utf-8")


def test_reminder_arrives_by_webhook_and_failures_are_retried(sqlite_ctx: ServiceContext, clock: FixedClock) -> None:
    """The participant's reminder is POSTed as JSON; a 503 is retried later and then delivered once."""
    setup = seed(sqlite_ctx, open_first_round=False)
    rounds.open_round(sqlite_ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=clock.now() + 10 * DAY)
    oid = submit(sqlite_ctx, setup)
    opinions.fire(sqlite_ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(sqlite_ctx, acting="王规划", opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "请确认"})
    t = clock.now() + 8 * DAY + timedelta(hours=1)
    with webhook_server(fail_first=1) as hook:
        router = build_router(channels="log,webhook", smtp=None, webhook_url=hook.url, webhook_allow_private=True)
        settings = outbox.SweepSettings(channels=router.enabled)
        first = sweep.sweep(sqlite_ctx, router, settings, now=t)
        assert first.failed == 1
        second = sweep.sweep(sqlite_ctx, router, settings, now=t + timedelta(minutes=2))
        assert second.sent == 1
        assert len(hook.received) == 1
        doc, headers = hook.received[0], hook.headers[0]
    assert doc["recipient"] == {"name": "张秀英", "contact": "13812345678"}
    assert doc["lang"] == "zh"
    assert headers["Idempotency-Key"] == doc["idempotency_key"]
    [shown] = [d for d in reminders.list_deliveries(sqlite_ctx) if d.channel == "webhook"]
    assert (shown.status, shown.attempts) == ("sent", 2)


def test_unknown_channel_is_one_clear_error() -> None:
    """A misspelt channel names the allowed ones."""
    with pytest.raises(ConfigurationError, match="unknown channel.*sms.*allowed: log, email, webhook"):
        build_router(channels="log,sms", smtp=None, webhook_url=None)


def test_unreachable_smtp_host_is_caught_at_start() -> None:
    """A wrong SMTP port is reported when the worker starts, not as silent retries."""
    with pytest.raises(ConfigurationError, match=r"cannot reach SMTP server 127\.0\.0\.1"):
        build_router(channels=None, smtp=SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2), webhook_url=None)


def test_cli_reports_bad_worker_settings_in_one_line(sqlite_url: str) -> None:
    """Bad cron, unknown channel and missing webhook URL: exit 1 with one line, no traceback."""
    runner = CliRunner()
    base = ["--db", sqlite_url, "--workflows", str(WORKFLOWS)]
    assert runner.invoke(main, [*base, "db", "upgrade"]).exit_code == 0
    cases = [
        (["worker", "--digest-cron", "61 * * * *"], "bad cron expression"),
        (["worker", "--channels", "pigeon"], "unknown channel(s) pigeon"),
        (["reminders", "run-once", "--channels", "webhook"], "channel webhook needs --webhook-url"),
    ]
    for args, message in cases:
        result = runner.invoke(main, [*base, *args])
        assert result.exit_code == 1, result.output
        assert message in result.stderr
        assert "Traceback" not in result.output
