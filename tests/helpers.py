"""Building blocks for tests: a consultation with people, ready for opinions."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from types import ModuleType

from sqlalchemy import Integer, cast, func, select

from consultflow.services import consultations, opinions, people, rounds, verify
from consultflow.services.context import ServiceContext
from consultflow.store.models import AuditEvent, Base, Opinion, OpinionEntry, Reminder
from tests.conftest import ROOT, engine_of, sql_uow

COORD, PLANNER, EXPERT, VILLAGER, AUDITOR = "李协调", "王规划", "赵专家", "村民代表", "孙审计"


@dataclass(frozen=True)
class Setup:
    """Ids of what `seed` made."""

    consultation_id: int
    participant_id: int


def seed(ctx: ServiceContext, *, open_first_round: bool = True) -> Setup:
    """People, a participant and a consultation (with round 1 open)."""
    people.add_actor(ctx, acting=None, name=COORD, roles=["coordinator"])
    people.add_actor(ctx, acting=COORD, name=PLANNER, roles=["planner"])
    people.add_actor(ctx, acting=COORD, name=EXPERT, roles=["expert"])
    participant = people.add_participant(ctx, acting=EXPERT, name="张秀英", village="青龙村", contact="13812345678")
    people.add_actor(ctx, acting=COORD, name=VILLAGER, roles=["participant"], participant_id=participant.id)
    people.add_actor(ctx, acting=COORD, name=AUDITOR, roles=["auditor"])
    consultation = consultations.create_consultation(ctx, acting=COORD, title="片区规划意见征集", area="三产融合片区")
    if open_first_round:
        rounds.open_round(ctx, acting=COORD, consultation_id=consultation.id)
    return Setup(consultation.id, participant.id)


def submit(
    ctx: ServiceContext,
    setup: Setup,
    text: str = "建议硬化通组道路",
    category: str = "environment_roads",
    *,
    assign: bool = True,
) -> int:
    """One opinion, recorded by the expert and (unless told not to) assigned to the planner; its id."""
    view = opinions.submit_opinion(
        ctx,
        acting=EXPERT,
        consultation_id=setup.consultation_id,
        participant_id=setup.participant_id,
        category=category,
        channel="villagers_assembly",
        text=text,
    )
    if assign:
        opinions.assign(ctx, acting=COORD, opinion_ids=[view.id], planner=PLANNER)
    return view.id


def snapshot(ctx: ServiceContext) -> dict[str, object]:
    """Everything a refused operation must leave unchanged."""
    with sql_uow(ctx) as uow:
        s = uow.session
        return {
            "events": s.scalar(select(func.count()).select_from(AuditEvent)),
            "entries": s.scalar(select(func.count()).select_from(OpinionEntry)),
            "opinions": [
                tuple(r)
                for r in s.execute(
                    select(
                        Opinion.id,
                        Opinion.state,
                        Opinion.rounds_count,
                        Opinion.current_round,
                        Opinion.last_seq,
                        Opinion.outcome,
                        Opinion.version,
                        Opinion.assigned_planner_id,
                    ).order_by(Opinion.id)
                )
            ],
        }


def every_row(ctx: ServiceContext) -> dict[str, list[str]]:
    """Every row of every table, as text in a stable order: what a refused use case must leave as it was."""
    with engine_of(ctx).connect() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in conn.execute(select(table)))
            for table in Base.metadata.sorted_tables
        }


@dataclass(frozen=True)
class Inconsistency:
    """An opinion whose stored columns disagree with its audit events."""

    opinion_id: int
    problem: str


def check_consistency(ctx: ServiceContext, consultation_id: int) -> list[Inconsistency]:
    """Compare every opinion's state, rounds count and sequence with its audit events, in SQL of the test's own.

    State must equal the last event's destination, the rounds count the number of events that
    completed a participate-feedback cycle, and sequence numbers must run 1..last_seq unbroken.
    """
    per_opinion = (
        select(
            AuditEvent.opinion_id,
            func.count(),
            func.sum(cast(AuditEvent.completes_cycle, Integer)),
            func.max(AuditEvent.opinion_seq),
        )
        .where(AuditEvent.consultation_id == consultation_id, AuditEvent.opinion_id.is_not(None))
        .group_by(AuditEvent.opinion_id)
    )
    last_state = (
        select(AuditEvent.opinion_id, AuditEvent.to_state)
        .join(Opinion, Opinion.id == AuditEvent.opinion_id)
        .where(Opinion.consultation_id == consultation_id, AuditEvent.opinion_seq == Opinion.last_seq)
    )
    live = select(Opinion.id, Opinion.state, Opinion.rounds_count, Opinion.last_seq).where(
        Opinion.consultation_id == consultation_id
    )
    with engine_of(ctx).connect() as conn:
        summary = {i: (n, int(cycles or 0), seq or 0) for i, n, cycles, seq in conn.execute(per_opinion)}
        last = dict(conn.execute(last_state).all())
        problems = []
        for opinion_id, state, rounds_count, last_seq in conn.execute(live.order_by(Opinion.id)):
            n, cycles, max_seq = summary.get(opinion_id, (0, 0, 0))
            if n != last_seq or max_seq != last_seq:
                problems.append(
                    Inconsistency(opinion_id, f"{n} events, sequence up to {max_seq}, expected 1..{last_seq}")
                )
            if cycles != rounds_count:
                problems.append(Inconsistency(opinion_id, f"rounds count {rounds_count}, events say {cycles}"))
            if last.get(opinion_id) != state:
                problems.append(Inconsistency(opinion_id, f"state {state!r}, last event says {last.get(opinion_id)!r}"))
    return problems


def assert_loop_invariants(ctx: ServiceContext, consultation_id: int) -> None:
    """State = last event, sequences contiguous, rounds counts agree, no stale reminder, chain intact."""
    assert check_consistency(ctx, consultation_id) == []
    with sql_uow(ctx) as uow:
        chain = list(
            uow.session.scalars(
                select(AuditEvent.chain_seq)
                .where(AuditEvent.consultation_id == consultation_id)
                .order_by(AuditEvent.chain_seq)
            )
        )
        assert chain == list(range(1, len(chain) + 1))
        by_id = {}
        for row in uow.session.scalars(select(Opinion).where(Opinion.consultation_id == consultation_id)):
            assert (row.outcome is None) == (row.state in ("submitted", "under_review", "feedback_given"))
            by_id[row.id] = row
        pending = uow.session.scalars(
            select(Reminder).where(Reminder.consultation_id == consultation_id, Reminder.status == "pending")
        )
        for reminder in pending:  # nothing is left to chase about a state the opinion has left
            opinion = by_id[reminder.opinion_id]
            assert (opinion.state, opinion.state_entered_at) == (reminder.state, reminder.state_entered_at)
    assert verify.verify_chain(ctx, consultation_id).intact


def docs_hooks() -> ModuleType:
    """docs/hooks.py, the MkDocs hooks that generate the reference pages, loaded as a module."""
    spec = importlib.util.spec_from_file_location("consultflow_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
