"""Registered commands: opinions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from consultflow.domain.labels import resolve_choice
from consultflow.domain.model import OpinionFilter
from consultflow.domain.redaction import personal_data_kinds
from consultflow.domain.roles import Action
from consultflow.domain.vocabulary import CHOICE_ALIASES, Field
from consultflow.services import (
    opinion_views,
    opinions,
    receipts,
)
from consultflow.services.commands.core import (
    STAFF,
    OfOpinion,
    _roles,
    command,
)
from consultflow.services.context import ServiceContext
from consultflow.services.opinion_views import EntryView, OpinionView
from consultflow.services.opinions import Assignment, TransitionResult

__all__ = [
    "AssignOpinions",
    "CorrectOpinion",
    "FireTrigger",
    "ListOpinions",
    "OpinionDetail",
    "ReceiptCode",
    "SubmitOpinion",
]

T = TypeVar("T")


@dataclass(frozen=True)
class SubmitOpinion:
    """Record an opinion in the consultation's open round."""

    consultation_id: int
    participant_id: int
    category: str
    channel: str
    text: str


@command("opinion.submit", "Record an opinion in the open round.", input=SubmitOpinion, output=OpinionView,
         roles=_roles(Action.SUBMIT_OPINION), writes=True)  # fmt: skip
def _submit(ctx: ServiceContext, acting: str | None, given: SubmitOpinion) -> OpinionView:
    with ctx.uow() as uow:  # 产业发展, Industry development or 问卷 name the workflow's keys too
        (spec,) = opinion_views.workflow_specs(uow, given.consultation_id)
    given = replace(
        given,
        category=resolve_choice(given.category, spec.categories, "category", CHOICE_ALIASES),
        channel=resolve_choice(given.channel, spec.channels, "channel", CHOICE_ALIASES),
    )
    view = opinions.submit_opinion(
        ctx,
        acting=acting,
        consultation_id=given.consultation_id,
        participant_id=given.participant_id,
        category=given.category,
        channel=given.channel,
        text=given.text,
    )
    with ctx.uow() as uow:  # the flag names the participant's own name too: read it, never show it
        name = uow.participants.get(view.participant_id).name
    return replace(view, personal_data=personal_data_kinds(view.text, name))


@dataclass(frozen=True)
class FireTrigger:
    """Fire a workflow trigger on one opinion or many (all move, or none does)."""

    opinion_ids: list[int]
    trigger: str
    text: str | None = None
    reason: str | None = None
    plan_ref: str | None = None
    merge_target: str | None = None
    stance: str | None = None

    def fields(self) -> Mapping[Field, object]:
        """The trigger's fields as the workflow names them."""
        return {
            Field.TEXT: self.text,
            Field.REASON: self.reason,
            Field.PLAN_REF: self.plan_ref,
            Field.MERGE_TARGET: self.merge_target,
            Field.STANCE: self.stance,
        }


@command("opinion.fire", "Fire a workflow trigger on opinions, in one transaction.", input=FireTrigger,
         output=TransitionResult, roles=STAFF, writes=True, streamed=True)  # fmt: skip
def _fire(ctx: ServiceContext, acting: str | None, given: FireTrigger, use: Callable[[Iterable[Any]], T]) -> T:
    requests = opinions.SameTrigger(given.opinion_ids, given.trigger, given.fields())
    return use(opinions.fire_many(ctx, acting=acting, requests=requests))


@dataclass(frozen=True)
class AssignOpinions:
    """Assign opinions to the planner who owes them feedback."""

    opinion_ids: list[int]
    planner: str


@command("opinion.assign", "Assign opinions to a planner, in one transaction.", input=AssignOpinions,
         output=Assignment, roles=_roles(Action.ASSIGN_OPINION), writes=True, streamed=True)  # fmt: skip
def _assign(ctx: ServiceContext, acting: str | None, given: AssignOpinions, use: Callable[[Iterable[Any]], T]) -> T:
    return use(opinions.assign(ctx, acting=acting, opinion_ids=given.opinion_ids, planner=given.planner))


@dataclass(frozen=True)
class CorrectOpinion:
    """Correct a recorded opinion's text, on record."""

    opinion_id: int
    text: str
    reason: str


@command("opinion.correct", "Correct a recorded opinion's text.", input=CorrectOpinion, output=OpinionView,
         roles=_roles(Action.CORRECT_OPINION), writes=True)  # fmt: skip
def _correct(ctx: ServiceContext, acting: str | None, given: CorrectOpinion) -> OpinionView:
    return opinions.correct(ctx, acting=acting, opinion_id=given.opinion_id, text=given.text, reason=given.reason)


@dataclass(frozen=True)
class ListOpinions:
    """Opinions matching every filter given."""

    consultation_id: int | None = None
    state: str | None = None
    assigned_to: str | None = None
    category: str | None = None
    channel: str | None = None
    round_no: int | None = None
    outcome: str | None = None
    limit: int | None = None


@command("opinion.list", "Opinions matching every filter given (a planner's work queue).", input=ListOpinions,
         output=OpinionView, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _list_opinions(
    ctx: ServiceContext, _acting: str | None, given: ListOpinions, use: Callable[[Iterable[Any]], T]
) -> T:
    criteria = OpinionFilter(
        consultation_id=given.consultation_id,
        state=given.state,
        category=given.category,
        channel=given.channel,
        round_no=given.round_no,
        outcome=given.outcome,
        limit=given.limit,
    )
    return opinion_views.use_opinion_list(ctx, criteria, given.assigned_to, use)


@dataclass(frozen=True)
class OpinionDetail:
    """An opinion and the feedback and replies exchanged about it."""

    opinion: OpinionView
    entries: tuple[EntryView, ...]


@command("opinion.show", "One opinion and its exchange.", input=OfOpinion, output=OpinionDetail, roles=STAFF,
         writes=False)  # fmt: skip
def _show_opinion(ctx: ServiceContext, _acting: str | None, given: OfOpinion) -> OpinionDetail:
    view, entries = opinion_views.show_opinion(ctx, given.opinion_id)
    return OpinionDetail(view, tuple(entries))


@dataclass(frozen=True)
class ReceiptCode:
    """A new receipt code for an opinion: shown once, only its hash is kept."""

    opinion_id: int
    receipt_code: str


@command("opinion.receipt", "Issue a receipt code for an opinion, to hand to the villager.", input=OfOpinion,
         output=ReceiptCode, roles=_roles(Action.ISSUE_RECEIPT), writes=True)  # fmt: skip
def _receipt(ctx: ServiceContext, acting: str | None, given: OfOpinion) -> ReceiptCode:
    return ReceiptCode(given.opinion_id, receipts.issue_receipt(ctx, acting=acting, opinion_id=given.opinion_id))
