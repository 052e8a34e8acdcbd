"""Bulk intake in set-based batches: one INSERT for a batch's participants, one for its opinions.

Lookups go by key in chunks (never an IN list that grows with the file), and no ORM object is
made per row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from consultflow.domain.intake import IntakeRow
from consultflow.domain.model import ConsultationRow
from consultflow.store.batches import chunked, matching
from consultflow.store.bulk import insert_plain, table_of
from consultflow.store.models import Opinion, Participant
from consultflow.store.texts import TextKeys


class IntakeStore:
    """The rows of an import: which are already in, the participants they name, and the opinions."""

    def __init__(self, session: Session, texts: TextKeys) -> None:
        self.session = session
        self.texts = texts  # keys are stored keyed with the server's secret (consultflow.domain.sealing)

    def existing_keys(self, consultation_id: int, keys: Sequence[str]) -> set[str]:
        """Those of `keys` already imported into the consultation."""
        found: set[str] = set()
        keyed = {self.texts.keyed(k): k for k in set(keys)}
        for batch in chunked(sorted(keyed)):
            stmt = matching(
                self.session,
                select(Opinion.intake_key).where(Opinion.consultation_id == consultation_id),
                Opinion.intake_key,
                batch,
            )
            found.update(keyed[k] for k in self.session.scalars(stmt) if k is not None)
        return found

    def recorded(self, consultation_id: int, rows: Sequence[IntakeRow]) -> dict[str, tuple[int, bool]]:
        """For each row whose key is already recorded: (the opinion, whether it said the same)."""
        keyed = {self.texts.keyed(r.key): r for r in rows}
        found: dict[str, tuple[int, bool]] = {}
        for batch in chunked(sorted(keyed)):
            stmt = matching(
                self.session,
                select(Opinion.intake_key, Opinion.id, Opinion.content_key).where(
                    Opinion.consultation_id == consultation_id
                ),
                Opinion.intake_key,
                batch,
            )
            for key, oid, content in self.session.execute(stmt):
                row = keyed[str(key)]
                same = content is not None and (
                    content == self.texts.keyed(row.content)
                    or (bool(row.legacy_content) and content == self.texts.keyed(row.legacy_content))
                )
                found[row.key] = (int(oid), same)
        return found

    def source_fields(self, opinion_id: int) -> dict[str, str] | None:
        """The file's other columns an opinion was imported with (opened), if any."""
        value = self.session.scalar(select(Opinion.source_fields).where(Opinion.id == opinion_id))
        if value is None:
            return None
        try:
            found = json.loads(value)
        except ValueError:
            return {"": str(value)}  # forgotten on erasure, or not readable by this login
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {"": str(value)}

    def participants(self, rows: Sequence[IntakeRow], *, created_by: int, now: datetime) -> dict[str, int]:
        """Participant ids by key: the ones already registered (and not erased), the rest created now."""
        keys = sorted({r.participant_key for r in rows})
        found = self._participant_ids(keys)
        first = {r.participant_key: r for r in rows if r.participant_key not in found}
        if first:
            values = [
                {
                    "name": r.name,
                    "village": r.village,
                    "contact": r.contact,
                    "lang": "zh",
                    "created_at": now,
                    "created_by_id": created_by,
                    "match_key": self.texts.keyed(key),
                }
                for key, r in first.items()
            ]
            self.session.execute(insert(table_of(Participant)), values)  # no RETURNING: see add_opinions
            created = self._participant_ids(sorted(first))
            self.texts.create(created.values(), now)  # the keys their free text is sealed with
            found |= created
        return found

    def _participant_ids(self, keys: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        keyed = {self.texts.keyed(k): k for k in keys}
        for batch in chunked(sorted(keyed)):
            stmt = matching(
                self.session,
                select(Participant.match_key, Participant.id).where(Participant.erased_at.is_(None)),
                Participant.match_key,
                batch,
            )
            for key, pid in self.session.execute(stmt):
                found.setdefault(keyed[str(key)], int(pid))
        return found

    def add_opinions(
        self,
        consultation: ConsultationRow,
        rows: Sequence[IntakeRow],
        participant_ids: dict[str, int],
        texts: Sequence[str],
        fields: Sequence[str | None] | None = None,
        *,
        recorded_by: int,
        state: str,
        round_no: int,
        now: datetime,
    ) -> list[int]:
        """Insert a batch of opinions at sequence 1; their ids, in the order of `rows`.

        `fields` are the rows' source fields, sealed (or None); the submission time is the row's
        own when the file gave one.

        The rows go in as one executemany, and their ids are read back by intake key (unique in a
        consultation). An INSERT … RETURNING in parameter order would be one statement per row on
        SQLite, which cannot promise the order of a multi-row RETURNING: 100,000 statements for
        100,000 rows.
        """
        values = [
            {
                "consultation_id": consultation.id,
                "workflow_id": consultation.workflow_id,
                "participant_id": participant_ids[r.participant_key],
                "recorded_by_id": recorded_by,
                "category": r.category,
                "channel": r.channel,
                "text": text,
                "state": state,
                "state_entered_at": now,
                "current_round": round_no,
                "rounds_count": 0,
                "last_seq": 1,
                "submitted_at": r.submitted_at or now,
                "version": 1,
                "intake_key": self.texts.keyed(r.key),
                "content_key": self.texts.keyed(r.content) if r.content else None,
                "source_fields": sealed,
            }
            for r, text, sealed in zip(rows, texts, fields or [None] * len(rows), strict=True)
        ]
        insert_plain(self.session, table_of(Opinion), values)  # the driver's executemany or COPY
        keys = [str(v["intake_key"]) for v in values]
        ids: dict[str, int] = {}
        for batch in chunked(keys):
            stmt = matching(
                self.session,
                select(Opinion.intake_key, Opinion.id).where(Opinion.consultation_id == consultation.id),
                Opinion.intake_key,
                batch,
            )
            ids.update((str(key), int(i)) for key, i in self.session.execute(stmt))
        return [ids[k] for k in keys]
