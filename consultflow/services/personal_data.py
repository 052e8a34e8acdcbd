"""Personal information on record: every read of full names or contacts, and erasure on request.

China's Personal Information Protection Law (个人信息保护法) asks that access to personal
information be limited, recorded and erasable. Here only coordinators see full names and contacts,
each such read states its purpose and is written down (who, when, what, which participants) in the
same transaction that reads, and a participant can be erased while the audit chain, which never
holds a name or a contact, still verifies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from consultflow.domain.audit import EventKind
from consultflow.domain.errors import ValidationError
from consultflow.domain.model import AccessRecord, OpinionFilter
from consultflow.domain.privacy import pseudonymise
from consultflow.domain.roles import Action
from consultflow.services.context import ServiceContext
from consultflow.services.inputs import required_text
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import UnitOfWork

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


def erase_participant(ctx: ServiceContext, *, acting: str | None, participant_id: int, reason: str) -> str:
    """Erase a participant's name, contact and village on request; their opinions stay, under a pseudonym.

    The erasure is an audit event in every consultation the participant took part in; the reason
    goes into the chain, so it may not name the participant. Returns the pseudonym kept.

    Raises:
        ValidationError: no reason, a reason holding the name or contact, or already erased.
        PermissionDeniedError: the acting person is not a coordinator.
    """
    stated = required_text(reason, "--reason", MAX_PURPOSE_CHARS)

    def body(change: Change) -> str:
        person = change.uow.actors.participant(participant_id)
        if person.erased_at is not None:
            msg = f"participant {participant_id} was already erased"
            raise ValidationError(msg)
        personal = [v for v in (person.name, person.contact) if v]
        if any(v in stated for v in personal):
            msg = "--reason may not contain the participant's name or contact: it is kept in the audit trail"
            raise ValidationError(msg)
        theirs = change.uow.opinions.search(OpinionFilter(participant_id=participant_id))
        consultation_ids = sorted({o.consultation_id for o in theirs})
        change.consultations(consultation_ids)
        for consultation_id in consultation_ids:
            change.record(
                consultation_id,
                change.event(
                    EventKind.PARTICIPANT_ERASED, payload={"participant_id": participant_id, "reason": stated}
                ),
            )
        pseudonym = pseudonymise(person.name)
        change.uow.personal_data.erase_participant(participant_id, pseudonym=pseudonym, now=change.now)
        change.uow.personal_data.record_access(
            actor_id=change.actor.id, at=change.now, what="erasure", purpose=stated, participant_ids=[participant_id]
        )
        return pseudonym

    return run(
        ctx,
        acting=acting,
        action=Action.ERASE_PERSONAL_DATA,
        event="participant_erased",
        body=body,
        describe=lambda _p: {"participant_id": participant_id},
    )
