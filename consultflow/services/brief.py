"""The figures of the report a county sends up (汇报), read in one snapshot; the DOCX is written from them.

Everything the brief says comes from here: totals, the category split, outcomes, rounds to outcome,
the per-round funnel with the share of each round's opinions coded with a theme, participation and
repeat participation, and the adopted opinions counted by theme. No one is named: people are
counted, never listed.

Participation comes from the participation report's own figures (consultflow.services.participation):
each person takes part once for each opinion they gave and once for each answer to feedback.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from consultflow.domain.audit import EventKind
from consultflow.domain.groups import group_label
from consultflow.domain.labels import Label
from consultflow.domain.vocabulary import Outcome
from consultflow.services import participation, statistics
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.statistics import FunnelRow, OutcomeRounds
from consultflow.services.themes import RoundCoding, ThemeCount, _counted, percent


@dataclass(frozen=True)
class Share:
    """A part of the whole: its key, zh/en label, count and percent."""

    key: str
    label: Label
    opinions: int
    percent: float


@dataclass(frozen=True)
class GroupTaking:
    """One group of people (乡镇干部, 企业代表…): how many took part, and how many of them twice or more."""

    key: str | None  # None: no group recorded
    label: Label
    participants: int
    more_than_once: int


@dataclass(frozen=True)
class Participation:
    """People who gave opinions, how many took part two or more times, how often, and by group."""

    participants: int
    more_than_once: int
    percent_more_than_once: float
    times: tuple[tuple[int, int], ...]  # (times taken part, participants); the last is that many or more
    groups: tuple[GroupTaking, ...] = ()


@dataclass(frozen=True)
class RoundOutcomes:
    """One round: how many opinions reached each outcome in it."""

    round_no: int
    outcomes: tuple[tuple[str, int], ...]  # (outcome, opinions), in Outcome's order


@dataclass(frozen=True)
class BriefFigures:
    """What the county's brief reports, for one consultation."""

    consultation_id: int
    title: str
    area: str
    opinions: int
    rounds_held: int
    categories: tuple[Share, ...]
    outcomes: tuple[Share, ...]  # each outcome, then the opinions still open (key "open")
    rounds_to_outcome: tuple[OutcomeRounds, ...]
    funnel: tuple[FunnelRow, ...]
    coding: tuple[RoundCoding, ...]
    decided_per_round: tuple[RoundOutcomes, ...]
    participation: Participation
    themes: tuple[ThemeCount, ...]  # every theme, by category
    adopted_themes: tuple[tuple[str, int], ...]  # (theme, adopted opinions), most first
    headline_themes: tuple[str, ...]  # each category's most frequent adopted theme, most first


def brief_figures(ctx: ServiceContext, consultation_id: int) -> BriefFigures:
    """Every figure of the brief, read in one snapshot (the rounds and funnel in their own reads)."""
    with ctx.reading() as uow:
        c = uow.consultations.get(consultation_id)
        spec = spec_for(uow.workflows.get(c.workflow_id))
        counts = uow.figures.outcome_counts(c.id)
        rounds_held = len(uow.consultations.rounds(c.id))
        theme_rows = uow.themes.counts(c.id)
        coding = uow.themes.coded_per_round(c.id)
        taking = participation.summaries_in(uow, [c.id])[c.id]  # the participation report's own figures
        events = uow.figures.event_counts(c.id)
    by_category: Counter[str] = Counter()
    by_outcome: Counter[str | None] = Counter()
    for category, _channel, outcome, n in counts:
        by_category[category] += n
        by_outcome[outcome] += n
    total = sum(by_category.values())
    categories = [
        Share(key, label, by_category.get(key, 0), percent(by_category.get(key, 0), total))
        for key, label in spec.categories.items()
    ]
    categories += [
        Share(key, Label(key, key), n, percent(n, total))
        for key, n in sorted(by_category.items())
        if key not in spec.categories
    ]
    outcomes = [
        Share(o.value, o.label, by_outcome.get(o.value, 0), percent(by_outcome.get(o.value, 0), total)) for o in Outcome
    ]
    still_open = by_outcome.get(None, 0)
    outcomes.append(Share("open", Label("办理中", "Still open"), still_open, percent(still_open, total)))
    decided: dict[int, Counter[str]] = {}
    for round_no, kind, _trigger, to_state, n in events:
        state = spec.states.get(to_state or "")
        if kind in (EventKind.TRANSITION, EventKind.CARRIED_OVER) and state is not None and state.outcome is not None:
            decided.setdefault(round_no, Counter())[state.outcome.value] += n
    per_round = tuple(
        RoundOutcomes(r, tuple((o.value, decided.get(r, Counter())[o.value]) for o in Outcome))
        for r in range(1, max([int(rounds_held), *decided], default=0) + 1)
    )
    groups = tuple(
        GroupTaking(
            key,
            Label(group_label(key, taking.groups, "zh"), group_label(key, taking.groups, "en")),
            people,
            again,
        )
        for key, people, again in taking.by_group
        if people
    )
    themes = _counted(spec, theme_rows, None)
    adopted: Counter[str] = Counter()
    for t in themes:
        adopted[t.theme] += t.adopted
    adopted_themes = tuple((theme, n) for theme, n in sorted(adopted.items(), key=lambda p: (-p[1], p[0])) if n)
    headline: dict[str, int] = {}
    for key in spec.categories:
        best = max(
            (t for t in themes if t.category == key and t.adopted), key=lambda t: (t.adopted, t.theme), default=None
        )
        if best is not None and best.theme not in headline:
            headline[best.theme] = best.adopted
    return BriefFigures(
        consultation_id=c.id,
        title=c.title,
        area=c.area,
        opinions=total,
        rounds_held=int(rounds_held),
        categories=tuple(categories),
        outcomes=tuple(outcomes),
        rounds_to_outcome=statistics.rounds_report(ctx, c.id).outcomes,
        funnel=tuple(statistics.funnel(ctx, c.id)),
        coding=tuple(RoundCoding(r, n, k, percent(k, n)) for r, n, k in coding),
        decided_per_round=per_round,
        participation=Participation(
            taking.participants, taking.repeat, taking.repeat_share, taking.distribution, groups
        ),
        themes=tuple(themes),
        adopted_themes=adopted_themes,
        headline_themes=tuple(sorted(headline, key=lambda t: (-headline[t], t))),
    )
