"""Creating and reading consultations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consultflow.domain.audit import GENESIS_HASH, EventKind
from consultflow.domain.roles import Action
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.inputs import required_text
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import RoundRow
from consultflow.services.workflows import file_specs, pin_workflow

DEFAULT_WORKFLOW = "consultation-loop"


@dataclass(frozen=True)
class RoundView:
    """A round as shown to coordinators."""

    number: int
    status: str
    opened_at: datetime
    closes_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True)
class ConsultationView:
    """A consultation with its workflow, rounds and how its opinions stand."""

    id: int
    title: str
    area: str
    workflow: str
    created_at: datetime
    opinions: int
    auto_close: bool = False
    rounds: tuple[RoundView, ...] = ()
    by_state: tuple[tuple[str, int], ...] = ()
    programme_id: int | None = None  # the county programme it is an area (片区) of


def create_consultation(
    ctx: ServiceContext,
    *,
    acting: str | None,
    title: str,
    area: str,
    workflow: str = DEFAULT_WORKFLOW,
    auto_close: bool = False,
    programme: str | None = None,
    copy_from: int | None = None,
) -> ConsultationView:
    """Start a consultation on a pinned workflow version.

    With `auto_close`, the worker closes each round at its closing time. With `programme` (its id
    or name) it is an area (片区) of that county programme. With `copy_from`, it starts from that
    consultation's setup: its workflow version (so its categories, channels and groups), its
    auto-close setting and its programme (unless one is given); never its opinions. People and
    their roles are the database's, not a consultation's, so they serve every area already.
    """
    title = required_text(title, "title", 200)
    area = required_text(area, "area", 200)
    available = file_specs(ctx.workflows_dir)

    def body(change: Change) -> ConsultationView:
        closing, programme_id = auto_close, None
        if copy_from is not None:
            source = change.consultation(copy_from)
            wf = change.uow.workflows.get(source.workflow_id)
            closing, programme_id = source.auto_close, source.programme_id
        else:
            wf = pin_workflow(change.uow, available, ctx.workflows_dir, ref=workflow, now=change.now)
        if programme is not None:
            programme_id = change.uow.programmes.get(programme).id
        row = change.uow.consultations.add(
            title=title,
            area=area,
            workflow_id=wf.id,
            created_by=change.actor.id,
            auto_close=closing,
            genesis=GENESIS_HASH,
            now=change.now,
            chain_key_id=ctx.chain_key.key_id if ctx.chain_key is not None else None,
        )
        key = f"{wf.name}@{wf.version}"
        payload: dict[str, object] = {
            "title": title, "area": area, "workflow": key, "digest": wf.digest, "auto_close": closing
        }  # fmt: skip
        if programme_id is not None:
            row.programme_id = programme_id
            payload["programme"] = programme_id
        if copy_from is not None:
            payload["copied_from"] = copy_from
        change.record(
            row.id,
            change.event(EventKind.CONSULTATION_CREATED, payload=payload),
        )
        return ConsultationView(row.id, title, area, key, change.now, 0, closing, programme_id=programme_id)

    return run(
        ctx,
        acting=acting,
        action=Action.CREATE_CONSULTATION,
        event="consultation_created",
        body=body,
        describe=lambda view: {"consultation_id": view.id, "workflow": view.workflow},
    )


def list_consultations(ctx: ServiceContext) -> list[ConsultationView]:
    """Every consultation with its opinion count."""
    with ctx.uow() as uow:
        return [
            ConsultationView(c.id, c.title, c.area, f"{name}@{version}", c.created_at, count, c.auto_close)
            for c, name, version, count in uow.consultations.listing()
        ]


def show_consultation(ctx: ServiceContext, consultation_id: int) -> ConsultationView:
    """One consultation with its rounds and opinions by state (in workflow order)."""
    with ctx.uow() as uow:
        c = uow.consultations.get(consultation_id)
        spec = spec_for(uow.workflows.get(c.workflow_id))
        counts = uow.opinions.count_by_state(c.id)
        rounds = tuple(round_view(r) for r in uow.consultations.rounds(c.id))
    by_state = tuple((s, counts.get(s, 0)) for s in spec.states)
    return ConsultationView(
        c.id, c.title, c.area, spec.key, c.created_at, sum(counts.values()), c.auto_close, rounds, by_state,
        c.programme_id,
    )  # fmt: skip


def round_view(row: RoundRow) -> RoundView:
    """The view of a round row."""
    return RoundView(row.number, row.status, row.opened_at, row.closes_at, row.closed_at)


def set_auto_close(ctx: ServiceContext, *, acting: str | None, consultation_id: int, enabled: bool) -> ConsultationView:
    """Turn automatic round closing at the closing time on or off."""

    def body(change: Change) -> None:
        consultation = change.consultation(consultation_id)
        consultation.auto_close = enabled
        change.record(
            consultation.id,
            change.event(EventKind.SETTINGS_CHANGED, payload={"auto_close": enabled}),
        )

    run(
        ctx,
        acting=acting,
        action=Action.CREATE_CONSULTATION,
        event="consultation_settings_changed",
        body=body,
        describe=lambda _none: {"consultation_id": consultation_id, "auto_close": enabled},
    )
    return show_consultation(ctx, consultation_id)
