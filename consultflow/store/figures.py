"""Read models for the auditors' figures: aggregates the database computes, grouped and counted.

Rounds figures come from the maintained `rounds_count` and `outcome` columns (indexed together);
the funnel and the consistency check from the audit events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session

from consultflow.domain.model import AccountRow, ReportRow
from consultflow.store.batches import STREAM_ROWS
from consultflow.store.models import AuditEvent, Opinion, OpinionEntry, Participant

# What a report shows of an opinion and of the person who gave it: a ReportRow.
_REPORT_COLUMNS = (
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
_SHOWN = len(_REPORT_COLUMNS)


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

    def account_rows(self, consultation_id: int, category: str, round_no: int | None) -> Iterator[AccountRow]:
        """The published account's rows of one category, by id, streamed.

        Each opinion with its participant's name and village, its latest feedback (of `round_no`
        when given, and then only opinions answered in that round) and its last event.
        """
        feedback = self._feedback(round_no)
        stmt = (
            select(
                *_REPORT_COLUMNS,
                feedback.limit(1).scalar_subquery(),
                AuditEvent.payload,
                AuditEvent.round_no,
            )
            .join(Participant, Participant.id == Opinion.participant_id)
            .outerjoin(
                AuditEvent, and_(AuditEvent.opinion_id == Opinion.id, AuditEvent.opinion_seq == Opinion.last_seq)
            )
            .where(*self._account_scope(consultation_id, [category], round_no))
            .order_by(Opinion.id)
        )
        for row in self.session.execute(stmt.execution_options(yield_per=STREAM_ROWS)):
            values: tuple[Any, ...] = tuple(row)
            yield AccountRow(ReportRow._make(values[:_SHOWN]), *values[_SHOWN:])

    def account_participants(
        self, consultation_id: int, categories: Sequence[str], round_no: int | None
    ) -> Iterator[int]:
        """The participants whose opinions the published account shows, streamed."""
        stmt = select(Opinion.participant_id).where(*self._account_scope(consultation_id, categories, round_no))
        yield from self.session.scalars(stmt.distinct().execution_options(yield_per=STREAM_ROWS))

    def _feedback(self, round_no: int | None) -> Select[Any]:
        stmt = select(OpinionEntry.text).where(OpinionEntry.opinion_id == Opinion.id, OpinionEntry.kind == "feedback")
        if round_no is not None:
            stmt = stmt.where(OpinionEntry.round_no == round_no)
        return stmt.order_by(OpinionEntry.opinion_seq.desc(), OpinionEntry.id.desc()).correlate(Opinion)

    def _account_scope(
        self, consultation_id: int, categories: Sequence[str], round_no: int | None
    ) -> list[ColumnElement[bool]]:
        scope = [Opinion.consultation_id == consultation_id, Opinion.category.in_(list(categories))]
        if round_no is not None:
            scope.append(self._feedback(round_no).exists())
        return scope

    def plan_sections(self, consultation_id: int, outcomes: Sequence[str]) -> list[tuple[str, int, int]]:
        """(plan section, opinions, adopted outright) for the sections that decided opinions name."""
        adopted = func.sum(case((Opinion.outcome == "adopted", 1), else_=0))
        stmt = (
            select(Opinion.plan_ref, func.count(), adopted)
            .where(*self._plan_scope(consultation_id, outcomes))
            .group_by(Opinion.plan_ref)
        )
        return [(str(ref), int(n), int(a or 0)) for ref, n, a in self.session.execute(stmt)]

    def plan_rows(self, consultation_id: int, plan_ref: str, outcomes: Sequence[str]) -> Iterator[ReportRow]:
        """The opinions of one plan section, with their participant's name and village, by id, streamed."""
        stmt = (
            select(*_REPORT_COLUMNS)
            .join(Participant, Participant.id == Opinion.participant_id)
            .where(*self._plan_scope(consultation_id, outcomes), Opinion.plan_ref == plan_ref)
            .order_by(Opinion.id)
        )
        for row in self.session.execute(stmt.execution_options(yield_per=STREAM_ROWS)):
            yield ReportRow._make(row)

    def plan_participants(self, consultation_id: int, outcomes: Sequence[str]) -> Iterator[int]:
        """The participants whose opinions the plan table shows, streamed."""
        stmt = select(Opinion.participant_id).where(*self._plan_scope(consultation_id, outcomes))
        yield from self.session.scalars(stmt.distinct().execution_options(yield_per=STREAM_ROWS))

    def _plan_scope(self, consultation_id: int, outcomes: Sequence[str]) -> list[ColumnElement[bool]]:
        return [
            Opinion.consultation_id == consultation_id,
            Opinion.outcome.in_(list(outcomes)),
            Opinion.plan_ref.is_not(None),
            Opinion.plan_ref != "",
        ]

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

    def opinion_rounds(self, consultation_id: int, outcomes: Sequence[str]) -> Iterator[tuple[int, str, int, str, str]]:
        """(id, outcome, rounds count, category, channel) of each decided opinion, by id, streamed."""
        stmt = (
            select(Opinion.id, Opinion.outcome, Opinion.rounds_count, Opinion.category, Opinion.channel)
            .where(Opinion.consultation_id == consultation_id, Opinion.outcome.in_(list(outcomes)))
            .order_by(Opinion.id)
            .execution_options(yield_per=STREAM_ROWS)
        )
        for i, o, r, c, ch in self.session.execute(stmt):
            yield i, str(o), r, c, ch

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
