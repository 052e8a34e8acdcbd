"""Round statistics: rounds to outcome and the per-round funnel.

The figures come from maintained, indexed columns; verify (services/verify.py) checks those columns
against what the audit events say.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from consultflow.domain.audit import EventKind
from consultflow.domain.document import Reread
from consultflow.domain.errors import ValidationError
from consultflow.domain.vocabulary import DECIDED_OUTCOMES
from consultflow.services.context import ServiceContext, spec_for

T = TypeVar("T")

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
    opinions: Iterable[OpinionRounds] = field(default=())  # held, or streamed (`use_rounds_report`)
    by: str | None = None


def rounds_report(
    ctx: ServiceContext, consultation_id: int, *, per_opinion: bool = False, by: GroupBy | None = None
) -> RoundsReport:
    """How many rounds each adopted, partly adopted and rejected opinion went through, held."""

    def hold(report: RoundsReport) -> RoundsReport:
        return replace(report, opinions=tuple(report.opinions))

    return use_rounds_report(ctx, consultation_id, hold, per_opinion=per_opinion, by=by)


def use_rounds_report(
    ctx: ServiceContext,
    consultation_id: int,
    use: Callable[[RoundsReport], T],
    *,
    per_opinion: bool = False,
    by: GroupBy | None = None,
) -> T:
    """How many rounds each adopted, partly adopted and rejected opinion went through.

    Read from the maintained `rounds_count` column (indexed with the outcome), which verify checks
    against what the audit events say. With `per_opinion`, each
    decided opinion streams from the database while `use` reads the report (a `Reread`).
    """
    if by not in (None, "category", "channel"):
        msg = f"cannot group by {by!r}; allowed: category, channel"
        raise ValidationError(msg)
    decided = [o.value for o in DECIDED_OUTCOMES]
    with ctx.reading() as uow:
        consultation = uow.consultations.get(consultation_id)
        spec = spec_for(uow.workflows.get(consultation.workflow_id))
        counts: dict[tuple[str, str | None], dict[int, int]] = defaultdict(dict)
        for outcome, rounds_count, group, n in uow.figures.outcome_rounds(consultation_id, decided, by):
            counts[(outcome, group)][rounds_count] = n
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
        rows: Iterable[OpinionRounds] = ()
        if per_opinion:
            rows = Reread(lambda: (OpinionRounds(*row) for row in uow.figures.opinion_rounds(consultation_id, decided)))
        return use(RoundsReport(consultation_id, outcomes, rows, by))


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
        spec = spec_for(uow.workflows.get(consultation.workflow_id))
        rows = uow.figures.event_counts(consultation_id)
        last_round = uow.figures.last_round(consultation_id)
    terminal = set(spec.terminal_states())
    starts = {t.trigger for t in spec.transitions.values() if t.starts_round}
    feedback = {t.trigger for t in spec.transitions.values() if t.completes_cycle and t.dest not in terminal}
    table: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for round_no, kind, trigger, to_state, n in rows:
        r = table[round_no]
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
    for round_no in range(1, last_round + 1):
        r = table[round_no]
        entered = r["submitted"] + table[round_no - 1]["carried_over"]
        out.append(FunnelRow(round_no, entered, r["feedback"], r["reparticipated"], r["decided"], r["carried_over"]))
    return out
