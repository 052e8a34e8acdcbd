"""An opinion fires its own triggers: the machine's guards refuse before anything moves, its callback sets what entering means."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import pytest

from consultflow.domain.errors import (
    InvalidTransitionError,
    PermissionDeniedError,
    RoundStateError,
    ValidationError,
)
from consultflow.domain.machine import WorkflowEngine
from consultflow.domain.model import MovingOpinion
from consultflow.domain.opinion import Firing
from consultflow.domain.roles import Role
from consultflow.domain.vocabulary import EntryKind, Field
from consultflow.domain.workflow_loader import load_workflow_text
from tests.conftest import WORKFLOWS

TEXT = (WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8")
ENGINE = WorkflowEngine(load_workflow_text(TEXT))
SUBMITTED_AT = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
NOW = SUBMITTED_AT + timedelta(days=2)


def opinion(state: str = "under_review") -> MovingOpinion:
    """Opinion 7 in `state`, entered in round 1, three events so far, one cycle done."""
    return MovingOpinion(7, 1, 3, 4, 5, state, SUBMITTED_AT, 1, 1, None, None, None, 3)


def refuse(message: str, error: type[Exception] = PermissionDeniedError):
    def hook(*_: object) -> None:
        raise error(message)

    return hook


def firing(roles: list[Role], **hooks: object) -> Firing:
    """Someone with `roles` firing now, in round 2 unless `hooks` say otherwise."""
    return Firing(**{"actor_name": "王规划", "actor_roles": roles, "now": NOW, "round_no": lambda _: 2, **hooks})  # type: ignore[arg-type]


ADOPT = {Field.TEXT: "纳入规划", Field.PLAN_REF: "v2 §3"}


@pytest.mark.parametrize(
    ("trigger", "fields", "roles", "hooks", "error", "message"),
    [
        ("adoptt", ADOPT, [Role.PLANNER], {}, InvalidTransitionError, "unknown trigger 'adoptt'"),
        ("reparticipate", {Field.STANCE: "agree"}, [Role.EXPERT], {}, InvalidTransitionError, "not allowed from it"),
        ("adopt", ADOPT, [Role.EXPERT], {}, PermissionDeniedError, "may not fire 'adopt'"),
        ("adopt", {Field.TEXT: "纳入规划"}, [Role.PLANNER], {}, ValidationError, "missing: --plan-ref"),
        ("adopt", ADOPT, [Role.PLANNER], {"owner": refuse("not yours")}, PermissionDeniedError, "not yours"),
        (
            "adopt",
            ADOPT,
            [Role.PLANNER],
            {"round_no": refuse("no open round", RoundStateError)},
            RoundStateError,
            "no open round",
        ),
        (
            "merge",
            {Field.MERGE_TARGET: "9"},
            [Role.PLANNER],
            {"merge_target": refuse("--into 9: no such opinion", ValidationError)},
            ValidationError,
            "--into 9",
        ),
    ],
    ids=["unknown-trigger", "not-from-state", "role", "fields", "owner", "round", "merge-target"],
)
def test_a_refused_trigger_leaves_the_opinion_as_it_was(
    trigger: str,
    fields: dict[Field, object],
    roles: list[Role],
    hooks: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    """Whichever check refuses, the opinion keeps its state, sequence, round, cycles and entry time."""
    subject = opinion()
    before = asdict(subject)
    with pytest.raises(error, match=message):
        subject.fire(ENGINE, trigger, fields, firing(roles, **hooks))
    assert asdict(subject) == before


def test_refusals_come_in_the_order_a_person_fixes_them() -> None:
    """With everything wrong, each fix reveals the next refusal: state, role, fields, ownership, then the merge target."""
    owner, target = refuse("not yours"), refuse("--into 9: no such opinion", ValidationError)
    attempts = [
        ("adopted", [Role.EXPERT], {Field.PLAN_REF: "x"}, owner, InvalidTransitionError),
        ("under_review", [Role.EXPERT], {Field.PLAN_REF: "x"}, owner, PermissionDeniedError),
        ("under_review", [Role.PLANNER], {Field.PLAN_REF: "x"}, owner, ValidationError),
        ("under_review", [Role.PLANNER], {Field.MERGE_TARGET: "9"}, owner, PermissionDeniedError),
        ("under_review", [Role.PLANNER], {Field.MERGE_TARGET: "9"}, lambda *_: None, ValidationError),
    ]
    for state, roles, fields, owns, error in attempts:
        with pytest.raises(error):
            opinion(state).fire(ENGINE, "merge", fields, firing(roles, owner=owns, merge_target=target))


def test_entering_a_state_sets_its_columns_and_says_what_happened() -> None:
    """Adopting moves the opinion into round 2's outcome with one more cycle, its plan reference and a feedback entry."""
    subject = opinion()
    move = subject.fire(ENGINE, "adopt", {Field.TEXT: " 纳入规划 ", Field.PLAN_REF: "v2 §3"}, firing([Role.PLANNER]))
    assert (subject.state, subject.outcome, subject.plan_ref) == ("adopted", "adopted", "v2 §3")
    assert (subject.current_round, subject.rounds_count, subject.last_seq) == (2, 2, 4)
    assert subject.state_entered_at == NOW
    assert (move.trigger, move.from_state, move.to_state, move.seq, move.round_no) == (
        "adopt",
        "under_review",
        "adopted",
        4,
        2,
    )
    assert move.role is Role.PLANNER and move.entry is EntryKind.FEEDBACK and move.completes_cycle
    assert move.fields == {Field.TEXT: "纳入规划", Field.PLAN_REF: "v2 §3"}


def test_merging_records_the_target() -> None:
    """A merged opinion points at the one it was merged into, and is decided as merged without a cycle."""
    subject = opinion()
    move = subject.fire(ENGINE, "merge", {Field.MERGE_TARGET: "9"}, firing([Role.COORDINATOR]))
    assert (subject.state, subject.outcome, subject.merged_into_id, subject.rounds_count) == ("merged", "merged", 9, 1)
    assert move.entry is None and not move.completes_cycle


def test_a_workflow_without_the_move_is_refused_by_its_machine() -> None:
    """A workflow where withdrawing is only possible before feedback refuses it after, in plain words."""
    narrow = WorkflowEngine(
        load_workflow_text(
            TEXT.replace("name: consultation-loop", "name: narrow-loop").replace(
                'trigger: withdraw\n    label: {zh: 撤回, en: Withdraw}\n    source: "*"',
                "trigger: withdraw\n    label: {zh: 撤回, en: Withdraw}\n    source: [submitted, under_review]",
            )
        )
    )
    assert ENGINE.allowed_triggers("feedback_given") == ["reparticipate", "lapse", "withdraw", "merge"]
    subject = opinion("feedback_given")
    with pytest.raises(InvalidTransitionError) as info:
        subject.fire(narrow, "withdraw", {}, firing([Role.COORDINATOR]))
    assert str(info.value) == (
        "opinion 7 is in state 'feedback_given' (已反馈待回应 / Feedback given); trigger 'withdraw' "
        "is not allowed from it; allowed now: reparticipate, lapse, merge"
    )
    assert subject.state == "feedback_given"


def test_a_state_the_workflow_does_not_know_allows_nothing() -> None:
    """An opinion left in a state its workflow lacks is refused in plain words, not with an internal error."""
    with pytest.raises(InvalidTransitionError, match=r"state 'archived' \(\?\).*allowed now: none \(terminal state\)"):
        opinion("archived").fire(ENGINE, "withdraw", {}, firing([Role.COORDINATOR]))


def test_a_decided_opinion_allows_nothing() -> None:
    """An adopted opinion says it is in a terminal state."""
    with pytest.raises(InvalidTransitionError, match=r"allowed now: none \(terminal state\)"):
        opinion("adopted").fire(ENGINE, "withdraw", {}, firing([Role.COORDINATOR]))
