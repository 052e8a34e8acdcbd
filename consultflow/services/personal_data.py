"""Personal information on record: every read of full names or contacts, and erasure on request.

China's Personal Information Protection Law (个人信息保护法) asks that access to personal
information be limited, recorded and erasable. Here only coordinators see full names and contacts,
each such read states its purpose and is written down (who, when, what, which participants) in the
same transaction that reads, and a participant can be erased while the audit chain, which never
holds a name or a contact, still verifies. Erasure takes every record of the person (the same
contact; on request the same name and village), destroys their text keys so their sealed texts are
forgotten, and clears the keyed hashes and every copy in messages and delivery errors.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from consultflow.domain.audit import EventKind
from consultflow.domain.errors import ValidationError
from consultflow.domain.model import AccessRecord, OpinionFilter
from consultflow.domain.privacy import pseudonymise
from consultflow.domain.redaction import name_forms
from consultflow.domain.roles import Action
from consultflow.services.context import ServiceContext
from consultflow.services.inputs import required_text
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import ParticipantRow, UnitOfWork

T = TypeVar("T")

MAX_PURPOSE_CHARS = 500


def checked_purpose(purpose: str | None, what: str) -> str:
    """The stated purpose of a read of personal information; refuses none.

    Raises:
        ValidationError: no purpose, or a blank or over-long one.
    """
    if purpose is None or not purpose.strip():
        msg = f"{what} shows personal information: give --purpose WHY (it is kept on record, see 'audit access')"
        raise ValidationError(msg)
    return required_text(purpose, "--purpose", MAX_PURPOSE_CHARS)


def read_on_record(
    ctx: ServiceContext,
    *,
    acting: str | None,
    what: str,
    purpose: str | None,
    shown: Callable[[UnitOfWork], Iterable[int]],
    read: Callable[[UnitOfWork], T],
) -> T:
    """Read personal information as a coordinator, recording the read in the same transaction.

    `shown` names the participants whose information `read` will show (streamed: a report of a
    million opinions is not held). The record is written first, in the same transaction as the
    read, so a read that fails takes its record back with it; output shown as it is read (a
    report to the terminal) is held by the CLI until the record has committed.

    Raises:
        ValidationError: no purpose given.
        PermissionDeniedError: the acting person is not a coordinator (nothing is read).
    """
    stated = checked_purpose(purpose, what)

    def body(change: Change) -> T:
        change.uow.personal_data.record_access(
            actor_id=change.actor.id, at=change.now, what=what, purpose=stated, participant_ids=shown(change.uow)
        )
        return read(change.uow)

    return run(
        ctx,
        acting=acting,
        action=Action.READ_PERSONAL_DATA,
        event="personal_data_read",
        body=body,
        describe=lambda _r: {"what": what},
    )


def access_records(
    ctx: ServiceContext, *, participant_id: int | None = None, actor: str | None = None, limit: int = 1000
) -> Sequence[AccessRecord]:
    """Who read personal information, when, what and why: newest first."""
    with ctx.uow() as uow:
        return uow.personal_data.accesses(participant_id=participant_id, actor=actor, limit=limit)


@dataclass(frozen=True)
class ErasedRecord:
    """One participant record of the person erased (or, in a dry run, that would be)."""

    participant_id: int
    pseudonym: str
    village: str  # as it was: shown by a dry run, "" once erased
    opinions: int
    found_by: str  # "asked", "contact", or "name and village"
    name: str | None = None  # the full name: a dry run with full names, on record, only


@dataclass(frozen=True)
class Erasure:
    """What an erasure did (or, dry, would do): every record of the person, and what stays."""

    records: tuple[ErasedRecord, ...]
    dry_run: bool
    keys_destroyed: int  # participants' keys deleted: their sealed texts read FORGOTTEN from now on
    unsealed_texts: int  # texts recorded before sealing: kept as written, in the live rows and the chain

    @property
    def participant_ids(self) -> list[int]:
        """The ids erased (or that would be)."""
        return [r.participant_id for r in self.records]


def _digits(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit())


def _names_them(reason: str, person: ParticipantRow) -> bool:
    """Whether a reason holds the person's name (or given name), contact, or the contact's digits."""
    if any(form in reason for form in name_forms(person.name)):
        return True
    contact = (person.contact or "").strip()
    if not contact:
        return False
    if contact.lower() in reason.lower():
        return True
    digits = _digits(contact)[-11:]
    return len(digits) >= MIN_PHONE_DIGITS and digits in _digits(reason)


MIN_PHONE_DIGITS = 7


def erase_participant(
    ctx: ServiceContext,
    *,
    acting: str | None,
    participant_id: int,
    reason: str,
    same_name_village: bool = False,
    dry_run: bool = False,
    full_names: bool = False,
    purpose: str | None = None,
) -> Erasure:
    """Erase a person on request, every record of them; their opinions stay, under a pseudonym.

    The person is every living participant record with the same contact as `participant_id`'s (a
    phone's digits, an e-mail lower-cased), and with `same_name_village` every one with the same
    name and village too. Each record: name → pseudonym, contact, village and keyed match hash
    removed, its opinions' intake keys removed, its key destroyed (its sealed texts, and the
    feedback, replies, corrections and reasons on its opinions, read FORGOTTEN from then on),
    every copy in messages and delivery errors masked, an audit event in every consultation it
    took part in; and one access record for the erasure. Texts recorded before sealing stay (the
    chain holds them too): the result counts them.

    `dry_run` finds the records and writes nothing (with `full_names`, a coordinator's read with
    `purpose`, only the read's record).

    Raises:
        ValidationError: no reason, a reason naming the person (or giving their contact), already
            erased, full names without a dry run or without a purpose.
        PermissionDeniedError: the acting person is not a coordinator.
    """
    stated = required_text(reason, "--reason", MAX_PURPOSE_CHARS)
    if full_names and not dry_run:
        msg = "--names full is for --dry-run (the real run shows the pseudonyms left)"
        raise ValidationError(msg)
    why = checked_purpose(purpose, "--names full") if full_names else None

    def body(change: Change) -> Erasure:
        person = change.uow.participants.get(participant_id)
        if person.erased_at is not None:
            msg = f"participant {participant_id} was already erased"
            raise ValidationError(msg)
        found = change.uow.personal_data.same_person(participant_id, same_name_village=same_name_village)
        people = {pid: change.uow.participants.get(pid) for pid, _ in found}
        if any(_names_them(stated, p) for p in people.values()):
            msg = "--reason may not contain the participant's name or contact: it is kept in the audit trail"
            raise ValidationError(msg)
        theirs = {pid: change.uow.opinions.search(OpinionFilter(participant_id=pid)) for pid in people}
        records = tuple(
            ErasedRecord(
                pid,
                pseudonymise(people[pid].name),
                people[pid].village,
                len(theirs[pid]),
                by,
                people[pid].name if full_names else None,
            )
            for pid, by in found
        )
        ids = [r.participant_id for r in records]
        kept = change.uow.personal_data.unsealed_texts(ids)
        if dry_run:
            if why is not None:
                change.uow.personal_data.record_access(
                    actor_id=change.actor.id, at=change.now, what="erasure dry run", purpose=why, participant_ids=ids
                )
            return Erasure(records, dry_run=True, keys_destroyed=0, unsealed_texts=kept)
        in_consultations = {pid: sorted({o.consultation_id for o in theirs[pid]}) for pid in ids}
        change.consultations({c for cs in in_consultations.values() for c in cs})
        for pid in ids:
            for consultation_id in in_consultations[pid]:
                change.record(
                    consultation_id,
                    change.event(EventKind.PARTICIPANT_ERASED, payload={"participant_id": pid, "reason": stated}),
                )
        for record in records:
            change.uow.personal_data.erase_participant(
                record.participant_id, pseudonym=record.pseudonym, now=change.now
            )
        destroyed = change.uow.texts.destroy(ids)
        change.uow.personal_data.record_access(
            actor_id=change.actor.id, at=change.now, what="erasure", purpose=stated, participant_ids=ids
        )
        erased = tuple(replace(r, village="") for r in records)
        return Erasure(erased, dry_run=False, keys_destroyed=destroyed, unsealed_texts=kept)

    return run(
        ctx,
        acting=acting,
        action=Action.ERASE_PERSONAL_DATA,
        event="participant_erasure_dry_run" if dry_run else "participant_erased",
        body=body,
        describe=lambda e: {"participant_ids": e.participant_ids, "dry_run": e.dry_run},
    )
