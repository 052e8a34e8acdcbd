"""The state machine: one `transitions.Machine` per workflow version, fired on each opinion.

A machine is built once per (name, version) and never attached to models: `add_model` is quadratic
and keeps strong references, so we fire `machine.events[trigger].trigger(opinion)` instead. The
machine owns the graph; this module adds the checks a person needs to hear about in plain words
(who may fire, which fields are missing) before the machine is asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from transitions import Machine, MachineError

from consultflow.domain.errors import InvalidTransitionError, ValidationError
from consultflow.domain.model import MAX_ID
from consultflow.domain.roles import Role, acting_role
from consultflow.domain.text import refuse_control_characters
from consultflow.domain.vocabulary import FIELD_MAX_CHARS, Field, Stance
from consultflow.domain.workflow import TransitionSpec, WorkflowSpec

FieldValue = str | int


class Stateful(Protocol):
    """Anything with a `state` the machine can read and set (an opinion row, a test double)."""

    state: str


@dataclass(frozen=True)
class PreparedTransition:
    """A transition checked against the current state, the actor's role and the given fields."""

    spec: TransitionSpec
    role: Role
    fields: Mapping[Field, FieldValue]
    source: str


@dataclass
class _Probe:
    """What the machine is fired on to learn where a (state, trigger) pair leads."""

    state: str


class WorkflowEngine:
    """Fires one workflow version's transitions on any number of opinions."""

    def __init__(self, spec: WorkflowSpec) -> None:
        self.spec = spec
        self._moves: dict[tuple[str, str], str] = {}
        self._machine = Machine(
            model=None,
            states=list(spec.states),
            transitions=[
                {"trigger": t.trigger, "source": list(t.sources), "dest": t.dest} for t in spec.transitions.values()
            ],
            initial=None,
            auto_transitions=False,
            send_event=False,
        )

    def allowed_triggers(self, state: str) -> list[str]:
        """Triggers the machine accepts from `state`."""
        return [t for t in self._machine.get_triggers(state) if t in self.spec.transitions]

    def triggers_for(self, state: str, role: Role) -> list[TransitionSpec]:
        """The transitions someone in `role` may fire from `state` (what a villager's page offers)."""
        return [
            self.spec.transitions[t] for t in self.allowed_triggers(state) if role in self.spec.transitions[t].roles
        ]

    def prepare(
        self,
        *,
        subject_name: str,
        state: str,
        trigger: str,
        actor_name: str,
        actor_roles: Iterable[Role],
        fields: Mapping[Field, object],
    ) -> PreparedTransition:
        """Check a trigger before anything is changed.

        Raises:
            InvalidTransitionError: unknown trigger, or not allowed from `state`.
            PermissionDeniedError: none of the actor's roles may fire it.
            ValidationError: a field is missing, not accepted, or malformed.
        """
        spec = self.spec.transitions.get(trigger)
        if spec is None:
            known = ", ".join(self.spec.transitions)
            msg = f"unknown trigger {trigger!r} in workflow {self.spec.key}; triggers: {known}"
            raise InvalidTransitionError(msg)
        if state not in spec.sources:
            allowed_now = ", ".join(self.allowed_triggers(state)) or "none (terminal state)"
            state_label = self.spec.states[state].label.both() if state in self.spec.states else "?"
            msg = (
                f"{subject_name} is in state {state!r} ({state_label}); trigger {trigger!r} "
                f"is not allowed from it; allowed now: {allowed_now}"
            )
            raise InvalidTransitionError(msg)
        role = acting_role(actor_name, actor_roles, spec.roles, f"fire {trigger!r}")
        cleaned = clean_fields(spec, fields)
        return PreparedTransition(spec=spec, role=role, fields=cleaned, source=state)

    def apply(self, subject: Stateful, prepared: PreparedTransition) -> str:
        """Move `subject` as the machine moves its state on the trigger, and return the new state.

        The machine is asked once per (state, trigger) pair and the answer kept: the spec declares
        no conditions or callbacks, so the move depends on nothing else, and a bulk fire of 80,000
        opinions asks it a handful of times instead of 80,000.

        Raises:
            InvalidTransitionError: the subject's state moved since `prepare`.
        """
        move = (subject.state, prepared.spec.trigger)
        dest = self._moves.get(move)
        if dest is None:
            probe = _Probe(subject.state)
            try:
                moved = self._machine.events[prepared.spec.trigger].trigger(probe)
            except MachineError:
                msg = f"trigger {prepared.spec.trigger!r} is not allowed from state {subject.state!r}"
                raise InvalidTransitionError(msg) from None
            if not moved:  # pragma: no cover - the spec declares no conditions, so this is a bug
                msg = f"trigger {prepared.spec.trigger!r} was refused by the machine"
                raise InvalidTransitionError(msg)
            dest = self._moves[move] = probe.state
        subject.state = dest
        return dest


def clean_fields(spec: TransitionSpec, given: Mapping[Field, object]) -> dict[Field, FieldValue]:
    """The trigger's fields, trimmed and typed; refuses missing, extra or malformed ones."""
    present = {f: v for f, v in given.items() if v is not None and str(v).strip() != ""}
    extra = [f for f in present if f not in spec.fields]
    if extra:
        takes = ", ".join(f.option for f in spec.fields) or "no options"
        bad = ", ".join(f.option for f in extra)
        msg = f"trigger {spec.trigger!r} does not take {bad}; it takes: {takes}"
        raise ValidationError(msg)
    missing = [f for f in spec.required if f not in present]
    if missing:
        need = ", ".join(f.option for f in spec.required)
        miss = ", ".join(f.option for f in missing)
        msg = f"trigger {spec.trigger!r} requires {need}; missing: {miss}"
        raise ValidationError(msg)
    out: dict[Field, FieldValue] = {}
    for f, value in present.items():
        out[f] = _typed(f, value)
    return out


def _typed(field: Field, value: object) -> FieldValue:
    if field is Field.MERGE_TARGET:
        try:
            target = int(str(value))
        except ValueError:
            target = 0
        if not 1 <= target <= MAX_ID:
            msg = f"{field.option} takes an opinion id (a number from 1 to {MAX_ID}), not {value!r}"
            raise ValidationError(msg)
        return target
    text = refuse_control_characters(str(value).strip(), field.option)
    limit = FIELD_MAX_CHARS[field]
    if len(text) > limit:
        msg = f"{field.option} is {len(text)} characters; at most {limit} are allowed"
        raise ValidationError(msg)
    if field is Field.STANCE:
        try:
            return Stance(text).value
        except ValueError:
            allowed = ", ".join(s.value for s in Stance)
            msg = f"{field.option} must be one of: {allowed} (not {text!r})"
            raise ValidationError(msg) from None
    return text
