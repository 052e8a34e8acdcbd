"""`consultflow report brief`: the county's report upward (汇报), as a DOCX (and a PDF where LibreOffice is)."""

from __future__ import annotations

from pathlib import Path

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.cli.output import ID
from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Lang
from consultflow.export.files import refuse_existing
from consultflow.services.commands.themes import BriefOf


@click.command("brief")
@click.argument("consultation_id", type=ID)
@click.option("--out", "-o", "output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The new .docx file to write (mode 600).")  # fmt: skip
@click.option("--pdf", is_flag=True, help="Also a PDF beside it, where LibreOffice (soffice) is installed.")
@click.option("--force", is_flag=True, help="Replace the output file(s) if they exist.")
@json_flag
@pass_state
def report_brief(state: CliState, consultation_id: int, output: Path, pdf: bool, force: bool) -> None:
    """The county's brief (汇报): totals, categories, outcomes, rounds, participation, adopted themes, charts, tables.

    Every figure and sentence comes from the data; nobody is named.
    """
    from consultflow.export import brief, charts  # noqa: PLC0415 - python-docx and matplotlib load only here

    if output.suffix.lower() != ".docx":
        msg = f"{output.name}: the brief is a Word document; name it something.docx"
        raise ValidationError(msg)
    pdf_file = output.with_suffix(".pdf")
    if not force:
        refuse_existing(output)
        if pdf:
            refuse_existing(pdf_file)
    brief._docx()  # noqa: SLF001 - one line naming the extra, before anything is read
    figures = state.call("report.brief", BriefOf(consultation_id))
    lang: Lang = "en" if state.settings.lang == "en" else "zh"
    drawn = brief.write_brief(figures, output, lang, force=force)
    wrote = [str(output)]
    notes = []
    if figures.opinions and not charts.available():
        notes.append(brief.CHARTS_LEFT_OUT)
    elif drawn != lang:
        notes.append("charts drawn with English labels: no Chinese font found (install fonts-noto-cjk)")
    if pdf:
        program = brief.converter()
        if program is None:
            notes.append("no PDF: no converter installed (install libreoffice for soffice); the DOCX is written")
        else:
            brief.write_pdf(output, pdf_file, program, force=force)
            wrote.append(str(pdf_file))
    if state.json:
        state.emit({"wrote": wrote, "notes": notes}, lambda: "")
        return
    for line in notes:
        click.echo(line, err=True)
    click.echo(f"wrote {', '.join(wrote)}", err=True)
