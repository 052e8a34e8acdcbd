"""The workflow loader: the default file is valid, and every problem is reported with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultflow.domain.diagram import to_dot, to_mermaid
from consultflow.domain.errors import WorkflowInvalidError
from consultflow.domain.groups import DEFAULT_GROUPS
from consultflow.domain.labels import Label
from consultflow.domain.roles import Role
from consultflow.domain.vocabulary import EntryKind, Field, Outcome
from consultflow.domain.workflow import CloseRule, Deadline, ReminderRule, StateSpec, TransitionSpec
from consultflow.domain.workflow_loader import load_workflow_text
from tests.conftest import WORKFLOWS

DEFAULT = (WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8")


def problems_of(text: str) -> list[str]:
    with pytest.raises(WorkflowInvalidError) as info:
        load_workflow_text(text, "test.yaml")
    return info.value.problems


def test_default_workflow_is_valid_and_complete() -> None:
    """The shipped workflow loads, with the pilot's categories and channels in zh and en."""
    spec = load_workflow_text(DEFAULT)
    assert spec.key == "consultation-loop@1"
    assert spec.initial == "submitted"
    assert set(spec.terminal_states()) == {"adopted", "partly_adopted", "rejected", "withdrawn", "merged"}
    assert spec.categories["industry"].zh == "产业发展"
    assert spec.channels["open_air_meeting"].zh == "坝坝会"
    assert spec.transitions["reparticipate"].starts_round
    assert spec.transitions["adopt"].completes_cycle
    assert Role.PLANNER in spec.transitions["give_feedback"].roles
    assert set(spec.round_close) == set(spec.active_states())


def test_default_workflow_spec_is_the_one_written_in_its_file() -> None:
    """Every field of the shipped workflow, written out by hand: what opinions on it have always run on."""
    spec = load_workflow_text(DEFAULT)
    assert (spec.name, spec.version, spec.initial) == ("consultation-loop", 1, "submitted")
    assert spec.title == Label("参与—反馈—再参与—再反馈", "Participate, feedback, re-participate, re-feedback")
    c, p, e, s, a = Role.COORDINATOR, Role.PLANNER, Role.EXPERT, Role.SYSTEM, Role.PARTICIPANT
    assert spec.states == {
        "submitted": StateSpec("submitted", Label("已收集", "Submitted"), None, Deadline(c, 3.0)),
        "under_review": StateSpec("under_review", Label("研究办理中", "Under review"), None, Deadline(p, 7.0)),
        "feedback_given": StateSpec(
            "feedback_given", Label("已反馈待回应", "Feedback given"), None, Deadline(a, None, at_round_close=True)
        ),
        "adopted": StateSpec("adopted", Label("采纳", "Adopted"), Outcome.ADOPTED),
        "partly_adopted": StateSpec("partly_adopted", Label("部分采纳", "Partly adopted"), Outcome.PARTLY_ADOPTED),
        "rejected": StateSpec("rejected", Label("不予采纳", "Rejected"), Outcome.REJECTED),
        "withdrawn": StateSpec("withdrawn", Label("已撤回", "Withdrawn"), Outcome.WITHDRAWN),
        "merged": StateSpec("merged", Label("已合并", "Merged"), Outcome.MERGED),
    }
    assert list(spec.states) == ["submitted", "under_review", "feedback_given", *spec.terminal_states()]
    active = ("submitted", "under_review", "feedback_given")
    text, reason, stance, plan_ref = Field.TEXT, Field.REASON, Field.STANCE, Field.PLAN_REF
    feedback = EntryKind.FEEDBACK
    expected = [
        TransitionSpec("screen", Label("筛选受理", "Accept for review"), ("submitted",), "under_review",
                       frozenset({c, p, e}), optional=(text,)),
        TransitionSpec("give_feedback", Label("反馈", "Give feedback"), ("under_review",), "feedback_given",
                       frozenset({p}), required=(text,), completes_cycle=True, entry=feedback),
        TransitionSpec("reparticipate", Label("再参与", "Re-participate"), ("feedback_given",), "under_review",
                       frozenset({a, e, c}), required=(stance,), optional=(text,), starts_round=True,
                       entry=EntryKind.REPARTICIPATION),
        TransitionSpec("lapse", Label("逾期未回应", "No reply before round close"), ("feedback_given",),
                       "under_review", frozenset({s, c})),
        TransitionSpec("adopt", Label("采纳", "Adopt"), ("under_review",), "adopted", frozenset({p}),
                       required=(text, plan_ref), completes_cycle=True, entry=feedback),
        TransitionSpec("partly_adopt", Label("部分采纳", "Partly adopt"), ("under_review",), "partly_adopted",
                       frozenset({p}), required=(text, plan_ref), completes_cycle=True, entry=feedback),
        TransitionSpec("reject", Label("不予采纳", "Reject"), ("under_review",), "rejected", frozenset({p}),
                       required=(reason,), optional=(text,), completes_cycle=True, entry=feedback),
        TransitionSpec("withdraw", Label("撤回", "Withdraw"), active, "withdrawn", frozenset({e, c, a}),
                       optional=(reason,)),
        TransitionSpec("merge", Label("合并", "Merge into another opinion"), active, "merged", frozenset({p, c}),
                       required=(Field.MERGE_TARGET,), optional=(text,)),
    ]  # fmt: skip
    assert list(spec.transitions.values()) == expected
    assert list(spec.transitions) == [t.trigger for t in expected]
    assert spec.round_close == {
        "submitted": CloseRule("submitted", "carry_over"),
        "under_review": CloseRule("under_review", "carry_over"),
        "feedback_given": CloseRule("feedback_given", "fire", "lapse"),
    }
    assert spec.categories == {
        "industry": Label("产业发展", "Industry development"),
        "public_services": Label("公共服务配套", "Public services"),
        "environment_roads": Label("环境卫生与农村路网", "Environment, sanitation and rural roads"),
    }
    assert list(spec.channels) == [
        "villagers_assembly", "open_air_meeting", "lecture_hall", "online_survey", "feedback_point"
    ]  # fmt: skip
    assert spec.channels["villagers_assembly"] == Label("村民大会", "Villagers' assembly")
    assert spec.channels["feedback_point"] == Label("意见反馈点", "Feedback point")
    assert spec.reminders == (
        ReminderRule("screening_due", "submitted", c, (0.0,)),
        ReminderRule("feedback_due", "under_review", p, (-2.0, 0.0)),
        ReminderRule("feedback_overdue", "under_review", c, (1.0,), escalation=True),
        ReminderRule("reparticipation_open", "feedback_given", a, (-2.0,)),
    )
    assert spec.groups == DEFAULT_GROUPS


def test_typo_in_destination_is_reported_with_its_path() -> None:
    """A misspelt state names the transition entry, the unknown state and the states there are, and only that."""
    problems = problems_of(DEFAULT.replace("dest: adopted", "dest: adoptd"))
    states = "adopted, feedback_given, merged, partly_adopted, rejected, submitted, under_review, withdrawn"
    assert problems == [f"transitions[4].dest: unknown state 'adoptd'; states: {states}"]


def test_every_problem_is_reported_at_once() -> None:
    """Several mistakes come back together, each with its own path."""
    broken = DEFAULT.replace("roles: [planner]", "roles: [plannr]", 1).replace("version: 1", "version: zero")
    broken = broken.replace("required: [text]\n    completes_cycle", "required: [txt]\n    completes_cycle", 1)
    problems = problems_of(broken)
    assert any(p.startswith("version:") for p in problems)
    assert any("transitions[1].roles[0]: unknown role 'plannr'" in p for p in problems)
    assert any("transitions[1].required[0]: unknown field 'txt'" in p for p in problems)


NEW_FILE = """\
name: my-loop
version: 1
title: {zh: 测试, en: Test}
initial: submitted
states:
  - {name: submitted, label: {zh: 已收集, en: Submitted}}
  - {name: adopted, label: {zh: 采纳, en: Adopted}, outcome: adopted}
transitions:
  - trigger: adopt
    source: submitted
    dest: adoptd
"""


def test_a_new_file_hears_of_its_misspelt_destination_with_its_missing_keys() -> None:
    """Missing keys, a transition of the wrong shape and a misspelt destination are said together, without noise."""
    problems = problems_of(NEW_FILE)
    assert "transitions[0].dest: unknown state 'adoptd'; states: adopted, submitted" in problems
    assert "transitions[0].label: required, a label {zh: ..., en: ...}" in problems
    assert {"categories: required, a non-empty list", "channels: required, a non-empty list"} <= set(problems)
    assert not [p for p in problems if "unreachable" in p or "no path" in p]  # not the file's problem: its shape is
    head, _states, tail = NEW_FILE.partition("states:")
    without_states = problems_of(head + "transitions:" + tail.partition("transitions:")[2])
    assert "states: required, a non-empty list" in without_states
    assert not [p for p in without_states if "unknown state" in p]  # no state is known: naming one repeats that


def test_values_of_the_wrong_type_are_problems_naming_their_place_and_what_is_allowed() -> None:
    """A list or mapping where a name belongs, a number out of bounds, an empty list: each said with its path, at once."""
    broken = (
        DEFAULT.replace("dest: adopted", "dest: [adopted]")
        .replace("source: submitted\n", "source: [[submitted]]\n", 1)
        .replace("feedback_given: {fire: lapse}", "feedback_given: {fire: [lapse]}")
        .replace("deadline: {after_days: 7, owner: planner}", "deadline: {after_days: 99999, owner: planner}")
        .replace("required: [text]\n    completes_cycle", "required:\n    completes_cycle", 1)
    )
    problems = problems_of(broken)
    assert "transitions[4].dest: ['adopted'] is not of type 'string'; expected the name of a state" in problems
    assert "transitions[0].source[0]: ['submitted'] is not of type 'string'; expected the name of a state" in problems
    assert (
        "round_close.feedback_given.fire: ['lapse'] is not of type 'string'; expected the trigger of a transition"
        in (problems)
    )
    assert "states[1].deadline.after_days: expected a number of days from 0 to 3650" in problems
    assert "transitions[1].required: expected a list of field names" in problems
    assert not [p for p in problems if "unreachable" in p or "no path" in p or "unknown" in p]


def test_malformed_yaml_gives_a_line_number() -> None:
    """Broken YAML is one problem naming the line, not a parser traceback."""
    problems = problems_of("name: x\nstates: [\n")
    assert len(problems) == 1
    assert problems[0].startswith("line ")


def test_round_close_rule_must_cover_every_active_state() -> None:
    """A state without a round-close rule is refused: closing must never leave an opinion in limbo."""
    problems = problems_of(
        DEFAULT.replace("  submitted: carry_over          # not yet screened: waits in the next round\n", "")
    )
    assert any("no rule for state 'submitted'" in p for p in problems)


def test_round_close_trigger_must_allow_the_system_role() -> None:
    """A rule may only fire a trigger the system may fire, from the state it covers."""
    problems = problems_of(DEFAULT.replace("feedback_given: {fire: lapse}", "feedback_given: {fire: adopt}"))
    assert any("round_close.feedback_given.fire" in p for p in problems)


MINIMAL = """
name: tiny
version: 1
title: {zh: 小, en: Tiny}
initial: open
states:
  - {name: open, label: {zh: 开, en: Open}}
  - {name: stuck, label: {zh: 卡住, en: Stuck}}
  - {name: orphan, label: {zh: 孤立, en: Orphan}}
  - {name: done, label: {zh: 完成, en: Done}, outcome: adopted}
transitions:
  - {trigger: finish, label: {zh: 完成, en: Finish}, source: open, dest: done, roles: [planner]}
  - {trigger: park, label: {zh: 搁置, en: Park}, source: open, dest: stuck, roles: [planner]}
round_close: {open: carry_over, stuck: carry_over, orphan: carry_over}
categories: [{name: c, label: {zh: 类, en: C}}]
channels: [{name: m, label: {zh: 会, en: Meeting}}]
"""


def test_minimal_workflow_loads_once_its_graph_is_sound() -> None:
    """A small workflow of one's own loads when every state is reachable and can finish."""
    sound = MINIMAL.replace("  - {name: orphan, label: {zh: 孤立, en: Orphan}}\n", "").replace(
        ", orphan: carry_over", ""
    )
    sound = sound.replace("source: open, dest: done", "source: [open, stuck], dest: done")
    assert load_workflow_text(sound).key == "tiny@1"


def test_unreachable_and_dead_end_states_are_found() -> None:
    """A state nothing leads to, and one with no way to an outcome, are both problems."""
    problems = problems_of(MINIMAL)
    assert "states.orphan: unreachable from the initial state" in problems
    assert "states.stuck: no path from here to an outcome" in problems


def test_auditors_may_not_fire_transitions() -> None:
    """The auditor role reads only; a workflow giving it a trigger is refused."""
    problems = problems_of(DEFAULT.replace("roles: [coordinator, planner, expert]", "roles: [auditor]", 1))
    assert any("auditors read and never change" in p for p in problems)


def test_unknown_top_level_key_is_reported() -> None:
    """A misspelt section is not silently ignored."""
    problems = problems_of(DEFAULT + "\nreminder:\n  - x\n")
    assert any(p.startswith("reminder: unknown key") for p in problems)


def test_digest_changes_with_the_text() -> None:
    """An edited file is detectable even with the same name and version."""
    a = load_workflow_text(DEFAULT)
    b = load_workflow_text(DEFAULT + "\n# edited\n")
    assert a.digest != b.digest


def test_a_stored_copy_with_its_digest_loads_the_same_and_an_edited_one_is_checked_in_full() -> None:
    """The stored text, digest matching, gives the same spec; a copy edited in the database is validated again."""
    fresh = load_workflow_text(DEFAULT)
    stored = load_workflow_text(DEFAULT, "stored", stored_digest=fresh.digest)
    assert stored == fresh
    assert stored.transitions == fresh.transitions and stored.reminders == fresh.reminders
    broken = DEFAULT.replace("dest: under_review", "dest: [under_review]", 1)
    with pytest.raises(WorkflowInvalidError) as info:
        load_workflow_text(broken, "stored", stored_digest=fresh.digest)  # the digest no longer matches
    assert any("transitions" in p for p in info.value.problems)


def test_the_same_broken_text_in_two_files_names_each_file_and_a_good_one_loads_alike_again() -> None:
    """A coordinator copying a broken file is told of each copy by its own name, every time it is read."""
    broken = DEFAULT.replace("dest: adopted", "dest: adoptd")
    for _again in range(2):
        for name in ("县里的.yaml", "乡里的.yaml"):
            with pytest.raises(WorkflowInvalidError) as info:
                load_workflow_text(broken, name)
            assert info.value.source == name and str(info.value).startswith(f"{name}: 1 problem(s): ")
    assert load_workflow_text(DEFAULT, "a.yaml") == load_workflow_text(DEFAULT, "b.yaml") == load_workflow_text(DEFAULT)


def test_diagrams_cover_every_edge_with_labels() -> None:
    """DOT and Mermaid carry every transition from every source, and the Chinese labels."""
    spec = load_workflow_text(DEFAULT)
    dot, mermaid = to_dot(spec, "zh"), to_mermaid(spec, "en")
    edges = sum(len(t.sources) for t in spec.transitions.values())
    assert dot.count(" -> ") == edges + 1  # plus the start arrow
    assert mermaid.count(" --> ") == edges + 1 + len(spec.terminal_states())
    assert "采纳" in dot
    assert "Partly adopted" in mermaid


def test_workflow_files_in_repo_all_validate() -> None:
    """Every file shipped in workflows/ is valid."""
    files = sorted(Path(WORKFLOWS).glob("*.yaml"))
    assert files
    for path in files:
        load_workflow_text(path.read_text(encoding="utf-8"), str(path))
