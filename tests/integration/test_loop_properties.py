"""A hypothesis state machine drives people's operations through the services and checks the loop.

Whatever sequence of triggers, assignments, submissions and round closes people throw at a
consultation: an opinion's state is its last audit event's destination, its event sequence numbers
run 1..n unbroken, its rounds count equals the cycles its events record, a refused operation writes
nothing, and the chain verifies. Ownership holds too: a planner acts only on the opinions assigned
to them, a local expert only on those they recorded or whose participant they registered; anyone
else doing the same is refused and writes nothing. The machine counts what succeeded: a test run in which some kind
of operation was always refused proves nothing about it, and fails.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from consultflow.domain.errors import ConsultflowError, PermissionDeniedError
from consultflow.domain.vocabulary import Field
from consultflow.services import consultations, opinion_views, opinions, people, personal_data, rounds
from consultflow.services.context import ServiceContext
from tests.helpers import (
    COORD,
    EXPERT,
    PLANNER,
    VILLAGER,
    Setup,
    assert_loop_invariants,
    check_consistency,
    seed,
    snapshot,
    submit,
)

TRIGGERS = ["screen", "give_feedback", "reparticipate", "lapse", "adopt", "partly_adopt", "reject", "withdraw", "merge"]
FIELDS: dict[str, dict[Field, object]] = {
    "give_feedback": {Field.TEXT: "反馈"},
    "reparticipate": {Field.STANCE: "object"},
    "adopt": {Field.TEXT: "采纳", Field.PLAN_REF: "v2 §1"},
    "partly_adopt": {Field.TEXT: "部分", Field.PLAN_REF: "v2 §2"},
    "reject": {Field.REASON: "不可行"},
    "withdraw": {},
}
WHO = {"screen": EXPERT, "give_feedback": PLANNER, "reparticipate": EXPERT, "adopt": PLANNER, "reject": PLANNER}
PLANNER2, EXPERT2 = "陈规划", "周专家"
ACTORS = [COORD, PLANNER, EXPERT, VILLAGER, PLANNER2, EXPERT2]
PLANNER_TRIGGERS = {"give_feedback", "adopt", "reject"}
NEXT = {
    "submitted": ["screen"],
    "under_review": ["give_feedback", "adopt", "reject"],
    "feedback_given": ["reparticipate"],
}


class LoopMachine(RuleBasedStateMachine):
    """One consultation per run, on the database of the test that runs it."""

    ctx: ClassVar[ServiceContext]
    succeeded_by_kind: ClassVar[dict[str, int]]

    def __init__(self) -> None:
        super().__init__()
        ctx = self.ctx
        if not people.list_actors(ctx):
            self.setup = seed(ctx)
            people.add_actor(ctx, acting=COORD, name=PLANNER2, roles=["planner"])
            people.add_actor(ctx, acting=COORD, name=EXPERT2, roles=["expert"])
        else:
            c = consultations.create_consultation(ctx, acting=COORD, title="随机", area="片区")
            rounds.open_round(ctx, acting=COORD, consultation_id=c.id)
            self.setup = Setup(c.id, 1)
        self.ids = [submit(ctx, self.setup), submit(ctx, self.setup)]
        self.planner_of = dict.fromkeys(self.ids, PLANNER)

    def _owner(self, trigger: str, opinion_id: int) -> str:
        return self.planner_of[opinion_id] if trigger in PLANNER_TRIGGERS else WHO[trigger]

    def _stranger(self, trigger: str, opinion_id: int) -> str:
        if trigger in PLANNER_TRIGGERS:
            return PLANNER2 if self.planner_of[opinion_id] == PLANNER else PLANNER
        return EXPERT2  # recorded nothing, registered nobody

    def _try(self, kind: str, action: str, operation: object) -> None:
        """Run one operation; a refusal must be a consultflow error that wrote nothing."""
        before = snapshot(self.ctx)
        try:
            assert callable(operation)
            operation()
        except ConsultflowError:
            assert snapshot(self.ctx) == before, f"refused {action} wrote something"
        else:
            self.succeeded_by_kind[kind] = self.succeeded_by_kind.get(kind, 0) + 1

    @rule(
        index=st.integers(0, 50),
        trigger=st.sampled_from(TRIGGERS),
        actor=st.sampled_from(ACTORS),
        into=st.integers(0, 50),
    )
    def fire_anything(self, index: int, trigger: str, actor: str, into: int) -> None:
        """Anyone fires any trigger on any opinion: often refused, never harmful."""
        fields = dict(FIELDS.get(trigger, {}))
        if trigger == "merge":
            fields[Field.MERGE_TARGET] = self.ids[into % len(self.ids)]
        opinion_id = self.ids[index % len(self.ids)]
        self._try(
            "fire_anything",
            trigger,
            lambda: opinions.fire(self.ctx, acting=actor, opinion_id=opinion_id, trigger=trigger, fields=fields),
        )

    def _turn(self, index: int, choice: int) -> tuple[int, str] | None:
        """An opinion and a trigger its state allows next, or None when it is decided (nobody's turn)."""
        opinion_id = self.ids[index % len(self.ids)]
        choices = NEXT.get(opinion_views.show_opinion(self.ctx, opinion_id)[0].state)
        return (opinion_id, choices[choice % len(choices)]) if choices else None

    def _round_open(self) -> bool:
        return rounds.round_status(self.ctx, self.setup.consultation_id).open_round is not None

    @precondition(_round_open)
    @rule(index=st.integers(0, 50), choice=st.integers(0, 2))
    def fire_as_the_right_person(self, index: int, choice: int) -> None:
        """In an open round, the person whose turn it is fires a trigger the opinion's state allows: never refused.

        (Between rounds every fire is refused: fire_anything and fire_on_someone_elses_opinion try it.)
        """
        turn = self._turn(index, choice)
        if turn is None:
            return
        opinion_id, trigger = turn
        opinions.fire(
            self.ctx,
            acting=self._owner(trigger, opinion_id),
            opinion_id=opinion_id,
            trigger=trigger,
            fields=FIELDS.get(trigger, {}),
        )
        self.succeeded_by_kind["fire_as_the_right_person"] = (
            self.succeeded_by_kind.get("fire_as_the_right_person", 0) + 1
        )

    @rule(index=st.integers(0, 50), choice=st.integers(0, 2))
    def fire_on_someone_elses_opinion(self, index: int, choice: int) -> None:
        """The same role, but not the opinion's holder: always refused, naming the holder's role, writing nothing."""
        turn = self._turn(index, choice)
        if turn is None:
            return
        opinion_id, trigger = turn
        before = snapshot(self.ctx)
        stranger = self._stranger(trigger, opinion_id)
        refusal: ConsultflowError | None = None
        try:
            opinions.fire(
                self.ctx, acting=stranger, opinion_id=opinion_id, trigger=trigger, fields=FIELDS.get(trigger, {})
            )
        except ConsultflowError as exc:
            refusal = exc
        assert refusal is not None, f"{stranger} fired {trigger} on opinion {opinion_id}, which is not theirs"
        assert snapshot(self.ctx) == before
        if isinstance(refusal, PermissionDeniedError):  # otherwise refused earlier, e.g. between rounds
            said = str(refusal)
            assert "another planner" in said or "another local expert" in said, said
            assert self.planner_of[opinion_id] not in said.split(":", 1)[1]  # the holder is not named
            self.succeeded_by_kind["refused_stranger"] = self.succeeded_by_kind.get("refused_stranger", 0) + 1

    @rule(indexes=st.lists(st.integers(0, 50), min_size=1, max_size=4), planner=st.sampled_from([PLANNER, PLANNER2]))
    def assign(self, indexes: list[int], planner: str) -> None:
        """A coordinator hands opinions to a planner, or reassigns them (refused if any is decided)."""
        chosen = [self.ids[i % len(self.ids)] for i in indexes]
        before = self.succeeded_by_kind.get("assign", 0)
        self._try(
            "assign", "assign", lambda: opinions.assign(self.ctx, acting=COORD, opinion_ids=chosen, planner=planner)
        )
        if self.succeeded_by_kind.get("assign", 0) > before:
            self.planner_of.update(dict.fromkeys(chosen, planner))

    @rule()
    def submit_one(self) -> None:
        """A local expert records another opinion (refused between rounds)."""
        before = len(self.ids)
        self._try("submit", "submit", lambda: self.ids.append(submit(self.ctx, self.setup)))
        assert len(self.ids) in (before, before + 1)
        self.planner_of.setdefault(self.ids[-1], PLANNER)

    @rule(reader=st.sampled_from([COORD, PLANNER, EXPERT]), contacts=st.booleans())
    def read_personal_data(self, reader: str, contacts: bool) -> None:
        """Someone asks for full names or contacts: a coordinator's read is on record, anyone else's is refused."""
        before = len(personal_data.access_records(self.ctx))
        kind = "read_personal_data"
        self._try(
            kind,
            kind,
            lambda: people.list_participants(
                self.ctx, acting=reader, with_contact=contacts, full_names=not contacts, purpose="核对"
            ),
        )
        after = personal_data.access_records(self.ctx)
        assert len(after) == before + (reader == COORD)
        if reader == COORD:
            assert (after[0].actor, after[0].purpose) == (COORD, "核对")

    @rule()
    def close_round(self) -> None:
        """The coordinator closes the round (refused when none is open)."""
        self._try(
            "close",
            "close",
            lambda: rounds.close_round(self.ctx, acting=COORD, consultation_id=self.setup.consultation_id),
        )

    @precondition(lambda self: rounds.round_status(self.ctx, self.setup.consultation_id).open_round is None)
    @rule()
    def open_round(self) -> None:
        """Between rounds, the coordinator opens the next one (a second open round is refused in test_loop)."""
        self._try(
            "open",
            "open",
            lambda: rounds.open_round(self.ctx, acting=COORD, consultation_id=self.setup.consultation_id),
        )

    @invariant()
    def columns_agree_with_events(self) -> None:
        """State, rounds count and sequence numbers equal what the audit events say, after every step."""
        assert check_consistency(self.ctx, self.setup.consultation_id) == []

    def teardown(self) -> None:
        """The whole set of invariants at the end of every run."""
        assert_loop_invariants(self.ctx, self.setup.consultation_id)


@pytest.mark.long
def test_the_loop_keeps_its_invariants_under_any_sequence_of_operations(ctx: ServiceContext) -> None:
    """Random runs of people's operations on SQLite and PostgreSQL never break the loop."""
    LoopMachine.ctx = ctx
    LoopMachine.succeeded_by_kind = {}
    run_state_machine_as_test(
        LoopMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    # Refusals prove nothing on their own: every deliberate kind of operation must also have succeeded.
    # (fire_anything is the chaos rule: anyone, any trigger; it is there to be refused harmlessly.)
    kinds = {"fire_as_the_right_person", "assign", "submit", "close", "open", "refused_stranger", "read_personal_data"}
    never = kinds - LoopMachine.succeeded_by_kind.keys()
    assert not never, f"never succeeded: {sorted(never)}; succeeded: {LoopMachine.succeeded_by_kind}"
