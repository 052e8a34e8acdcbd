"""`consultflow consultation`: create and read consultations."""

from __future__ import annotations

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, local_time, table
from consultflow.domain.errors import ValidationError
from consultflow.services import consultations
from consultflow.services.commands.consultations import ConsultationDetail, CreateConsultation, SetAutoClose
from consultflow.services.commands.core import Nothing, OfConsultation


@click.group("consultation")
def consultation_group() -> None:
    """Consultations: one per area plan (片区规划)."""


@consultation_group.command("create")
@click.argument("title")
@click.option("--area", required=True, help="Planning area (片区) the consultation covers.")
@click.option(
    "--workflow",
    default=consultations.DEFAULT_WORKFLOW,
    show_default=True,
    help="NAME or NAME@VERSION.",
)
@click.option("--auto-close", is_flag=True, help="Let the worker close each round at its closing time.")
@click.option("--programme", help="The county programme (id or name) this area (片区) belongs to.")
@click.option(
    "--from",
    "copy_from",
    type=int,
    help="Start from this consultation's setup: workflow version, categories, groups, programme (not opinions).",
)
@as_option
@pass_state
def consultation_create(
    state: CliState, title: str, area: str, workflow: str, auto_close: bool, programme: str | None,
    copy_from: int | None,
) -> None:  # fmt: skip
    """Create a consultation called TITLE, pinned to a workflow version."""
    if copy_from is not None and workflow != consultations.DEFAULT_WORKFLOW:
        msg = "--from takes the other consultation's workflow version; leave --workflow out"
        raise ValidationError(msg)
    given = CreateConsultation(title, area, workflow, auto_close, programme, copy_from)
    view = state.call("consultation.create", given)
    state.emit(
        view,
        lambda: (
            f"consultation {view.id} created on {view.workflow}; open its first round with 'consultflow round open {view.id}'"
        ),
    )


@consultation_group.command("list")
@json_flag
@pass_state
def consultation_list(state: CliState) -> None:
    """All consultations."""
    views = list(state.call("consultation.list", Nothing()).consultations)
    tz = state.settings.tz
    state.emit(
        views,
        lambda: table(
            ["id", "title", "area", "workflow", "opinions", "created"],
            [
                (
                    v.id,
                    v.title,
                    v.area,
                    v.workflow,
                    v.opinions,
                    local_time(v.created_at, tz),
                )
                for v in views
            ],
        ),
    )


@consultation_group.command("show")
@click.argument("consultation_id", type=ID)
@json_flag
@pass_state
def consultation_show(state: CliState, consultation_id: int) -> None:
    """One consultation: rounds and opinions by state."""
    detail: ConsultationDetail = state.call("consultation.show", OfConsultation(consultation_id))
    view = detail.consultation
    tz = state.settings.tz

    def text() -> str:
        out = [
            f"{view.id}  {view.title}  ({view.area})",
            f"workflow: {view.workflow}   opinions: {view.opinions}",
            "",
        ]
        out.append(
            table(
                ["round", "status", "opened", "closes", "closed"],
                [
                    (
                        r.number,
                        r.status,
                        local_time(r.opened_at, tz),
                        local_time(r.closes_at, tz),
                        local_time(r.closed_at, tz),
                    )
                    for r in view.rounds
                ],
            )
        )
        out.append("")
        out.append(
            table(
                ["state", "label", "opinions"],
                [(s, state.label(detail.state_labels[s]), n) for s, n in view.by_state],
            )
        )
        return "\n".join(out)

    state.emit(view, text)


@consultation_group.command("auto-close")
@click.argument("consultation_id", type=ID)
@click.argument("setting", type=click.Choice(["on", "off"]))
@as_option
@pass_state
def consultation_auto_close(state: CliState, consultation_id: int, setting: str) -> None:
    """Turn automatic round closing (by the worker, at the round's closing time) on or off."""
    view = state.call("consultation.auto-close", SetAutoClose(consultation_id, enabled=setting == "on"))
    state.emit(view, lambda: f"consultation {view.id}: rounds close automatically: {setting}")


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(consultation_group)
