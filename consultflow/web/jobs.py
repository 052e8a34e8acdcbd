"""The server's own schedule: signing grown chain heads and closing rounds past their time.

These change the record, so the server (the only writer, and the only holder of the keys) runs
them, not the reminder worker. Each server process runs them; they are safe to run twice at once
(a head already signed by this key is not signed again; a round closed by one process is refused
to the other), and APScheduler only keeps time: the work is whatever the database says is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from consultflow.logconfig import get_logger, record_internal_error
from consultflow.services import heads, sweep
from consultflow.services.context import ServiceContext
from consultflow.services.outbox import SweepReport

log = get_logger(__name__)


def _sign(ctx: ServiceContext) -> None:
    try:
        heads.sign_heads(ctx)
    except Exception as exc:  # noqa: BLE001 - a failed run must not stop the schedule; the next one tries again
        log.error("head_signing_failed", error=str(exc), traceback_in=str(record_internal_error(exc)))  # noqa: TRY400


def _close(ctx: ServiceContext) -> None:
    try:
        report = SweepReport()
        closed = sweep.auto_close_rounds(ctx, report)
        if closed or report.errors:
            log.info("rounds_auto_closed", closed=closed, errors=len(report.errors))
    except Exception as exc:  # noqa: BLE001 - as above
        log.error("auto_close_failed", error=str(exc), traceback_in=str(record_internal_error(exc)))  # noqa: TRY400


def start(ctx: ServiceContext, *, heads_seconds: float, close_seconds: float) -> BackgroundScheduler:
    """Start the schedule in a background thread; `shutdown()` it when the server stops."""
    scheduler = BackgroundScheduler(
        timezone=timezone.utc,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    now = datetime.now(timezone.utc)
    if ctx.heads is not None:
        scheduler.add_job(
            _sign, IntervalTrigger(seconds=heads_seconds, timezone=timezone.utc), args=[ctx], id="sign",
            next_run_time=now + timedelta(seconds=1),
        )  # fmt: skip
    scheduler.add_job(
        _close, IntervalTrigger(seconds=close_seconds, timezone=timezone.utc), args=[ctx], id="close",
        next_run_time=now + timedelta(seconds=1),
    )  # fmt: skip
    scheduler.start()
    log.info("server_jobs_started", signing=ctx.heads is not None, heads_seconds=heads_seconds)
    return scheduler
