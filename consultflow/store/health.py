"""The queries behind readiness and `/metrics`: one bounded, read-only query each, errors in words."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from consultflow.store.engine import shown_database, snapshot_engine
from consultflow.store.errors import translate
from consultflow.store.models import AuditEvent, Consultation, Delivery, Reminder, Round, SignedHead

STATEMENT_TIMEOUT_MS = 5000  # PostgreSQL: a scrape never holds a connection longer than this per query


class SqlHealthQueries:
    """Counts and ages read from the database at scrape time (services.health.HealthQueries)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reads = snapshot_engine(engine)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        try:
            with self._reads.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
                yield conn
        except (DBAPIError, PoolTimeoutError) as exc:
            translated = translate(exc, shown_database(self._engine))
            if translated is None:
                raise
            raise translated from exc

    def deliveries_by_status(self) -> dict[str, int]:
        """Deliveries counted by status."""
        with self._connection() as conn:
            rows = conn.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        return {str(status): int(count) for status, count in rows}

    def pending_reminders(self) -> int:
        """Reminders still pending."""
        with self._connection() as conn:
            return int(conn.execute(select(func.count()).where(Reminder.status == "pending")).scalar_one())

    def open_rounds(self) -> int:
        """Rounds open now."""
        with self._connection() as conn:
            return int(conn.execute(select(func.count()).where(Round.status == "open")).scalar_one())

    def last_heads(self, at_most: int) -> dict[int, datetime]:
        """Each consultation's last signed head's time, else its last event's (None: no event yet, left out)."""
        signed = (
            select(func.max(SignedHead.signed_at))
            .where(SignedHead.consultation_id == Consultation.id)
            .scalar_subquery()
        )
        event = select(func.max(AuditEvent.at)).where(AuditEvent.consultation_id == Consultation.id).scalar_subquery()
        last = func.coalesce(signed, event).label("last")
        stmt = select(Consultation.id, last).order_by(Consultation.id).limit(at_most)
        with self._connection() as conn:
            rows = conn.execute(stmt).all()
        return {int(cid): _aware(at) for cid, at in rows if at is not None}

    def pool_checked_out(self) -> int:
        """Connections checked out of this process's pool (0 for a pool that does not count them)."""
        checkedout = getattr(self._engine.pool, "checkedout", None)
        return int(checkedout()) if callable(checkedout) else 0


def _aware(value: object) -> datetime:
    """Aware UTC, whatever the backend returned (SQLite may give naive UTC or text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
