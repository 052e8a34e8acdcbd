"""A bulk fire writes, row for row, what firing the same triggers one at a time writes.

Bulk work is set-based (one UPDATE per group of opinions moved alike, one INSERT…SELECT per planned
reminder, entries and events in batches); a single transition takes the small path (reminders as
rows). Here the clock stands still, so the two paths' rows must agree in every column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import text

from consultflow.domain.clock import FixedClock
from consultflow.domain.sealing import is_sealed
from consultflow.domain.vocabulary import Field
from consultflow.services import opinions
from consultflow.services.context import ServiceContext
from tests.conftest import START, sql_uow
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
    """The opinion's rows; texts opened (each is sealed with a fresh nonce, so their stored bytes differ)."""
    with sql_uow(ctx) as uow:

        def opened(value: object) -> object:
            if isinstance(value, str) and value.startswith("{"):
                return uow.texts.open_payload(value)
            return uow.texts.open(value) if isinstance(value, str) and is_sealed(value) else value

        con = uow.session.connection()
        return tuple(
            tuple(tuple(opened(v) for v in row) for row in con.execute(text(sql), {"o": opinion_id}))
            for sql in (OPINION, REMINDERS, ENTRIES, EVENTS)
        )


STEPS: list[tuple[str, str, Mapping[Field, object]]] = [
    ("screen", EXPERT, {}),
    ("give_feedback", PLANNER, {Field.TEXT: "已研究，拟采纳"}),
    ("reparticipate", EXPERT, {Field.TEXT: "补充：东侧也要硬化", Field.STANCE: "revise"}),
]


def test_bulk_and_single_transitions_write_the_same_rows(ctx: ServiceContext) -> None:
    """Moving opinions in bulk writes, row for row, what moving them one at a time writes."""
    _bulk_equals_single(ctx, lambda ids, trigger, fields: [opinions.FireRequest(i, trigger, fields) for i in ids])


@pytest.mark.parametrize("asked", ["in id order", "in another order"])
def test_a_fire_over_several_batches_writes_what_single_transitions_write(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, asked: str
) -> None:
    """Batches of 6 here (2,000 in use): ids in order go batch by batch as given, others sorted first."""
    monkeypatch.setattr(opinions, "FIRE_BATCH", 6)

    def requests(ids: list[int], trigger: str, fields: Mapping[Field, object]) -> opinions.SameTrigger:
        return opinions.SameTrigger(ids if asked == "in id order" else ids[::-1], trigger, fields)

    _bulk_equals_single(ctx, requests)


def _bulk_equals_single(
    ctx: ServiceContext,
    requests: Callable[[list[int], str, Mapping[Field, object]], Sequence[opinions.FireRequest]],
) -> None:
    setup = seed(ctx)
    bulk = [submit(ctx, setup, f"批量意见{i}") for i in range(PER_PATH)]
    single = [submit(ctx, setup, f"单个意见{i}") for i in range(PER_PATH)]
    for trigger, who, fields in STEPS:
        asked = requests(bulk, trigger, fields)
        done = opinions.fire_many(ctx, acting=who, requests=asked)
        assert [r.opinion_id for r in done] == [r.opinion_id for r in asked], "results come in the order asked"
        for i in single:
            opinions.fire(ctx, acting=who, opinion_id=i, trigger=trigger, fields=fields)
    bulk_profiles = {_profile(ctx, i) for i in bulk}
    single_profiles = {_profile(ctx, i) for i in single}
    assert len(bulk_profiles) == 1, "opinions moved alike in bulk should have identical rows"
    assert bulk_profiles == single_profiles
    ((opinion,), reminders, entries, events) = bulk_profiles.pop()
    assert len(events) == len(STEPS)
    state, _at, round_no, rounds_count, outcome, last_seq, version, _ref = opinion
    assert (state, round_no, rounds_count, outcome) == ("under_review", 1, 1, None)
    assert last_seq == version == 2 + len(STEPS), "each change (submit, assign, each step) is one sequence and version"
    assert reminders and entries, "the steps should plan reminders and carry feedback and a reply"
    assert_loop_invariants(ctx, setup.consultation_id)
