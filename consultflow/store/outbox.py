"""The outbox's storage: queueing messages, claiming due ones under a lease, recording attempts.

Claims take rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers never claim the
same delivery; on SQLite, BEGIN IMMEDIATE serialises the claims instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from consultflow.domain.model import DeliveryRow
from consultflow.store.batches import chunked
from consultflow.store.bulk import insert_ignoring_duplicates
from consultflow.store.models import Actor, Delivery, DeliveryAttempt, Participant

PUBLICATION = "publication"


class Outbox:
    """Deliveries and their attempts."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def queue(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Add messages; one whose idempotency key exists already is left as it is."""
        for batch in chunked(rows):
            insert_ignoring_duplicates(self.session, Delivery, batch)

    def dead_letter_abandoned(self, now: datetime, max_attempts: int) -> int:
        """Dead-letter deliveries whose lease ran out `max_attempts` times: a worker died sending each.

        Without this, a message that kills the worker would be claimed again forever.
        """
        result = self.session.execute(
            update(Delivery)
            .where(Delivery.status == "sending", Delivery.locked_until < now, Delivery.attempts >= max_attempts)
            .values(
                status="dead",
                locked_until=None,
                last_error="the worker stopped while sending it, every time it was tried",
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def requeue_dead(self, delivery_ids: Sequence[int] | None, now: datetime) -> list[int]:
        """Give dead letters (these, or all) one more try now; returns the ids requeued."""
        stmt = select(Delivery.id).where(Delivery.status == "dead").order_by(Delivery.id)
        ids: list[int] = []
        if delivery_ids is None:
            ids = list(self.session.scalars(stmt.with_for_update()))
        else:
            for batch in chunked(sorted(set(delivery_ids))):
                ids += self.session.scalars(stmt.where(Delivery.id.in_(batch)).with_for_update())
        for batch in chunked(ids):
            self.session.execute(
                update(Delivery)
                .where(Delivery.id.in_(batch))
                .values(status="pending", next_attempt_at=now, locked_until=None)
                .execution_options(synchronize_session=False)
            )
        return ids

    def claim(self, now: datetime, batch: int, lease: timedelta) -> list[Delivery]:
        """Lease up to `batch` due deliveries to this worker: status 'sending' until the lease ends.

        The rows returned carry what the message says; their status and attempt count are as
        they were before the claim (the UPDATE bypasses the session).
        """
        due = or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
            and_(Delivery.status == "sending", Delivery.locked_until < now),
        )
        stmt = (
            select(Delivery)
            .where(due)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        rows = list(self.session.scalars(stmt))
        if rows:
            self.session.execute(
                update(Delivery)
                .where(Delivery.id.in_([d.id for d in rows]), due)
                .values(status="sending", locked_until=now + lease, attempts=Delivery.attempts + 1)
                .execution_options(synchronize_session=False)
            )
        return rows

    def contacts(self, deliveries: Sequence[DeliveryRow]) -> dict[int, str | None]:
        """Each delivery's recipient contact, read at send time and never stored with the message."""
        wanted = {
            kind: sorted({d.recipient_id for d in deliveries if d.recipient_kind == kind})
            for kind in ("actor", "participant")
        }
        found: dict[tuple[str, int], str | None] = {}
        for kind, model in (("actor", Actor), ("participant", Participant)):
            for batch in chunked(wanted[kind]):
                stmt = select(model.id, model.contact).where(model.id.in_(batch))
                found.update(((kind, i), contact) for i, contact in self.session.execute(stmt))
        # A publication (a signed chain head) goes to an address the operator configured, kept as its name.
        return {
            d.id: d.recipient_name if d.recipient_kind == PUBLICATION else found.get((d.recipient_kind, d.recipient_id))
            for d in deliveries
        }

    def get(self, delivery_id: int) -> Delivery:
        """One delivery (it exists: the caller claimed it)."""
        found = self.session.get(Delivery, delivery_id)
        assert found is not None, f"delivery {delivery_id} was claimed, so it exists"
        return found

    def add_attempt(self, delivery_id: int, attempt: int, at: datetime, error: str | None) -> None:
        """Record one try at sending."""
        self.session.add(
            DeliveryAttempt(delivery_id=delivery_id, attempt=attempt, at=at, ok=error is None, error=error)
        )
