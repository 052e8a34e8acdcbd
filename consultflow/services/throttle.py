"""Rate limits every server process shares: counts kept in the database, one atomic statement each.

The counts live in the sign-in throttle's table (`signin_throttle`), under key prefixes of their
own, so no migration was needed: `receipt-client:` (receipt lookups by one client, right or
wrong), `receipt-code:` (lookups and answers with one receipt code, known by its hash) and
`submit-client:` (online submissions by one client). Sign-in keys (`account:`, `client:`) never
begin with these. Each count is one INSERT … ON CONFLICT DO UPDATE … RETURNING, committed before
the guarded work runs: concurrent requests, in any worker of any server, each get a distinct
number, so at most the limit pass, and a refused request has been counted already.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from consultflow.domain.errors import RetryableConflictError, TooManyAttemptsError
from consultflow.services.context import ServiceContext

MAX_ATTEMPTS = 5

RECEIPT_CLIENT = "receipt-client:"
RECEIPT_CODE = "receipt-code:"
SUBMIT_CLIENT = "submit-client:"


@dataclass(frozen=True)
class Rate:
    """At most `count` events per `seconds`."""

    count: int
    seconds: float


def spend(ctx: ServiceContext, counted: list[tuple[str, Rate]]) -> tuple[int, datetime] | None:
    """Count one event under each (key, rate), in order, in one committed transaction.

    Returns None when every count is within its rate; else (the index of the first key past its
    rate, until when it stays refused). Keys after a refused one are not counted.
    """
    now = ctx.clock.now()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with ctx.writing() as uow:
                refused: tuple[int, datetime] | None = None
                for i, (key, rate) in enumerate(counted):
                    window = timedelta(seconds=rate.seconds)
                    n, locked = uow.throttle.count_failure(
                        key[:255], now, limit=max(rate.count, 1), window=window, lock_for=window
                    )
                    if n > rate.count:
                        refused = (i, locked if locked is not None and locked > now else now + window)
                        break
                uow.commit()
        except RetryableConflictError:
            if attempt == MAX_ATTEMPTS:
                raise
            time.sleep(min(1.0, 0.02 * 2**attempt) * random.uniform(0.5, 1.5))  # noqa: S311 - jitter
            continue
        return refused
    raise AssertionError("unreachable")  # pragma: no cover


def refuse(message: str, until: datetime) -> TooManyAttemptsError:
    """The refusal of an event past its rate (HTTP 429 with Retry-After)."""
    return TooManyAttemptsError(message, until)
