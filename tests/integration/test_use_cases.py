"""The use cases' rules on the real store, on both backends: the loop, refusals, locks, retries, reminders, erasure."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from consultflow.domain.errors import (
    ConflictError,
    InvalidTransitionError,
    PermissionDeniedError,
    RetryableConflictError,
    ValidationError,
)
from consultflow.domain.vocabulary import Field
from consultflow.services import accounts, consultations, opinions, people, personal_data, pipeline, rounds, verify
from consultflow.services.context import ServiceContext
from consultflow.store.uow import UnitOfWork
from tests.conftest import engine_of
from tests.helpers import COORD, EXPERT, PLANNER, every_row, seed


@pytest.fixture(name="loop")
def _loop(ctx: ServiceContext) -> ServiceContext:
    """People, a participant (id 1) and a consultation (id 1) with round 1 open."""
    seed(ctx)
    return ctx


def _submit(ctx: ServiceContext, n: int = 1, consultation_id: int = 1) -> list[int]:
    items = [opinions.NewOpinion(1, "industry", "villagers_assembly", f"意见 {i}") for i in range(n)]
    ids = [v.id for v in opinions.submit_many(ctx, acting=EXPERT, consultation_id=consultation_id, items=items)]
    opinions.assign(ctx, acting=COORD, opinion_ids=ids, planner=PLANNER)
    return ids


def _second_consultation(ctx: ServiceContext) -> int:
    """A second consultation with round 1 open and one opinion of participant 1 in it; the opinion's id."""
    consultations.create_consultation(ctx, acting=COORD, title="第二片区", area="片区二")
    rounds.open_round(ctx, acting=COORD, consultation_id=2)
    item = opinions.NewOpinion(1, "industry", "villagers_assembly", "第二片区的意见")
    return opinions.submit_many(ctx, acting=EXPERT, consultation_id=2, items=[item])[0].id


def test_the_loop_runs_and_the_chain_verifies(loop: ServiceContext) -> None:
    """Submit, screen, feedback, close, adopt: states, cycles, entries and the hash chain come out right."""
    (oid,) = _submit(loop)
    opinions.fire(loop, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(loop, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "已研究"})
    plan = rounds.close_round(loop, acting=COORD, consultation_id=1)
    assert [(m.action, m.to_state, m.opinions) for m in plan.moves] == [("lapse", "under_review", 1)]
    rounds.open_round(loop, acting=COORD, consultation_id=1)
    done = opinions.fire(
        loop, acting=PLANNER, opinion_id=oid, trigger="adopt", fields={Field.TEXT: "采纳", Field.PLAN_REF: "§1"}
    )
    # submitted, assigned, screened, feedback, lapsed at the close, adopted: six events, two completed cycles
    assert (done.to_state, done.rounds_count, done.round_no, done.seq) == ("adopted", 2, 2, 6)
    with loop.reading() as uow:
        entries = [(e.kind, e.round_no, e.text) for e, _author in uow.opinions.entries(oid)]
    assert entries == [("feedback", 1, "已研究"), ("feedback", 2, "采纳")]
    assert verify.verify_chain(loop, 1).intact


def test_a_refused_use_case_writes_nothing(loop: ServiceContext) -> None:
    """A wrong role, a wrong state or one bad item in a batch leaves every row of every table as it was."""
    ids = _submit(loop, 3)
    opinions.fire(loop, acting=EXPERT, opinion_id=ids[0], trigger="screen", fields={})
    before = every_row(loop)
    with pytest.raises(PermissionDeniedError):
        opinions.fire(loop, acting=EXPERT, opinion_id=ids[0], trigger="give_feedback", fields={Field.TEXT: "x"})
    with pytest.raises(InvalidTransitionError):
        opinions.fire_many(
            loop,
            acting=EXPERT,
            requests=[opinions.FireRequest(ids[1], "screen", {}), opinions.FireRequest(ids[2], "reparticipate", {})],
        )
    with pytest.raises(ValidationError, match="unknown category"):
        opinions.submit_many(
            loop,
            acting=EXPERT,
            consultation_id=1,
            items=[
                opinions.NewOpinion(1, "industry", "villagers_assembly", "好"),
                opinions.NewOpinion(1, "nope", "villagers_assembly", "坏"),
            ],
        )
    assert every_row(loop) == before


def _probe(ctx: ServiceContext, sql: str) -> bool:
    """Whether another transaction could lock these rows now (NOWAIT: refused at once when someone holds them)."""
    with engine_of(ctx).connect() as conn, conn.begin():
        try:
            conn.execute(text(f"{sql} FOR UPDATE NOWAIT")).all()
        except DBAPIError as exc:
            if "could not obtain lock" not in str(exc):  # lock_not_available; anything else is the test's failure
                raise
            return False
        return True


def test_locks_are_taken_consultations_in_id_order_before_any_opinion(pg_ctx: ServiceContext) -> None:
    """A bulk fire across two consultations, asked in reverse order, holds 1, waits for 2, and holds no opinion yet.

    So two such fires never deadlock: whoever has consultation 1 goes first. Observed on PostgreSQL's
    row locks while another transaction holds consultation 2. SQLite takes the whole file at BEGIN
    IMMEDIATE, before any statement (tests/integration/test_processes.py runs writers at once on both).
    """
    seed(pg_ctx)
    first = _submit(pg_ctx)[0]
    second = _second_consultation(pg_ctx)
    requests = [opinions.FireRequest(second, "screen", {}), opinions.FireRequest(first, "screen", {})]
    failures: list[BaseException] = []

    def fire() -> None:
        try:
            opinions.fire_many(pg_ctx, acting=EXPERT, requests=requests)
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            failures.append(exc)

    worker = threading.Thread(target=fire)
    with engine_of(pg_ctx).connect() as holder, holder.begin() as held:
        holder.execute(text("SELECT id FROM consultation WHERE id = 2 FOR UPDATE"))
        worker.start()
        deadline = time.monotonic() + 30
        while _probe(pg_ctx, "SELECT id FROM consultation WHERE id = 1"):  # until the fire has taken 1
            assert time.monotonic() < deadline, "the fire never locked consultation 1"
            time.sleep(0.05)
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        while not holder.execute(text(waiting)).scalar():  # ... and waits for consultation 2, which the holder has
            assert time.monotonic() < deadline, "the fire never waited for consultation 2"
            time.sleep(0.05)
        assert _probe(pg_ctx, f"SELECT id FROM opinion WHERE id IN ({first}, {second})")
        held.rollback()
    worker.join(30)
    assert not worker.is_alive() and failures == []
    with pg_ctx.reading() as uow:
        assert [o.state for o in uow.opinions.get_many([first, second])] == ["under_review", "under_review"]


@pytest.fixture(name="conflicts")
def _conflicts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Commits of the store's units of work raise its retryable conflict while the list's number is above 0."""
    monkeypatch.setattr(pipeline, "_BACKOFF_BASE_S", 0.0)
    left = [0]
    commit = UnitOfWork.commit

    def conflicting(self: UnitOfWork) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise RetryableConflictError("someone else changed the same opinion at the same time")
        commit(self)

    monkeypatch.setattr(UnitOfWork, "commit", conflicting)
    return left


def test_conflicts_are_retried_from_the_start_then_reported(loop: ServiceContext, conflicts: list[int]) -> None:
    """Two conflicting commits are retried and the third succeeds once; endless conflicts write nothing."""
    (oid,) = _submit(loop)
    conflicts[0] = 2
    result = opinions.fire(loop, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    assert conflicts[0] == 0
    assert result.seq == 3  # submitted, assigned, then this: run again from the start, the event was written once
    with loop.reading() as uow:
        assert [e.opinion_seq for e in uow.audit.for_opinion(oid)] == [1, 2, 3]
    conflicts[0] = pipeline.MAX_ATTEMPTS
    before = every_row(loop)
    with pytest.raises(ConflictError, match="run the same command again"):
        opinions.fire(loop, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "x"})
    assert conflicts[0] == 0
    assert every_row(loop) == before


def test_reminders_follow_the_state(loop: ServiceContext) -> None:
    """Entering a state plans its reminders; leaving it cancels them, in the same transaction."""
    (oid,) = _submit(loop)

    def reminders() -> list[tuple[str, str, str | None]]:
        with loop.reading() as uow:
            return [(r.rule, r.status, r.cancel_reason) for r in uow.reminders.search(1, None, None)]

    assert {rule for rule, status, _why in reminders() if status == "pending"} == {"screening_due"}
    opinions.fire(loop, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    assert {rule for rule, status, _why in reminders() if status == "pending"} == {"feedback_due", "feedback_overdue"}
    assert {why for rule, _status, why in reminders() if rule == "screening_due"} == {"the opinion left the state"}


def test_a_refused_read_of_personal_data_reads_and_records_nothing(loop: ServiceContext) -> None:
    """A planner asking for contacts is refused before anything is read; a coordinator's read is on record."""
    before = every_row(loop)
    with pytest.raises(PermissionDeniedError, match="may not see participants' full names or contacts"):
        people.list_participants(loop, acting=PLANNER, with_contact=True, purpose="回访")
    assert every_row(loop) == before
    shown = people.list_participants(loop, acting=COORD, full_names=True, purpose="核对名单")
    assert [p.name for p in shown] == ["张秀英"]
    (record,) = personal_data.access_records(loop)
    assert (record.actor, record.purpose, record.participants) == (COORD, "核对名单", 1)


def test_erasure_is_recorded_in_every_consultation_the_participant_took_part_in(loop: ServiceContext) -> None:
    """Opinions in two consultations: one erasure event in each chain, both chains still verify."""
    _submit(loop)
    _second_consultation(loop)
    personal_data.erase_participant(loop, acting=COORD, participant_id=1, reason="本人申请")
    with loop.reading() as uow:
        erased = [c for c in (1, 2) for e in uow.audit.chain(c) if e.kind == "participant_erased"]
        participant = uow.participants.get(1)
        assert (participant.name, participant.contact) == ("张某某", None)
    assert erased == [1, 2]
    assert verify.verify_chain(loop, 1).intact and verify.verify_chain(loop, 2).intact


def test_adding_a_person_records_an_account_event_in_the_same_change(ctx: ServiceContext) -> None:
    """add_actor writes actor_added with the roles, by whoever registered them, and nothing when refused."""
    people.add_actor(ctx, acting=None, name=COORD, roles=["coordinator"])
    people.add_actor(ctx, acting=COORD, name=PLANNER, roles=["planner", "expert"])
    before = every_row(ctx)
    with pytest.raises(ValidationError):
        people.add_actor(ctx, acting=COORD, name=PLANNER, roles=["planner"])
    assert every_row(ctx) == before
    logged = [(e.actor, e.subject, e.payload) for e in accounts.account_events(ctx, acting=COORD, kind="actor_added")]
    assert logged == [(COORD, PLANNER, {"roles": ["planner", "expert"]}), ("system", COORD, {"roles": ["coordinator"]})]
