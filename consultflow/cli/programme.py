"""`consultflow programme`: county programmes of areas; `report participation` and `report programme`."""

from __future__ import annotations

from pathlib import Path

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, local_time, table
from consultflow.cli.rendering import render
from consultflow.domain.errors import ValidationError
from consultflow.domain.groups import read_roster
from consultflow.domain.privacy import NAME_MODES
from consultflow.export import formats
from consultflow.services.commands.core import Nothing
from consultflow.services.commands.programmes import AddArea, CreateProgramme, RenderParticipation, RenderProgramme

FORMAT = click.Choice(formats.FORMATS)
MAX_ROSTER_BYTES = 1_000_000


@click.group("programme")
def programme_group() -> None:
    """County programmes of areas (片区): consultations side by side."""


@programme_group.command("create")
@click.argument("name")
@click.option("--title", required=True, help="What the programme is, e.g. 某县片区国土空间规划.")
@as_option
@json_flag
@pass_state
def programme_create(state: CliState, name: str, title: str) -> None:
    """Create a programme called NAME (areas join it with 'consultation create --programme NAME')."""
    view = state.call("programme.create", CreateProgramme(name, title))
    state.emit(
        view,
        lambda: (
            f"programme {view.id} {view.name} created; add areas with "
            f"'consultflow consultation create TITLE --area 片区名 --programme {view.name}'"
        ),
    )


@programme_group.command("list")
@json_flag
@pass_state
def programme_list(state: CliState) -> None:
    """Every programme, with its number of areas."""
    views = list(state.call("programme.list", Nothing()).programmes)
    tz = state.settings.tz
    state.emit(
        views,
        lambda: table(
            ["id", "name", "title", "areas", "created"],
            [(v.id, v.name, v.title, v.areas, local_time(v.created_at, tz)) for v in views],
        ),
    )


@programme_group.command("add-area")
@click.argument("programme")
@click.argument("consultation_id", type=ID)
@as_option
@json_flag
@pass_state
def programme_add_area(state: CliState, programme: str, consultation_id: int) -> None:
    """Make consultation CONSULTATION_ID an area of PROGRAMME (id or name); recorded in its audit trail."""
    done = state.call("programme.add-area", AddArea(programme, consultation_id))
    state.emit(
        done,
        lambda: (
            f"consultation {done.consultation_id} ({done.area}) is an area of programme {done.programme_id}"
            + ("" if done.changed else " already; nothing changed")
        ),
    )


def _roster(path: Path | None) -> tuple[tuple[str, int], ...]:
    if path is None:
        return ()
    try:
        with path.open("rb") as f:
            data = f.read(MAX_ROSTER_BYTES + 1)
    except OSError as exc:
        msg = f"cannot read the roster {path.name}: {exc.strerror}"
        raise ValidationError(msg) from None
    if len(data) > MAX_ROSTER_BYTES:
        msg = f"the roster {path.name} is over {MAX_ROSTER_BYTES} bytes; a roster is a line per group or village"
        raise ValidationError(msg)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        msg = f"the roster {path.name} is not UTF-8 text (save the CSV as UTF-8)"
        raise ValidationError(msg) from None
    return read_roster(text)


_OUTPUT = click.option(
    "--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write to this new file."
)
_FORCE = click.option(
    "--force", is_flag=True, help="Replace the output file if it exists (a link there is replaced, not followed)."
)


@click.command("participation")
@click.argument("consultation_id", type=ID)
@click.option(
    "--roster",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV of GROUP-or-VILLAGE,POPULATION: name who took part less than their share of the population.",
)
@click.option(
    "--names",
    type=click.Choice(NAME_MODES),
    default="pseudonym",
    show_default=True,
    help="How people's names appear (full: coordinators, with --purpose; kept on record).",
)
@click.option("--purpose", help="Why full names are read (required with --names full; kept on record).")
@as_option
@click.option("--format", "fmt", type=FORMAT, help="table, markdown, csv, xlsx, json.")
@_OUTPUT
@_FORCE
@json_flag
@pass_state
def report_participation(
    state: CliState,
    consultation_id: int,
    roster: Path | None,
    names: str,
    purpose: str | None,
    fmt: str | None,
    output: Path | None,
    force: bool,
) -> None:
    """Who took part, by group and village, how many times each, and the share who took part twice or more."""
    lines = _roster(roster)
    lang = state.settings.lang
    render(
        state,
        "report.participation",
        lambda chosen, for_file: RenderParticipation(consultation_id, chosen, lang, names, purpose, lines, for_file),
        fmt,
        output,
        force,
    )


@click.command("programme")
@click.argument("programme")
@click.option("--format", "fmt", type=FORMAT, help="table, markdown, csv, xlsx, json.")
@_OUTPUT
@_FORCE
@json_flag
@pass_state
def report_programme(state: CliState, programme: str, fmt: str | None, output: Path | None, force: bool) -> None:
    """The county dashboard: PROGRAMME's areas side by side (opinions, categories, rounds, outcomes, repeat share)."""
    lang = state.settings.lang
    render(
        state,
        "report.programme",
        lambda chosen, for_file: RenderProgramme(programme, chosen, lang, for_file),
        fmt,
        output,
        force,
    )
