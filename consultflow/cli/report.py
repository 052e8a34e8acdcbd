"""`consultflow report`: the adoption table, the published account, plan traceability, charts."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TextIO, TypeVar, cast

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, ChunkedEcho, held_back, show_held
from consultflow.domain.document import Document
from consultflow.domain.errors import ValidationError
from consultflow.domain.privacy import NAME_MODES, NameMode
from consultflow.export import charts, formats
from consultflow.export.files import refuse_existing, write_new_file_from
from consultflow.services import reports, statistics

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


def _writer(
    state: CliState, fmt: str | None, output: Path | None, force: bool, *, hold: bool = False
) -> Callable[[Document], Callable[[], None] | None]:
    """What writes a report where asked, and what is left to do once its transaction has committed.

    The format (and, when held, a taken file name) is checked before anything is read. With
    `hold` (full names), the report goes to a spool file and reaches the terminal or its file only
    after the transaction that records the read has committed: nothing is shown off the record.
    """
    chosen = fmt or (_guess(output) if output else "json" if state.json else "table")
    if output is None and chosen in formats.BINARY_FORMATS:
        msg = f"{chosen} is a binary format; give --output FILE"
        raise ValidationError(msg)
    if hold and output is not None and not force:
        refuse_existing(output)

    def to_terminal(doc: Document) -> None:
        out = ChunkedEcho()
        formats.write_out(doc, chosen, cast("TextIO", out))
        out.flush()

    def wrote() -> None:
        if state.json:  # one JSON document on stdout, as with every command
            state.emit({"wrote": str(output), "format": chosen}, lambda: "")
        else:
            click.echo(f"wrote {output} ({chosen})", err=True)

    def write(doc: Document) -> Callable[[], None] | None:
        if output is None and hold:
            spool = held_back(lambda: to_terminal(doc))
            return lambda: show_held(spool)
        if output is None:
            to_terminal(doc)
            return None
        if hold:
            return _file_after_commit(doc, chosen, output, force, wrote)
        formats.write(doc, chosen, output, force=force)
        wrote()
        return None

    return write


def _file_after_commit(
    doc: Document, fmt: str, output: Path, force: bool, wrote: Callable[[], None]
) -> Callable[[], None]:
    """The report in a spool file now; at `output` once the caller's transaction has committed."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by `place`; a file, as the report will be
    formats.write_binary(doc, fmt, cast("BinaryIO", spool))

    def place() -> None:
        with spool:
            spool.seek(0)
            write_new_file_from(output, lambda out: shutil.copyfileobj(spool, out), force=force)
        wrote()

    return place


def _after_commit(finish: Callable[[], None] | None) -> None:
    if finish is not None:
        finish()


def _output(state: CliState, doc: Document, fmt: str | None, output: Path | None, force: bool) -> None:
    _writer(state, fmt, output, force)(doc)


def _guess(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    known = {"md": "markdown", "markdown": "markdown", "csv": "csv", "xlsx": "xlsx", "json": "json", "txt": "table"}
    if suffix not in known:
        msg = f"cannot tell the format of {path.name}; give --format ({', '.join(formats.FORMATS)})"
        raise ValidationError(msg)
    return known[suffix]


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
    doc = reports.adoption_report(state.services(), consultation_id, state.settings.lang)
    _output(state, doc, fmt, output, force)


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
    held = reports.use_account_report(
        state.services(),
        consultation_id,
        _writer(state, fmt, output, force, hold=names == "full"),
        lang=state.settings.lang,
        round_no=round_no,
        names=_names(names),
        acting=state.actor,
        purpose=purpose,
    )
    _after_commit(held)


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
    held = reports.use_plan_report(
        state.services(),
        consultation_id,
        _writer(state, fmt, output, force, hold=names == "full"),
        lang=state.settings.lang,
        names=_names(names),
        acting=state.actor,
        purpose=purpose,
    )
    _after_commit(held)


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
    ctx = state.services()
    lang = state.settings.lang
    if kind == "rounds":
        drawn = charts.rounds_chart(statistics.rounds_report(ctx, consultation_id).outcomes, output, lang, force=force)
    elif kind == "funnel":
        drawn = charts.funnel_chart(statistics.funnel(ctx, consultation_id), output, lang, force=force)
    else:
        doc = reports.adoption_report(ctx, consultation_id, "zh")
        en = reports.adoption_report(ctx, consultation_id, "en")
        zh_rows = next(t for t in doc.tables if t.key == "by_category").rows
        en_rows = next(t for t in en.tables if t.key == "by_category").rows
        shares = [(str(z[0]), str(e[0]), int(str(z[1]))) for z, e in zip(zh_rows, en_rows, strict=True)]
        drawn = charts.category_chart(shares, output, lang, force=force)
    note = "" if drawn == lang else " (no Chinese font found: English labels; install fonts-noto-cjk)"
    if state.json:
        state.emit({"wrote": str(output), "kind": kind, "lang": drawn}, lambda: "")
    else:
        click.echo(f"wrote {output}{note}", err=True)


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(report_group)
