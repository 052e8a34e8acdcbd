"""Reminder records: planned and cancelled inside the transaction of the change that causes them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from consultflow.domain.errors import NotFoundError
from consultflow.domain.reminders import StateEntry, plan_reminders
from consultflow.domain.workflow import WorkflowSpec
from consultflow.store.batches import STREAM_ROWS, chunked
from consultflow.store.bulk import insert_ignoring_duplicates, insert_selected_ignoring_duplicates, table_of
from consultflow.store.models import Delivery, DeliveryAttempt, Opinion, Reminder

# A group of entries this large is planned with one INSERT…SELECT per reminder, not as rows.
SET_BASED_FROM = 16


class ReminderStore:
    """Writes reminder rows; the unique key makes planning the same reminder twice harmless."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def plan(
        self, spec: WorkflowSpec, entries: Sequence[StateEntry], round_closes_at: datetime | None, now: datetime
    ) -> int:
        """Write the reminders each entry's state calls for; existing ones are left as they are.

        Entries that entered the same state at the same moment (a bulk fire, an import, a round
        close) get the same reminders, so each planned reminder is one INSERT…SELECT over a batch
        of their ids; what is left (a few entries each) goes as rows in one executemany.
        """
        self.session.flush()
        groups: dict[tuple[int, int, str, datetime], list[int]] = {}
        for e in entries:
            groups.setdefault((e.consultation_id, e.round_no, e.state, e.entered_at), []).append(e.opinion_id)
        rows: list[dict[str, object]] = []
        planned = 0
        for (consultation_id, round_no, state, entered_at), opinion_ids in groups.items():
            reminders = plan_reminders(spec, state, entered_at, round_closes_at)
            planned += len(reminders) * len(opinion_ids)
            fixed = [
                {
                    "consultation_id": consultation_id,
                    "round_no": round_no,
                    "rule": p.rule,
                    "offset_minutes": round(p.offset_days * 24 * 60),
                    "state": state,
                    "state_entered_at": entered_at,
                    "recipient_role": p.recipient_role.value,
                    "escalation": p.escalation,
                    "due_at": p.due_at,
                    "send_at": p.send_at,
                    "status": "pending",
                    "created_at": now,
                }
                for p in reminders
            ]
            if len(opinion_ids) < SET_BASED_FROM:
                rows += [{**values, "opinion_id": i} for values in fixed for i in opinion_ids]
                continue
            for values in fixed:
                for ids in chunked(opinion_ids):
                    insert_selected_ignoring_duplicates(self.session, Reminder, values, "opinion_id", Opinion.id, ids)
        for batch in chunked(rows):
            insert_ignoring_duplicates(self.session, Reminder, batch)
        return planned

    def cancel_for_opinions(self, opinion_ids: Sequence[int], reason: str, now: datetime) -> None:
        """Cancel the pending reminders of opinions that left the state they were about."""
        self.session.flush()
        table = table_of(Reminder)  # Core, not the ORM's bulk UPDATE: a transition runs this every time
        for batch in chunked(opinion_ids):
            self.session.execute(
                update(table)
                .where(table.c.opinion_id.in_(batch), table.c.status == "pending")
                .values(status="cancelled", closed_at=now, cancel_reason=reason)
            )

    def cancel_for_round(self, consultation_id: int, states: Sequence[str], reason: str, now: datetime) -> None:
        """Cancel pending reminders that were due at a round's close (the round closed or moved)."""
        if not states:
            return
        self.session.flush()
        self.session.execute(
            update(Reminder)
            .where(
                Reminder.consultation_id == consultation_id, Reminder.state.in_(states), Reminder.status == "pending"
            )
            .values(status="cancelled", closed_at=now, cancel_reason=reason)
            .execution_options(synchronize_session=False)
        )

    def due(self, now: datetime, batch: int) -> list[Reminder]:
        """Up to `batch` pending reminders due by `now`, locked (skipping those another worker holds)."""
        stmt = (
            select(Reminder)
            .where(Reminder.status == "pending", Reminder.send_at <= now)
            .order_by(Reminder.send_at, Reminder.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        return list(self.session.scalars(stmt))

    def search(self, consultation_id: int | None, status: str | None, limit: int | None) -> Iterator[Reminder]:
        """Reminders, soonest first, streamed."""
        stmt = select(Reminder).order_by(Reminder.send_at, Reminder.id)
        if consultation_id is not None:
            stmt = stmt.where(Reminder.consultation_id == consultation_id)
        if status is not None:
            stmt = stmt.where(Reminder.status == status)
        if limit is not None:
            stmt = stmt.limit(limit)
        yield from self.session.scalars(stmt.execution_options(yield_per=STREAM_ROWS))

    def deliveries(self, *, failed_only: bool = False, limit: int | None = None) -> list[Delivery]:
        """The outbox by id; `failed_only` keeps those that failed at least once and are not sent."""
        stmt = select(Delivery).order_by(Delivery.id)
        if failed_only:
            stmt = stmt.where(Delivery.status != "sent", Delivery.last_error.is_not(None))
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.scalars(stmt))

    def deliveries_of(self, reminder_id: int) -> list[Delivery]:
        """A reminder's deliveries by id."""
        stmt = select(Delivery).where(Delivery.reminder_id == reminder_id).order_by(Delivery.id)
        return list(self.session.scalars(stmt))

    def attempts_of(self, delivery_ids: Sequence[int]) -> list[DeliveryAttempt]:
        """Every attempt at these deliveries, by delivery and attempt number."""
        found: list[DeliveryAttempt] = []
        for batch in chunked(sorted(set(delivery_ids))):
            stmt = (
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id.in_(batch))
                .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.attempt)
            )
            found.extend(self.session.scalars(stmt))
        return found

    def get_many(self, reminder_ids: Sequence[int]) -> list[Reminder]:
        """Reminders by id, in id order; refuses unknown ids."""
        found: dict[int, Reminder] = {}
        for batch in chunked(sorted(set(reminder_ids))):
            found.update((r.id, r) for r in self.session.scalars(select(Reminder).where(Reminder.id.in_(batch))))
        missing = sorted(set(reminder_ids) - found.keys())
        if missing:
            msg = f"unknown reminder(s): {', '.join(map(str, missing))}; list them with 'consultflow reminders list'"
            raise NotFoundError(msg)
        return [found[i] for i in sorted(found)]
