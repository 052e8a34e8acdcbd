"""`consultflow reminders` and `consultflow worker`: chasing what is owed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from consultflow import extras
from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, local_time, table
from consultflow.config import env_default, environment, load_zone
from consultflow.domain.clock import FixedClock
from consultflow.domain.document import Reread
from consultflow.domain.errors import ConfigurationError
from consultflow.export.text import table_lines
from consultflow.scheduler.channels import SmtpSettings, build_router
from consultflow.services import digest, outbox, reminders, sweep
from consultflow.services.commands.reminders import (
    CancelReminders,
    FailedDeliveries,
    ListReminders,
    OfReminder,
    ReminderDetail,
    RequeueDeliveries,
)
from consultflow.services.context import ServiceContext
from consultflow.services.inputs import parse_time

F = TypeVar("F", bound=Callable[..., Any])

DELIVERY_OPTIONS = [
    click.option(
        "--channels",
        default=env_default("CONSULTFLOW_CHANNELS"),
        help="Comma-separated: log, email, webhook [default: log plus every configured one].",
    ),
    click.option("--smtp-host", default=env_default("CONSULTFLOW_SMTP_HOST"), help="SMTP server for email."),
    click.option("--smtp-port", type=int, default=env_default("CONSULTFLOW_SMTP_PORT", 25), show_default="25"),
    click.option(
        "--smtp-security",
        type=click.Choice(["none", "starttls", "ssl"]),
        default=env_default("CONSULTFLOW_SMTP_SECURITY", "none"),
        show_default="none",
    ),
    click.option("--smtp-user", default=env_default("CONSULTFLOW_SMTP_USER")),
    click.option(
        "--smtp-password-file",
        default=env_default("CONSULTFLOW_SMTP_PASSWORD_FILE"),
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="File holding the SMTP password (or set CONSULTFLOW_SMTP_PASSWORD; never a command-line flag).",
    ),
    click.option(
        "--smtp-allow-plain-auth",
        is_flag=True,
        default=env_default("CONSULTFLOW_SMTP_ALLOW_PLAIN_AUTH", False),
        help="Allow logging in to SMTP without TLS (the password then crosses the network readable).",
    ),
    click.option(
        "--smtp-from",
        default=env_default("CONSULTFLOW_SMTP_FROM", "consultflow@localhost"),
        show_default="consultflow@localhost",
    ),
    click.option(
        "--webhook-url",
        default=env_default("CONSULTFLOW_WEBHOOK_URL"),
        help="URL that receives a JSON POST per message (SMS and messaging gateways).",
    ),
    click.option(
        "--webhook-timeout",
        type=click.FloatRange(min=0.1, max=300),
        default=env_default("CONSULTFLOW_WEBHOOK_TIMEOUT", 10.0),
        show_default="10.0",
        help="Seconds one webhook request may take in all.",
    ),
    click.option(
        "--webhook-allow-private",
        is_flag=True,
        default=env_default("CONSULTFLOW_WEBHOOK_ALLOW_PRIVATE", False),
        help="Allow a webhook on a loopback, private or link-local address (a gateway on the county's own network).",
    ),
    click.option(
        "--send-deadline",
        type=click.FloatRange(min=0.5, max=600),
        default=env_default("CONSULTFLOW_SEND_DEADLINE", 30.0),
        show_default="30.0",
        help="Seconds one delivery may take in all, on any channel; its connection is cut then.",
    ),
    click.option(
        "--channel-concurrency",
        type=click.IntRange(min=1, max=32),
        default=env_default("CONSULTFLOW_CHANNEL_CONCURRENCY", 4),
        show_default="4",
        help="Deliveries sent at once on each channel.",
    ),
    click.option(
        "--max-attempts",
        type=click.IntRange(min=1, max=100),
        default=env_default("CONSULTFLOW_MAX_ATTEMPTS", 5),
        show_default="5",
        help="Tries before a delivery is dead-lettered.",
    ),
    click.option(
        "--retry-seconds",
        type=click.FloatRange(min=0, max=86_400),
        default=60.0,
        show_default=True,
        help="First retry delay; doubles each time, at most an hour.",
    ),
    click.option(
        "--lease-seconds",
        type=click.FloatRange(min=1, max=86_400),
        default=300.0,
        show_default=True,
        help="How long a claimed delivery stays with one worker.",
    ),
]


def _smtp_password(path: Path | None) -> str | None:
    """The SMTP password from its file, else from CONSULTFLOW_SMTP_PASSWORD; never from a flag."""
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            msg = f"cannot read the SMTP password file {path}: {exc}"
            raise ConfigurationError(msg) from None
    return environment().text("CONSULTFLOW_SMTP_PASSWORD") or None


def delivery_options(func: F) -> F:
    """The channel and retry options shared by `worker` and `reminders run-once`."""
    for option in reversed(DELIVERY_OPTIONS):
        func = option(func)
    return func


def _delivery(options: dict[str, Any]) -> tuple[outbox.Sender, outbox.SweepSettings]:
    smtp = None
    if options["smtp_host"]:
        smtp = SmtpSettings(
            host=options["smtp_host"],
            port=options["smtp_port"],
            sender=options["smtp_from"],
            username=options["smtp_user"],
            password=_smtp_password(options["smtp_password_file"]),
            security=options["smtp_security"],
            allow_plain_auth=options["smtp_allow_plain_auth"],
        )
    router = build_router(
        channels=options["channels"],
        smtp=smtp,
        webhook_url=options["webhook_url"],
        webhook_timeout=options["webhook_timeout"],
        webhook_allow_private=options["webhook_allow_private"],
        deadline=options["send_deadline"],
    )
    retry = timedelta(seconds=options["retry_seconds"])
    settings = outbox.SweepSettings(
        channels=router.enabled,
        max_attempts=options["max_attempts"],
        backoff_base=retry,
        backoff_max=max(retry, timedelta(hours=1)),
        lease=timedelta(seconds=options["lease_seconds"]),
        deadline=timedelta(seconds=options["send_deadline"]),
        per_channel=options["channel_concurrency"],
    )
    return router, settings


# run-once's exit code when a sweep dead-lettered deliveries: cron and timers notice.
DEAD_LETTERS_EXIT_CODE = 3


@click.group("reminders")
def reminders_group() -> None:
    """Reminders owed to planners, participants and coordinators, and their deliveries."""


@reminders_group.command("run-once")
@click.option("--now", "now_text", help="Sweep as if it were this time (local, ISO 8601); for tests and catch-up.")
@click.option("--digest", "with_digest", is_flag=True, help="Also queue today's digests.")
@delivery_options
@pass_state
def run_once(state: CliState, /, now_text: str | None, with_digest: bool, **options: Any) -> None:
    """Do one sweep and exit (for cron, systemd timers and tests)."""
    ctx = state.services()
    sender, settings = _delivery(options)
    now = parse_time(now_text, state.settings.tz) if now_text else None
    if with_digest:
        digest.queue_digests(ctx if now is None else _at(ctx, now), settings)
    # Run as the worker's login, which may only deliver, it leaves due rounds to the server.
    from consultflow.bootstrap import role_admin  # noqa: PLC0415 - the store loads only for this command

    report = sweep.sweep(ctx, sender, settings, now=now, close_rounds=role_admin(ctx).may_close_rounds())
    state.emit(
        report,
        lambda: (
            f"found {report.found} due reminder(s): dispatched {report.dispatched}, cancelled {report.cancelled}, "
            f"skipped {report.skipped}; deliveries sent {report.sent}, failed {report.failed}, dead {report.dead}; "
            f"rounds closed {report.rounds_closed}"
        ),
    )
    if report.dead:
        click.echo(
            f"Error: {report.dead} delivery(ies) were dead-lettered; see 'consultflow reminders list --failed'",
            err=True,
        )
        click.get_current_context().exit(DEAD_LETTERS_EXIT_CODE)


def _at(ctx: ServiceContext, now: datetime) -> ServiceContext:
    return replace(ctx, clock=FixedClock(now))


NAMES_OPTION = click.option(
    "--names",
    type=click.Choice(["pseudonym", "full"]),
    default="pseudonym",
    show_default=True,
    help="Villagers' full names and the messages' bodies: coordinators, with --purpose; the read is kept on record.",
)
PURPOSE_OPTION = click.option("--purpose", help="Why full names are read (required with --names full).")


@reminders_group.command("list")
@click.option("--consultation", "consultation_id", type=ID, help="Only this consultation.")
@click.option("--status", type=click.Choice(list(reminders.STATUSES)), help="Only reminders with this status.")
@click.option("--failed", is_flag=True, help="List deliveries that failed (retrying or dead-lettered) instead.")
@click.option("--limit", type=click.IntRange(min=1))
@NAMES_OPTION
@PURPOSE_OPTION
@as_option
@json_flag
@pass_state
def reminders_list(
    state: CliState,
    consultation_id: int | None,
    status: str | None,
    failed: bool,
    limit: int | None,
    names: str,
    purpose: str | None,
) -> None:
    """Reminders, soonest first (or the failed deliveries with --failed, villagers pseudonymised)."""
    tz = state.settings.tz
    if names == "full" and not failed:
        raise click.UsageError("--names full goes with --failed: reminders name roles, not people")
    if failed:
        given = FailedDeliveries(limit, full_names=names == "full", purpose=purpose)
        deliveries = list(state.call("reminders.failed", given).deliveries)
        state.emit(
            deliveries,
            lambda: table(
                ["delivery", "reminder", "to", "channel", "status", "tries", "next try", "last error"],
                [
                    (
                        d.id,
                        d.reminder_id,
                        d.recipient,
                        d.channel,
                        d.status,
                        d.attempts,
                        local_time(d.next_attempt_at, tz) if d.status != "dead" else "-",
                        outbox.escape_unprintable(d.last_error or ""),
                    )
                    for d in deliveries
                ],
            ),
        )
        return
    headers = ["id", "opinion", "rule", "to", "due", "send at", "status", "note"]

    def show(views: Iterable[reminders.ReminderView]) -> None:  # written out as the reminders are read
        rows = Reread(
            lambda: (
                (
                    r.id,
                    r.opinion_id,
                    r.rule + (" !" if r.escalation else ""),
                    r.recipient_role,
                    local_time(r.due_at, tz),
                    local_time(r.send_at, tz),
                    r.status,
                    r.cancel_reason,
                )
                for r in views
            )
        )
        state.emit_lines(iter(views), lambda: table_lines(headers, rows))

    state.stream("reminders.list", ListReminders(consultation_id, status, limit), show)


@reminders_group.command("show")
@click.argument("reminder_id", type=ID)
@NAMES_OPTION
@PURPOSE_OPTION
@as_option
@json_flag
@pass_state
def reminders_show(state: CliState, reminder_id: int, names: str, purpose: str | None) -> None:
    """One reminder, its deliveries and every attempt (villagers pseudonymised, no bodies, unless --names full)."""
    given = OfReminder(reminder_id, full_names=names == "full", purpose=purpose)
    detail: ReminderDetail = state.call("reminders.show", given)
    view, deliveries = detail.reminder, list(detail.deliveries)
    tz = state.settings.tz

    def text() -> str:
        out = [
            f"reminder {view.id}: {view.rule} for opinion {view.opinion_id} (round {view.round_no}, state {view.state})",
            f"to: {view.recipient_role}{'  [escalation]' if view.escalation else ''}   due: {local_time(view.due_at, tz)}   send at: {local_time(view.send_at, tz)}",
            f"status: {view.status}" + (f" ({view.cancel_reason})" if view.cancel_reason else ""),
        ]
        for d in deliveries:
            out += [
                "",
                f"delivery {d.id} to {d.recipient} via {d.channel}: {d.status} after {d.attempts} attempt(s)  key {d.idempotency_key}",
                f"  {d.subject}",
            ]
            if d.body is not None:  # only with --names full, on record
                out += [f"  | {line}" for line in d.body.rstrip("\n").split("\n")]
            out += [
                f"  attempt {a.attempt} at {local_time(a.at, tz)}: {'ok' if a.ok else outbox.escape_unprintable(a.error or '')}"
                for a in d.history
            ]
        return "\n".join(out)

    state.emit({"reminder": view, "deliveries": deliveries}, text)


@reminders_group.command("cancel")
@click.argument("reminder_ids", nargs=-1, required=True, type=ID)
@click.option("--reason", help="Why (kept with the reminder).")
@as_option
@pass_state
def reminders_cancel(state: CliState, reminder_ids: tuple[int, ...], reason: str | None) -> None:
    """Cancel pending reminders."""
    views = list(state.call("reminders.cancel", CancelReminders(list(reminder_ids), reason)).reminders)
    state.emit(views, lambda: f"{len(views)} reminder(s) cancelled")


@reminders_group.command("requeue")
@click.argument("delivery_ids", nargs=-1, type=ID)
@click.option("--all-dead", is_flag=True, help="Every dead-lettered delivery.")
@as_option
@pass_state
def reminders_requeue(state: CliState, delivery_ids: tuple[int, ...], all_dead: bool) -> None:
    """Give dead-lettered deliveries (DELIVERY_IDS, or --all-dead) one more try at the next sweep."""
    if bool(delivery_ids) == all_dead:
        raise click.UsageError("give delivery ids (see 'reminders list --failed') or --all-dead, not both")
    given = RequeueDeliveries(None if all_dead else list(delivery_ids))
    ids = state.call("reminders.requeue", given).requeued
    state.emit({"requeued": ids}, lambda: f"{len(ids)} delivery(ies) requeued")


@click.command("worker")
@click.option(
    "--interval",
    "interval_seconds",
    type=click.FloatRange(min=0.1, max=86_400),
    default=env_default("CONSULTFLOW_SWEEP_SECONDS", 60.0),
    show_default="60.0",
    help="Seconds between sweeps.",
)
@click.option(
    "--digest-cron",
    default=env_default("CONSULTFLOW_DIGEST_CRON", "0 8 * * *"),
    show_default="0 8 * * *",
    help="When to send the daily digest (crontab, in --digest-tz); 'off' for none.",
)
@click.option(
    "--digest-tz", default=env_default("CONSULTFLOW_DIGEST_TZ"), help="Time zone of --digest-cron [default: --tz]."
)
@delivery_options
@pass_state
def worker_command(
    state: CliState, /, interval_seconds: float, digest_cron: str, digest_tz: str | None, **options: Any
) -> None:
    """Run the reminder worker until SIGTERM or SIGINT.

    It needs the worker extra (APScheduler); `reminders run-once`, from cron or a timer, needs none.
    """
    extras.require(extras.WORKER)  # before anything is read: one line naming the extra
    from consultflow.scheduler.worker import digest_trigger, run_worker  # noqa: PLC0415 - APScheduler is the extra

    tz = load_zone(digest_tz) if digest_tz else state.settings.tz
    trigger = None if digest_cron.strip().lower() == "off" else digest_trigger(digest_cron, tz)
    ctx = state.services()
    sender, settings = _delivery(options)
    run_worker(ctx, sender, settings, interval_seconds=interval_seconds, digest=trigger)


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(reminders_group)
    main.add_command(worker_command)
