"""Registered commands: the draft plan in versions, review rounds, ratings and their results (issue 26)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consultflow.domain.plan import Clause, PlanVersionInfo
from consultflow.domain.roles import Action
from consultflow.services import plans
from consultflow.services.commands.core import STAFF, OfOpinion, _roles, command
from consultflow.services.context import ServiceContext
from consultflow.services.plans import (
    OpinionClauses,
    PlanDiff,
    PlanShown,
    RatingIn,
    RatingsRecorded,
    ReviewOpened,
    ReviewResults,
)

__all__ = [
    "DiffPlan",
    "ImportPlan",
    "LinkClauses",
    "OpenReview",
    "RecordRatings",
    "ReviewResultsOf",
    "ShowPlan",
]


@dataclass(frozen=True)
class ImportPlan:
    """A draft's clauses (read from its file by the CLI), imported as the consultation's next version."""

    consultation_id: int
    clauses: tuple[Clause, ...]
    label: str | None = None
    source: str | None = None  # the file's name


@command("plan.import", "Import a plan draft's clauses as a new version.", input=ImportPlan,
         output=PlanVersionInfo, roles=_roles(Action.IMPORT_PLAN), writes=True)  # fmt: skip
def _import_plan(ctx: ServiceContext, acting: str | None, given: ImportPlan) -> PlanVersionInfo:
    return plans.import_plan(
        ctx,
        acting=acting,
        consultation_id=given.consultation_id,
        clauses=given.clauses,
        label=given.label,
        source=given.source,
    )


@dataclass(frozen=True)
class ShowPlan:
    """One version of a consultation's draft (the latest unless told)."""

    consultation_id: int
    version: int | None = None


@command("plan.show", "A version of the plan draft: its sections and clauses.", input=ShowPlan, output=PlanShown,
         roles=STAFF, writes=False)  # fmt: skip
def _show_plan(ctx: ServiceContext, _acting: str | None, given: ShowPlan) -> PlanShown:
    return plans.show_plan(ctx, given.consultation_id, given.version)


@dataclass(frozen=True)
class DiffPlan:
    """Two versions of a consultation's draft to compare."""

    consultation_id: int
    from_version: int
    to_version: int


@command("plan.diff", "Clauses added, removed and changed between two versions, with the opinions behind them.",
         input=DiffPlan, output=PlanDiff, roles=STAFF, writes=False)  # fmt: skip
def _diff_plan(ctx: ServiceContext, _acting: str | None, given: DiffPlan) -> PlanDiff:
    return plans.diff_plan(ctx, given.consultation_id, given.from_version, given.to_version)


@dataclass(frozen=True)
class LinkClauses:
    """Link an opinion to plan clauses, by number."""

    opinion_id: int
    clauses: tuple[str, ...]


@command("plan.link", "Link an opinion to the plan clauses it is about.", input=LinkClauses, output=OpinionClauses,
         roles=_roles(Action.IMPORT_PLAN), writes=True)  # fmt: skip
def _link(ctx: ServiceContext, acting: str | None, given: LinkClauses) -> OpinionClauses:
    return plans.link_clauses(ctx, acting=acting, opinion_id=given.opinion_id, clauses=given.clauses)


@command("plan.clauses-of", "The plan clauses an opinion is linked to.", input=OfOpinion, output=OpinionClauses,
         roles=STAFF, writes=False)  # fmt: skip
def _clauses_of(ctx: ServiceContext, _acting: str | None, given: OfOpinion) -> OpinionClauses:
    return plans.clauses_of(ctx, given.opinion_id)


@dataclass(frozen=True)
class OpenReview:
    """Open the next round as a review (成果评审) of a plan version."""

    consultation_id: int
    version: int | None = None
    category: str | None = None  # the category its comments are recorded under (the workflow's first)
    closes_at: datetime | None = None


@command("review.open", "Open the next round as a review of a plan version.", input=OpenReview,
         output=ReviewOpened, roles=_roles(Action.OPEN_ROUND), writes=True)  # fmt: skip
def _open_review(ctx: ServiceContext, acting: str | None, given: OpenReview) -> ReviewOpened:
    return plans.open_review(
        ctx,
        acting=acting,
        consultation_id=given.consultation_id,
        version=given.version,
        category=given.category,
        closes_at=given.closes_at,
    )


@dataclass(frozen=True)
class RecordRatings:
    """A named participant's ratings of clauses in the open review (a comment becomes an opinion)."""

    consultation_id: int
    participant_id: int
    ratings: tuple[RatingIn, ...]
    channel: str = "villagers_assembly"


@command("review.record", "Record a participant's ratings of plan clauses in the open review.",
         input=RecordRatings, output=RatingsRecorded, roles=_roles(Action.SUBMIT_OPINION), writes=True)  # fmt: skip
def _record(ctx: ServiceContext, acting: str | None, given: RecordRatings) -> RatingsRecorded:
    return plans.record_ratings(
        ctx,
        acting=acting,
        consultation_id=given.consultation_id,
        participant_id=given.participant_id,
        ratings=given.ratings,
        channel=given.channel,
    )


@dataclass(frozen=True)
class ReviewResultsOf:
    """The results of the reviews of a plan version (the latest reviewed unless told)."""

    consultation_id: int
    version: int | None = None


@command("review.results", "Per clause: ratings of each kind, the share satisfied, comments and their states.",
         input=ReviewResultsOf, output=ReviewResults, roles=STAFF, writes=False)  # fmt: skip
def _results(ctx: ServiceContext, _acting: str | None, given: ReviewResultsOf) -> ReviewResults:
    return plans.review_results(ctx, given.consultation_id, given.version)
