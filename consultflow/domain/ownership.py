"""Whose opinion is it: who may act on an opinion beyond what their role allows in general.

A role says which triggers someone may fire; ownership says on which opinions. A participant acts
on their own opinions only; a local expert on the opinions they recorded or of the participants
they registered (whom they represent at assemblies); a planner on the opinions assigned to them. A
coordinator, and consultflow itself, act on any. Refusals name the owner's role, never the owner,
so a refusal tells nobody who holds an opinion.
"""

from __future__ import annotations

from dataclasses import dataclass

from consultflow.domain.errors import PermissionDeniedError
from consultflow.domain.roles import Role


@dataclass(frozen=True)
class Acting:
    """The person acting, as ownership sees them."""

    actor_id: int
    name: str
    role: Role
    participant_id: int | None  # the participant a participant-role actor is


@dataclass(frozen=True)
class Holding:
    """What ties an opinion to people."""

    opinion_id: int
    participant_id: int
    recorded_by_id: int
    assigned_planner_id: int | None
    participant_registered_by_id: int


def check_owner(acting: Acting, held: Holding, what: str) -> None:
    """Refuse `acting` doing `what` to an opinion that is not theirs to act on.

    Raises:
        PermissionDeniedError: naming the role that holds the opinion, not the person.
    """
    oid = held.opinion_id
    if acting.role in (Role.COORDINATOR, Role.SYSTEM):
        return
    if acting.role is Role.PARTICIPANT:
        if acting.participant_id is None:
            msg = (
                f"{acting.name} may not {what} opinion {oid}: they are not tied to a participant record "
                "(a coordinator registers them with 'actor add NAME --role participant --participant ID')"
            )
            raise PermissionDeniedError(msg)
        if held.participant_id != acting.participant_id:
            msg = f"{acting.name} may not {what} opinion {oid}: it is another participant's opinion"
            raise PermissionDeniedError(msg)
        return
    if acting.role is Role.EXPERT:
        if acting.actor_id not in (held.recorded_by_id, held.participant_registered_by_id):
            msg = (
                f"{acting.name} may not {what} opinion {oid}: it was recorded by another local expert "
                "for a participant they do not represent"
            )
            raise PermissionDeniedError(msg)
        return
    if acting.role is Role.PLANNER:
        if held.assigned_planner_id is None:
            msg = (
                f"{acting.name} may not {what} opinion {oid}: it is not assigned to a planner yet; "
                f"a coordinator assigns it with 'consultflow opinion assign {oid} --to NAME'"
            )
            raise PermissionDeniedError(msg)
        if held.assigned_planner_id != acting.actor_id:
            msg = (
                f"{acting.name} may not {what} opinion {oid}: it is assigned to another planner; "
                "a coordinator may reassign it"
            )
            raise PermissionDeniedError(msg)
        return
    msg = f"{acting.name} may not {what} opinion {oid} as {acting.role.value}"
    raise PermissionDeniedError(msg)


def check_submitter(acting: Acting, participant_id: int) -> None:
    """A participant-role actor submits only as the participant they are.

    Raises:
        PermissionDeniedError: a participant submitting for someone else.
    """
    if acting.role is Role.PARTICIPANT and participant_id != acting.participant_id:
        msg = f"{acting.name} may submit opinions only as their own participant record, not for another participant"
        raise PermissionDeniedError(msg)
