"""A bulk fire writes, row for row, what firing the same triggers one at a time writes.

Bulk work is set-based (one UPDATE per group of opinions moved alike, one INSERT…SELECT per planned
reminder, entries and events in batches); a single transition takes the small path (reminders as
rows). Here the clock stands still, so the two paths' rows must agree in every column.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from consultflow.domain.clock import FixedClock
from consultflow.domain.vocabulary import Field
from consultflow.services import opinions
from consultflow.services.context import ServiceContext
from tests.conftest import START, engine_of
from tests.helpers import EXPERT, PLANNER, assert_loop_invariants, seed, submit

PER_PATH = 20  # more than the reminder store's set-based threshold

OPINION = "SELECT state, state_entered_at, current_round, rounds_count, outcome, last_seq, version, plan_ref FROM opinion WHERE id = :o"
REMINDERS = (
    "SELECT rule, offset_minutes, state, state_entered_at, recipient_role, escalation, due_at, send_at, status, "
    "round_no, closed_at, cancel_reason, created_at FROM reminder WHERE opinion_id = :o ORDER BY rule, offset_minutes, status"
)
ENTRIES = "SELECT opinion_seq, round_no, kind, stance, text, created_at FROM opinion_entry WHERE opinion_id = :o ORDER BY opinion_seq"
EVENTS = (
    'SELECT opinion_seq, kind, "trigger", from_state, to_state, round_no, completes_cycle, actor, role, at, payload '
    "FROM audit_event WHERE opinion_id = :o AND kind = 'transition' ORDER BY opinion_seq"
)


@pytest.fixture(name="clock")
def _still_clock() -> FixedClock:
    """Every change at the same moment, so rows written at different times compare whole."""
    return FixedClock(START)


def _profile(ctx: ServiceContext, opinion_id: int) -> tuple[Any, ...]:
    with engine_of(ctx).connect() as con:
        return tuple(
            tuple(tuple(row) for row in con.execute(text(sql), {"o": opinion_id}))
            for sql in (OPINION, REMINDERS, ENTRIES, EVENTS)
        )


def test_bulk_and_single_transitions_write_the_same_rows(ctx: ServiceContext) -> None:
    setup = seed(ctx)
    bulk = [submit(ctx, setup, f"批量意见{i}") for i in range(PER_PATH)]
    single = [submit(ctx, setup, f"单个意见{i}") for i in range(PER_PATH)]
    steps = [
        ("screen", EXPERT, {}),
        ("give_feedback", PLANNER, {Field.TEXT: "已研究，拟采纳"}),
        ("reparticipate", EXPERT, {Field.TEXT: "补充：东侧也要硬化", Field.STANCE: "revise"}),
    ]
    for trigger, who, fields in steps:
        opinions.fire_many(ctx, acting=who, requests=[opinions.FireRequest(i, trigger, fields) for i in bulk])
        for i in single:
            opinions.fire(ctx, acting=who, opinion_id=i, trigger=trigger, fields=fields)
    bulk_profiles = {_profile(ctx, i) for i in bulk}
    single_profiles = {_profile(ctx, i) for i in single}
    assert len(bulk_profiles) == 1, "opinions moved alike in bulk should have identical rows"
    assert bulk_profiles == single_profiles
    ((opinion,), reminders, entries, events) = bulk_profiles.pop()
    assert len(events) == len(steps)
    state, _at, round_no, rounds_count, outcome, last_seq, version, _ref = opinion
    assert (state, round_no, rounds_count, outcome) == ("under_review", 1, 1, None)
    assert last_seq == version == 2 + len(steps), "each change (submit, assign, each step) is one sequence and version"
    assert reminders and entries, "the steps should plan reminders and carry feedback and a reply"
    assert_loop_invariants(ctx, setup.consultation_id)
