"""Hypothesis drives random operations through the services and checks the loop's invariants.

Whatever sequence of triggers, round closes and submissions people throw at a consultation:
an opinion's state is its last audit event's destination, its event sequence numbers run 1..n
unbroken, its rounds count equals the cycles its events record, and a refused operation
writes nothing at all.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consultflow.domain.errors import ConsultflowError
from consultflow.domain.vocabulary import Field
from consultflow.services import consultations, opinions, people, rounds
from consultflow.services.context import ServiceContext
from tests.helpers import COORD, EXPERT, PLANNER, VILLAGER, Setup, assert_loop_invariants, seed, snapshot, submit

TRIGGERS = ["screen", "give_feedback", "reparticipate", "lapse", "adopt", "partly_adopt", "reject", "withdraw", "merge"]
FIELDS = {
    "give_feedback": {Field.TEXT: "反馈"},
    "reparticipate": {Field.STANCE: "object"},
    "adopt": {Field.TEXT: "采纳", Field.PLAN_REF: "v2 §1"},
    "partly_adopt": {Field.TEXT: "部分", Field.PLAN_REF: "v2 §2"},
    "reject": {Field.REASON: "不可行"},
}
ACTORS = [COORD, PLANNER, EXPERT, VILLAGER]

operation = st.one_of(
    st.tuples(
        st.just("fire"), st.integers(0, 3), st.sampled_from(TRIGGERS), st.sampled_from(ACTORS), st.integers(0, 3)
    ),
    st.tuples(st.just("close")),
    st.tuples(st.just("open")),
    st.tuples(st.just("submit")),
)


def _setup(ctx: ServiceContext) -> Setup:
    if not people.list_actors(ctx):
        return seed(ctx)
    c = consultations.create_consultation(ctx, acting=COORD, title="随机", area="片区")
    rounds.open_round(ctx, acting=COORD, consultation_id=c.id)
    return Setup(c.id, 1)


def _apply(ctx: ServiceContext, setup: Setup, ids: list[int], op: tuple[object, ...]) -> None:
    if op[0] == "close":
        rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    elif op[0] == "open":
        rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    elif op[0] == "submit":
        ids.append(submit(ctx, setup))
    else:
        _, index, trigger, actor, target = op
        assert (
            isinstance(index, int) and isinstance(target, int) and isinstance(trigger, str) and isinstance(actor, str)
        )
        fields: dict[Field, object] = dict(FIELDS.get(trigger, {}))
        if trigger == "merge":
            fields[Field.MERGE_TARGET] = ids[target % len(ids)]
        opinions.fire(ctx, acting=actor, opinion_id=ids[index % len(ids)], trigger=trigger, fields=fields)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(ops=st.lists(operation, min_size=1, max_size=30))
def test_random_operations_keep_the_loop_invariants(ctx: ServiceContext, ops: list[tuple[object, ...]]) -> None:
    """State, sequence numbers and rounds counts always agree with the audit events."""
    setup = _setup(ctx)
    ids = [submit(ctx, setup), submit(ctx, setup)]
    for op in ops:
        before = snapshot(ctx)
        try:
            _apply(ctx, setup, ids, op)
        except ConsultflowError:
            assert snapshot(ctx) == before, f"refused {op} wrote something"
    assert_loop_invariants(ctx, setup.consultation_id)
