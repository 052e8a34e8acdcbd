"""The draft plan's versions and clauses, review rounds, ratings and clause links: all their SQL."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.orm import Session

from consultflow.domain.errors import NotFoundError
from consultflow.domain.plan import (
    Clause,
    LinkedOpinion,
    NewRating,
    PlanVersionInfo,
    RatingCount,
    ReviewInfo,
    StoredClause,
)
from consultflow.store import verify_queries
from consultflow.store.batches import chunked
from consultflow.store.models import (
    Actor,
    Opinion,
    OpinionClause,
    PlanClause,
    PlanClauseText,
    PlanRating,
    PlanReview,
    PlanVersion,
    Round,
)

_VERSION_COLUMNS = (
    PlanVersion.id,
    PlanVersion.consultation_id,
    PlanVersion.number,
    PlanVersion.label,
    PlanVersion.source,
    PlanVersion.clauses,
    PlanVersion.imported_at,
    Actor.name,
)


class PlanStore:
    """Plan versions, clauses, reviews, ratings and links of one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # --- versions and clauses -------------------------------------------------------------

    def add_version(
        self,
        consultation_id: int,
        clauses: Sequence[Clause],
        *,
        label: str | None,
        source: str | None,
        actor_id: int,
        now: datetime,
    ) -> PlanVersionInfo:
        """A new version (the next number) with its clauses; a clause number seen before keeps its clause id."""
        last = self.session.scalar(
            select(func.max(PlanVersion.number)).where(PlanVersion.consultation_id == consultation_id)
        )
        row = PlanVersion(
            consultation_id=consultation_id,
            number=int(last or 0) + 1,
            label=label,
            source=source,
            clauses=len(clauses),
            imported_at=now,
            imported_by_id=actor_id,
        )
        self.session.add(row)
        self.session.flush()
        ids = self.clause_ids(consultation_id, [c.number for c in clauses])
        missing = [c.number for c in clauses if c.number not in ids]
        if missing:
            self.session.execute(
                insert(PlanClause), [{"consultation_id": consultation_id, "number": n} for n in missing]
            )
            ids = self.clause_ids(consultation_id, [c.number for c in clauses])
        self.session.execute(
            insert(PlanClauseText),
            [
                {
                    "version_id": row.id,
                    "clause_id": ids[c.number],
                    "position": i,
                    "section_no": c.section_no,
                    "section_title": c.section_title,
                    "text": c.text,
                }
                for i, c in enumerate(clauses, start=1)
            ],
        )
        return self.version(consultation_id, row.number)

    def clause_ids(self, consultation_id: int, numbers: Sequence[str]) -> dict[str, int]:
        """The ids of the clauses with these numbers that the consultation has."""
        found: dict[str, int] = {}
        for batch in chunked(sorted(set(numbers))):
            stmt = select(PlanClause.number, PlanClause.id).where(
                PlanClause.consultation_id == consultation_id, PlanClause.number.in_(batch)
            )
            found.update((n, i) for n, i in self.session.execute(stmt))
        return found

    def versions(self, consultation_id: int) -> list[PlanVersionInfo]:
        """Every version of the consultation's draft, oldest first."""
        stmt = (
            select(*_VERSION_COLUMNS)
            .join(Actor, Actor.id == PlanVersion.imported_by_id)
            .where(PlanVersion.consultation_id == consultation_id)
            .order_by(PlanVersion.number)
        )
        return [PlanVersionInfo(*r) for r in self.session.execute(stmt)]

    def version(self, consultation_id: int, number: int | None) -> PlanVersionInfo:
        """One version (None: the latest), or a refusal naming the versions there are."""
        known = self.versions(consultation_id)
        if not known:
            msg = (
                f"consultation {consultation_id} has no plan draft yet; "
                f"import one with 'consultflow plan import {consultation_id} FILE'"
            )
            raise NotFoundError(msg)
        if number is None:
            return known[-1]
        for v in known:
            if v.number == number:
                return v
        numbers = ", ".join(str(v.number) for v in known)
        msg = f"consultation {consultation_id} has no plan version {number}; versions: {numbers}"
        raise NotFoundError(msg)

    def clauses(self, version_id: int) -> list[StoredClause]:
        """A version's clauses in their order."""
        stmt = (
            select(
                PlanClauseText.clause_id,
                PlanClause.number,
                PlanClauseText.section_no,
                PlanClauseText.section_title,
                PlanClauseText.text,
            )
            .join(PlanClause, PlanClause.id == PlanClauseText.clause_id)
            .where(PlanClauseText.version_id == version_id)
            .order_by(PlanClauseText.position)
        )
        return [StoredClause(*r) for r in self.session.execute(stmt)]

    # --- links ----------------------------------------------------------------------------

    def link(self, opinion_id: int, clause_ids: Sequence[int], actor_id: int, now: datetime) -> list[int]:
        """Link an opinion to clauses; the clause ids newly linked (a link made before is kept as it was)."""
        stmt = select(OpinionClause.clause_id).where(OpinionClause.opinion_id == opinion_id)
        there = set(self.session.scalars(stmt))
        new = [c for c in dict.fromkeys(clause_ids) if c not in there]
        if new:
            self.session.execute(
                insert(OpinionClause),
                [{"opinion_id": opinion_id, "clause_id": c, "linked_at": now, "linked_by_id": actor_id} for c in new],
            )
        return new

    def clauses_of_opinion(self, opinion_id: int) -> list[tuple[int, str]]:
        """(clause id, number) of the clauses an opinion is linked to, by number."""
        stmt = (
            select(PlanClause.id, PlanClause.number)
            .join(OpinionClause, OpinionClause.clause_id == PlanClause.id)
            .where(OpinionClause.opinion_id == opinion_id)
            .order_by(PlanClause.number)
        )
        return [(i, n) for i, n in self.session.execute(stmt)]

    def linked_opinions(self, consultation_id: int, clause_ids: Sequence[int]) -> list[LinkedOpinion]:
        """Opinions linked to these clauses, or whose plan reference is one of their numbers; by clause, opinion."""
        found: dict[tuple[int, int], LinkedOpinion] = {}
        columns = (Opinion.id, Opinion.state, Opinion.outcome, Opinion.state_entered_at)
        for batch in chunked(sorted(set(clause_ids))):
            linked = (
                select(OpinionClause.clause_id, *columns)
                .join(Opinion, Opinion.id == OpinionClause.opinion_id)
                .where(OpinionClause.clause_id.in_(batch))
            )
            named = (
                select(PlanClause.id, *columns)
                .join(
                    Opinion,
                    and_(Opinion.consultation_id == PlanClause.consultation_id, Opinion.plan_ref == PlanClause.number),
                )
                .where(PlanClause.id.in_(batch), PlanClause.consultation_id == consultation_id)
            )
            for stmt in (linked, named):
                for clause_id, opinion_id, state, outcome, at in self.session.execute(stmt):
                    found[(clause_id, opinion_id)] = LinkedOpinion(clause_id, opinion_id, state, outcome, at)
        return [found[k] for k in sorted(found)]

    # --- reviews and ratings ----------------------------------------------------------------

    def _round_id(self, consultation_id: int, round_no: int) -> int:
        stmt = select(Round.id).where(Round.consultation_id == consultation_id, Round.number == round_no)
        found = self.session.scalar(stmt)
        if found is None:
            msg = f"consultation {consultation_id} has no round {round_no}"
            raise NotFoundError(msg)
        return int(found)

    def add_review(self, consultation_id: int, round_no: int, version_id: int, category: str, now: datetime) -> None:
        """Make the round a review of the version."""
        self.session.add(
            PlanReview(
                round_id=self._round_id(consultation_id, round_no),
                consultation_id=consultation_id,
                version_id=version_id,
                category=category,
                opened_at=now,
            )
        )
        self.session.flush()

    def reviews(self, consultation_id: int) -> list[ReviewInfo]:
        """The consultation's review rounds, oldest first."""
        stmt = (
            select(
                Round.consultation_id,
                Round.number,
                Round.status,
                PlanVersion.id,
                PlanVersion.number,
                PlanReview.category,
                PlanReview.opened_at,
                Round.closed_at,
            )
            .join(Round, Round.id == PlanReview.round_id)
            .join(PlanVersion, PlanVersion.id == PlanReview.version_id)
            .where(PlanReview.consultation_id == consultation_id)
            .order_by(Round.number)
        )
        return [
            ReviewInfo(c, n, status == "open", vid, vno, cat, opened, closed)
            for c, n, status, vid, vno, cat, opened, closed in self.session.execute(stmt)
        ]

    def rated(self, consultation_id: int, round_no: int, participant_id: int) -> set[int]:
        """The clauses a participant has rated in a review round already."""
        stmt = select(PlanRating.clause_id).where(
            PlanRating.round_id == self._round_id(consultation_id, round_no),
            PlanRating.participant_id == participant_id,
        )
        return set(self.session.scalars(stmt))

    def form_used(self, consultation_id: int, round_no: int, form_key: str) -> bool:
        """Whether a portal form with this key was recorded in the review already."""
        stmt = select(PlanRating.id).where(
            PlanRating.round_id == self._round_id(consultation_id, round_no), PlanRating.form_key == form_key
        )
        return self.session.scalar(stmt.limit(1)) is not None

    def add_ratings(
        self, consultation_id: int, round_no: int, ratings: Sequence[NewRating], actor_id: int, now: datetime
    ) -> None:
        """Store ratings (their comments sealed already)."""
        round_id = self._round_id(consultation_id, round_no)
        self.session.execute(
            insert(PlanRating),
            [
                {
                    "round_id": round_id,
                    "clause_id": r.clause_id,
                    "participant_id": r.participant_id,
                    "rating": r.rating,
                    "comment": r.comment,
                    "opinion_id": r.opinion_id,
                    "form_key": r.form_key,
                    "recorded_by_id": actor_id,
                    "at": now,
                }
                for r in ratings
            ],
        )

    def rating_counts(self, consultation_id: int, version_id: int) -> list[RatingCount]:
        """Per clause and rating: how many ratings, and how many with a comment, over the version's reviews."""
        stmt = (
            select(
                PlanRating.clause_id,
                PlanRating.rating,
                func.count(),
                func.count(PlanRating.opinion_id),  # a comment is always an opinion; readers may not see comments
            )
            .join(PlanReview, PlanReview.round_id == PlanRating.round_id)
            .where(PlanReview.consultation_id == consultation_id, PlanReview.version_id == version_id)
            .group_by(PlanRating.clause_id, PlanRating.rating)
        )
        return [RatingCount(c, r, int(n), int(k)) for c, r, n, k in self.session.execute(stmt)]

    def comment_states(self, consultation_id: int, version_id: int) -> list[tuple[int, str, int]]:
        """Per clause: (clause, state of its comments' opinions, how many), over the version's reviews."""
        stmt = (
            select(PlanRating.clause_id, Opinion.state, func.count())
            .join(PlanReview, PlanReview.round_id == PlanRating.round_id)
            .join(Opinion, Opinion.id == PlanRating.opinion_id)
            .where(PlanReview.consultation_id == consultation_id, PlanReview.version_id == version_id)
            .group_by(PlanRating.clause_id, Opinion.state)
        )
        return [(c, s, int(n)) for c, s, n in self.session.execute(stmt)]

    # --- for audit verify (the SQL is verify_queries') ------------------------------------------

    def plan_events(self, consultation_id: int) -> list[tuple[Any, ...]]:
        """The chain's plan_imported and review_opened events: (kind, round, chain sequence, payload), in order."""
        return verify_queries.plan_events(self.session, consultation_id)

    def live_plan(self, consultation_id: int) -> tuple[list[tuple[Any, ...]], list[str], list[tuple[Any, ...]]]:
        """Versions, clause numbers and reviews of the consultation, as stored."""
        return verify_queries.live_plan(self.session, consultation_id)

    def rating_events(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """clause_rated events by participant and round, streamed."""
        return verify_queries.rating_events(self.session, consultation_id)

    def live_ratings(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """plan_rating rows by participant and round, streamed."""
        return verify_queries.live_ratings(self.session, consultation_id)

    def link_events(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """Events linking an opinion to clauses, by opinion, streamed."""
        return verify_queries.link_events(self.session, consultation_id)

    def live_links(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """opinion_clause rows of the consultation's opinions, by opinion, streamed."""
        return verify_queries.live_links(self.session, consultation_id)
