"""Fuzzed workflow files: the loader only ever answers with a spec or with WorkflowInvalidError."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consultflow.domain.errors import WorkflowInvalidError
from consultflow.domain.machine import WorkflowEngine
from consultflow.domain.reminders import plan_reminders
from consultflow.domain.workflow_loader import load_workflow_text
from tests.conftest import WORKFLOWS

DEFAULT_TEXT = (WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8")
DEFAULT = yaml.safe_load(DEFAULT_TEXT)
WHEN = datetime(2026, 3, 1, tzinfo=timezone.utc)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["submitted", "adopted", "planner", "*", "round_close", "text", "carry_over", "feedback"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(-3, 3), st.booleans()), inner, max_size=4),
    ),
    max_leaves=25,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the default workflow a value can be replaced."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(DEFAULT)


def _survives(text: str) -> None:
    try:
        load_workflow_text(text, "fuzz.yaml")
    except WorkflowInvalidError as exc:
        problems = exc.problems
    else:
        problems = []
    if problems:
        assert all(isinstance(p, str) and p for p in problems)
        return
    spec = load_workflow_text(text, "fuzz.yaml")
    engine = WorkflowEngine(spec)  # a spec that loads must also run
    for state in spec.states:
        engine.allowed_triggers(state)
        plan_reminders(spec, state, WHEN, WHEN)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(PATHS), value=values, drop=st.booleans())
def test_a_replaced_or_removed_value_never_crashes_the_loader(where: tuple[Any, ...], value: Any, drop: bool) -> None:
    """Any value at any place of a valid file, or its removal, gives a spec or a list of problems."""
    data = copy.deepcopy(DEFAULT)
    parent = data
    for step in where[:-1]:
        parent = parent[step]
    if drop and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    _survives(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_never_crashes_the_loader(text: str) -> None:
    """Arbitrary text is a spec or a list of problems."""
    _survives(text)


def test_known_crashers_are_problems_with_paths() -> None:
    """The shapes that once crashed it each come back as a problem naming the place."""
    cases = {
        "initial: submitted": "initial: {a: 1}",
        "    deadline: {after_days: 3, owner: coordinator}": "    deadline: {after_days: 99999999999, owner: coordinator}",
        "    source: submitted\n    dest: under_review\n    roles: [coordinator, planner, expert]": (
            "    source: [[submitted]]\n    dest: under_review\n    roles: [coordinator, planner, expert]"
        ),
    }
    for old, new in cases.items():
        assert old in DEFAULT_TEXT
        with pytest.raises(WorkflowInvalidError):
            load_workflow_text(DEFAULT_TEXT.replace(old, new, 1), "bad.yaml")
    deep = "name: x\nversion: 1\ntitle: " + "[" * 2000 + "]" * 2000
    with pytest.raises(WorkflowInvalidError, match="nested deeper"):
        load_workflow_text(deep, "deep.yaml")
    with pytest.raises(WorkflowInvalidError, match="key 1 is not text"):
        load_workflow_text(DEFAULT_TEXT + "\n1: one\n", "mixed.yaml")
