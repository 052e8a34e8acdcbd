"""A county programme of areas (片区): several consultations, one per area, side by side.

`programme create` makes one; a consultation joins it when it is created (`--programme`, or
`--from` an area already in it) or later (`programme add-area`, an audited settings change in
that consultation's chain). `programme_report` is the county dashboard: each area's opinions, its
split by category, rounds run, outcomes and the share of people who took part more than once.
It names nobody, so the portal publishes it as it is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from consultflow.domain.audit import EventKind
from consultflow.domain.document import Document, Row, Table
from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Label, Lang
from consultflow.domain.roles import Action
from consultflow.domain.vocabulary import Outcome
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.inputs import required_text
from consultflow.services.participation import summaries_in
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import UnitOfWork

_WORDS: dict[str, tuple[str, str]] = {
    "title": ("片区对比", "Areas side by side"),
    "areas": ("各片区情况", "Areas"),
    "area": ("片区", "Area"),
    "consultation": ("征求意见编号", "Consultation"),
    "opinions": ("意见数", "Opinions"),
    "rounds": ("已开展轮次", "Rounds run"),
    "participants": ("参与人数", "People"),
    "repeat_share": ("多次参与占比(%)", "Took part twice or more (%)"),
    "total": ("合计", "All areas"),
    "pct": ("{label}(%)", "{label} (%)"),
}
_SHOWN_OUTCOMES = (Outcome.ADOPTED, Outcome.PARTLY_ADOPTED, Outcome.REJECTED)


def _w(key: str, lang: Lang, **kw: object) -> str:
    zh, en = _WORDS[key]
    return (zh if lang == "zh" else en).format(**kw)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


@dataclass(frozen=True)
class ProgrammeView:
    """A programme and how many areas it has."""

    id: int
    name: str
    title: str
    created_at: datetime
    areas: int = 0


@dataclass(frozen=True)
class AreaJoined:
    """A consultation made an area of a programme."""

    programme_id: int
    consultation_id: int
    area: str
    changed: bool


def create_programme(ctx: ServiceContext, *, acting: str | None, name: str, title: str) -> ProgrammeView:
    """A new county programme (coordinators).

    Its name identifies it (`--programme NAME`), so it may not be a number.

    Raises:
        ValidationError: a blank or numeric name, a blank title, a name already taken.
    """
    name = required_text(name, "name", 120)
    title = required_text(title, "title", 200)
    if name.isdigit():
        msg = f"a programme's name may not be a number ({name!r}): programmes are named by id or by name"
        raise ValidationError(msg)

    def body(change: Change) -> ProgrammeView:
        row = change.uow.programmes.add(name=name, title=title, created_by=change.actor.id, now=change.now)
        return ProgrammeView(row.id, row.name, row.title, row.created_at)

    return run(
        ctx,
        acting=acting,
        action=Action.CREATE_CONSULTATION,
        event="programme_created",
        body=body,
        describe=lambda view: {"programme_id": view.id},
    )


def list_programmes(ctx: ServiceContext) -> list[ProgrammeView]:
    """Every programme with its number of areas."""
    with ctx.reading() as uow:
        return [ProgrammeView(p.id, p.name, p.title, p.created_at, n) for p, n in uow.programmes.listing()]


def add_area(ctx: ServiceContext, *, acting: str | None, programme: str, consultation_id: int) -> AreaJoined:
    """Make a consultation an area of a programme: a settings change in its audit chain.

    Raises:
        ValidationError: it is an area of another programme already.
        NotFoundError: no such programme or consultation.
    """

    def body(change: Change) -> AreaJoined:
        consultation = change.consultation(consultation_id)
        found = change.uow.programmes.get(programme)
        if consultation.programme_id == found.id:
            return AreaJoined(found.id, consultation.id, consultation.area, changed=False)
        if consultation.programme_id is not None:
            msg = f"consultation {consultation_id} is an area of programme {consultation.programme_id} already"
            raise ValidationError(msg)
        consultation.programme_id = found.id
        change.record(consultation.id, change.event(EventKind.SETTINGS_CHANGED, payload={"programme": found.id}))
        return AreaJoined(found.id, consultation.id, consultation.area, changed=True)

    return run(
        ctx,
        acting=acting,
        action=Action.CREATE_CONSULTATION,
        event="programme_area_added",
        body=body,
        describe=lambda a: {"programme_id": a.programme_id, "consultation_id": a.consultation_id},
    )


@dataclass(frozen=True)
class AreaFigures:
    """One area's figures on the dashboard."""

    consultation_id: int
    area: str
    title: str
    opinions: int
    by_category: tuple[tuple[str, int], ...]  # (category key, opinions)
    rounds: int
    outcomes: tuple[tuple[str, int], ...]  # (outcome, opinions) for adopted, partly adopted, rejected
    participants: int
    repeat: int  # people who took part twice or more
    repeat_share: float


@dataclass(frozen=True)
class ProgrammeFigures:
    """A programme's areas side by side, and the labels of their categories."""

    programme: ProgrammeView
    areas: tuple[AreaFigures, ...]
    categories: tuple[tuple[str, Label], ...]


def programme_figures(ctx: ServiceContext, programme: str) -> ProgrammeFigures:
    """Each area's figures, counted by the database (a few grouped queries for the whole programme)."""
    with ctx.reading() as uow:
        return _figures(uow, programme)


def _figures(uow: UnitOfWork, programme: str) -> ProgrammeFigures:
    found = uow.programmes.get(programme)
    areas = list(uow.programmes.areas(found.id))
    ids = [a.id for a in areas]
    counts = uow.programmes.outcome_counts(ids) if ids else []
    rounds = uow.programmes.rounds_run(ids) if ids else {}
    people = summaries_in(uow, ids)
    categories: dict[str, Label] = {}
    for a in areas:
        for key, label in spec_for(uow.workflows.get(a.workflow_id)).categories.items():
            categories.setdefault(key, label)
    by_category: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_outcome: dict[int, dict[str | None, int]] = defaultdict(lambda: defaultdict(int))
    for cid, category, outcome, n in counts:
        by_category[cid][category] += n
        by_outcome[cid][outcome] += n
        categories.setdefault(category, Label(category, category))
    shown = tuple(
        AreaFigures(
            a.id,
            a.area,
            a.title,
            sum(by_category[a.id].values()),
            tuple((k, by_category[a.id].get(k, 0)) for k in categories),
            rounds.get(a.id, 0),
            tuple((o.value, by_outcome[a.id].get(o.value, 0)) for o in _SHOWN_OUTCOMES),
            people[a.id].participants,
            people[a.id].repeat,
            people[a.id].repeat_share,
        )
        for a in areas
    )
    view = ProgrammeView(found.id, found.name, found.title, found.created_at, len(areas))
    return ProgrammeFigures(view, shown, tuple(categories.items()))


def programme_report(ctx: ServiceContext, programme: str, lang: Lang = "zh") -> Document:
    """The county dashboard: the programme's areas side by side, and all areas together."""
    return dashboard(programme_figures(ctx, programme), lang)


def dashboard(figures: ProgrammeFigures, lang: Lang) -> Document:
    """The dashboard's document from its figures (names nobody: public as it is)."""
    headers = (
        _w("area", lang),
        _w("consultation", lang),
        _w("opinions", lang),
        *[_w("pct", lang, label=label.get(lang)) for _k, label in figures.categories],
        _w("rounds", lang),
        *[o.label.get(lang) for o in _SHOWN_OUTCOMES],
        _w("participants", lang),
        _w("repeat_share", lang),
    )
    rows: list[Row] = []
    for a in figures.areas:
        rows.append(
            (
                a.area,
                a.consultation_id,
                a.opinions,
                *[_pct(n, a.opinions) for _k, n in a.by_category],
                a.rounds,
                *[n for _o, n in a.outcomes],
                a.participants,
                a.repeat_share,
            )
        )
    total = sum(a.opinions for a in figures.areas)
    people = sum(a.participants for a in figures.areas)
    repeat = sum(a.repeat for a in figures.areas)
    if len(figures.areas) > 1:
        rows.append(
            (
                _w("total", lang),
                None,
                total,
                *[_pct(sum(a.by_category[i][1] for a in figures.areas), total) for i in range(len(figures.categories))],
                sum(a.rounds for a in figures.areas),
                *[sum(a.outcomes[i][1] for a in figures.areas) for i in range(len(_SHOWN_OUTCOMES))],
                people,
                _pct(repeat, people),
            )
        )
    p = figures.programme
    doc_figures: dict[str, object] = {
        "programme": {"id": p.id, "name": p.name, "title": p.title},
        "areas": [
            {
                "consultation_id": a.consultation_id,
                "area": a.area,
                "title": a.title,
                "opinions": a.opinions,
                "by_category": {k: {"opinions": n, "share": _pct(n, a.opinions)} for k, n in a.by_category},
                "rounds": a.rounds,
                **dict(a.outcomes),
                "participants": a.participants,
                "repeat_share": a.repeat_share,
            }
            for a in figures.areas
        ],
    }
    table = Table("areas", _w("areas", lang), headers, tuple(rows))
    return Document(f"{p.title} · {_w('title', lang)}", p.name, (table,), doc_figures)
