"""Round statistics: rounds to outcome, the per-round funnel, and the check behind them.

The figures come from maintained, indexed columns; `check_consistency` proves those columns equal
to what the audit events say.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Integer, cast, func, select

from consultflow.domain.audit import EventKind
from consultflow.domain.errors import ValidationError
from consultflow.domain.vocabulary import DECIDED_OUTCOMES
from consultflow.services.context import ServiceContext, spec_for
from consultflow.store.models import AuditEvent, Opinion

GroupBy = Literal["category", "channel"]


@dataclass(frozen=True)
class OutcomeRounds:
    """For one outcome (and group): how many opinions took 1, 2, 3 ... rounds to reach it."""

    outcome: str
    total: int
    histogram: dict[int, int]
    group: str | None = None

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
    by: str | None = None


def rounds_report(
    ctx: ServiceContext, consultation_id: int, *, per_opinion: bool = False, by: GroupBy | None = None
) -> RoundsReport:
    """How many rounds each adopted, partly adopted and rejected opinion went through.

    Read from the maintained `rounds_count` column (indexed with the outcome), which
    `check_consistency` proves equal to what the audit events say.
    """
    if by not in (None, "category", "channel"):
        msg = f"cannot group by {by!r}; allowed: category, channel"
        raise ValidationError(msg)
    decided = [o.value for o in DECIDED_OUTCOMES]
    group_col = Opinion.category if by == "category" else Opinion.channel
    with ctx.uow() as uow:
        consultation = uow.consultations.get(consultation_id)
        spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
        where = (Opinion.consultation_id == consultation_id, Opinion.outcome.in_(decided))
        counts: dict[tuple[str, str | None], dict[int, int]] = defaultdict(dict)
        columns = [Opinion.outcome, Opinion.rounds_count] + ([group_col] if by else [])
        for row in uow.session.execute(select(*columns, func.count()).where(*where).group_by(*columns)).all():
            group = str(row[2]) if by else None
            counts[(str(row[0]), group)][int(str(row[1]))] = int(str(row[-1]))
        rows: tuple[OpinionRounds, ...] = ()
        if per_opinion:
            rows = tuple(
                OpinionRounds(i, str(o), r, c, ch)
                for i, o, r, c, ch in uow.session.execute(
                    select(Opinion.id, Opinion.outcome, Opinion.rounds_count, Opinion.category, Opinion.channel)
                    .where(*where)
                    .order_by(Opinion.id)
                ).all()
            )
    groups: list[str | None] = [None]
    if by == "category":
        groups = list(spec.categories)
    elif by == "channel":
        groups = list(spec.channels)
    outcomes = tuple(
        OutcomeRounds(o, sum(counts.get((o, g), {}).values()), dict(sorted(counts.get((o, g), {}).items())), g)
        for g in groups
        for o in decided
    )
    return RoundsReport(consultation_id, outcomes, rows, by)


@dataclass(frozen=True)
class FunnelRow:
    """One round: how many opinions entered it, got feedback, answered, were decided, moved on."""

    round_no: int
    entered: int
    feedback: int
    reparticipated: int
    decided: int
    carried_over: int


def funnel(ctx: ServiceContext, consultation_id: int) -> list[FunnelRow]:
    """The per-round funnel, counted from the audit events (distinct opinions per step)."""
    with ctx.uow() as uow:
        consultation = uow.consultations.get(consultation_id)
        spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
        rows = uow.session.execute(
            select(
                AuditEvent.round_no,
                AuditEvent.kind,
                AuditEvent.trigger,
                AuditEvent.to_state,
                func.count(func.distinct(AuditEvent.opinion_id)),
            )
            .where(AuditEvent.consultation_id == consultation_id, AuditEvent.opinion_id.is_not(None))
            .group_by(AuditEvent.round_no, AuditEvent.kind, AuditEvent.trigger, AuditEvent.to_state)
        ).all()
        last_round = uow.session.scalar(
            select(func.max(AuditEvent.round_no)).where(AuditEvent.consultation_id == consultation_id)
        )
    terminal = set(spec.terminal_states())
    starts = {t.trigger for t in spec.transitions.values() if t.starts_round}
    feedback = {t.trigger for t in spec.transitions.values() if t.completes_cycle and t.dest not in terminal}
    table: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for round_no, kind, trigger, to_state, n in rows:
        r = table[int(round_no or 0)]
        if kind == EventKind.SUBMITTED:
            r["submitted"] += n
        elif kind == EventKind.CARRIED_OVER:
            r["carried_over"] += n
        elif kind == EventKind.TRANSITION:
            if trigger in feedback:
                r["feedback"] += n
            if trigger in starts:
                r["reparticipated"] += n
            if to_state in terminal:
                r["decided"] += n
    out = []
    for round_no in range(1, int(last_round or 0) + 1):
        r = table[round_no]
        entered = r["submitted"] + table[round_no - 1]["carried_over"]
        out.append(FunnelRow(round_no, entered, r["feedback"], r["reparticipated"], r["decided"], r["carried_over"]))
    return out


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
                .where(AuditEvent.consultation_id == consultation_id, AuditEvent.opinion_id.is_not(None))
                .group_by(AuditEvent.opinion_id)
            ).all()
        }
        last_state = dict(
            uow.session.execute(
                select(AuditEvent.opinion_id, AuditEvent.to_state)
                .join(Opinion, Opinion.id == AuditEvent.opinion_id)
                .where(Opinion.consultation_id == consultation_id, AuditEvent.opinion_seq == Opinion.last_seq)
            ).all()
        )
        problems = []
        for op in uow.session.scalars(select(Opinion).where(Opinion.consultation_id == consultation_id)):
            n, cycles, max_seq = per_opinion.get(op.id, (0, 0, 0))
            if n != op.last_seq or max_seq != op.last_seq:
                problems.append(
                    Inconsistency(op.id, f"{n} events, sequence up to {max_seq}, expected 1..{op.last_seq}")
                )
            if cycles != op.rounds_count:
                problems.append(Inconsistency(op.id, f"rounds count {op.rounds_count}, events say {cycles}"))
            if last_state.get(op.id) != op.state:
                problems.append(Inconsistency(op.id, f"state {op.state!r}, last event says {last_state.get(op.id)!r}"))
    return problems
