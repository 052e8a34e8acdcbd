"""An opinion's own behaviour: firing a trigger moves it and says what happened.

`MovingOpinion.fire(engine, trigger, fields, firing)` runs the opinion through its workflow's
machine (consultflow.domain.machine): the machine refuses a trigger the state does not allow, its
guards refuse the wrong role, bad fields and what the service's hooks refuse (ownership, a round
that is not open, a bad merge target), and its callback on entering the new state sets the
entering columns. What happened comes back as a `Move`; the service then only does what needs the
store: seal free text, write the rows, entries and audit events of a batch as a set.

A `Firing` is one actor firing triggers on a batch of opinions: who acts, when, the hooks, and
the role and field checks already made (they cannot differ between opinions, so a bulk fire of
80,000 opinions makes them a handful of times).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from consultflow.domain.roles import Role
from consultflow.domain.vocabulary import EntryKind, Field

if TYPE_CHECKING:
    from consultflow.domain.model import MovingOpinion
    from consultflow.domain.workflow import TransitionSpec

FieldValue = str | int


@dataclass(frozen=True, slots=True)
class Move:
    """What firing one trigger did to one opinion (it has moved: a refusal raises instead)."""

    trigger: str
    from_state: str
    to_state: str
    seq: int  # the opinion's sequence number of this move
    round_no: int
    role: Role  # the role the actor fired it under
    fields: Mapping[Field, FieldValue]  # cleaned; one mapping shared by every move with the same fields
    entry: EntryKind | None  # the feedback or reply the move carries, if any
    completes_cycle: bool


def _no_check(*_: object) -> None:
    """A hook that refuses nothing."""


@dataclass(eq=False)
class Firing:
    """One actor firing triggers on a batch of opinions: what the machine's guards consult.

    Hooks (what needs the store; each refuses by raising the error that says why):
        owner(opinion, role, what): the opinion is the actor's to act on in `role`.
        round_no(opinion): the number of the open round of the opinion's consultation.
        merge_target(opinion, target_id): the opinion may be merged into `target_id`.
    """

    actor_name: str
    actor_roles: Sequence[Role]
    now: datetime
    round_no: Callable[[MovingOpinion], int]
    owner: Callable[[MovingOpinion, Role, str], None] = _no_check
    merge_target: Callable[[MovingOpinion, int], None] = _no_check
    # Checks already made, by id of the transition (and of the given fields): each value keeps
    # what its key's ids name, so an id reused by a new object is not taken for the old one.
    roles: dict[int, tuple[TransitionSpec, Role]] = field(default_factory=dict)
    cleaned: dict[tuple[int, int], tuple[TransitionSpec, Mapping[Field, object], dict[Field, FieldValue]]] = field(
        default_factory=dict
    )
