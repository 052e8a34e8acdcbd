"""The state machine: one `transitions.Machine` per workflow version, holding the workflow's rules.

The machine is what the rules are: the graph, each transition's guards and its callback on
entering. Firing a trigger on an opinion (`WorkflowEngine.fire`, or `MovingOpinion.fire`):

- an unknown trigger is refused naming the workflow's triggers; a trigger the opinion's state
  does not allow is the machine's own refusal (its MachineError), said in plain words with the
  state's label and the triggers allowed now;
- then the transition's guards, in this order, each refusing by raising the error that says why,
  so a refused opinion is left as it was: the actor's role may fire it (PermissionDeniedError);
  the fields are complete and well-formed (ValidationError); the hooks the service supplies for
  what needs the store (`Firing`: the opinion is the actor's, its round is open, a merge target
  exists in the same consultation and is still open);
- the callback on entering the new state sets what `consultflow.domain.entering` defines
  (state_entered_at, current_round, rounds_count, outcome, last_seq), and plan_ref / merged_into
  from the fields. A round close compiles the same definitions into one set-based UPDATE.

A machine is built once per (name, version) and never attached to models: `add_model` is quadratic
and keeps strong references, so each opinion is fired with `machine.events[trigger].trigger(...)`.
The role and field checks cannot differ between opinions, so the batch's `Firing` remembers them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from transitions import Machine, MachineError

from consultflow.domain.entering import Entering, apply_entering, entering
from consultflow.domain.errors import InvalidTransitionError, ValidationError
from consultflow.domain.model import MAX_ID
from consultflow.domain.opinion import FieldValue, Firing, Move
from consultflow.domain.roles import Role, acting_role
from consultflow.domain.text import refuse_control_characters
from consultflow.domain.vocabulary import FIELD_MAX_CHARS, Field, Stance
from consultflow.domain.workflow import TransitionSpec, WorkflowSpec

if TYPE_CHECKING:
    from consultflow.domain.model import MovingOpinion


class _Step:
    """One firing in progress: what the guards found, for the callback on entering and the `Move`."""

    __slots__ = ("cleaned", "firing", "given", "opinion", "role", "round_no", "spec")

    def __init__(
        self, opinion: MovingOpinion, spec: TransitionSpec, given: Mapping[Field, object], firing: Firing
    ) -> None:
        self.opinion, self.spec, self.given, self.firing = opinion, spec, given, firing
        self.role: Role | None = None
        self.cleaned: dict[Field, FieldValue] = {}
        self.round_no = 0


# The guards, in the order they are asked. Each returns True or raises the error that says why.


def _role_may_fire(step: _Step) -> bool:
    """The actor has a role that may fire the trigger (the first such role, as the audit records it)."""
    spec, firing = step.spec, step.firing
    found = firing.roles.get(id(spec))
    if found is None or found[0] is not spec:
        role = acting_role(firing.actor_name, firing.actor_roles, spec.roles, f"fire {spec.trigger!r}")
        found = firing.roles[id(spec)] = (spec, role)
    step.role = found[1]
    return True


def _fields_complete(step: _Step) -> bool:
    """The trigger's fields are all given, none extra, each well-formed."""
    spec, given, firing = step.spec, step.given, step.firing
    key = (id(spec), id(given))
    found = firing.cleaned.get(key)
    if found is None or found[0] is not spec or found[1] is not given:
        found = firing.cleaned[key] = (spec, given, clean_fields(spec, given))
    step.cleaned = found[2]
    return True


def _actor_holds_it(step: _Step) -> bool:
    """The opinion is the actor's to act on (the service's ownership hook)."""
    assert step.role is not None, "the role guard ran first"
    step.firing.owner(step.opinion, step.role, f"fire {step.spec.trigger!r} on")
    return True


def _round_is_open(step: _Step) -> bool:
    """The opinion's consultation has an open round to move it in (the service's hook)."""
    step.round_no = step.firing.round_no(step.opinion)
    return True


def _merge_target_is_open(step: _Step) -> bool:
    """A merge target is another open opinion of the same consultation (the service's hook)."""
    target = step.cleaned.get(Field.MERGE_TARGET)
    if target is not None:
        step.firing.merge_target(step.opinion, int(target))
    return True


_GUARDS = [_role_may_fire, _fields_complete, _actor_holds_it, _round_is_open]


def _enter(effect: Entering, step: _Step) -> None:
    """The callback on entering `effect.dest`: the entering columns, then the fields' columns."""
    opinion = step.opinion
    apply_entering(opinion, effect, step.round_no, step.firing.now)
    if Field.PLAN_REF in step.cleaned:
        opinion.plan_ref = str(step.cleaned[Field.PLAN_REF])
    if Field.MERGE_TARGET in step.cleaned:
        opinion.merged_into_id = int(step.cleaned[Field.MERGE_TARGET])


class WorkflowEngine:
    """Fires one workflow version's transitions on any number of opinions."""

    def __init__(self, spec: WorkflowSpec) -> None:
        self.spec = spec
        self._machine = Machine(
            model=None,
            states=list(spec.states),
            transitions=[
                {
                    "trigger": t.trigger,
                    "source": source,
                    "dest": t.dest,
                    "conditions": [*_GUARDS, _merge_target_is_open] if Field.MERGE_TARGET in t.fields else _GUARDS,
                    "after": partial(_enter, entering(spec, t.trigger, source)),
                }
                for t in spec.transitions.values()
                for source in t.sources
            ],
            initial=None,
            auto_transitions=False,
            send_event=False,  # guards and callbacks get the `_Step` the trigger is given
            queued=False,
        )

    def allowed_triggers(self, state: str) -> list[str]:
        """Triggers the machine accepts from `state`."""
        return [t for t in self._machine.get_triggers(state) if t in self.spec.transitions]

    def triggers_for(self, state: str, role: Role) -> list[TransitionSpec]:
        """The transitions someone in `role` may fire from `state` (what a villager's page offers)."""
        return [
            self.spec.transitions[t] for t in self.allowed_triggers(state) if role in self.spec.transitions[t].roles
        ]

    def fire(self, opinion: MovingOpinion, trigger: str, fields: Mapping[Field, object], firing: Firing) -> Move:
        """Move `opinion` along `trigger` through the machine: guards first, then the callback on entering.

        Raises:
            InvalidTransitionError: unknown trigger, or not allowed from the opinion's state.
            PermissionDeniedError: none of the actor's roles may fire it, or the opinion is not theirs.
            ValidationError: a field is missing, not accepted, or malformed; a bad merge target.
            ConsultflowError: whatever the firing's other hooks refuse with.
        """
        event = self._machine.events.get(trigger)
        spec = self.spec.transitions.get(trigger)
        if event is None or spec is None:
            known = ", ".join(self.spec.transitions)
            msg = f"unknown trigger {trigger!r} in workflow {self.spec.key}; triggers: {known}"
            raise InvalidTransitionError(msg)
        from_state = sys.intern(opinion.state)  # one copy of the name, however many moves hold it
        step = _Step(opinion, spec, fields, firing)
        moved = False
        refused = from_state not in self._machine.states  # a state the machine does not know allows nothing
        if not refused:
            try:
                moved = event.trigger(opinion, step)
            except MachineError:  # the machine's own refusal: no such move from this state
                refused = True
        if refused:
            raise self._not_allowed(opinion.id, from_state, trigger)
        if not moved or step.role is None:  # pragma: no cover - every guard passes or raises, so this is a bug
            msg = f"trigger {trigger!r} was refused by the machine"
            raise InvalidTransitionError(msg)
        return Move(
            trigger=spec.trigger,
            from_state=from_state,
            to_state=opinion.state,
            seq=opinion.last_seq,
            round_no=step.round_no,
            role=step.role,
            fields=step.cleaned,
            entry=spec.entry,
            completes_cycle=spec.completes_cycle,
        )

    def _not_allowed(self, opinion_id: int, state: str, trigger: str) -> InvalidTransitionError:
        """The machine's refusal in plain words: where the opinion is and what it may do now."""
        allowed_now = ", ".join(self.allowed_triggers(state)) or "none (terminal state)"
        state_label = self.spec.states[state].label.both() if state in self.spec.states else "?"
        msg = (
            f"opinion {opinion_id} is in state {state!r} ({state_label}); trigger {trigger!r} "
            f"is not allowed from it; allowed now: {allowed_now}"
        )
        return InvalidTransitionError(msg)


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
