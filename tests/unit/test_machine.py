"""The engine: one machine per workflow, clear refusals, and the graph's invariants under hypothesis."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consultflow.domain.errors import InvalidTransitionError, PermissionDeniedError, ValidationError
from consultflow.domain.machine import WorkflowEngine
from consultflow.domain.roles import Role
from consultflow.domain.vocabulary import Field
from consultflow.domain.workflow_loader import load_workflow_text
from tests.conftest import WORKFLOWS

SPEC = load_workflow_text((WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8"))
ENGINE = WorkflowEngine(SPEC)


@dataclass
class Subject:
    state: str


def prepare(state: str, trigger: str, roles: list[Role], **fields: object):
    return ENGINE.prepare(
        subject_name="opinion 1",
        state=state,
        trigger=trigger,
        actor_name="王规划",
        actor_roles=roles,
        fields={Field(k): v for k, v in fields.items()},
    )


def test_refusal_names_state_and_allowed_triggers() -> None:
    """A trigger not allowed from the state says where the opinion is and what it may do."""
    with pytest.raises(InvalidTransitionError) as info:
        prepare("feedback_given", "adopt", [Role.PLANNER], text="x", plan_ref="v2")
    message = str(info.value)
    assert "state 'feedback_given'" in message
    assert "allowed now: reparticipate, lapse, withdraw, merge" in message


def test_unknown_trigger_lists_the_workflows_triggers() -> None:
    """A misspelt trigger lists the real ones."""
    with pytest.raises(InvalidTransitionError, match="unknown trigger 'adoptt'.*adopt, partly_adopt"):
        prepare("under_review", "adoptt", [Role.PLANNER])


def test_role_that_may_not_fire_is_refused_with_allowed_roles() -> None:
    """A local expert cannot adopt; the message names who can."""
    with pytest.raises(PermissionDeniedError, match="allowed roles: planner"):
        prepare("under_review", "adopt", [Role.EXPERT], text="x", plan_ref="v2")


def test_missing_required_field_names_the_option() -> None:
    """Adopting without a plan reference says which option is missing."""
    with pytest.raises(ValidationError, match="missing: --plan-ref"):
        prepare("under_review", "adopt", [Role.PLANNER], text="已采纳")


def test_field_the_trigger_does_not_take_is_refused() -> None:
    """An option that means nothing for the trigger is not silently dropped."""
    with pytest.raises(ValidationError, match="does not take --plan-ref"):
        prepare("submitted", "screen", [Role.EXPERT], plan_ref="v2")


def test_stance_must_be_known() -> None:
    """Re-participation takes agree, object or revise only."""
    with pytest.raises(ValidationError, match="agree, object, revise"):
        prepare("feedback_given", "reparticipate", [Role.EXPERT], stance="maybe")


def test_person_with_several_roles_acts_under_the_first_allowed() -> None:
    """The audit trail records one definite role."""
    prepared = prepare("submitted", "screen", [Role.AUDITOR, Role.PLANNER, Role.EXPERT])
    assert prepared.role is Role.PLANNER


def test_apply_moves_the_subject_through_the_machine() -> None:
    """The machine sets the new state on the object it is given."""
    subject = Subject("under_review")
    prepared = prepare("under_review", "give_feedback", [Role.PLANNER], text="已研究")
    assert ENGINE.apply(subject, prepared) == "feedback_given"
    assert subject.state == "feedback_given"


ALL_TRIGGERS = sorted(SPEC.transitions)


@given(st.lists(st.sampled_from(ALL_TRIGGERS), max_size=40))
def test_random_trigger_sequences_respect_the_graph(triggers: list[str]) -> None:
    """Whatever is fired, the state only moves along declared edges and never leaves an outcome."""
    subject = Subject(SPEC.initial)
    for trigger in triggers:
        spec = SPEC.transitions[trigger]
        before = subject.state
        allowed = before in spec.sources
        assert allowed == (trigger in ENGINE.allowed_triggers(before))
        if not allowed:
            with pytest.raises(InvalidTransitionError):
                prepare(before, trigger, [Role.SYSTEM, Role.PLANNER, Role.COORDINATOR, Role.EXPERT])
            assert subject.state == before
            continue
        prepared = ENGINE.prepare(
            subject_name="o",
            state=before,
            trigger=trigger,
            actor_name="a",
            actor_roles=list(spec.roles),
            fields={f: {Field.STANCE: "agree", Field.MERGE_TARGET: "2"}.get(f, "text") for f in spec.required},
        )
        ENGINE.apply(subject, prepared)
        assert subject.state == spec.dest
        assert not SPEC.states[before].terminal
