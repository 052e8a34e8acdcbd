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
from consultflow.domain.intake import PROFILES, Column, find_header
from consultflow.export.files import write_new_file
from consultflow.export.formats import spreadsheet_text
from consultflow.importing.tables import FORMATS, Table, open_table
from consultflow.services import intake
from consultflow.services.commands.intake import FindDuplicates, ImportOutcome, ImportRows, MergeOpinions, Rejected

FIELDS = ", ".join(c.value for c in Column)
VALUE_FIELDS = ("category", "channel", "group")


def _values(pairs: Sequence[str]) -> dict[str, dict[str, str]]:
    """`category:产业=industry` -> {"category": {"产业": "industry"}}."""
    found: dict[str, dict[str, str]] = {}
    for pair in pairs:
        target, sep, key = pair.rpartition("=")
        what, colon, written = target.partition(":")
        if not sep or not colon or what.strip() not in VALUE_FIELDS or not written.strip() or not key.strip():
            msg = f"--map-value takes FIELD:VALUE=KEY with FIELD category, channel or group (not {pair!r})"
            raise click.BadParameter(msg, param_hint="--map-value")
        found.setdefault(what.strip(), {})[written.strip()] = key.strip()
    return found


def _free_name(path: Path) -> Path:
    """`path`, or the first of FILE.rejects-2.csv, -3… not taken."""
    n = 1
    found = path
    while found.exists() or found.is_symlink():
        n += 1
        found = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return found


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
@click.option(
    "--format", "file_format", type=click.Choice(FORMATS), help="csv, tsv, xlsx or xls (default: from the name)."
)
@click.option("--encoding", help="CSV encoding (default: detected; utf-8, utf-8-sig or gb18030).")
@click.option("--sheet", help="XLSX or XLS sheet (default: the first).")
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    help="The file's layout: wjx (问卷星), tencent (腾讯问卷), jinshuju (金数据), clerk (村组记录表); default: from its headers.",
)
@click.option("--source", "source_name", help="Name of the source its 序号/编号 belong to (default: the layout).")
@click.option(
    "--header-row", type=click.IntRange(1), help="Row number of the header (default: found below title rows)."
)
@click.option("--map", "mapping", multiple=True, metavar="FIELD=HEADER", help=f"Which column holds a field ({FIELDS}).")
@click.option(
    "--map-value",
    "value_map",
    multiple=True,
    metavar="FIELD:VALUE=KEY",
    help="What a category or channel value means, e.g. category:产业=industry (repeatable).",
)
@click.option("--channel", help="Channel of rows that name none (e.g. online_survey).")
@click.option("--skip-invalid", is_flag=True, help="Import the good rows; write the bad ones to --rejects.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file for the rows not imported and why (default with --skip-invalid: FILE.rejects.csv, or a free name).",
)
@click.option("--force", is_flag=True, help="Replace an existing --rejects file.")
@click.option("--dry-run", is_flag=True, help="Check every row and report what would happen; write nothing at all.")
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
    profile: str | None,
    source_name: str | None,
    header_row: int | None,
    mapping: tuple[str, ...],
    value_map: tuple[str, ...],
    channel: str | None,
    skip_invalid: bool,
    rejects: Path | None,
    force: bool,
    dry_run: bool,
) -> None:
    """Import opinions from a CSV, TSV, XLSX or XLS FILE into the consultation's open round.

    Columns are found by their headers, in Chinese or English (意见内容/text, 类别/category,
    渠道/channel, 姓名/name, 村/village, 电话/contact, 序号/external_id), or named with --map;
    问卷星, 腾讯问卷, 金数据 exports and a clerk's sheet are recognised, the header found below
    title rows. Every row is checked first; by default one bad row means nothing is written.
    Every row is counted: imported, already there, refused or skipped. Importing the same file
    again adds nothing twice.
    """
    columns = _mapping(mapping)
    values = _values(value_map)
    table = open_table(file, file_format=file_format, encoding=encoding, sheet=sheet)
    header = find_header(table.head, columns, profile=profile, header_row=header_row)
    table = table.with_header(header.line)
    target = rejects or _free_name(file.with_name(file.name + ".rejects.csv"))
    if skip_invalid and not dry_run and not force and (target.exists() or target.is_symlink()):
        raise click.BadParameter(f"{target} exists; give --force to replace it", param_hint="--rejects")
    given = ImportRows(
        consultation_id=consultation_id,
        headers=list(table.headers),
        rows=FileRows(table) if state.remote is None else list(FileRows(table)),  # the server gets them all
        mapping={c.value: h for c, h in columns.items()},
        channel=channel,
        skip_invalid=skip_invalid,
        dry_run=dry_run,
        source=file.name,
        source_name=source_name,
        profile=header.profile.name if header.profile else None,
        sheet=table.sheet,
        header_row=header.line,
        values=values,
    )
    if state.remote is not None or dry_run or state.json or not sys.stderr.isatty():  # scripts and logs get no count
        outcome: ImportOutcome = state.call("opinion.import", given)
    else:
        done = [0]

        def count(rows: int) -> None:
            done[0] += rows
            click.echo(f"\rimporting: {done[0]:,} row(s) written", nl=False, err=True)

        outcome = state.call("opinion.import", given, progress=count)
        if done[0]:
            click.echo("", err=True)
    if outcome.rejected and not outcome.dry_run:
        _write_rejects(target, table.headers, outcome.rejected, force=force)
        click.echo(f"{len(outcome.rejected)} rejected row(s) written to {target}", err=True)
    report = outcome.report
    state.emit(report, lambda: _summary(report, dry_run=outcome.dry_run, personal_data=outcome.personal_data))


def _summary(report: intake.ImportReport, *, dry_run: bool, personal_data: int = 0) -> str:
    columns = ", ".join(f"{field}={header!r}" for field, header in report.columns.items())
    flag = (
        f"注意：{personal_data} 行意见内容含个人信息 / note: {personal_data} row(s) hold personal information "
        "in their text (phone, ID or card numbers, e-mail, the participant's name); it is masked wherever it is published"
    )
    layout = PROFILES[report.profile].label if report.profile in PROFILES else "no known layout"
    why = ", ".join(f"{kind} {n}" for kind, n in sorted(report.refused.items(), key=lambda kv: -kv[1]))
    done = report.new if dry_run else report.imported
    counted = done + report.already + report.invalid + report.skipped
    verb = "to import" if dry_run else "imported"
    lines = [
        f"{done} {verb}, {report.already} already there (same content), {report.invalid} refused"
        + (f" ({why})" if why else "")
        + f", {report.skipped} skipped (totals/signatures) = {counted} of {report.rows} data row(s)"
        + ("; nothing written (dry run)" if dry_run else ""),
        f"header: row {report.header_row} ({layout}); columns: {columns}",
    ]
    if report.contacts_dropped:
        lines.append(
            f"{report.contacts_dropped} contact(s) left out: neither an e-mail address nor a mobile or landline number "
            "(the opinions are kept)"
        )
    lines += report.skipped_rows
    if dry_run or report.invalid:
        lines += report.problems
    return "\n".join([*lines, *([flag] if personal_data else [])])


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


def _write_rejects(path: Path, headers: Sequence[str], bad: Sequence[Rejected], *, force: bool) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "problem", *headers])
    for cells, problems in ((r.cells, r.problems) for r in bad):
        why = "; ".join(f"{p.column}: {p.reason}" for p in problems)
        writer.writerow([problems[0].line, spreadsheet_text(why), *(spreadsheet_text(str(c)) for c in cells)])
    write_new_file(path, out.getvalue().encode("utf-8-sig"), force=force)


@click.command("duplicates")
@click.option("--consultation", "consultation_id", type=ID, required=True, help="Consultation id.")
@click.option(
    "--threshold",
    type=click.FloatRange(0.3, 1.0),
    default=0.6,
    show_default=True,
    help="How alike texts must be (Jaccard similarity of their words and character pairs, clause order ignored).",
)
@json_flag
@pass_state
def opinion_duplicates(state: CliState, consultation_id: int, threshold: float) -> None:
    """Groups of undecided opinions in one category that say the same thing, to merge with 'opinion merge'."""
    groups = list(state.call("opinion.duplicates", FindDuplicates(consultation_id, threshold)).groups)

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
    merged = state.call("opinion.merge", MergeOpinions(list(opinion_ids), target, text))
    results = list(merged.results)
    state.emit(results, lambda: "\n".join(f"opinion {r.opinion_id} merged into {target}" for r in results))
