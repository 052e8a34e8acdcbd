"""Themes (主题): planners code opinions with free tags inside their category, on the record.

Adding or removing a theme is an audit event in the opinion's chain (theme_added, theme_removed),
so `audit history` shows who coded what and `audit verify` counts it. Suggestions are keywords of
the opinions' texts (consultflow.services.keywords); a planner applies a theme explicitly, to the
opinions named or to every opinion whose text contains a keyword (`--matching`): nothing is coded
by itself. "% coded" is the share of a round's opinions with at least one theme.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from consultflow.domain.audit import EventKind
from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Label, resolve_choice
from consultflow.domain.roles import Action
from consultflow.domain.themes import normalised_keyword, normalised_theme, text_contains
from consultflow.domain.vocabulary import CHOICE_ALIASES
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services import keywords
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.opinions import FIRE_BATCH, note_on
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import UnitOfWork

MAX_TOP = 200


@dataclass(frozen=True)
class Coded:
    """What adding or removing a theme did: the opinions changed, and those already as asked."""

    theme: str
    added: bool  # True: added; False: removed
    changed: tuple[int, ...]
    unchanged: tuple[int, ...]
    matching: str | None = None


@dataclass(frozen=True)
class ThemeCount:
    """A theme of one category: how many opinions it codes, and how many of those were adopted."""

    category: str
    category_label: Label
    theme: str
    opinions: int
    adopted: int


@dataclass(frozen=True)
class Suggestion:
    """A keyword of the opinions' texts: how many opinions contain it, and its TF-IDF weight."""

    keyword: str
    opinions: int
    weight: float


@dataclass(frozen=True)
class Suggestions:
    """The keywords suggested, and how many opinions' texts were read for them."""

    consultation_id: int
    category: str | None
    read: int
    keywords: tuple[Suggestion, ...]


@dataclass(frozen=True)
class RoundCoding:
    """One round: its opinions, how many carry a theme, and the share (%)."""

    round_no: int
    opinions: int
    coded: int
    percent: float


def percent(part: int, whole: int) -> float:
    """`part` of `whole` in percent, to one decimal (0 of nothing is 0)."""
    return round(100.0 * part / whole, 1) if whole else 0.0


def _category(spec: WorkflowSpec, category: str | None) -> str | None:
    return None if category is None else resolve_choice(category, spec.categories, "category", CHOICE_ALIASES)


def code(
    ctx: ServiceContext,
    *,
    acting: str | None,
    theme: str,
    add: bool,
    opinion_ids: Sequence[int] = (),
    matching: str | None = None,
    consultation_id: int | None = None,
    category: str | None = None,
) -> Coded:
    """Add a theme to opinions, or remove it: one audit event per opinion changed, in one transaction.

    The opinions are those named, or (`matching`, adding only) every opinion of the consultation
    (of one category, if given) whose text contains the keyword. Adding a theme an opinion has is
    no change; removing one it lacks is refused, naming it, and nothing is written.
    """
    tag = normalised_theme(theme)
    keyword = normalised_keyword(matching) if matching is not None else None
    if keyword is not None and not add:
        msg = "--matching adds a theme; remove one from the opinions named: opinion theme remove OPINION… THEME"
        raise ValidationError(msg)
    if keyword is not None and opinion_ids:
        msg = "give opinion ids or --matching KEYWORD, not both"
        raise ValidationError(msg)
    if keyword is not None and consultation_id is None:
        msg = "--matching needs --consultation ID: the consultation whose opinions are searched"
        raise ValidationError(msg)
    if keyword is None and not opinion_ids:
        msg = "give at least one opinion id, or --matching KEYWORD with --consultation ID"
        raise ValidationError(msg)

    def body(change: Change) -> Coded:
        ids = list(dict.fromkeys(opinion_ids))
        if keyword is not None:
            assert consultation_id is not None
            spec = change.spec(consultation_id)  # locks the consultation first, then reads its texts
            wanted = _category(spec, category)
            ids = [
                oid
                for oid, _cat, text in change.uow.themes.texts(consultation_id, wanted)
                if text_contains(text, keyword)
            ]
            if not ids:
                msg = f"no opinion of consultation {consultation_id} contains {keyword!r}; nothing was coded"
                raise ValidationError(msg)
        ids.sort()
        change.lock_owners(ids)
        changed: list[int] = []
        unchanged: list[int] = []
        payload: dict[str, object] = {"theme": tag} if keyword is None else {"theme": tag, "matching": keyword}
        kind, trigger = (EventKind.THEME_ADDED, "add_theme") if add else (EventKind.THEME_REMOVED, "remove_theme")
        for start in range(0, len(ids), FIRE_BATCH):
            batch = change.moving(ids[start : start + FIRE_BATCH], owners_locked=True)
            has = change.uow.themes.of_opinions([op.id for op in batch])
            moved = []
            for op in batch:
                there = tag in has.get(op.id, ())
                if add and there:
                    unchanged.append(op.id)
                    continue
                if not add and not there:
                    msg = f"opinion {op.id} is not coded with {tag!r}; nothing was removed"
                    raise ValidationError(msg)
                note_on(change, op, kind, trigger, payload)
                moved.append(op)
                changed.append(op.id)
            if moved:
                change.uow.opinions.write_moves(moved)
                if add:
                    rows = [(op.consultation_id, op.id, tag) for op in moved]
                    change.uow.themes.add(rows, actor_id=change.actor.id, now=change.now)
                else:
                    change.uow.themes.remove([(op.id, tag) for op in moved])
            change.flush()
            change.uow.release()
        return Coded(tag, add, tuple(changed), tuple(unchanged), keyword)

    return run(
        ctx,
        acting=acting,
        action=Action.CODE_THEMES,
        event="themes_coded",
        body=body,
        describe=lambda done: {"changed": len(done.changed), "added": done.added},
    )


def theme_counts(ctx: ServiceContext, consultation_id: int, category: str | None = None) -> list[ThemeCount]:
    """Every theme used in the consultation, by category (the workflow's order), most opinions first."""
    with ctx.reading() as uow:
        spec = _spec(uow, consultation_id)
        wanted = _category(spec, category)
        rows = uow.themes.counts(consultation_id)
    return _counted(spec, rows, wanted)


def _spec(uow: UnitOfWork, consultation_id: int) -> WorkflowSpec:
    consultation = uow.consultations.get(consultation_id)
    return spec_for(uow.workflows.get(consultation.workflow_id))


def _counted(
    spec: WorkflowSpec, rows: Sequence[tuple[str, str, str | None, int]], category: str | None
) -> list[ThemeCount]:
    opinions: dict[tuple[str, str], int] = defaultdict(int)
    adopted: dict[tuple[str, str], int] = defaultdict(int)
    for cat, theme, outcome, n in rows:
        opinions[(cat, theme)] += n
        if outcome == "adopted":
            adopted[(cat, theme)] += n
    order = {key: i for i, key in enumerate(spec.categories)}
    keys = sorted(opinions, key=lambda k: (order.get(k[0], len(order)), k[0], -opinions[k], k[1]))
    return [
        ThemeCount(cat, spec.categories.get(cat, Label(cat, cat)), theme, opinions[(cat, theme)], adopted[(cat, theme)])
        for cat, theme in keys
        if category is None or cat == category
    ]


def suggest(ctx: ServiceContext, consultation_id: int, *, category: str | None = None, top: int = 20) -> Suggestions:
    """Keywords of the consultation's opinions (of one category), with how many opinions contain each.

    The texts stream from the database (opened with their participants' keys) into jieba's
    segmentation; only a count per distinct word is held. Nothing is coded: a planner applies a
    theme with `opinion theme add`.
    """
    if not 1 <= top <= MAX_TOP:
        msg = f"--top {top}: give a number from 1 to {MAX_TOP}"
        raise ValidationError(msg)
    with ctx.reading() as uow:
        wanted = _category(_spec(uow, consultation_id), category)

        def texts() -> Iterator[str]:  # streamed afresh for each of the two passes
            for _oid, _cat, text in uow.themes.texts(consultation_id, wanted):
                yield text

        found, read = keywords.keywords(texts, top)
    return Suggestions(consultation_id, wanted, read, tuple(Suggestion(k.keyword, k.opinions, k.weight) for k in found))


def opinion_themes(ctx: ServiceContext, opinion_id: int) -> tuple[str, ...]:
    """The themes an opinion is coded with now, sorted (its history says who coded them, and when)."""
    with ctx.reading() as uow:
        uow.opinions.get(opinion_id)  # an unknown opinion is one line saying so
        return tuple(uow.themes.of_opinions([opinion_id]).get(opinion_id, ()))


def progress(ctx: ServiceContext, consultation_id: int) -> list[RoundCoding]:
    """Per round: its opinions (submitted, moved or carried over in it), how many carry a theme, the share."""
    with ctx.reading() as uow:
        uow.consultations.get(consultation_id)
        rows = uow.themes.coded_per_round(consultation_id)
    return [RoundCoding(r, n, k, percent(k, n)) for r, n, k in rows]


VERIFY_WINDOW = 2000  # opinions whose themes are replayed at a time: memory stays flat


def themes_problem(uow: UnitOfWork, consultation_id: int) -> str | None:
    """The first opinion whose live themes are not what its theme events say, in words (for `audit verify`).

    Each opinion's theme_added and theme_removed events are replayed in chain order, a window of
    opinions at a time, and the themes they leave are compared with the live rows.
    """
    span = uow.themes.id_range(consultation_id)
    if span is None:
        return None
    low, high = span
    for start in range(low, high + 1, VERIFY_WINDOW):
        events, live = uow.themes.replay_window(consultation_id, start, start + VERIFY_WINDOW - 1)
        said: dict[int, set[str]] = defaultdict(set)
        for opinion_id, kind, payload in events:
            theme = str(json.loads(payload).get("theme", ""))
            if kind == EventKind.THEME_ADDED:
                said[opinion_id].add(theme)
            else:
                said[opinion_id].discard(theme)
        now: dict[int, set[str]] = defaultdict(set)
        for opinion_id, theme in live:
            now[opinion_id].add(theme)
        for opinion_id in sorted(set(said) | set(now)):
            if said[opinion_id] != now[opinion_id]:
                shown, expected = sorted(now[opinion_id]), sorted(said[opinion_id])
                return (
                    f"opinion {opinion_id}: the live themes are {shown} but its events say {expected} "
                    "(a live row was edited)"
                )
    return None
