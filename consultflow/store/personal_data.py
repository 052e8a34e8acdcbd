"""Personal information: the record of who read it, and erasure on request.

Every read of full names or contacts leaves a row here (who, when, what, why) and one row per
participant read, written set-based in bounded batches. Erasure overwrites a participant's name,
contact and village where they are kept outside the audit chain (which never holds them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from consultflow.domain.model import AccessRecord
from consultflow.store.batches import chunked
from consultflow.store.models import Actor, Delivery, Participant, PersonalDataAccess, PersonalDataAccessItem


class PersonalDataStore:
    """Access records and erasure."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record_access(
        self, *, actor_id: int, at: datetime, what: str, purpose: str, participant_ids: Iterable[int]
    ) -> int:
        """Record one read and the participants it showed; returns the record's id."""
        unique = sorted(set(participant_ids))
        stmt = insert(PersonalDataAccess).values(
            actor_id=actor_id, at=at, what=what, purpose=purpose, participants=len(unique)
        )
        access_id = int(self.session.execute(stmt.returning(PersonalDataAccess.id)).scalar_one())
        for batch in chunked(unique):
            self.session.execute(
                insert(PersonalDataAccessItem), [{"access_id": access_id, "participant_id": p} for p in batch]
            )
        return access_id

    def accesses(
        self, *, participant_id: int | None = None, actor: str | None = None, limit: int = 1000
    ) -> list[AccessRecord]:
        """Access records, newest first; of one participant or one actor when given."""
        stmt = (
            select(
                PersonalDataAccess.id,
                PersonalDataAccess.at,
                Actor.name,
                PersonalDataAccess.what,
                PersonalDataAccess.purpose,
                PersonalDataAccess.participants,
            )
            .join(Actor, Actor.id == PersonalDataAccess.actor_id)
            .order_by(PersonalDataAccess.at.desc(), PersonalDataAccess.id.desc())
            .limit(limit)
        )
        if participant_id is not None:
            read = select(PersonalDataAccessItem.access_id).where(
                PersonalDataAccessItem.participant_id == participant_id
            )
            stmt = stmt.where(PersonalDataAccess.id.in_(read))
        if actor is not None:
            stmt = stmt.where(Actor.name == actor)
        return [AccessRecord(*row) for row in self.session.execute(stmt)]

    def erase_participant(self, participant_id: int, *, pseudonym: str, now: datetime) -> None:
        """Overwrite the participant's name, contact and village, and those copied into messages.

        Messages not yet sent to them are given up (there is no one left to send them to).
        """
        self.session.execute(
            update(Participant)
            .where(Participant.id == participant_id)
            .values(name=pseudonym, contact=None, village="", erased_at=now)
        )
        to_them = (Delivery.recipient_kind == "participant") & (Delivery.recipient_id == participant_id)
        self.session.execute(
            update(Delivery)
            .where(to_them, Delivery.status.in_(("pending", "sending")))
            .values(status="dead", last_error="the recipient's personal information was erased")
        )
        self.session.execute(update(Delivery).where(to_them).values(recipient_name=pseudonym, subject="", body=""))
        self.session.execute(update(Actor).where(Actor.participant_id == participant_id).values(contact=None))
