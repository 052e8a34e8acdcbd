"""Registering the people who act (actors) and the people who speak (participants)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from consultflow.domain.accounts import AccountDraft, AccountKind
from consultflow.domain.document import Reread
from consultflow.domain.errors import NotFoundError, PermissionDeniedError, ValidationError
from consultflow.domain.groups import resolve_group
from consultflow.domain.identity import PORTAL_ACTOR, checked_login, group_for
from consultflow.domain.privacy import checked_contact, pseudonymise
from consultflow.domain.roles import (
    ASSIGNABLE_ROLES,
    Action,
    Role,
)
from consultflow.logconfig import get_logger
from consultflow.services.accounts import record_account_events
from consultflow.services.context import ServiceContext
from consultflow.services.inputs import language, required_text
from consultflow.services.participation import groups_of
from consultflow.services.personal_data import read_on_record
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import ParticipantRow, UnitOfWork

T = TypeVar("T")

log = get_logger(__name__)


@dataclass(frozen=True)
class ActorView:
    """A registered person; contact details are kept out of views unless asked for."""

    id: int
    name: str
    roles: tuple[str, ...]
    lang: str
    has_contact: bool
    created_at: datetime


@dataclass(frozen=True)
class ParticipantView:
    """A participant as listed."""

    id: int
    name: str
    village: str
    lang: str
    has_contact: bool
    contact: str | None
    created_at: datetime
    erased: bool = False
    group: str | None = None  # the kind of person (an id of the workflow's groups)


def add_actor(
    ctx: ServiceContext,
    *,
    acting: str | None,
    name: str,
    roles: Sequence[str],
    lang: str = "zh",
    contact: str | None = None,
    participant_id: int | None = None,
    login: str | None = None,
) -> ActorView:
    """Register a person who acts. The first person on a new database must be a coordinator.

    A participant-role actor (a villager using the tool themselves) is tied to the participant
    record they are: they act on that participant's opinions only.

    Raises:
        ValidationError: blank name, unknown role, name taken, a participant link without the role.
        PermissionDeniedError: the acting person is not a coordinator.
    """
    name = required_text(name, "name", 120)
    parsed: list[Role] = []
    for raw in roles:
        try:
            role = Role(raw)
        except ValueError:
            role = None
        if role not in ASSIGNABLE_ROLES:
            allowed = ", ".join(r.value for r in ASSIGNABLE_ROLES)
            msg = f"unknown role {raw!r}; allowed: {allowed}"
            raise ValidationError(msg)
        assert role is not None
        if role not in parsed:
            parsed.append(role)
    if not parsed:
        msg = "give at least one --role: " + ", ".join(r.value for r in ASSIGNABLE_ROLES)
        raise ValidationError(msg)

    def body(change: Change) -> ActorView:
        if change.acting_role is Role.SYSTEM and Role.COORDINATOR not in parsed:  # nobody registered yet
            msg = "the first person registered must be a coordinator (--role coordinator)"
            raise PermissionDeniedError(msg)
        if change.uow.actors.by_name(name) is not None:
            msg = f"an actor named {name!r} already exists; names identify people, pick another"
            raise ValidationError(msg)
        if participant_id is not None:
            if Role.PARTICIPANT not in parsed:
                msg = "--participant ties a participant-role actor to their record; add --role participant"
                raise ValidationError(msg)
            change.uow.participants.get(participant_id)  # it exists, or one clear line
        row = change.uow.actors.add(
            name=name,
            lang=language(lang),
            contact=checked_contact(contact),
            roles=parsed,
            now=change.now,
            participant_id=participant_id,
        )
        if login is not None:
            _bind(change.uow, row.id, parsed, checked_login(login))
        added = {"roles": [r.value for r in parsed]} | ({"login": login} if login is not None else {})
        draft = AccountDraft(AccountKind.ACTOR_ADDED, change.now, change.actor.name, row.name, added)
        record_account_events(change.uow, ctx.chain_key, draft)
        return ActorView(
            row.id, row.name, tuple(r.value for r in parsed), row.lang, row.contact is not None, change.now
        )

    return run(
        ctx,
        acting=acting,
        action=Action.ADD_ACTOR,
        event="actor_added",
        body=body,
        describe=lambda view: {"actor_id": view.id, "roles": list(view.roles)},
        first_person=True,
    )


def list_actors(ctx: ServiceContext) -> list[ActorView]:
    """Everyone registered, with their roles (not consultflow's own system actor and web portal)."""
    with ctx.uow() as uow:
        found = uow.actors.with_roles()
    return [
        ActorView(a.id, a.name, tuple(r.value for r in roles), a.lang, a.contact is not None, a.created_at)
        for a, roles in found
        if list(roles) != [Role.SYSTEM] and a.name != PORTAL_ACTOR
    ]


def add_participant(
    ctx: ServiceContext,
    *,
    acting: str | None,
    name: str,
    village: str,
    contact: str | None = None,
    lang: str = "zh",
    group: str | None = None,
    consultation_id: int | None = None,
) -> ParticipantView:
    """Register a participant (a villager, household or group whose opinions are recorded).

    `group` (an id or label) is named from the groups of `consultation_id`'s workflow, or of the
    default workflow without one.
    """
    name = required_text(name, "name", 120)
    village = required_text(village, "village/area", 120)
    chosen = resolve_group(group, groups_of(ctx, consultation_id)) if group is not None and group.strip() else None

    def body(change: Change) -> ParticipantView:
        row = change.uow.participants.add(
            name=name,
            village=village,
            contact=checked_contact(contact),
            lang=language(lang),
            created_by=change.actor.id,
            now=change.now,
        )
        row.group_id = chosen
        return _participant_view(row, with_contact=False, full_name=True)  # the registrar typed it

    return run(
        ctx,
        acting=acting,
        action=Action.ADD_PARTICIPANT,
        event="participant_added",
        body=body,
        describe=lambda view: {"participant_id": view.id},
    )


def list_participants(
    ctx: ServiceContext,
    *,
    acting: str | None = None,
    village: str | None = None,
    with_contact: bool = False,
    full_names: bool = False,
    purpose: str | None = None,
) -> list[ParticipantView]:
    """Participants, optionally of one village, under pseudonyms (张某某), held (see `use_participant_list`)."""
    return use_participant_list(
        ctx, list, acting=acting, village=village, with_contact=with_contact, full_names=full_names, purpose=purpose
    )


def use_participant_list(
    ctx: ServiceContext,
    use: Callable[[Reread[ParticipantView]], T],
    *,
    acting: str | None = None,
    village: str | None = None,
    with_contact: bool = False,
    full_names: bool = False,
    purpose: str | None = None,
) -> T:
    """Participants by id, optionally of one village, under pseudonyms (张某某), given to `use` as read.

    Full names and contacts are for a coordinator who states why; the read is then on record,
    written before `use` reads the first one. The list streams from the database on each pass.
    """

    def views(uow: UnitOfWork, *, full: bool) -> Reread[ParticipantView]:
        return Reread(
            lambda: (
                _participant_view(p, with_contact=with_contact, full_name=full)
                for p in uow.participants.listing(village)
            )
        )

    if not (with_contact or full_names):
        with ctx.reading() as uow:
            return use(views(uow, full=False))
    what = "participant list" + (" with contacts" if with_contact else " with full names")
    return read_on_record(
        ctx,
        acting=acting,
        what=what,
        purpose=purpose,
        shown=lambda uow: (p.id for p in uow.participants.listing(village)),
        read=lambda uow: use(views(uow, full=True)),
    )


def _participant_view(row: ParticipantRow, *, with_contact: bool, full_name: bool) -> ParticipantView:
    return ParticipantView(
        id=row.id,
        name=row.name if full_name or row.erased_at is not None else pseudonymise(row.name),
        village=row.village,
        lang=row.lang,
        has_contact=row.contact is not None,
        contact=row.contact if with_contact else None,
        created_at=row.created_at,
        erased=row.erased_at is not None,
        group=row.group_id,
    )


def bind_login(ctx: ServiceContext, *, acting: str | None, name: str, login: str) -> str:
    """Bind an actor to a PostgreSQL login and grant the login the group role that fits their roles.

    Returns the group granted.

    Raises:
        ValidationError: SQLite, a malformed login, or a login the server does not have.
        NotFoundError: no such actor.
        PermissionDeniedError: the acting person is not a coordinator, or their login may not grant.
    """
    checked_login(login)

    def body(change: Change) -> str:
        actor = change.uow.actors.by_name(name)
        if actor is None:
            msg = f"unknown actor {name!r}; register people with 'consultflow actor add'"
            raise NotFoundError(msg)
        return _bind(change.uow, actor.id, change.uow.actors.roles(actor.id), login)

    return run(
        ctx,
        acting=acting,
        action=Action.ADD_ACTOR,
        event="login_bound",
        body=body,
        describe=lambda group: {"bound_actor": name, "group": group},
    )


def _bind(uow: UnitOfWork, actor_id: int, roles: Sequence[Role], login: str) -> str:
    """Bind and grant in the caller's transaction; the group granted."""
    if uow.logins.session_login() is None:
        msg = "logins exist only on PostgreSQL; on SQLite, --as names who is acting"
        raise ValidationError(msg)
    if not uow.logins.exists(login):
        msg = (
            f"the database has no login {login!r}; create it first (consultflow keeps no passwords), "
            f"e.g. CREATE ROLE {login} LOGIN PASSWORD '…'"
        )
        raise ValidationError(msg)
    group = group_for(roles)
    uow.logins.bind(actor_id, login)
    uow.logins.grant(group, login)
    return group
