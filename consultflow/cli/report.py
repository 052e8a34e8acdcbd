"""`consultflow report`: the adoption table, the published account, plan traceability, charts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID
from consultflow.cli.rendering import render
from consultflow.domain.privacy import NAME_MODES, NameMode
from consultflow.export import charts, formats
from consultflow.services.commands.audit import RoundsOf
from consultflow.services.commands.core import OfConsultation
from consultflow.services.commands.reports import RenderReport, chunk_bytes

F = TypeVar("F", bound=Callable[..., Any])
FORMAT = click.Choice(formats.FORMATS)
PURPOSE = click.option("--purpose", help="Why full names are read (required with --names full; kept on record).")


def NAMED_OUTPUT(command: F) -> F:  # noqa: N802 - reads as the decorator it is
    """The options of a report that names people: --names, --purpose, --as, --format, -o."""
    for option in reversed(
        [
            click.option(
                "--names",
                type=click.Choice(NAME_MODES),
                default="pseudonym",
                show_default=True,
                help="How participants' names appear (full: coordinators, with --purpose; kept on record).",
            ),
            PURPOSE,
            as_option,
            click.option("--format", "fmt", type=FORMAT),
            click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False)),
        ]
    ):
        command = option(command)
    return command


FORCE = click.option(
    "--force", is_flag=True, help="Replace the output file if it exists (a link there is replaced, not followed)."
)


def _names(value: str) -> NameMode:
    return "full" if value == "full" else "none" if value == "none" else "pseudonym"


def _report(
    state: CliState,
    consultation_id: int,
    kind: str,
    fmt: str | None,
    output: Path | None,
    force: bool,
    **options: Any,
) -> None:
    """Render a consultation's report (here, or on the server) and show it, or write it to a new file."""

    def make(chosen: str, for_file: bool) -> RenderReport:
        return RenderReport(consultation_id, kind, chosen, state.settings.lang, for_file=for_file, **options)

    render(state, "report.render", make, fmt, output, force)


@click.group("report")
def report_group() -> None:
    """Reports for publication, in zh or en (--lang)."""


@report_group.command("adoption")
@click.argument("consultation_id", type=ID)
@click.option("--format", "fmt", type=FORMAT, help="table, markdown, csv, xlsx, json.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write to this new file.")
@FORCE
@json_flag
@pass_state
def report_adoption(state: CliState, consultation_id: int, fmt: str | None, output: Path | None, force: bool) -> None:
    """Totals, outcomes with their shares, categories, channels and the rounds distribution."""
    _report(state, consultation_id, "adoption", fmt, output, force)


@report_group.command("account")
@click.argument("consultation_id", type=ID)
@click.option("--round", "round_no", type=click.IntRange(min=1), help="Only what was answered in this round.")
@NAMED_OUTPUT
@FORCE
@json_flag
@pass_state
def report_account(
    state: CliState,
    consultation_id: int,
    round_no: int | None,
    names: str,
    purpose: str | None,
    fmt: str | None,
    output: Path | None,
    force: bool,
) -> None:
    """The published account of adoption (意见采纳情况说明), grouped by category."""
    _report(state, consultation_id, "account", fmt, output, force, round_no=round_no, names=names, purpose=purpose)


@report_group.command("plan")
@click.argument("consultation_id", type=ID)
@NAMED_OUTPUT
@FORCE
@json_flag
@pass_state
def report_plan(
    state: CliState,
    consultation_id: int,
    names: str,
    purpose: str | None,
    fmt: str | None,
    output: Path | None,
    force: bool,
) -> None:
    """Per plan section, the opinions it answers."""
    _report(state, consultation_id, "plan", fmt, output, force, names=names, purpose=purpose)


@report_group.command("review")
@click.argument("consultation_id", type=ID)
@click.option("--version", "version", type=ID, help="The plan version (default: the latest one reviewed).")
@click.option("--format", "fmt", type=FORMAT, help="table, markdown, csv, xlsx, json.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write to this new file.")
@FORCE
@json_flag
@pass_state
def report_review(
    state: CliState, consultation_id: int, version: int | None, fmt: str | None, output: Path | None, force: bool
) -> None:
    """Review results per clause: each rating's count, the share satisfied, comments and their states."""
    _report(state, consultation_id, "review", fmt, output, force, version=version)


@report_group.command("chart")
@click.argument("consultation_id", type=ID)
@click.option("--kind", type=click.Choice(charts.CHARTS), default="rounds", show_default=True)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path, dir_okay=False), required=True, help="New PNG file to write."
)
@FORCE
@json_flag
@pass_state
def report_chart(state: CliState, consultation_id: int, kind: str, output: Path, force: bool) -> None:
    """A PNG chart: rounds histogram, category shares, or the round funnel."""
    charts.require()  # without matplotlib: one line naming the charts extra, before anything is read
    lang = state.settings.lang
    of = OfConsultation(consultation_id)
    if kind == "rounds":
        figures = state.call("audit.rounds", RoundsOf(consultation_id))
        drawn = charts.rounds_chart(figures.outcomes, output, lang, force=force)
    elif kind == "funnel":
        drawn = charts.funnel_chart(state.call("audit.funnel", of).rounds, output, lang, force=force)
    else:  # the adoption report's category table, with both languages' labels, drawn here
        zh_rows, en_rows = (_category_rows(state, consultation_id, label_lang) for label_lang in ("zh", "en"))
        shares = [(str(z[0]), str(e[0]), int(str(z[1]))) for z, e in zip(zh_rows, en_rows, strict=True)]
        drawn = charts.category_chart(shares, output, lang, force=force)
    note = "" if drawn == lang else " (no Chinese font found: English labels; install fonts-noto-cjk)"
    if state.json:
        state.emit({"wrote": str(output), "kind": kind, "lang": drawn}, lambda: "")
    else:
        click.echo(f"wrote {output}{note}", err=True)


def _category_rows(state: CliState, consultation_id: int, lang: str) -> list[list[object]]:
    """The adoption report's rows by category, in `lang` (rendered as JSON where the data is)."""
    given = RenderReport(consultation_id, "adoption", "json", lang)
    text = state.stream("report.render", given, lambda chunks: b"".join(chunk_bytes(chunks)))
    tables = json.loads(text)["tables"]
    rows: list[list[object]] = next(t for t in tables if t["key"] == "by_category")["rows"]
    return rows


def _more_reports() -> None:
    """`report participation` and `report programme` (issue 26), kept in their own module."""
    from consultflow.cli.programme import report_participation, report_programme  # noqa: PLC0415

    report_group.add_command(report_participation)
    report_group.add_command(report_programme)


_more_reports()


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(report_group)


def _register_brief() -> None:
    from consultflow.cli.brief import report_brief  # noqa: PLC0415 - `report brief`, the county's DOCX

    report_group.add_command(report_brief)


_register_brief()
