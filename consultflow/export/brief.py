"""The county's brief (汇报) as a DOCX (python-docx, the `brief` extra), and as a PDF where LibreOffice is.

Every sentence is made from the figures (consultflow.services.brief): nothing is typed by hand,
and nobody is named. The charts are the PNG charts of `report chart`, embedded.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consultflow import extras
from consultflow.domain.errors import ConfigurationError, ValidationError
from consultflow.domain.labels import Lang
from consultflow.domain.redaction import redacted
from consultflow.domain.vocabulary import Outcome
from consultflow.export import charts
from consultflow.export.files import write_new_file, write_new_file_from
from consultflow.services.brief import BriefFigures

MISSING = extras.message("writing the brief", "brief")
CHARTS_LEFT_OUT = "charts left out: " + extras.message("drawing them", "charts")
CHARTS_LEFT_OUT_ZH = "本汇报未附图表：绘制图表需安装 charts 扩展（pip install 'consultflow[charts]'）。"
CONVERTERS = ("soffice", "libreoffice")
_CJK_FONT = "SimSun"
_CONVERT_SECONDS = 180


def pct(value: float) -> str:
    """A percentage as people write it: 57, 28.3 (one decimal, a trailing .0 dropped)."""
    return f"{value:.1f}".removesuffix(".0")


def _w(lang: Lang, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def paragraphs(f: BriefFigures, lang: Lang = "zh") -> list[str]:
    """The brief's paragraphs, made from its figures alone."""
    total = f.opinions
    shares = [c for c in f.categories if c.opinions]
    outcome = {o.key: o for o in f.outcomes}
    adopted = outcome[Outcome.ADOPTED.value].opinions
    area = redacted(f.area)
    if lang == "en":
        split = ", ".join(f"{c.label.en} {pct(c.percent)}%" for c in shares)
        first = (
            f"In {f.rounds_held} round(s) of participation and feedback for {area}, {total} opinions and "
            f"suggestions were collected from villagers" + (f": {split}." if split else ".")
        )
    else:
        split = "，".join(f"涉及{c.label.zh}的占{pct(c.percent)}%" for c in shares)
        first = (
            f"{area}坚持“参与—反馈—再参与—再反馈”，共开展{f.rounds_held}轮意见征集，"
            f"累计收集村民意见建议{total}条" + (f"，其中{split}。" if split else "。")
        )
    p = f.participation
    named_groups = [g for g in p.groups if g.key is not None]
    if lang == "en":
        kinds = ", ".join(f"{g.label.en} {g.participants}" for g in named_groups)
        second = (
            f"{p.participants} people gave opinions" + (f" ({kinds})" if kinds else "") + f"; {p.more_than_once} "
            f"of them ({pct(p.percent_more_than_once)}%) took part more than once."
        )
    else:
        kinds = "、".join(f"{g.label.zh}{g.participants}人" for g in named_groups)
        second = (
            f"共有{p.participants}人提出意见建议" + (f"，其中{kinds}" if kinds else "")
            + f"；{p.more_than_once}人多次参与，占{pct(p.percent_more_than_once)}%。"
        )  # fmt: skip
    counts = {k: outcome[k].opinions for k in outcome}
    decided = sum(o.total for o in f.rounds_to_outcome)
    rounds_sum = sum(n * k for o in f.rounds_to_outcome for n, k in o.histogram.items())
    several = sum(k for o in f.rounds_to_outcome for n, k in o.histogram.items() if n >= 2)
    mean = f"{rounds_sum / decided:.1f}" if decided else "0"
    third = _w(
        lang,
        f"经筛选研判，采纳{counts['adopted']}条，部分采纳{counts['partly_adopted']}条，不予采纳{counts['rejected']}条，"
        f"撤回{counts['withdrawn']}条，合并办理{counts['merged']}条，尚在办理{counts['open']}条。"
        f"采纳、部分采纳和不予采纳的{decided}条意见平均经过{mean}轮办结，其中{several}条经过两轮及以上。",
        f"After screening: {counts['adopted']} adopted, {counts['partly_adopted']} partly adopted, "
        f"{counts['rejected']} rejected, {counts['withdrawn']} withdrawn, {counts['merged']} merged, "
        f"{counts['open']} still open. The {decided} opinions adopted, partly adopted or rejected took "
        f"{mean} rounds on average; {several} of them took two rounds or more.",
    )
    named = [redacted(t) for t in f.headline_themes]
    if lang == "en":
        fourth = (
            f"{adopted} suggestions, on {', '.join(named)} and more, are reflected in the plan."
            if named
            else f"{adopted} suggestions are reflected in the plan."
        )
    else:
        fourth = (
            f"{'、'.join(named)}等{adopted}条建议在规划成果中都予以了体现。"
            if named
            else (f"{adopted}条建议在规划成果中都予以了体现。")
        )
    return [first, second, third, fourth]


def _tables(f: BriefFigures, lang: Lang) -> list[tuple[str, list[str], list[list[object]]]]:
    def label(zh: str, en: str) -> str:
        return _w(lang, zh, en)

    tables: list[tuple[str, list[str], list[list[object]]]] = [
        (
            label("意见类别分布", "Opinions by category"),
            [label("类别", "Category"), label("意见数", "Opinions"), label("占比(%)", "Share (%)")],
            [[c.label.get(lang), c.opinions, pct(c.percent)] for c in f.categories],
        ),
        (
            label("办理结果", "Outcomes"),
            [label("结果", "Outcome"), label("意见数", "Opinions"), label("占比(%)", "Share (%)")],
            [[o.label.get(lang), o.opinions, pct(o.percent)] for o in f.outcomes],
        ),
    ]
    most = max((max(o.histogram, default=0) for o in f.rounds_to_outcome), default=0)
    tables.append(
        (
            label("办理轮次分布", "Rounds to outcome"),
            [label("结果", "Outcome"), label("意见数", "Opinions")]
            + [label(f"{n}轮", f"{n} round(s)") for n in range(1, most + 1)]
            + [label("平均轮次", "Mean rounds")],
            [
                [Outcome(o.outcome).label.get(lang), o.total]
                + [o.histogram.get(n, 0) for n in range(1, most + 1)]
                + [f"{o.mean:.2f}"]
                for o in f.rounds_to_outcome
            ],
        )
    )
    coded = {r.round_no: r for r in f.coding}
    tables.append(
        (
            label("各轮情况", "Each round"),
            [
                label("轮次", "Round"),
                label("进入本轮", "Entered"),
                label("获得反馈", "Got feedback"),
                label("再参与", "Re-participated"),
                label("办结", "Decided"),
                label("转入下一轮", "Carried over"),
                label("已编码主题(%)", "Coded (%)"),
            ],
            [
                [
                    label(f"第{r.round_no}轮", f"Round {r.round_no}"),
                    r.entered,
                    r.feedback,
                    r.reparticipated,
                    r.decided,
                    r.carried_over,
                    pct(coded[r.round_no].percent) if r.round_no in coded else "0",
                ]
                for r in f.funnel
            ],
        )
    )
    tables.append(
        (
            label("各轮办理结果", "Decided in each round"),
            [label("轮次", "Round")] + [o.label.get(lang) for o in Outcome] + [label("合计", "Total")],
            [
                [
                    label(f"第{r.round_no}轮", f"Round {r.round_no}"),
                    *(n for _o, n in r.outcomes),
                    sum(n for _o, n in r.outcomes),
                ]
                for r in f.decided_per_round
            ],
        )
    )
    tables.append(
        (
            label("采纳意见主题", "Adopted opinions by theme"),
            [label("主题", "Theme"), label("采纳意见数", "Adopted opinions")],
            [[redacted(t), n] for t, n in f.adopted_themes],
        )
    )
    most = max((t for t, _n in f.participation.times), default=0)
    tables.append(
        (
            label("参与次数", "How often people took part"),
            [label("参与次数", "Times"), label("人数", "People")],
            [
                [label(f"{t}次及以上", f"{t} or more") if t == most and t > 1 else str(t), n]
                for t, n in f.participation.times
            ],
        )
    )
    tables.append(
        (
            label("按参与群体", "By group"),
            [label("群体", "Group"), label("人数", "People"), label("多次参与", "More than once")],
            [[g.label.get(lang), g.participants, g.more_than_once] for g in f.participation.groups],
        )
    )
    return tables


def _docx() -> Any:
    try:
        import docx  # noqa: PLC0415 - loaded only by `report brief`
    except ImportError:
        raise ConfigurationError(MISSING) from None
    return docx


def _east_asian(run: Any) -> None:
    """Chinese text in a CJK font (Word otherwise picks its own for the East Asian characters)."""
    from docx.oxml.ns import qn  # noqa: PLC0415

    run.font.name = _CJK_FONT
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), _CJK_FONT)  # noqa: SLF001


def _charts(f: BriefFigures, folder: Path, lang: Lang) -> tuple[list[Path], Lang]:
    """The three PNG charts in `folder`, and the language they could be drawn in (no CJK font: en).

    None without the charts extra (matplotlib): the brief is written without them.
    """
    if not f.opinions or not charts.available():
        return [], lang
    rounds, shares, funnel = folder / "rounds.png", folder / "categories.png", folder / "funnel.png"
    drawn = charts.rounds_chart(f.rounds_to_outcome, rounds, lang)
    charts.category_chart([(c.label.zh, c.label.en, c.opinions) for c in f.categories], shares, lang)
    charts.funnel_chart(f.funnel, funnel, lang)
    return [rounds, shares, funnel], drawn


def build(f: BriefFigures, lang: Lang, chart_files: Sequence[Path]) -> Any:
    """The brief as a python-docx Document."""
    docx = _docx()
    from docx.shared import Cm  # noqa: PLC0415

    doc = docx.Document()
    title = _w(lang, f"{redacted(f.title)}公众参与情况汇报", f"{redacted(f.title)}: public participation")
    # The document's own properties name no one either (python-docx's template says "python-docx").
    doc.core_properties.author = doc.core_properties.last_modified_by = "consultflow"
    doc.core_properties.title = title
    doc.core_properties.comments = ""
    for run in doc.add_heading(title, level=0).runs:
        _east_asian(run)
    sections = (_w(lang, "一、总体情况", "1. Overview"),)
    for run in doc.add_heading(sections[0], level=1).runs:
        _east_asian(run)
    for text in paragraphs(f, lang):
        _east_asian(doc.add_paragraph().add_run(text))
    for run in doc.add_heading(_w(lang, "二、图表", "2. Charts"), level=1).runs:
        _east_asian(run)
    for path in chart_files:
        doc.add_picture(str(path), width=Cm(15))
    if f.opinions and not chart_files:
        _east_asian(doc.add_paragraph().add_run(_w(lang, CHARTS_LEFT_OUT_ZH, CHARTS_LEFT_OUT)))
    for run in doc.add_heading(_w(lang, "三、统计表", "3. Tables"), level=1).runs:
        _east_asian(run)
    for caption, headers, rows in _tables(f, lang):
        for run in doc.add_heading(caption, level=2).runs:
            _east_asian(run)
        grid = doc.add_table(rows=1, cols=len(headers))
        grid.style = "Table Grid"
        for cell, header in zip(grid.rows[0].cells, headers, strict=True):
            cell.text = header
        for row in rows:
            cells = grid.add_row().cells
            for cell, value in zip(cells, row, strict=True):
                cell.text = str(value)
    return doc


def write_brief(f: BriefFigures, output: Path, lang: Lang = "zh", *, force: bool = False) -> Lang:
    """Write the brief's DOCX to `output` (0600, a new file unless `force`); returns the charts' language."""
    _docx()  # the extra is checked before anything is drawn
    with tempfile.TemporaryDirectory(prefix="consultflow-brief-") as folder:
        files, drawn = _charts(f, Path(folder), lang)
        doc = build(f, lang, files)
        write_new_file_from(output, doc.save, force=force)
    return drawn


def converter() -> str | None:
    """The LibreOffice program that converts DOCX to PDF here, if one is installed."""
    for name in CONVERTERS:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def write_pdf(docx_file: Path, pdf: Path, program: str, *, force: bool = False) -> None:
    """Convert the written DOCX to `pdf` with LibreOffice (headless), 0600 like the DOCX.

    Raises:
        ValidationError: the conversion failed or produced nothing.
    """
    with tempfile.TemporaryDirectory(prefix="consultflow-pdf-") as folder:
        try:
            subprocess.run(  # noqa: S603 - the program found on PATH, our own file names
                [program, "--headless", f"-env:UserInstallation=file://{folder}/profile", "--convert-to", "pdf",
                 "--outdir", folder, str(docx_file)],
                check=True, capture_output=True, timeout=_CONVERT_SECONDS,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            name = Path(program).name
            msg = f"{name} could not convert {docx_file.name} to PDF ({type(exc).__name__}); the DOCX is written"
            raise ValidationError(msg) from None
        made = Path(folder) / (docx_file.stem + ".pdf")
        if not made.is_file():
            msg = f"{Path(program).name} made no PDF of {docx_file.name}; the DOCX is written"
            raise ValidationError(msg)
        write_new_file(pdf, made.read_bytes(), force=force)
