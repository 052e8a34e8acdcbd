"""Who took part and how often (a read model), participants' groups, and county programmes of areas.

Participation is counted by the database: a person's times taking part in a consultation are their
opinions there (submissions) plus their answers to feedback (re-participations: the opinion
entries of kind `reparticipation`), one UNION ALL grouped by participant and then grouped again by
group and village, or by how many times; no participant or opinion is loaded as an object.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Subquery, case, func, literal, select, union_all, update
from sqlalchemy.orm import Session

from consultflow.domain.errors import NotFoundError, ValidationError
from consultflow.domain.vocabulary import EntryKind
from consultflow.store.batches import STREAM_ROWS, chunked
from consultflow.store.models import Consultation, Opinion, OpinionEntry, Participant, Programme, Round

REPEAT_CAP = 4  # the distribution's last bucket: 4 times or more


class Participation:
    """Counts of who took part in consultations, how often, by group and village."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _per_person(consultation_ids: Sequence[int]) -> Subquery:
        """(consultation_id, participant_id, submissions, reparticipations, times) per person who took part."""
        ids = list(consultation_ids)
        submitted = select(
            Opinion.consultation_id.label("cid"),
            Opinion.participant_id.label("pid"),
            literal(1).label("sub"),
            literal(0).label("rep"),
        ).where(Opinion.consultation_id.in_(ids))
        replied = (
            select(
                Opinion.consultation_id.label("cid"),
                Opinion.participant_id.label("pid"),
                literal(0).label("sub"),
                literal(1).label("rep"),
            )
            .join(OpinionEntry, OpinionEntry.opinion_id == Opinion.id)
            .where(Opinion.consultation_id.in_(ids), OpinionEntry.kind == EntryKind.REPARTICIPATION.value)
        )
        both = union_all(submitted, replied).subquery("took_part")
        return (
            select(
                both.c.cid,
                both.c.pid,
                func.sum(both.c.sub).label("submissions"),
                func.sum(both.c.rep).label("reparticipations"),
                func.count().label("times"),
            )
            .group_by(both.c.cid, both.c.pid)
            .subquery("per_person")
        )

    def by_group_village(
        self, consultation_ids: Sequence[int]
    ) -> list[tuple[int, str | None, str, int, int, int, int]]:
        """Per group and village: (consultation id, group id, village, people, repeat, submissions, replies).

        Repeat: people taking part twice or more; replies: re-participations.
        """
        per = self._per_person(consultation_ids)
        repeat = func.sum(case((per.c.times >= 2, 1), else_=0))
        stmt = (
            select(
                per.c.cid,
                Participant.group_id,
                Participant.village,
                func.count(),
                repeat,
                func.sum(per.c.submissions),
                func.sum(per.c.reparticipations),
            )
            .join(Participant, Participant.id == per.c.pid)
            .group_by(per.c.cid, Participant.group_id, Participant.village)
        )
        rows: list[Any] = list(self.session.execute(stmt))
        return [(int(r[0]), r[1], str(r[2]), int(r[3]), int(r[4] or 0), int(r[5] or 0), int(r[6] or 0)) for r in rows]

    def distribution(self, consultation_ids: Sequence[int]) -> list[tuple[int, int, int]]:
        """(consultation id, times taken part (4 meaning 4 or more), people) per number of times."""
        per = self._per_person(consultation_ids)
        bucket = case((per.c.times >= REPEAT_CAP, REPEAT_CAP), else_=per.c.times)
        stmt = select(per.c.cid, bucket, func.count()).group_by(per.c.cid, bucket)
        return [(int(c), int(b), int(n)) for c, b, n in self.session.execute(stmt)]

    def people(self, consultation_id: int) -> Iterator[tuple[int, str, str, str | None, int, int]]:
        """Everyone who took part, most often first, streamed.

        As (participant id, name, village, group id, submissions, re-participations).
        """
        per = self._per_person([consultation_id])
        stmt = (
            select(
                per.c.pid,
                Participant.name,
                Participant.village,
                Participant.group_id,
                per.c.submissions,
                per.c.reparticipations,
            )
            .join(Participant, Participant.id == per.c.pid)
            .order_by(per.c.times.desc(), per.c.pid)
        )
        for r in self.session.execute(stmt.execution_options(yield_per=STREAM_ROWS)):
            yield int(r[0]), str(r[1]), str(r[2]), r[3], int(r[4] or 0), int(r[5] or 0)

    def participant_ids(self, consultation_id: int) -> Iterator[int]:
        """Everyone who took part, by id, streamed (for a read of full names on record)."""
        stmt = (
            select(Opinion.participant_id)
            .where(Opinion.consultation_id == consultation_id)
            .distinct()
            .order_by(Opinion.participant_id)
        )
        for (pid,) in self.session.execute(stmt.execution_options(yield_per=STREAM_ROWS)):
            yield int(pid)

    def consultations_of(self, participant_id: int) -> list[int]:
        """The consultations a participant took part in (has opinions in), by id."""
        stmt = (
            select(Opinion.consultation_id)
            .where(Opinion.participant_id == participant_id)
            .distinct()
            .order_by(Opinion.consultation_id)
        )
        return [int(c) for c in self.session.scalars(stmt)]

    def groups_of(self, participant_ids: Sequence[int]) -> dict[int, tuple[str | None, bool]]:
        """Each participant's group and whether they were erased, in batches (unknown ids left out)."""
        found: dict[int, tuple[str | None, bool]] = {}
        for batch in chunked(sorted(set(participant_ids))):
            stmt = select(Participant.id, Participant.group_id, Participant.erased_at).where(Participant.id.in_(batch))
            found.update((int(i), (g, e is not None)) for i, g, e in self.session.execute(stmt))
        return found

    def consultations_of_many(self, participant_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(participant id, consultation id) for each consultation each participant has opinions in, in batches."""
        pairs: list[tuple[int, int]] = []
        for batch in chunked(sorted(set(participant_ids))):
            stmt = (
                select(Opinion.participant_id, Opinion.consultation_id)
                .where(Opinion.participant_id.in_(batch))
                .distinct()
            )
            pairs.extend((int(p), int(c)) for p, c in self.session.execute(stmt))
        return sorted(pairs)

    def set_group(self, participant_ids: Sequence[int], group: str | None, *, only_unset: bool = False) -> list[int]:
        """Give participants a group, in batches; with `only_unset`, those without one only. The ids changed."""
        changed: list[int] = []
        for batch in chunked(sorted(set(participant_ids))):
            where: list[ColumnElement[bool]] = [Participant.id.in_(batch), Participant.erased_at.is_(None)]
            if only_unset:
                where.append(Participant.group_id.is_(None))
            else:
                where.append(func.coalesce(Participant.group_id, "") != (group or ""))
            found = list(self.session.scalars(select(Participant.id).where(*where)))
            if found:
                self.session.execute(
                    update(Participant)
                    .where(Participant.id.in_(found))
                    .values(group_id=group)
                    .execution_options(synchronize_session=False)
                )
                changed.extend(int(i) for i in found)
        return changed


class Programmes:
    """County programmes and the consultations (areas) in them."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, *, name: str, title: str, created_by: int, now: datetime) -> Programme:
        """A new programme; a name already taken is refused."""
        if self.session.scalar(select(Programme.id).where(Programme.name == name)) is not None:
            msg = f"a programme named {name!r} already exists; list them with 'consultflow programme list'"
            raise ValidationError(msg)
        row = Programme(name=name, title=title, created_at=now, created_by_id=created_by)
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, ref: str) -> Programme:
        """A programme by its id or its name."""
        found = None
        if ref.strip().isdigit():
            found = self.session.get(Programme, int(ref.strip()))
        if found is None:
            found = self.session.scalar(select(Programme).where(Programme.name == ref.strip()))
        if found is None:
            msg = f"unknown programme {ref!r}; list them with 'consultflow programme list'"
            raise NotFoundError(msg)
        return found

    def listing(self) -> list[tuple[Programme, int]]:
        """Every programme with its number of areas, by id."""
        areas = (
            select(Consultation.programme_id, func.count().label("n"))
            .where(Consultation.programme_id.is_not(None))
            .group_by(Consultation.programme_id)
            .subquery()
        )
        stmt = select(Programme, func.coalesce(areas.c.n, 0)).outerjoin(areas, areas.c.programme_id == Programme.id)
        return [(p, int(n)) for p, n in self.session.execute(stmt.order_by(Programme.id))]

    def areas(self, programme_id: int) -> list[Consultation]:
        """The programme's consultations (its areas), by id."""
        stmt = select(Consultation).where(Consultation.programme_id == programme_id).order_by(Consultation.id)
        return list(self.session.scalars(stmt))

    def outcome_counts(self, consultation_ids: Sequence[int]) -> list[tuple[int, str, str | None, int]]:
        """(consultation id, category, outcome, opinions) for the given consultations, counted by the database."""
        stmt = (
            select(Opinion.consultation_id, Opinion.category, Opinion.outcome, func.count())
            .where(Opinion.consultation_id.in_(list(consultation_ids)))
            .group_by(Opinion.consultation_id, Opinion.category, Opinion.outcome)
        )
        return [(int(c), str(k), o, int(n)) for c, k, o, n in self.session.execute(stmt)]

    def rounds_run(self, consultation_ids: Sequence[int]) -> dict[int, int]:
        """How many rounds each consultation has opened."""
        stmt = (
            select(Round.consultation_id, func.count())
            .where(Round.consultation_id.in_(list(consultation_ids)))
            .group_by(Round.consultation_id)
        )
        return {int(c): int(n) for c, n in self.session.execute(stmt)}
