"""Reading opinions: lists with filters (a planner's work queue), and one opinion with its exchange."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from consultflow.domain.document import Reread
from consultflow.domain.errors import NotFoundError
from consultflow.domain.labels import Label, resolve_choice
from consultflow.domain.model import OpinionFilter
from consultflow.domain.privacy import pseudonymise
from consultflow.domain.redaction import personal_data_kinds
from consultflow.domain.vocabulary import CHOICE_ALIASES, Outcome
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services.batching import batched
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.ports import OpinionRow
from consultflow.services.ports import UnitOfWork as Ports

T = TypeVar("T")


@dataclass(frozen=True)
class OpinionView:
    """An opinion as listed and shown."""

    id: int
    consultation_id: int
    participant_id: int
    participant: str
    village: str
    category: str
    channel: str
    text: str
    state: str
    current_round: int
    rounds_count: int
    outcome: str | None
    plan_ref: str | None
    merged_into: int | None
    assigned_to: str | None
    recorded_by: str
    submitted_at: datetime
    state_entered_at: datetime
    workflow: str
    state_label: Label | None = None
    category_label: Label | None = None
    channel_label: Label | None = None
    merged_from: tuple[int, ...] = ()  # its lineage: opinions merged into this one (shown by show_opinion)
    # The kinds of personal data its text holds (consultflow.domain.redaction: mobile, name...), masked
    # wherever it is published: the flag coordinators see (set by show_opinion and at submission).
    personal_data: tuple[str, ...] = ()
    # The file's other columns it was imported with (来源, 所用时间, 记录人…), shown by show_opinion.
    source_fields: dict[str, str] | None = None


@dataclass(frozen=True)
class EntryView:
    """Feedback or a reply, in the round it was given."""

    round_no: int
    kind: str
    stance: str | None
    text: str
    actor: str
    at: datetime


def list_opinions(
    ctx: ServiceContext,
    *,
    consultation_id: int | None = None,
    state: str | None = None,
    assigned_to: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    round_no: int | None = None,
    outcome: str | None = None,
    limit: int | None = None,
) -> list[OpinionView]:
    """Opinions matching every filter given, oldest first, held (see `use_opinion_list`)."""
    criteria = OpinionFilter(
        consultation_id=consultation_id,
        state=state,
        category=category,
        channel=channel,
        round_no=round_no,
        outcome=outcome,
        limit=limit,
    )
    return use_opinion_list(ctx, criteria, assigned_to, list)


LIST_BATCH = 2000


def use_opinion_list(
    ctx: ServiceContext, criteria: OpinionFilter, assigned_to: str | None, use: Callable[[Reread[OpinionView]], T]
) -> T:
    """Opinions matching every filter given, oldest first, given to `use` while they can be read.

    The views are made a batch at a time from one streamed query, read again on each pass (an
    aligned table takes two), so a list of a million opinions is written in flat memory.
    """
    with ctx.reading() as uow:
        criteria = resolve_filter(uow, criteria)
        if assigned_to is not None:
            planner = uow.actors.by_name(assigned_to)
            if planner is None:
                msg = f"unknown actor {assigned_to!r}"
                raise NotFoundError(msg)
            criteria = replace(criteria, assigned_planner_id=planner.id)
        found = criteria

        def views() -> Iterator[OpinionView]:
            for rows in batched(uow.opinions.search_streamed(found), LIST_BATCH):
                yield from opinion_views(uow, rows)

        return use(Reread(views))


def workflow_specs(uow: Ports, consultation_id: int | None) -> list[WorkflowSpec]:
    """The consultation's workflow, or every stored workflow version when no consultation is named."""
    if consultation_id is not None:
        return [spec_for(uow.workflows.get(uow.consultations.get(consultation_id).workflow_id))]
    return [spec_for(row) for row in uow.workflows.versions()]


def _merged(choices: Iterable[Mapping[str, Label]]) -> dict[str, Label]:
    merged: dict[str, Label] = {}
    for some in choices:
        for key, label in some.items():
            merged.setdefault(key, label)
    return merged


def resolve_filter(uow: Ports, criteria: OpinionFilter) -> OpinionFilter:
    """The filter with each category, channel, state and outcome as its key, however it was written.

    A key, or either label as tables show it (产业发展, Industry development), or a short form
    (`CHOICE_ALIASES`), names it. An outcome is also named by its terminal state's label (已合并).
    A value no workflow knows is refused with the allowed ones, instead of matching nothing.
    """
    specs = workflow_specs(uow, criteria.consultation_id)
    category, channel, state, outcome = criteria.category, criteria.channel, criteria.state, criteria.outcome
    if category is not None:
        category = resolve_choice(category, _merged(s.categories for s in specs), "category", CHOICE_ALIASES)
    if channel is not None:
        channel = resolve_choice(channel, _merged(s.channels for s in specs), "channel", CHOICE_ALIASES)
    if state is not None:
        states = _merged({name: st.label for name, st in s.states.items()} for s in specs)
        state = resolve_choice(state, states, "state")
    if outcome is not None:
        by_state: dict[str, list[str]] = {}
        for s in specs:
            for st in s.states.values():
                if st.outcome is not None:
                    by_state.setdefault(st.outcome.value, []).extend((st.name, st.label.zh, st.label.en))
        outcome = resolve_choice(outcome, {o.value: o.label for o in Outcome}, "outcome", by_state)
    return replace(criteria, category=category, channel=channel, state=state, outcome=outcome)


def show_opinion(ctx: ServiceContext, opinion_id: int) -> tuple[OpinionView, list[EntryView]]:
    """An opinion and everything exchanged about it, round by round."""
    with ctx.uow() as uow:
        op = uow.opinions.get(opinion_id)
        entries = uow.opinions.entries(op.id)
        entry_views = [EntryView(e.round_no, e.kind, e.stance, e.text, name, e.created_at) for e, name in entries]
        lineage = tuple(merged for merged, _participant in uow.opinions.merged_into(op.id))
        ((view, participant),) = named_opinion_views(uow, [op])
        flag = personal_data_kinds(view.text, participant)
        fields = uow.intake.source_fields(op.id)
        return replace(view, merged_from=lineage, personal_data=flag, source_fields=fields), entry_views


def _state_label(spec: WorkflowSpec, state: str) -> Label | None:
    found = spec.states.get(state)
    return found.label if found else None


def opinion_view(uow: Ports, row: OpinionRow) -> OpinionView:
    """The view of one opinion row."""
    return opinion_views(uow, [row])[0]


def opinion_views(uow: Ports, rows: Sequence[OpinionRow]) -> list[OpinionView]:
    """Views for many rows with one query for the names they refer to."""
    return [view for view, _participant in named_opinion_views(uow, rows)]


def named_opinion_views(uow: Ports, rows: Sequence[OpinionRow]) -> list[tuple[OpinionView, str]]:
    """Views for many rows, each with its participant's name as registered (to mask it in published text).

    The name comes from the same query as the view's other names; it is never shown.
    """
    if not rows:
        return []
    names = uow.opinions.view_names([r.id for r in rows])
    specs = {r.workflow_id: spec_for(uow.workflows.get(r.workflow_id)) for r in rows}
    out = []
    for r in rows:
        p_name, village, pl, rec = names[r.id]
        named = (
            OpinionView(
                id=r.id,
                consultation_id=r.consultation_id,
                participant_id=r.participant_id,
                participant=pseudonymise(p_name),  # full names only through participant list --names full
                village=village,
                category=r.category,
                channel=r.channel,
                text=r.text,
                state=r.state,
                current_round=r.current_round,
                rounds_count=r.rounds_count,
                outcome=r.outcome,
                plan_ref=r.plan_ref,
                merged_into=r.merged_into_id,
                assigned_to=pl,
                recorded_by=rec,
                submitted_at=r.submitted_at,
                state_entered_at=r.state_entered_at,
                workflow=specs[r.workflow_id].key,
                state_label=_state_label(specs[r.workflow_id], r.state),
                category_label=specs[r.workflow_id].categories.get(r.category),
                channel_label=specs[r.workflow_id].channels.get(r.channel),
            ),
            p_name,
        )
        out.append(named)
    return out
