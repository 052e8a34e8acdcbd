"""The use cases on the fake unit of work: the pipeline's rules, in milliseconds and without a database."""

from __future__ import annotations

import pytest

from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import ConflictError, InvalidTransitionError, PermissionDeniedError, ValidationError
from consultflow.domain.vocabulary import Field
from consultflow.services import consultations, opinions, people, pipeline, rounds
from consultflow.services.context import ServiceContext
from tests.conftest import START, WORKFLOWS
from tests.fakes import FakeDatabase
from tests.helpers import COORD, EXPERT, PLANNER


@pytest.fixture(name="fake")
def _fake() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture(name="ctx")
def _ctx(fake: FakeDatabase) -> ServiceContext:
    """People, a participant and a consultation with round 1 open, on the fake database."""
    ctx = ServiceContext(database=fake, workflows_dir=WORKFLOWS, clock=FixedClock(START))
    people.add_actor(ctx, acting=None, name=COORD, roles=["coordinator"])
    people.add_actor(ctx, acting=COORD, name=PLANNER, roles=["planner"])
    people.add_actor(ctx, acting=COORD, name=EXPERT, roles=["expert"])
    people.add_participant(ctx, acting=EXPERT, name="张秀英", village="青龙村")
    consultations.create_consultation(ctx, acting=COORD, title="片区规划", area="试点片区")
    rounds.open_round(ctx, acting=COORD, consultation_id=1)
    return ctx


def _submit(ctx: ServiceContext, n: int = 1) -> list[int]:
    items = [opinions.NewOpinion(1, "industry", "villagers_assembly", f"意见 {i}") for i in range(n)]
    ids = [v.id for v in opinions.submit_many(ctx, acting=EXPERT, consultation_id=1, items=items)]
    opinions.assign(ctx, acting=COORD, opinion_ids=ids, planner=PLANNER)
    return ids


def test_the_loop_runs_on_the_fake_and_the_chain_verifies(ctx: ServiceContext, fake: FakeDatabase) -> None:
    """Submit, screen, feedback, close, adopt: states, cycles, entries and the hash chain come out right."""
    (oid,) = _submit(ctx)
    opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "已研究"})
    plan = rounds.close_round(ctx, acting=COORD, consultation_id=1)
    assert [(m.action, m.to_state, m.opinions) for m in plan.moves] == [("lapse", "under_review", 1)]
    rounds.open_round(ctx, acting=COORD, consultation_id=1)
    done = opinions.fire(
        ctx, acting=PLANNER, opinion_id=oid, trigger="adopt", fields={Field.TEXT: "采纳", Field.PLAN_REF: "§1"}
    )
    # submitted, assigned, screened, feedback, lapsed at the close, adopted: six events, two completed cycles
    assert (done.to_state, done.rounds_count, done.round_no, done.seq) == ("adopted", 2, 2, 6)
    assert [(e.kind, e.round_no) for e in fake.tables.entries] == [("feedback", 1), ("feedback", 2)]
    assert fake.verify_chain(1)


def test_a_refused_use_case_writes_nothing(ctx: ServiceContext, fake: FakeDatabase) -> None:
    """A wrong role, a wrong state or one bad item in a batch leaves every table as it was."""
    ids = _submit(ctx, 3)
    opinions.fire(ctx, acting=EXPERT, opinion_id=ids[0], trigger="screen", fields={})
    before = fake.commits, repr(fake.tables)
    with pytest.raises(PermissionDeniedError):
        opinions.fire(ctx, acting=EXPERT, opinion_id=ids[0], trigger="give_feedback", fields={Field.TEXT: "x"})
    with pytest.raises(InvalidTransitionError):
        opinions.fire_many(
            ctx,
            acting=EXPERT,
            requests=[opinions.FireRequest(ids[1], "screen", {}), opinions.FireRequest(ids[2], "reparticipate", {})],
        )
    with pytest.raises(ValidationError, match="unknown category"):
        opinions.submit_many(
            ctx,
            acting=EXPERT,
            consultation_id=1,
            items=[
                opinions.NewOpinion(1, "industry", "villagers_assembly", "好"),
                opinions.NewOpinion(1, "nope", "villagers_assembly", "坏"),
            ],
        )
    assert (fake.commits, repr(fake.tables)) == before


def test_locks_are_taken_consultations_in_id_order_before_any_opinion(ctx: ServiceContext, fake: FakeDatabase) -> None:
    """A bulk fire across two consultations, asked in reverse order, locks 1 then 2, then the opinions."""
    first = _submit(ctx)[0]
    consultations.create_consultation(ctx, acting=COORD, title="第二片区", area="片区二")
    rounds.open_round(ctx, acting=COORD, consultation_id=2)
    item = opinions.NewOpinion(1, "industry", "villagers_assembly", "第二片区的意见")
    second = opinions.submit_many(ctx, acting=EXPERT, consultation_id=2, items=[item])[0].id
    fake.lock_log.clear()
    requests = [opinions.FireRequest(second, "screen", {}), opinions.FireRequest(first, "screen", {})]
    opinions.fire_many(ctx, acting=EXPERT, requests=requests)
    (locks,) = fake.lock_log
    assert locks == [("consultation", (1,)), ("consultation", (2,)), ("opinions", (second, first))]


def test_conflicts_are_retried_from_the_start_then_reported(
    ctx: ServiceContext, fake: FakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two conflicting commits are retried and the third succeeds once; endless conflicts write nothing."""
    monkeypatch.setattr(pipeline, "_BACKOFF_BASE_S", 0.0)
    (oid,) = _submit(ctx)
    fake.conflicts_to_raise = 2
    result = opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    assert result.seq == 3  # submitted, assigned, then this: run again from the start, the event was written once
    assert sum(1 for e in fake.tables.events if e.opinion_id == oid) == 3
    fake.conflicts_to_raise = pipeline.MAX_ATTEMPTS
    before = repr(fake.tables)
    with pytest.raises(ConflictError, match="run the same command again"):
        opinions.fire(ctx, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "x"})
    assert repr(fake.tables) == before


def test_reminders_follow_the_state(ctx: ServiceContext, fake: FakeDatabase) -> None:
    """Entering a state plans its reminders; leaving it cancels them, in the same transaction."""
    (oid,) = _submit(ctx)
    pending = {r.rule for r in fake.tables.reminders if r.status == "pending"}
    assert pending == {"screening_due"}
    opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    pending = {r.rule for r in fake.tables.reminders if r.status == "pending"}
    assert pending == {"feedback_due", "feedback_overdue"}
    assert {r.cancel_reason for r in fake.tables.reminders if r.rule == "screening_due"} == {
        "the opinion left the state"
    }


def test_a_refused_read_of_personal_data_reads_and_records_nothing(ctx: ServiceContext, fake: FakeDatabase) -> None:
    """A planner asking for contacts is refused before anything is read; a coordinator's read is on record."""
    from consultflow.services import personal_data

    before = repr(fake.tables)
    with pytest.raises(PermissionDeniedError, match="may not see participants' full names or contacts"):
        people.list_participants(ctx, acting=PLANNER, with_contact=True, purpose="回访")
    assert repr(fake.tables) == before
    shown = people.list_participants(ctx, acting=COORD, full_names=True, purpose="核对名单")
    assert [p.name for p in shown] == ["张秀英"]
    (record,) = personal_data.access_records(ctx)
    assert (record.actor, record.purpose, record.participants) == (COORD, "核对名单", 1)


def test_erasure_is_recorded_in_every_consultation_the_participant_took_part_in(
    ctx: ServiceContext, fake: FakeDatabase
) -> None:
    """Opinions in two consultations: one erasure event in each chain, both chains still verify."""
    from consultflow.services import personal_data

    _submit(ctx)
    consultations.create_consultation(ctx, acting=COORD, title="第二片区", area="片区二")
    rounds.open_round(ctx, acting=COORD, consultation_id=2)
    item = opinions.NewOpinion(1, "industry", "villagers_assembly", "第二片区的意见")
    opinions.submit_many(ctx, acting=EXPERT, consultation_id=2, items=[item])
    personal_data.erase_participant(ctx, acting=COORD, participant_id=1, reason="本人申请")
    erased = [e.consultation_id for e in fake.tables.events if e.kind == "participant_erased"]
    assert erased == [1, 2]
    assert fake.verify_chain(1) and fake.verify_chain(2)
    assert fake.tables.participants[0].name == "张某某" and fake.tables.participants[0].contact is None
