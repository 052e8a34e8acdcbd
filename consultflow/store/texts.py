"""Participants' keys: texts sealed with them, opened with them, forgotten when they are destroyed.

Each participant has one random key in `participant_key` (created with the participant; only the
server's login may read the table). Sealed texts are opened here, for the unit of work that reads
them, through a small cache filled a window of participants at a time: a report streaming a
hundred thousand opinions asks for keys a thousand participants at once, and the cache is bounded.
Match and intake keys are keyed with the server's secret in `privacy_secret` (made by migration
0014).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from consultflow.domain import sealing
from consultflow.domain.audit import payload_text
from consultflow.store.batches import chunked
from consultflow.store.models import ParticipantKey, PrivacySecret

MATCH_SECRET = "match_key"  # noqa: S105 - the secret's name, not a secret
_WINDOW = 1024  # keys read at once around a participant asked for
_CACHED = 65536  # keys kept by one unit of work
_KEYED_KEPT = 8192  # keyed hashes kept by one unit of work (about 1 MB)


class TextKeys:
    """Participants' keys: made, used to seal and open, destroyed."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._keys: OrderedDict[int, bytes | None] = OrderedDict()
        self._readable: bool | None = None
        self._match_secret: bytes | None = None
        self._keyed: dict[str, str] = {}  # plain -> keyed, the last few thousand asked for

    # --- keys -------------------------------------------------------------------------------

    def create(self, participant_ids: Iterable[int], now: datetime) -> None:
        """A new key for each of these (new) participants, written set-based."""
        for batch in chunked(sorted(set(participant_ids))):
            made = {p: sealing.new_key() for p in batch}
            rows = [{"participant_id": p, "secret": key.hex(), "created_at": now} for p, key in made.items()]
            self.session.execute(insert(ParticipantKey), rows)
            self._keys.update(made)

    def destroy(self, participant_ids: Iterable[int]) -> int:
        """Delete these participants' keys: their sealed texts can never be opened again. Returns how many."""
        gone = 0
        for batch in chunked(sorted(set(participant_ids))):
            result = self.session.execute(delete(ParticipantKey).where(ParticipantKey.participant_id.in_(batch)))
            gone += int(getattr(result, "rowcount", 0) or 0)
            for p in batch:
                self._keys[p] = None
        return gone

    def _key(self, participant_id: int) -> bytes | None:
        if participant_id in self._keys:
            self._keys.move_to_end(participant_id)
            return self._keys[participant_id]
        low = max(0, participant_id - _WINDOW // 4)
        high = low + _WINDOW
        found = dict.fromkeys(range(low, high + 1))
        stmt = select(ParticipantKey.participant_id, ParticipantKey.secret).where(
            ParticipantKey.participant_id.between(low, high)
        )
        for pid, secret in self.session.connection().execute(stmt):
            found[int(pid)] = bytes.fromhex(str(secret))
        self._keys.update(found)
        while len(self._keys) > _CACHED:
            self._keys.popitem(last=False)
        return found[participant_id]

    # --- texts ------------------------------------------------------------------------------

    def seal(self, participant_id: int, value: str) -> str:
        """`value` sealed with the participant's key (read with its neighbours' when not known yet).

        An erased participant has no key: a text given on their opinions is sealed with a key that
        is not kept, so it is forgotten at once, like everything else of theirs.
        """
        key = self._key(participant_id)
        return sealing.seal(key if key is not None else sealing.new_key(), participant_id, value)

    def seal_many(self, texts: Sequence[tuple[int, str]]) -> list[str]:
        """Each (participant, text) sealed with that participant's key, in order."""
        wanted = sorted({p for p, _ in texts if p not in self._keys})
        for batch in chunked(wanted):
            stmt = select(ParticipantKey.participant_id, ParticipantKey.secret).where(
                ParticipantKey.participant_id.in_(batch)
            )
            found = {int(p): bytes.fromhex(str(s)) for p, s in self.session.execute(stmt)}
            self._keys.update((p, found.get(p)) for p in batch)
        sealed: list[str] = []
        for participant_id, value in texts:
            key = self._keys.get(participant_id)  # None: erased, the text is forgotten at once (see seal)
            sealed.append(sealing.seal(key if key is not None else sealing.new_key(), participant_id, value))
        return sealed

    def _may_read(self) -> bool:
        if self._readable is None:
            connection = self.session.connection()
            if connection.dialect.name == "postgresql":
                ask = text("SELECT has_table_privilege(current_user, 'participant_key', 'SELECT')")
                self._readable = bool(connection.execute(ask).scalar_one())
            else:
                self._readable = True
        return self._readable

    def open(self, value: str) -> str:
        """The text a stored value holds: as written, or FORGOTTEN (key destroyed), UNREADABLE (no access), DAMAGED."""
        participant_id = sealing.sealed_by(value)
        if participant_id is None:
            return value  # recorded before texts were sealed
        if not self._may_read():
            return sealing.UNREADABLE
        key = self._key(participant_id)
        if key is None:
            return sealing.FORGOTTEN
        opened = sealing.unseal(key, value)
        return sealing.DAMAGED if opened is None else opened

    def open_payload(self, payload: str) -> str:
        """An event payload (JSON text) with each sealed text in it opened (others untouched)."""
        if sealing.SEALED_PREFIX not in payload:
            return payload
        members = json.loads(payload)
        if not isinstance(members, dict):
            return payload
        opened = {k: self.open(v) if sealing.is_sealed(v) else v for k, v in members.items()}
        return payload_text(opened)

    # --- keyed hashes -----------------------------------------------------------------------

    def keyed(self, plain: str) -> str:
        """A match or intake key as stored (HMAC under the server's secret)."""
        if self._match_secret is None:
            stmt = select(PrivacySecret.secret).where(PrivacySecret.name == MATCH_SECRET)
            self._match_secret = bytes.fromhex(str(self.session.execute(stmt).scalar_one()))
        found = self._keyed.get(plain)
        if found is None:
            if len(self._keyed) >= _KEYED_KEPT:  # a bulk import asks for each batch's keys two or three times
                self._keyed.clear()
            found = self._keyed[plain] = sealing.keyed(self._match_secret, plain)
        return found
