"""What entering a state means for an opinion, defined once.

Firing a trigger applies it to one opinion: each transition of a workflow's machine has an
`Entering` computed here when the machine is built, and its callback on entering the new state is
`apply_entering` (consultflow.domain.machine). A round close compiles the same `Entering` values
into one set-based UPDATE in the store. Both paths read this definition, so they cannot drift
apart, and a test compares the rows each writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from consultflow.domain.vocabulary import EntryKind
from consultflow.domain.workflow import WorkflowSpec


@dataclass(frozen=True)
class Entering:
    """Moving along one transition from one source state: the columns it sets besides `state`."""

    trigger: str
    source: str
    dest: str
    outcome: str | None
    rounds_increment: int
    entry: EntryKind | None


class OpinionColumns(Protocol):
    """The maintained columns of an opinion that entering a state changes."""

    state: str
    state_entered_at: datetime
    current_round: int
    rounds_count: int
    outcome: str | None
    last_seq: int


def entering(spec: WorkflowSpec, trigger: str, source: str) -> Entering:
    """The effect of firing `trigger` on an opinion in `source`."""
    transition = spec.transitions[trigger]
    outcome = spec.states[transition.dest].outcome
    return Entering(
        trigger=trigger,
        source=source,
        dest=transition.dest,
        outcome=outcome.value if outcome else None,
        rounds_increment=int(transition.completes_cycle),
        entry=transition.entry,
    )


def round_close_effects(spec: WorkflowSpec) -> dict[str, Entering | None]:
    """For each state a round close touches: the transition it fires, or None to carry it over."""
    effects: dict[str, Entering | None] = {}
    for state, rule in spec.round_close.items():
        effects[state] = entering(spec, rule.trigger, state) if rule.trigger is not None else None
    return effects


def apply_entering(opinion: OpinionColumns, effect: Entering, round_no: int, now: datetime) -> int:
    """Set the columns entering `effect.dest` changes (the machine has set `state`); returns the new seq.

    The machine's callback on entering a state, for one opinion at a time.
    """
    if opinion.state != effect.dest:  # pragma: no cover - the machine moved it, so this is a bug
        msg = f"opinion is in {opinion.state!r}, expected {effect.dest!r}"
        raise AssertionError(msg)
    opinion.state_entered_at = now
    opinion.current_round = round_no
    opinion.rounds_count += effect.rounds_increment
    opinion.outcome = effect.outcome
    opinion.last_seq += 1
    return opinion.last_seq
