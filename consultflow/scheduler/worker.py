"""`consultflow worker`: an APScheduler 3 process that drives the sweep and the daily digest.

APScheduler only keeps time here. Its jobs live in memory (its job stores are not safe to share
between processes); the work itself is in database rows, so a restart, a second worker or a
missed tick changes nothing: each run of the sweep simply does whatever is due.
"""

from __future__ import annotations

import signal
from datetime import datetime, timezone
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from consultflow.domain.errors import ConfigurationError
from consultflow.logconfig import get_logger, record_internal_error
from consultflow.services import digest, outbox, sweep
from consultflow.services.context import ServiceContext

log = get_logger(__name__)


def digest_trigger(expression: str, tz: ZoneInfo) -> CronTrigger:
    """A cron trigger from a five-field crontab line, or one clear error."""
    try:
        return CronTrigger.from_crontab(expression, timezone=tz)
    except ValueError as exc:
        msg = (
            f"bad cron expression {expression!r} for --digest-cron: {exc} (five fields: minute hour day month weekday)"
        )
        raise ConfigurationError(msg) from None


def _sweep_job(ctx: ServiceContext, sender: outbox.Sender, settings: outbox.SweepSettings) -> None:
    try:
        sweep.sweep(ctx, sender, settings, close_rounds=False)  # the server closes due rounds; the worker delivers
    except Exception as exc:  # noqa: BLE001 - a failed sweep must not stop the worker; the next tick tries again
        log.error(  # noqa: TRY400 - the traceback goes, masked, to the error log
            "sweep_failed", error=exc, traceback_in=str(record_internal_error(exc))
        )


def _digest_job(ctx: ServiceContext, settings: outbox.SweepSettings) -> None:
    try:
        digest.queue_digests(ctx, settings)
    except Exception as exc:  # noqa: BLE001 - as for the sweep
        log.error(  # noqa: TRY400 - as for the sweep
            "digest_failed", error=exc, traceback_in=str(record_internal_error(exc))
        )


def run_worker(
    ctx: ServiceContext,
    sender: outbox.Sender,
    settings: outbox.SweepSettings,
    *,
    interval_seconds: float,
    digest: CronTrigger | None,
) -> None:
    """Run until SIGTERM or SIGINT; the sweep in progress finishes before the process exits."""
    scheduler = BlockingScheduler(
        timezone=timezone.utc,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    scheduler.add_job(
        _sweep_job,
        IntervalTrigger(seconds=interval_seconds, timezone=timezone.utc),
        args=[ctx, sender, settings],
        id="sweep",
        next_run_time=datetime.now(timezone.utc),
    )
    if digest is not None:
        scheduler.add_job(_digest_job, digest, args=[ctx, settings], id="digest")

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("worker_stopping", signal=signal.Signals(signum).name)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "worker_started",
        interval_seconds=interval_seconds,
        digest=str(digest) if digest else None,
        channels=sorted(settings.channels),
    )
    scheduler.start()
    log.info("worker_stopped")
