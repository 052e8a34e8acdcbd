"""`consultflow opinion import`: a questionnaire export or an assembly's spreadsheet in one command."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, shorten
from consultflow.domain.intake import Column
from consultflow.export.files import write_new_file
from consultflow.export.formats import spreadsheet_text
from consultflow.importing.tables import FORMATS, Table, open_table
from consultflow.services import commands, intake

FIELDS = ", ".join(c.value for c in Column)


def _mapping(pairs: Sequence[str]) -> dict[Column, str]:
    found: dict[Column, str] = {}
    for pair in pairs:
        name, sep, header = pair.partition("=")
        try:
            found[Column(name.strip())] = header.strip()
        except ValueError:
            sep = ""
        if not sep or not header.strip():
            msg = f"--map takes FIELD=HEADER with FIELD one of: {FIELDS} (not {pair!r})"
            raise click.BadParameter(msg, param_hint="--map")
    return found


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--consultation", "consultation_id", type=ID, required=True, help="Consultation id.")
@click.option("--format", "file_format", type=click.Choice(FORMATS), help="csv or xlsx (default: from the name).")
@click.option("--encoding", help="CSV encoding (default: detected; utf-8, utf-8-sig or gb18030).")
@click.option("--sheet", help="XLSX sheet (default: the first).")
@click.option("--map", "mapping", multiple=True, metavar="FIELD=HEADER", help=f"Which column holds a field ({FIELDS}).")
@click.option("--channel", help="Channel of rows that name none (e.g. online_survey).")
@click.option("--skip-invalid", is_flag=True, help="Import the good rows; write the bad ones to --rejects.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="New CSV file for the rows not imported and why (default with --skip-invalid: FILE.rejects.csv).",
)
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@as_option
@json_flag
@pass_state
def opinion_import(
    state: CliState,
    file: Path,
    consultation_id: int,
    file_format: str | None,
    encoding: str | None,
    sheet: str | None,
    mapping: tuple[str, ...],
    channel: str | None,
    skip_invalid: bool,
    rejects: Path | None,
    dry_run: bool,
) -> None:
    """Import opinions from a CSV or XLSX FILE into the consultation's open round.

    Columns are found by their headers, in Chinese or English (意见内容/text, 类别/category,
    渠道/channel, 姓名/name, 村/village, 电话/contact, 序号/external_id), or named with --map.
    Every row is checked first; by default one bad row means nothing is written. Importing the
    same file again adds nothing twice.
    """
    table = open_table(file, file_format=file_format, encoding=encoding, sheet=sheet)
    target = rejects or file.with_name(file.name + ".rejects.csv")
    if (skip_invalid or dry_run) and (target.exists() or target.is_symlink()):  # refused before anything is written
        raise click.BadParameter(f"{target} exists; name a new file with --rejects", param_hint="--rejects")
    given = commands.ImportRows(
        consultation_id=consultation_id,
        headers=list(table.headers),
        rows=FileRows(table) if state.remote is None else list(FileRows(table)),  # the server gets them all
        mapping={c.value: h for c, h in _mapping(mapping).items()},
        channel=channel,
        skip_invalid=skip_invalid,
        dry_run=dry_run,
        source=file.name,
    )
    if state.remote is not None or dry_run or state.json or not sys.stderr.isatty():  # scripts and logs get no count
        outcome: commands.ImportOutcome = state.call("opinion.import", given)
    else:
        done = [0]

        def count(rows: int) -> None:
            done[0] += rows
            click.echo(f"\rimporting: {done[0]:,} row(s) written", nl=False, err=True)

        outcome = state.call("opinion.import", given, progress=count)
        if done[0]:
            click.echo("", err=True)
    if outcome.rejected:
        _write_rejects(target, table.headers, outcome.rejected)
        click.echo(f"{len(outcome.rejected)} rejected row(s) written to {target}", err=True)
    report = outcome.report
    state.emit(report, lambda: _summary(report, dry_run=outcome.dry_run, personal_data=outcome.personal_data))


def _summary(report: intake.ImportReport, *, dry_run: bool, personal_data: int = 0) -> str:
    columns = ", ".join(f"{field}={header!r}" for field, header in report.columns.items())
    flag = (
        f"注意：{personal_data} 行意见内容含个人信息 / note: {personal_data} row(s) hold personal information "
        "in their text (phone, ID or card numbers, e-mail, the participant's name); it is masked wherever it is published"
    )
    if dry_run:
        head = f"{report.rows} row(s): {report.rows - report.invalid} good, {report.invalid} invalid; nothing written"
        return "\n".join([head, f"columns: {columns}", *report.problems, *([flag] if personal_data else [])])
    done = (
        f"{report.imported} opinion(s) imported, {report.already} already there, {report.invalid} invalid "
        f"(of {report.rows} rows); columns: {columns}"
    )
    return done + (f"\n{flag}" if personal_data else "")


class FileRows(Sequence[tuple[int, list[str]]]):
    """A table's rows read from the file each time they are gone through (memory stays flat locally)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        return ((line, list(cells)) for line, cells in self.table.rows())

    def __len__(self) -> int:
        return sum(1 for _ in self.table.rows())

    @overload
    def __getitem__(self, index: int) -> tuple[int, list[str]]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, list[str]]]: ...

    def __getitem__(self, index: int | slice) -> tuple[int, list[str]] | list[tuple[int, list[str]]]:
        rows = list(self)  # not used by the import; here to be a whole Sequence
        return rows[index]


def _write_rejects(path: Path, headers: Sequence[str], bad: Sequence[commands.Rejected]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "problem", *headers])
    for cells, problems in ((r.cells, r.problems) for r in bad):
        why = "; ".join(f"{p.column}: {p.reason}" for p in problems)
        writer.writerow([problems[0].line, spreadsheet_text(why), *(spreadsheet_text(str(c)) for c in cells)])
    write_new_file(path, out.getvalue().encode("utf-8-sig"))


@click.command("duplicates")
@click.option("--consultation", "consultation_id", type=ID, required=True, help="Consultation id.")
@click.option(
    "--threshold",
    type=click.FloatRange(0.3, 1.0),
    default=0.6,
    show_default=True,
    help="How alike texts must be (Jaccard similarity of character pairs).",
)
@json_flag
@pass_state
def opinion_duplicates(state: CliState, consultation_id: int, threshold: float) -> None:
    """Groups of undecided opinions in one category that say the same thing, to merge with 'opinion merge'."""
    groups = list(state.call("opinion.duplicates", commands.FindDuplicates(consultation_id, threshold)).groups)

    def text() -> str:
        if not groups:
            return "no near-duplicates"
        lines = []
        for n, g in enumerate(groups, start=1):
            lines.append(f"group {n}: {len(g.opinion_ids)} opinions, {g.category}, similarity ≥ {g.similarity:.2f}")
            lines.extend(f"  #{oid}  {shorten(t, 60)}" for oid, t in zip(g.opinion_ids, g.texts, strict=True))
            rest = " ".join(str(i) for i in g.opinion_ids[1:])
            lines.append(f"  merge: consultflow opinion merge {rest} --into {g.opinion_ids[0]}")
        return "\n".join(lines)

    state.emit(groups, text)


@click.command("merge")
@click.argument("opinion_ids", type=ID, nargs=-1, required=True)
@click.option("--into", "target", type=ID, required=True, help="The opinion they are answered with.")
@click.option("--text", default="与同类意见合并办理", show_default=True, help="Why, for the participants.")
@as_option
@json_flag
@pass_state
def opinion_merge(state: CliState, opinion_ids: tuple[int, ...], target: int, text: str) -> None:
    """Merge OPINION_IDS into another opinion of the same consultation (all of them, or none)."""
    merged = state.call("opinion.merge", commands.MergeOpinions(list(opinion_ids), target, text))
    results = list(merged.results)
    state.emit(results, lambda: "\n".join(f"opinion {r.opinion_id} merged into {target}" for r in results))
