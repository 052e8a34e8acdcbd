"""What auditors ask: an opinion's history, and how many rounds opinions took to an outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, cast, func, select

from consultflow.domain.vocabulary import DECIDED_OUTCOMES
from consultflow.services.context import ServiceContext
from consultflow.services.opinions import OpinionView, opinion_view
from consultflow.store.models import AuditEvent, Opinion


@dataclass(frozen=True)
class HistoryEvent:
    """One line of an opinion's timeline."""

    seq: int
    at: datetime
    round_no: int | None
    kind: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    actor: str
    role: str
    completes_cycle: bool
    payload: dict[str, Any]


@dataclass(frozen=True)
class OutcomeRounds:
    """For one outcome: how many opinions took 1, 2, 3 ... rounds to reach it."""

    outcome: str
    total: int
    histogram: dict[int, int]

    @property
    def mean(self) -> float:
        """Average rounds to this outcome (0 when none reached it)."""
        if not self.total:
            return 0.0
        return sum(k * v for k, v in self.histogram.items()) / self.total


@dataclass(frozen=True)
class OpinionRounds:
    """One decided opinion and the rounds it went through."""

    opinion_id: int
    outcome: str
    rounds: int
    category: str
    channel: str


@dataclass(frozen=True)
class RoundsReport:
    """Rounds to outcome for a consultation's decided opinions."""

    consultation_id: int
    outcomes: tuple[OutcomeRounds, ...]
    opinions: tuple[OpinionRounds, ...] = field(default=())


def history(ctx: ServiceContext, opinion_id: int) -> tuple[OpinionView, list[HistoryEvent]]:
    """An opinion's full timeline from its audit events."""
    with ctx.uow() as uow:
        opinion = uow.opinions.get(opinion_id)
        events = [
            HistoryEvent(
                seq=e.opinion_seq or 0,
                at=e.at,
                round_no=e.round_no,
                kind=e.kind,
                trigger=e.trigger,
                from_state=e.from_state,
                to_state=e.to_state,
                actor=e.actor,
                role=e.role,
                completes_cycle=e.completes_cycle,
                payload=json.loads(e.payload),
            )
            for e in uow.audit.for_opinion(opinion.id)
        ]
        return opinion_view(uow, opinion), events


def rounds_report(ctx: ServiceContext, consultation_id: int, *, per_opinion: bool = False) -> RoundsReport:
    """How many rounds each adopted, partly adopted and rejected opinion went through.

    Read from the maintained `rounds_count` column (indexed with the outcome), which
    `check_consistency` proves equal to what the audit events say.
    """
    decided = [o.value for o in DECIDED_OUTCOMES]
    with ctx.uow() as uow:
        uow.consultations.get(consultation_id)
        where = (
            Opinion.consultation_id == consultation_id,
            Opinion.outcome.in_(decided),
        )
        counts: dict[str, dict[int, int]] = {o: {} for o in decided}
        for outcome, rounds, n in uow.session.execute(
            select(Opinion.outcome, Opinion.rounds_count, func.count())
            .where(*where)
            .group_by(Opinion.outcome, Opinion.rounds_count)
        ).all():
            counts[str(outcome)][rounds] = n
        rows: tuple[OpinionRounds, ...] = ()
        if per_opinion:
            rows = tuple(
                OpinionRounds(i, str(o), r, c, ch)
                for i, o, r, c, ch in uow.session.execute(
                    select(
                        Opinion.id,
                        Opinion.outcome,
                        Opinion.rounds_count,
                        Opinion.category,
                        Opinion.channel,
                    )
                    .where(*where)
                    .order_by(Opinion.id)
                ).all()
            )
    outcomes = tuple(OutcomeRounds(o, sum(h.values()), dict(sorted(h.items()))) for o, h in counts.items())
    return RoundsReport(consultation_id, outcomes, rows)


@dataclass(frozen=True)
class Inconsistency:
    """An opinion whose stored columns disagree with its audit events."""

    opinion_id: int
    problem: str


def check_consistency(ctx: ServiceContext, consultation_id: int) -> list[Inconsistency]:
    """Compare every opinion's state, rounds count and sequence with its audit events.

    State must equal the last event's destination, the rounds count the number of events that
    completed a participate-feedback cycle, and sequence numbers must run 1..last_seq unbroken.
    """
    with ctx.uow() as uow:
        uow.consultations.get(consultation_id)
        per_opinion = {
            op_id: (n, cycles or 0, max_seq)
            for op_id, n, cycles, max_seq in uow.session.execute(
                select(
                    AuditEvent.opinion_id,
                    func.count(),
                    func.sum(cast(AuditEvent.completes_cycle, Integer)),
                    func.max(AuditEvent.opinion_seq),
                )
                .where(
                    AuditEvent.consultation_id == consultation_id,
                    AuditEvent.opinion_id.is_not(None),
                )
                .group_by(AuditEvent.opinion_id)
            ).all()
        }
        last_state = dict(
            uow.session.execute(
                select(AuditEvent.opinion_id, AuditEvent.to_state)
                .join(Opinion, Opinion.id == AuditEvent.opinion_id)
                .where(
                    Opinion.consultation_id == consultation_id,
                    AuditEvent.opinion_seq == Opinion.last_seq,
                )
            ).all()
        )
        problems = []
        for op in uow.session.scalars(select(Opinion).where(Opinion.consultation_id == consultation_id)):
            n, cycles, max_seq = per_opinion.get(op.id, (0, 0, 0))
            if n != op.last_seq or max_seq != op.last_seq:
                problems.append(
                    Inconsistency(
                        op.id,
                        f"{n} events, sequence up to {max_seq}, expected 1..{op.last_seq}",
                    )
                )
            if cycles != op.rounds_count:
                problems.append(Inconsistency(op.id, f"rounds count {op.rounds_count}, events say {cycles}"))
            if last_state.get(op.id) != op.state:
                problems.append(
                    Inconsistency(
                        op.id,
                        f"state {op.state!r}, last event says {last_state.get(op.id)!r}",
                    )
                )
    return problems
