"""Registered commands: consultations and rounds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from consultflow.domain.labels import Label
from consultflow.domain.roles import Action
from consultflow.services import (
    consultations,
    rounds,
    workflows,
)
from consultflow.services.commands.core import (
    STAFF,
    Nothing,
    OfConsultation,
    _roles,
    command,
)
from consultflow.services.consultations import ConsultationView, RoundView
from consultflow.services.context import ServiceContext
from consultflow.services.rounds import ClosePlan, RoundStatus

__all__ = [
    "CloseRound",
    "ConsultationDetail",
    "Consultations",
    "CreateConsultation",
    "OpenRound",
    "RescheduleRound",
    "SetAutoClose",
]

T = TypeVar("T")


@dataclass(frozen=True)
class CreateConsultation:
    """A consultation pinned to a workflow version."""

    title: str
    area: str
    workflow: str = consultations.DEFAULT_WORKFLOW
    auto_close: bool = False
    programme: str | None = None  # a county programme (id or name) it is an area of
    copy_from: int | None = None  # start from this consultation's setup (workflow, groups, programme)


@command("consultation.create", "Create a consultation.", input=CreateConsultation, output=ConsultationView,
         roles=_roles(Action.CREATE_CONSULTATION), writes=True)  # fmt: skip
def _create_consultation(ctx: ServiceContext, acting: str | None, given: CreateConsultation) -> ConsultationView:
    return consultations.create_consultation(
        ctx, acting=acting, title=given.title, area=given.area, workflow=given.workflow, auto_close=given.auto_close,
        programme=given.programme, copy_from=given.copy_from,
    )  # fmt: skip


@dataclass(frozen=True)
class Consultations:
    """Every consultation."""

    consultations: tuple[ConsultationView, ...]


@command("consultation.list", "All consultations.", input=Nothing, output=Consultations, roles=STAFF, writes=False)
def _list_consultations(ctx: ServiceContext, _acting: str | None, _given: Nothing) -> Consultations:
    return Consultations(tuple(consultations.list_consultations(ctx)))


@dataclass(frozen=True)
class ConsultationDetail:
    """One consultation, and the labels of its workflow's states (to show its opinions by state)."""

    consultation: ConsultationView
    state_labels: dict[str, Label]


@command("consultation.show", "One consultation: rounds and opinions by state.", input=OfConsultation,
         output=ConsultationDetail, roles=STAFF, writes=False)  # fmt: skip
def _show_consultation(ctx: ServiceContext, _acting: str | None, given: OfConsultation) -> ConsultationDetail:
    view = consultations.show_consultation(ctx, given.consultation_id)
    spec = workflows.find_spec(ctx, view.workflow)
    return ConsultationDetail(view, {name: s.label for name, s in spec.states.items()})


@dataclass(frozen=True)
class OpenRound:
    """Open a consultation's next round."""

    consultation_id: int
    closes_at: datetime | None = None


@command("round.open", "Open the next round.", input=OpenRound, output=RoundView, roles=_roles(Action.OPEN_ROUND),
         writes=True)  # fmt: skip
def _open_round(ctx: ServiceContext, acting: str | None, given: OpenRound) -> RoundView:
    return rounds.open_round(ctx, acting=acting, consultation_id=given.consultation_id, closes_at=given.closes_at)


@dataclass(frozen=True)
class RescheduleRound:
    """Set or move the open round's closing time."""

    consultation_id: int
    closes_at: datetime


@command("round.reschedule", "Set or move the open round's closing time.", input=RescheduleRound,
         output=RoundView, roles=_roles(Action.OPEN_ROUND), writes=True)  # fmt: skip
def _reschedule_round(ctx: ServiceContext, acting: str | None, given: RescheduleRound) -> RoundView:
    return rounds.reschedule_round(ctx, acting=acting, consultation_id=given.consultation_id, closes_at=given.closes_at)


@dataclass(frozen=True)
class CloseRound:
    """Close the open round (or only say what closing would do)."""

    consultation_id: int
    dry_run: bool = False


@command("round.close", "Close the open round, applying the workflow's round-close rules.", input=CloseRound,
         output=ClosePlan, roles=_roles(Action.CLOSE_ROUND), writes=True)  # fmt: skip
def _close_round(ctx: ServiceContext, acting: str | None, given: CloseRound) -> ClosePlan:
    return rounds.close_round(ctx, acting=acting, consultation_id=given.consultation_id, dry_run=given.dry_run)


@command("round.status", "The open round and the opinions still waiting, by state.", input=OfConsultation,
         output=RoundStatus, roles=STAFF, writes=False)  # fmt: skip
def _round_status(ctx: ServiceContext, _acting: str | None, given: OfConsultation) -> RoundStatus:
    return rounds.round_status(ctx, given.consultation_id)


@dataclass(frozen=True)
class SetAutoClose:
    """Whether the worker closes the consultation's rounds at their closing time."""

    consultation_id: int
    enabled: bool


@command("consultation.auto-close", "Turn automatic round closing on or off.", input=SetAutoClose,
         output=ConsultationView, roles=_roles(Action.CREATE_CONSULTATION), writes=True)  # fmt: skip
def _auto_close(ctx: ServiceContext, acting: str | None, given: SetAutoClose) -> ConsultationView:
    return consultations.set_auto_close(
        ctx, acting=acting, consultation_id=given.consultation_id, enabled=given.enabled
    )
