"""Personal information: the record of who read it, and erasure on request.

Every read of full names or contacts leaves a row here (who, when, what, why) and one row per
participant read, written set-based in bounded batches. Erasure overwrites a participant's name,
contact and village where they are kept outside the audit chain (which never holds them): the
participant row, its keyed match hash, their opinions' intake keys, and every message, delivery
error and attempt that names them or quotes their opinion.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, func, insert, or_, select, type_coerce, update
from sqlalchemy.orm import Session

from consultflow.domain.model import AccessRecord
from consultflow.domain.redaction import MASKS, name_forms
from consultflow.domain.sealing import FORGOTTEN, SEALED_PREFIX
from consultflow.store.batches import STREAM_ROWS, chunked
from consultflow.store.models import (
    Actor,
    Delivery,
    DeliveryAttempt,
    Opinion,
    OpinionEntry,
    Participant,
    PersonalDataAccess,
    PersonalDataAccessItem,
    Reminder,
)


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

    # --- erasure ------------------------------------------------------------------------------

    def same_person(self, participant_id: int, *, same_name_village: bool) -> list[tuple[int, str]]:
        """The records of the person `participant_id` is, not yet erased, each with why it was taken.

        "asked" is the record given; "contact" a record with the same contact (a phone's digits, an
        e-mail lower-cased); "name and village" one with the same (non-empty) name and village, only
        when `same_name_village`. Ordered by id.
        """
        row = self.session.execute(
            select(Participant.name, Participant.village, Participant.contact).where(Participant.id == participant_id)
        ).one()
        found: dict[int, str] = {participant_id: "asked"}
        wanted = normal_contact(row.contact)
        if wanted:
            living = (
                select(Participant.id, Participant.contact)
                .where(Participant.contact.is_not(None), Participant.erased_at.is_(None))
                .order_by(Participant.id)
                .execution_options(yield_per=STREAM_ROWS)
            )
            for pid, contact in self.session.execute(living):
                if normal_contact(contact) == wanted:
                    found.setdefault(int(pid), "contact")
        name = (row.name or "").strip()
        if same_name_village and name:
            namesakes = select(Participant.id).where(
                Participant.name == name, Participant.village == row.village, Participant.erased_at.is_(None)
            )
            for pid in self.session.scalars(namesakes):
                found.setdefault(int(pid), "name and village")
        return sorted(found.items())

    def unsealed_texts(self, participant_ids: Iterable[int]) -> int:
        """How many texts of these participants' opinions were recorded before sealing (stored as written)."""
        count = 0
        # as stored: a text recorded before sealing is not "cf1:…"
        plain = func.coalesce(type_coerce(Opinion.text, Text()), "")
        entry = func.coalesce(type_coerce(OpinionEntry.text, Text()), "")
        for batch in chunked(sorted(set(participant_ids))):
            theirs = select(Opinion.id).where(Opinion.participant_id.in_(batch))
            count += int(
                self.session.scalar(
                    select(func.count())
                    .select_from(Opinion)
                    .where(Opinion.participant_id.in_(batch), plain != "", ~plain.startswith(SEALED_PREFIX))
                )
                or 0
            )
            count += int(
                self.session.scalar(
                    select(func.count())
                    .select_from(OpinionEntry)
                    .where(OpinionEntry.opinion_id.in_(theirs), entry != "", ~entry.startswith(SEALED_PREFIX))
                )
                or 0
            )
        return count

    def erase_participant(self, participant_id: int, *, pseudonym: str, now: datetime) -> None:
        """Overwrite the participant's name, contact and village, and every copy kept outside the chain.

        - the participant row: name → pseudonym, contact NULL, village "", match key NULL;
        - their opinions' intake keys: NULL (a keyed hash of what they submitted);
        - messages to them (or to a participant-role person who is them): given up when not yet
          sent, their recipient name the pseudonym, subject and body cleared;
        - messages to others about their opinions (a planner's reminder quotes the opinion): the
          quoted text replaced by FORGOTTEN;
        - any message, stored delivery error or attempt's error that still names them or gives
          their contact: masked (张秀英 → 张某某, 秀英 → 某某, the phone or e-mail → its mask);
        - a participant-role person who is them: their contact removed.
        """
        row = self.session.execute(
            select(Participant.name, Participant.contact).where(Participant.id == participant_id)
        ).one()
        person = _Person.of(row.name, row.contact, pseudonym)
        theirs = select(Opinion.id).where(Opinion.participant_id == participant_id).scalar_subquery()
        their_actors = select(Actor.id).where(Actor.participant_id == participant_id).scalar_subquery()
        to_them = ((Delivery.recipient_kind == "participant") & (Delivery.recipient_id == participant_id)) | (
            (Delivery.recipient_kind == "actor") & Delivery.recipient_id.in_(their_actors)
        )
        about_them = Delivery.reminder_id.in_(select(Reminder.id).where(Reminder.opinion_id.in_(theirs)))
        quoted = list(self.session.execute(select(Delivery.id, Delivery.body).where(about_them, ~to_them)))
        for delivery_id, body in quoted:
            forgotten = forget_quote(body)
            if forgotten != body:
                self.session.execute(update(Delivery).where(Delivery.id == delivery_id).values(body=forgotten))
        self.session.execute(
            update(Delivery)
            .where(to_them, Delivery.status.in_(("pending", "sending")))
            .values(status="dead", last_error="the recipient's personal information was erased")
        )
        self.session.execute(update(Delivery).where(to_them).values(recipient_name=pseudonym, subject="", body=""))
        self._mask_messages(person)
        self.session.execute(
            update(Participant)
            .where(Participant.id == participant_id)
            .values(name=pseudonym, contact=None, village="", erased_at=now, match_key=None)
        )
        self.session.execute(  # the keyed hashes of her rows: of her name, contact and text
            update(Opinion).where(Opinion.participant_id == participant_id).values(intake_key=None, content_key=None)
        )
        self.session.execute(update(Actor).where(Actor.participant_id == participant_id).values(contact=None))

    def _mask_messages(self, person: _Person) -> None:
        """Deliveries and attempts whose stored text names the person or gives their contact, masked."""
        if not person.needles:
            return
        columns = (Delivery.recipient_name, Delivery.subject, Delivery.body, Delivery.last_error)
        named = or_(*(_holds(c, n) for c in columns for n in person.needles))
        for found in list(self.session.execute(select(Delivery.id, *columns).where(named))):
            values = dict(zip(("recipient_name", "subject", "body", "last_error"), found[1:], strict=True))
            masked = {k: person.mask(v) for k, v in values.items() if v is not None and person.mask(v) != v}
            if masked:
                self.session.execute(update(Delivery).where(Delivery.id == found[0]).values(**masked))
        attempts = or_(*(_holds(DeliveryAttempt.error, n) for n in person.needles))
        stmt = select(DeliveryAttempt.delivery_id, DeliveryAttempt.attempt, DeliveryAttempt.error).where(attempts)
        for delivery_id, attempt, error in list(self.session.execute(stmt)):
            if error is not None and person.mask(error) != error:
                self.session.execute(
                    update(DeliveryAttempt)
                    .where(DeliveryAttempt.delivery_id == delivery_id, DeliveryAttempt.attempt == attempt)
                    .values(error=person.mask(error))
                )


def normal_contact(value: str | None) -> str:
    """A contact as compared for "the same person": an e-mail lower-cased, a phone's digits ("" for none).

    A mainland mobile written with the country code (+86 138…) is the same as without it.
    """
    text = unicodedata.normalize("NFKC", value or "").strip()
    if not text:
        return ""
    if "@" in text:
        return text.lower()
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) == 13 and digits.startswith("86"):  # +86 and a mobile's 11 digits
        digits = digits[2:]
    return digits


# consultflow.domain.reminders.compose: the opinion's number, then three fixed lines. Reminders
# composed before they stopped quoting opinions (fecbef7) have the opinion's excerpt after the number.
_REMINDER_QUOTE = (
    re.compile(r"\A(意见 #\d+)(?:：(.*))?(\n当前状态：[^\n]*\n事项：[^\n]*\n截止时间：[^\n]*\n?)\Z", re.DOTALL),
    re.compile(r"\A(Opinion #\d+)(?:: (.*))?(\nState: [^\n]*\nAsked: [^\n]*\nDue: [^\n]*\n?)\Z", re.DOTALL),
)


def forget_quote(body: str) -> str:
    """A message about an erased participant's opinion with any quote of the opinion forgotten.

    A reminder keeps its opinion number, state, ask and deadline (one that quoted the opinion reads
    "意见 #12：（已删除）"); a body of any other form is replaced whole (it may quote the text anywhere).
    """
    if not body:
        return body
    for pattern in _REMINDER_QUOTE:
        found = pattern.match(body)
        if found:
            quoted = found.group(2) is not None
            sep = "：" if pattern is _REMINDER_QUOTE[0] else ": "
            return found.group(1) + (sep + FORGOTTEN if quoted else "") + found.group(3)
    return FORGOTTEN


def _holds(column: Any, needle: str) -> Any:
    return func.lower(column).contains(needle.lower(), autoescape=True)


_DIGIT_FORMS = {d: f"[{d}{chr(ord(d) - ord('0') + ord('０'))}]" for d in "0123456789"}
_SEPARATOR = r"[\s\-－]?"


@dataclass(frozen=True)
class _Person:
    """What names a person in stored text, and how each form is masked."""

    pattern: re.Pattern[str] | None
    masks: dict[str, str]
    needles: tuple[str, ...]  # what a row must contain to be looked at (a superset of the matches)

    @classmethod
    def of(cls, name: str | None, contact: str | None, pseudonym: str) -> _Person:
        parts: list[str] = []
        masks: dict[str, str] = {}
        needles: list[str] = []
        forms = name_forms(name)
        for form in forms:  # longest first: the full name before the given name
            parts.append(re.escape(form))
            masks[form.casefold()] = pseudonym if form == forms[0] else "某" * len(form)
            needles.append(form)
        normal = normal_contact(contact)
        if normal and "@" in normal:
            parts.append(re.escape(normal))
            masks[normal] = MASKS["email"]
            needles.append(normal)
        elif len(normal) >= 7:  # a phone number, not a stray digit or two
            parts.append(r"(?:\+?86" + _SEPARATOR + ")?" + _SEPARATOR.join(_DIGIT_FORMS[d] for d in normal))
            needles += [normal[-4:], "".join(chr(ord(d) - ord("0") + ord("０")) for d in normal[-4:])]
        pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None
        return cls(pattern, masks, tuple(needles))

    def mask(self, text: str) -> str:
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda m: self.masks.get(m.group(0).casefold(), MASKS["mobile"]), text)
