"""What the plan and review use cases need from storage (the store's PlanStore implements it)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime
from typing import Any, Protocol

from consultflow.domain.plan import (
    Clause,
    LinkedOpinion,
    NewRating,
    PlanVersionInfo,
    RatingCount,
    ReviewInfo,
    StoredClause,
)


class PlanStore(Protocol):
    """Plan versions, clauses, review rounds, ratings and opinion-clause links."""

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
        """A new version (the next number); a clause number seen before keeps its clause id."""

    def clause_ids(self, consultation_id: int, numbers: Sequence[str]) -> dict[str, int]:
        """The ids of the clauses with these numbers that the consultation has."""

    def versions(self, consultation_id: int) -> list[PlanVersionInfo]:
        """Every version, oldest first."""

    def version(self, consultation_id: int, number: int | None) -> PlanVersionInfo:
        """One version (None: the latest), or NotFoundError."""

    def clauses(self, version_id: int) -> list[StoredClause]:
        """A version's clauses in order."""

    def link(self, opinion_id: int, clause_ids: Sequence[int], actor_id: int, now: datetime) -> list[int]:
        """Link an opinion to clauses; the ones newly linked."""

    def clauses_of_opinion(self, opinion_id: int) -> list[tuple[int, str]]:
        """(clause id, number) an opinion is linked to."""

    def linked_opinions(self, consultation_id: int, clause_ids: Sequence[int]) -> list[LinkedOpinion]:
        """Opinions linked to these clauses (or naming their number as plan reference)."""

    def add_review(self, consultation_id: int, round_no: int, version_id: int, category: str, now: datetime) -> None:
        """Make a round a review of a version."""

    def reviews(self, consultation_id: int) -> list[ReviewInfo]:
        """The consultation's review rounds, oldest first."""

    def rated(self, consultation_id: int, round_no: int, participant_id: int) -> set[int]:
        """The clauses a participant rated in a review round already."""

    def form_used(self, consultation_id: int, round_no: int, form_key: str) -> bool:
        """Whether a portal form with this key was recorded in the review."""

    def add_ratings(
        self, consultation_id: int, round_no: int, ratings: Sequence[NewRating], actor_id: int, now: datetime
    ) -> None:
        """Store ratings (comments sealed already)."""

    def rating_counts(self, consultation_id: int, version_id: int) -> list[RatingCount]:
        """Per clause and rating: ratings and comments, over the version's reviews."""

    def comment_states(self, consultation_id: int, version_id: int) -> list[tuple[int, str, int]]:
        """(clause, state of its comments' opinions, count), over the version's reviews."""

    # --- for audit verify: the rows as stored, and the events that account for them ----------------

    def plan_events(self, consultation_id: int) -> list[tuple[Any, ...]]:
        """The chain's plan_imported and review_opened events: (kind, round, chain sequence, payload), in order."""

    def live_plan(self, consultation_id: int) -> tuple[list[tuple[Any, ...]], list[str], list[tuple[Any, ...]]]:
        """Versions (id, number, label, source, clauses), clause numbers, reviews.

        A review is (round, version, its consultation, category, the round's consultation).
        """

    def rating_events(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """clause_rated events: (participant, round, chain sequence, payload as stored), by participant and round."""

    def live_ratings(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """plan_rating rows, by participant and round.

        Each is (participant, round, clause number, its consultation, rating, comment as stored, opinion).
        """

    def link_events(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """Events linking an opinion to clauses: (opinion, chain sequence, kind, payload), by opinion."""

    def live_links(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """The consultation's opinions' opinion_clause rows: (opinion, clause number, its consultation), by opinion."""
