"""The engine: one machine per workflow, clear refusals, and the graph's invariants under hypothesis."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consultflow.domain.errors import InvalidTransitionError, PermissionDeniedError, ValidationError
from consultflow.domain.machine import WorkflowEngine
from consultflow.domain.model import MovingOpinion
from consultflow.domain.opinion import Firing, Move
from consultflow.domain.roles import Role
from consultflow.domain.vocabulary import Field
from consultflow.domain.workflow_loader import load_workflow_text
from tests.conftest import WORKFLOWS

SPEC = load_workflow_text((WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8"))
ENGINE = WorkflowEngine(SPEC)
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def opinion(state: str) -> MovingOpinion:
    """Opinion 1 in `state`, in round 1, moved once (when it was submitted)."""
    return MovingOpinion(1, 1, 1, 1, None, state, NOW, 1, 0, None, None, None, 1)


def firing(roles: list[Role], name: str = "王规划") -> Firing:
    return Firing(actor_name=name, actor_roles=roles, now=NOW, round_no=lambda _: 1)


def fire(state: str, trigger: str, roles: list[Role], **fields: object) -> Move:
    return opinion(state).fire(ENGINE, trigger, {Field(k): v for k, v in fields.items()}, firing(roles))


def test_refusal_names_state_and_allowed_triggers() -> None:
    """A trigger not allowed from the state says where the opinion is and what it may do."""
    with pytest.raises(InvalidTransitionError) as info:
        fire("feedback_given", "adopt", [Role.PLANNER], text="x", plan_ref="v2")
    message = str(info.value)
    assert "opinion 1 is in state 'feedback_given'" in message
    assert "trigger 'adopt' is not allowed from it" in message
    assert "allowed now: reparticipate, lapse, withdraw, merge" in message


def test_unknown_trigger_lists_the_workflows_triggers() -> None:
    """A misspelt trigger lists the real ones."""
    with pytest.raises(InvalidTransitionError, match="unknown trigger 'adoptt'.*adopt, partly_adopt"):
        fire("under_review", "adoptt", [Role.PLANNER])


def test_role_that_may_not_fire_is_refused_with_allowed_roles() -> None:
    """A local expert cannot adopt; the message names who can."""
    with pytest.raises(PermissionDeniedError, match="allowed roles: planner"):
        fire("under_review", "adopt", [Role.EXPERT], text="x", plan_ref="v2")


def test_missing_required_field_names_the_option() -> None:
    """Adopting without a plan reference says which option is missing."""
    with pytest.raises(ValidationError, match="missing: --plan-ref"):
        fire("under_review", "adopt", [Role.PLANNER], text="已采纳")


def test_field_the_trigger_does_not_take_is_refused() -> None:
    """An option that means nothing for the trigger is not silently dropped."""
    with pytest.raises(ValidationError, match="does not take --plan-ref"):
        fire("submitted", "screen", [Role.EXPERT], plan_ref="v2")


def test_stance_must_be_known() -> None:
    """Re-participation takes agree, object or revise only."""
    with pytest.raises(ValidationError, match="agree, object, revise"):
        fire("feedback_given", "reparticipate", [Role.EXPERT], stance="maybe")


def test_person_with_several_roles_acts_under_the_first_allowed() -> None:
    """The audit trail records one definite role."""
    move = fire("submitted", "screen", [Role.AUDITOR, Role.PLANNER, Role.EXPERT])
    assert move.role is Role.PLANNER


def test_fire_moves_the_opinion_through_the_machine() -> None:
    """The machine sets the new state on the opinion it is given, and the move says so."""
    subject = opinion("under_review")
    move = subject.fire(ENGINE, "give_feedback", {Field.TEXT: " 已研究 "}, firing([Role.PLANNER]))
    assert subject.state == "feedback_given"
    assert (move.from_state, move.to_state, move.fields) == ("under_review", "feedback_given", {Field.TEXT: "已研究"})


ALL_TRIGGERS = sorted(SPEC.transitions)
EVERYONE = [Role.SYSTEM, Role.PLANNER, Role.COORDINATOR, Role.EXPERT]


@given(st.lists(st.sampled_from(ALL_TRIGGERS), max_size=40))
def test_random_trigger_sequences_respect_the_graph(triggers: list[str]) -> None:
    """Whatever is fired, the state only moves along declared edges and never leaves an outcome."""
    subject = opinion(SPEC.initial)
    for trigger in triggers:
        spec = SPEC.transitions[trigger]
        before, seq, rounds = subject.state, subject.last_seq, subject.rounds_count
        allowed = before in spec.sources
        assert allowed == (trigger in ENGINE.allowed_triggers(before))
        if not allowed:
            with pytest.raises(InvalidTransitionError):
                subject.fire(ENGINE, trigger, {}, firing(EVERYONE))
            assert (subject.state, subject.last_seq, subject.rounds_count) == (before, seq, rounds)
            continue
        fields = {f: {Field.STANCE: "agree", Field.MERGE_TARGET: "2"}.get(f, "text") for f in spec.required}
        move = subject.fire(ENGINE, trigger, fields, firing(list(spec.roles)))
        assert subject.state == spec.dest == move.to_state
        assert subject.last_seq == move.seq == seq + 1
        assert subject.rounds_count == rounds + int(spec.completes_cycle)
        assert not SPEC.states[before].terminal
