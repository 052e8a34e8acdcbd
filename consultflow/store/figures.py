"""Read models for the auditors' figures: aggregates the database computes, grouped and counted.

Rounds figures come from the maintained `rounds_count` and `outcome` columns (indexed together);
the funnel and the consistency check from the audit events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from consultflow.domain.model import ReportRow
from consultflow.store.models import AuditEvent, Opinion, Participant


class Figures:
    """Counts over a consultation's opinions and events."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def outcome_rounds(
        self, consultation_id: int, outcomes: Sequence[str], by: Literal["category", "channel"] | None
    ) -> list[tuple[str, int, str | None, int]]:
        """(outcome, rounds count, group, opinions) for decided opinions, grouped when asked."""
        group = Opinion.category if by == "category" else Opinion.channel
        columns = [Opinion.outcome, Opinion.rounds_count] + ([group] if by else [])
        stmt = (
            select(*columns, func.count())
            .where(Opinion.consultation_id == consultation_id, Opinion.outcome.in_(list(outcomes)))
            .group_by(*columns)
        )
        rows: list[tuple[Any, ...]] = [tuple(row) for row in self.session.execute(stmt)]
        return [(str(row[0]), int(row[1]), str(row[2]) if by else None, int(row[-1])) for row in rows]

    def report_rows(self, consultation_id: int) -> list[ReportRow]:
        """Each opinion with its participant's name and village, by id, in one query (no ORM objects)."""
        stmt = (
            select(
                Opinion.id,
                Opinion.participant_id,
                Opinion.category,
                Opinion.text,
                Opinion.state,
                Opinion.outcome,
                Opinion.plan_ref,
                Opinion.merged_into_id,
                Participant.name,
                Participant.village,
            )
            .join(Participant, Participant.id == Opinion.participant_id)
            .where(Opinion.consultation_id == consultation_id)
            .order_by(Opinion.id)
            .execution_options(yield_per=5000)
        )
        return [ReportRow(*tuple(row)) for row in self.session.execute(stmt)]

    def outcome_counts(self, consultation_id: int) -> list[tuple[str, str, str | None, int]]:
        """(category, channel, outcome or None while open, opinions): the adoption table, grouped by the database."""
        stmt = (
            select(Opinion.category, Opinion.channel, Opinion.outcome, func.count())
            .where(Opinion.consultation_id == consultation_id)
            .group_by(Opinion.category, Opinion.channel, Opinion.outcome)
        )
        return [(str(c), str(ch), None if o is None else str(o), int(n)) for c, ch, o, n in self.session.execute(stmt)]

    def participant_count(self, consultation_id: int) -> int:
        """How many participants gave the consultation's opinions."""
        stmt = select(func.count(func.distinct(Opinion.participant_id))).where(
            Opinion.consultation_id == consultation_id
        )
        return int(self.session.scalar(stmt) or 0)

    def opinion_rounds(self, consultation_id: int, outcomes: Sequence[str]) -> list[tuple[int, str, int, str, str]]:
        """(id, outcome, rounds count, category, channel) of each decided opinion, by id."""
        stmt = (
            select(Opinion.id, Opinion.outcome, Opinion.rounds_count, Opinion.category, Opinion.channel)
            .where(Opinion.consultation_id == consultation_id, Opinion.outcome.in_(list(outcomes)))
            .order_by(Opinion.id)
        )
        return [(i, str(o), r, c, ch) for i, o, r, c, ch in self.session.execute(stmt)]

    def event_counts(self, consultation_id: int) -> list[tuple[int, str, str | None, str | None, int]]:
        """(round, kind, trigger, destination, distinct opinions) over the consultation's opinion events."""
        stmt = (
            select(
                AuditEvent.round_no,
                AuditEvent.kind,
                AuditEvent.trigger,
                AuditEvent.to_state,
                func.count(func.distinct(AuditEvent.opinion_id)),
            )
            .where(AuditEvent.consultation_id == consultation_id, AuditEvent.opinion_id.is_not(None))
            .group_by(AuditEvent.round_no, AuditEvent.kind, AuditEvent.trigger, AuditEvent.to_state)
        )
        return [(int(r or 0), k, t, s, n) for r, k, t, s, n in self.session.execute(stmt)]

    def last_round(self, consultation_id: int) -> int:
        """The highest round any of the consultation's events is in."""
        stmt = select(func.max(AuditEvent.round_no)).where(AuditEvent.consultation_id == consultation_id)
        return int(self.session.scalar(stmt) or 0)

    def event_summary(self, consultation_id: int) -> dict[int, tuple[int, int, int]]:
        """Per opinion: (events, cycles completed, highest sequence number)."""
        stmt = (
            select(
                AuditEvent.opinion_id,
                func.count(),
                func.sum(cast(AuditEvent.completes_cycle, Integer)),
                func.max(AuditEvent.opinion_seq),
            )
            .where(AuditEvent.consultation_id == consultation_id, AuditEvent.opinion_id.is_not(None))
            .group_by(AuditEvent.opinion_id)
        )
        return {i: (n, int(cycles or 0), seq or 0) for i, n, cycles, seq in self.session.execute(stmt) if i is not None}

    def last_events(self, consultation_id: int) -> dict[int, tuple[str | None, str, int | None]]:
        """Per opinion, its latest event: (destination state, payload JSON, round)."""
        stmt = (
            select(AuditEvent.opinion_id, AuditEvent.to_state, AuditEvent.payload, AuditEvent.round_no)
            .join(Opinion, Opinion.id == AuditEvent.opinion_id)
            .where(Opinion.consultation_id == consultation_id, AuditEvent.opinion_seq == Opinion.last_seq)
        )
        return {i: (state, payload, r) for i, state, payload, r in self.session.execute(stmt) if i is not None}
