"""Registered commands: participants' groups, the participation report, county programmes of areas."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Lang
from consultflow.domain.privacy import NAME_MODES, NameMode
from consultflow.domain.roles import Action
from consultflow.export import formats
from consultflow.services import participation, programmes
from consultflow.services.commands.core import STAFF, Nothing, _roles, command
from consultflow.services.commands.reports import Chunk, _chunks, _render
from consultflow.services.context import ServiceContext
from consultflow.services.participation import GroupChanged
from consultflow.services.programmes import AreaJoined, ProgrammeView

__all__ = [
    "AddArea",
    "CreateProgramme",
    "GroupChanged",
    "Programmes",
    "RenderParticipation",
    "RenderProgramme",
    "SetParticipantGroup",
]

T = TypeVar("T")


@dataclass(frozen=True)
class SetParticipantGroup:
    """Change a participant's group (an id or label; empty clears it), named from a consultation's groups."""

    participant_id: int
    group: str | None
    consultation_id: int | None = None  # whose workflow's groups; default: the default workflow's


@command("participant.group", "Change a participant's group (an audited change).", input=SetParticipantGroup,
         output=GroupChanged, roles=_roles(Action.ADD_PARTICIPANT), writes=True)  # fmt: skip
def _set_group(ctx: ServiceContext, acting: str | None, given: SetParticipantGroup) -> GroupChanged:
    groups = participation.groups_of(ctx, given.consultation_id)
    return participation.set_participant_group(
        ctx, acting=acting, participant_id=given.participant_id, group=given.group, groups=groups
    )


def _format(fmt: str, for_file: bool) -> None:
    if fmt not in formats.FORMATS:
        msg = f"unknown format {fmt!r}; allowed: {', '.join(formats.FORMATS)}"
        raise ValidationError(msg)
    if fmt in formats.BINARY_FORMATS and not for_file:
        msg = f"{fmt} is a binary format; give --output FILE"
        raise ValidationError(msg)


@dataclass(frozen=True)
class RenderParticipation:
    """The participation report of a consultation, in a format and language; a roster to compare with."""

    consultation_id: int
    format: str
    lang: str = "zh"
    names: str = "pseudonym"
    purpose: str | None = None
    roster: tuple[tuple[str, int], ...] = ()  # (group or village, population)
    for_file: bool = False


@command("report.participation", "Who took part, by group and village, and how many times, as chunks of a report.",
         input=RenderParticipation, output=Chunk, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _participation(
    ctx: ServiceContext, acting: str | None, given: RenderParticipation, use: Callable[[Iterable[Any]], T]
) -> T:
    _format(given.format, given.for_file)
    if given.names not in NAME_MODES:
        msg = f"--names {given.names!r}: allowed: {', '.join(NAME_MODES)}"
        raise ValidationError(msg)
    lang: Lang = "en" if given.lang == "en" else "zh"
    names: NameMode = "full" if given.names == "full" else "none" if given.names == "none" else "pseudonym"
    with tempfile.TemporaryFile() as spool:  # private to this process; gone when closed
        participation.use_participation_report(
            ctx, given.consultation_id, lambda doc: _render(doc, given, spool), lang=lang, names=names,  # type: ignore[arg-type]
            roster=given.roster, acting=acting, purpose=given.purpose,
        )  # fmt: skip
        return use(_chunks(spool))  # the read (if on record) has committed: now the bytes may go


@dataclass(frozen=True)
class RenderProgramme:
    """The county dashboard of a programme (its id or name), in a format and language."""

    programme: str
    format: str
    lang: str = "zh"
    for_file: bool = False


@command("report.programme", "A programme's areas side by side (the county dashboard), as chunks of a report.",
         input=RenderProgramme, output=Chunk, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _programme_report(
    ctx: ServiceContext, _acting: str | None, given: RenderProgramme, use: Callable[[Iterable[Any]], T]
) -> T:
    _format(given.format, given.for_file)
    lang: Lang = "en" if given.lang == "en" else "zh"
    with tempfile.TemporaryFile() as spool:
        _render(programmes.programme_report(ctx, given.programme, lang), given, spool)  # type: ignore[arg-type]
        return use(_chunks(spool))


@dataclass(frozen=True)
class CreateProgramme:
    """A county programme of areas (片区)."""

    name: str
    title: str


@command("programme.create", "Create a county programme of areas.", input=CreateProgramme, output=ProgrammeView,
         roles=_roles(Action.CREATE_CONSULTATION), writes=True)  # fmt: skip
def _create_programme(ctx: ServiceContext, acting: str | None, given: CreateProgramme) -> ProgrammeView:
    return programmes.create_programme(ctx, acting=acting, name=given.name, title=given.title)


@dataclass(frozen=True)
class Programmes:
    """Every programme."""

    programmes: tuple[ProgrammeView, ...]


@command("programme.list", "County programmes and their number of areas.", input=Nothing, output=Programmes,
         roles=STAFF, writes=False)  # fmt: skip
def _list_programmes(ctx: ServiceContext, _acting: str | None, _given: Nothing) -> Programmes:
    return Programmes(tuple(programmes.list_programmes(ctx)))


@dataclass(frozen=True)
class AddArea:
    """Make a consultation an area of a programme."""

    programme: str
    consultation_id: int


@command("programme.add-area", "Make a consultation an area (片区) of a programme.", input=AddArea, output=AreaJoined,
         roles=_roles(Action.CREATE_CONSULTATION), writes=True)  # fmt: skip
def _add_area(ctx: ServiceContext, acting: str | None, given: AddArea) -> AreaJoined:
    return programmes.add_area(ctx, acting=acting, programme=given.programme, consultation_id=given.consultation_id)
