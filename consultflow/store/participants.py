"""The participant aggregate: a person who gives opinions, registered once, with the key their texts are sealed with."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consultflow.domain.errors import NotFoundError
from consultflow.domain.intake import participant_key
from consultflow.store.batches import STREAM_ROWS, chunked
from consultflow.store.models import Participant
from consultflow.store.texts import TextKeys


class ParticipantRepository:
    """Participants: registered, found by id or by who they are, and listed (bulk intake registers them set-based)."""

    def __init__(self, session: Session, texts: TextKeys) -> None:
        self.session = session
        self.texts = texts

    def add(
        self, *, name: str, village: str, contact: str | None, lang: str, created_by: int, now: datetime
    ) -> Participant:
        """Register a participant, and create the key their free text is sealed with."""
        row = Participant(
            name=name,
            village=village,
            contact=contact,
            lang=lang,
            created_at=now,
            created_by_id=created_by,
            match_key=self.texts.keyed(participant_key(name, village, contact)),
        )
        self.session.add(row)
        self.session.flush()
        self.texts.create([row.id], now)
        return row

    def get(self, participant_id: int) -> Participant:
        """A participant by id, or a refusal naming the command that lists them."""
        found = self.session.get(Participant, participant_id)
        if found is None:
            msg = f"unknown participant {participant_id}; list them with 'consultflow participant list'"
            raise NotFoundError(msg)
        return found

    def registered(self, name: str, village: str, contact: str) -> int | None:
        """The participant (not erased) registered with this name, village and contact: by its keyed match key."""
        key = self.texts.keyed(participant_key(name, village, contact))
        stmt = select(func.min(Participant.id)).where(Participant.match_key == key, Participant.erased_at.is_(None))
        found = self.session.scalar(stmt)
        return int(found) if found is not None else None

    def many(self, participant_ids: Sequence[int]) -> list[Participant]:
        """The participants with these ids (unknown ids are left out), by id."""
        found: list[Participant] = []
        for batch in chunked(sorted(set(participant_ids))):
            stmt = select(Participant).where(Participant.id.in_(batch)).order_by(Participant.id)
            found.extend(self.session.scalars(stmt))
        return found

    def missing(self, participant_ids: Sequence[int]) -> list[int]:
        """Those of the ids (in the order given) that name no participant."""
        found: set[int] = set()
        for batch in chunked(sorted(set(participant_ids))):
            found.update(self.session.scalars(select(Participant.id).where(Participant.id.in_(batch))))
        return [i for i in dict.fromkeys(participant_ids) if i not in found]

    def listing(self, village: str | None = None) -> Iterator[Participant]:
        """Participants by id, of one village when given, streamed."""
        stmt = select(Participant).order_by(Participant.id)
        if village:
            stmt = stmt.where(Participant.village == village)
        yield from self.session.scalars(stmt.execution_options(yield_per=STREAM_ROWS))
