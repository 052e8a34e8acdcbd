"""Registered commands: people."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from consultflow.domain.roles import Action
from consultflow.services import (
    people,
    personal_data,
)
from consultflow.services.commands.core import (
    STAFF,
    Nothing,
    _roles,
    command,
)
from consultflow.services.context import ServiceContext
from consultflow.services.people import ActorView, ParticipantView
from consultflow.services.personal_data import ErasedRecord

__all__ = [
    "Actors",
    "AddActor",
    "AddParticipant",
    "BindLogin",
    "EraseParticipant",
    "Erased",
    "ErasedRecord",
    "ListParticipants",
    "LoginBound",
]

T = TypeVar("T")


@dataclass(frozen=True)
class AddActor:
    """Register a person who acts."""

    name: str
    roles: tuple[str, ...]
    lang: str = "zh"
    contact: str | None = None
    participant_id: int | None = None
    login: str | None = None  # a PostgreSQL login that proves them (the per-person model before the server)


@command("actor.add", "Register a person who acts, with their roles.", input=AddActor, output=ActorView,
         roles=_roles(Action.ADD_ACTOR), writes=True)  # fmt: skip
def _add_actor(ctx: ServiceContext, acting: str | None, given: AddActor) -> ActorView:
    return people.add_actor(
        ctx,
        acting=acting,
        name=given.name,
        roles=given.roles,
        lang=given.lang,
        contact=given.contact,
        participant_id=given.participant_id,
        login=given.login,
    )


@dataclass(frozen=True)
class Actors:
    """Everyone registered."""

    actors: tuple[ActorView, ...]


@command("actor.list", "People who act, with their roles.", input=Nothing, output=Actors, roles=STAFF, writes=False)
def _list_actors(ctx: ServiceContext, _acting: str | None, _given: Nothing) -> Actors:
    return Actors(tuple(people.list_actors(ctx)))


@dataclass(frozen=True)
class AddParticipant:
    """Register a villager (or a group) whose opinions are recorded."""

    name: str
    village: str
    contact: str | None = None
    lang: str = "zh"
    group: str | None = None  # the kind of person: an id or label of the workflow's groups
    consultation_id: int | None = None  # whose workflow's groups; default: the default workflow's


@command("participant.add", "Register a participant.", input=AddParticipant, output=ParticipantView,
         roles=_roles(Action.ADD_PARTICIPANT), writes=True)  # fmt: skip
def _add_participant(ctx: ServiceContext, acting: str | None, given: AddParticipant) -> ParticipantView:
    return people.add_participant(
        ctx, acting=acting, name=given.name, village=given.village, contact=given.contact, lang=given.lang,
        group=given.group, consultation_id=given.consultation_id,
    )  # fmt: skip


@dataclass(frozen=True)
class BindLogin:
    """Bind a person to the PostgreSQL login that proves them (the per-person model before the server)."""

    name: str
    login: str


@dataclass(frozen=True)
class LoginBound:
    """The login bound, and the group role it was granted."""

    actor: str
    login: str
    group: str


@command("actor.bind", "Bind a person to a PostgreSQL login, granted the group role that fits.", input=BindLogin,
         output=LoginBound, roles=_roles(Action.ADD_ACTOR), writes=True)  # fmt: skip
def _bind_login(ctx: ServiceContext, acting: str | None, given: BindLogin) -> LoginBound:
    group = people.bind_login(ctx, acting=acting, name=given.name, login=given.login)
    return LoginBound(given.name, given.login, group)


@dataclass(frozen=True)
class ListParticipants:
    """Participants (of one village), under pseudonyms unless a coordinator states why they read more."""

    village: str | None = None
    full_names: bool = False
    with_contact: bool = False
    purpose: str | None = None


@command("participant.list", "Participants under pseudonyms; full names and contacts on record (coordinators).",
         input=ListParticipants, output=ParticipantView, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _list_participants(
    ctx: ServiceContext, acting: str | None, given: ListParticipants, use: Callable[[Iterable[Any]], T]
) -> T:
    # A read of full names or contacts is put on record in the transaction that reads; the items
    # reach the person only once it has committed (the server's end line comes after the handler).
    return people.use_participant_list(
        ctx,
        use,
        acting=acting,
        village=given.village,
        with_contact=given.with_contact,
        full_names=given.full_names,
        purpose=given.purpose,
    )


@dataclass(frozen=True)
class EraseParticipant:
    """Erase a person's personal information on request: every record of them (see erase_participant)."""

    participant_id: int
    reason: str
    same_name_village: bool = False  # also records with the same name and village (not only the same contact)
    dry_run: bool = False  # list the records that would be erased; write nothing
    full_names: bool = False  # a dry run showing full names (with purpose; on record)
    purpose: str | None = None


@dataclass(frozen=True)
class Erased:
    """The participant asked about, the pseudonym their opinions stay under, and every record erased."""

    participant_id: int
    pseudonym: str
    records: tuple[ErasedRecord, ...] = ()
    dry_run: bool = False
    keys_destroyed: int = 0
    unsealed_texts: int = 0


@command("participant.erase", "Erase a person: every record of them; their texts forgotten, opinions stay.",
         input=EraseParticipant, output=Erased, roles=_roles(Action.ERASE_PERSONAL_DATA), writes=True)  # fmt: skip
def _erase_participant(ctx: ServiceContext, acting: str | None, given: EraseParticipant) -> Erased:
    done = personal_data.erase_participant(
        ctx,
        acting=acting,
        participant_id=given.participant_id,
        reason=given.reason,
        same_name_village=given.same_name_village,
        dry_run=given.dry_run,
        full_names=given.full_names,
        purpose=given.purpose,
    )
    return Erased(
        given.participant_id,
        next(r.pseudonym for r in done.records if r.participant_id == given.participant_id),
        done.records,
        done.dry_run,
        done.keys_destroyed,
        done.unsealed_texts,
    )
