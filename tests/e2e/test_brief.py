"""`report brief`: the county's DOCX, checked against figures counted here from the data set up here. Both backends."""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import docx
import pytest

from consultflow.domain.groups import DEFAULT_GROUPS
from consultflow.domain.vocabulary import Field
from consultflow.export.brief import pct
from consultflow.services import opinions, people, themes
from consultflow.services.context import ServiceContext
from consultflow.services.opinions import FireRequest
from tests.conftest import Cli
from tests.helpers import COORD, EXPERT, PLANNER, seed


@dataclass(frozen=True)
class Planned:
    """One opinion of the test's consultation: who gives it, its category, its fate and its themes."""

    who: str
    category: str
    outcome: str | None  # None: still open (answered, and the villager took part again)
    themes: tuple[str, ...]


PLANNED = (
    Planned("张秀英", "industry", "adopted", ("特色农业",)),
    Planned("张秀英", "industry", "adopted", ("特色农业", "乡村旅游")),
    Planned("张秀英", "industry", "rejected", ("乡村旅游",)),
    Planned("刘桂兰", "public_services", None, ("学校",)),
    Planned("陈建国", "environment_roads", "adopted", ("加强环境整治",)),
    Planned("陈建国", "industry", "adopted", ("完善产业联农带农机制",)),
    Planned("陈建国", "industry", "partly_adopted", ("完善产业联农带农机制",)),
)
NAMES = ("张秀英", "刘桂兰", "陈建国")
GROUPS = {"刘桂兰": "residents", "陈建国": "companies"}  # 张秀英's group is not recorded


def _set_up(ctx: ServiceContext) -> int:
    s = seed(ctx)  # registers 张秀英
    ids = {"张秀英": s.participant_id}
    for name in NAMES[1:]:
        ids[name] = people.add_participant(ctx, acting=EXPERT, name=name, village="白鹤村", group=GROUPS[name]).id
    made = []
    for p in PLANNED:
        view = opinions.submit_opinion(
            ctx, acting=EXPERT, consultation_id=s.consultation_id, participant_id=ids[p.who],
            category=p.category, channel="villagers_assembly", text=f"{p.who}提出：建议{p.category}",
        )  # fmt: skip
        made.append(view.id)
    opinions.assign(ctx, acting=COORD, opinion_ids=made, planner=PLANNER)
    opinions.fire_many(ctx, acting=EXPERT, requests=[FireRequest(i, "screen", {}) for i in made])
    decide = []
    for opinion_id, p in zip(made, PLANNED, strict=True):
        if p.outcome in ("adopted", "partly_adopted"):
            trigger = "adopt" if p.outcome == "adopted" else "partly_adopt"
            decide.append(FireRequest(opinion_id, trigger, {Field.TEXT: "已纳入", Field.PLAN_REF: "v1 §2"}))
        elif p.outcome == "rejected":
            decide.append(FireRequest(opinion_id, "reject", {Field.REASON: "超出范围"}))
        else:
            decide.append(FireRequest(opinion_id, "give_feedback", {Field.TEXT: "请补充位置"}))
    opinions.fire_many(ctx, acting=PLANNER, requests=decide)
    again = [i for i, p in zip(made, PLANNED, strict=True) if p.outcome is None]
    opinions.fire_many(
        ctx, acting=EXPERT, requests=[FireRequest(i, "reparticipate", {Field.STANCE: "revise"}) for i in again]
    )
    for theme in sorted({t for p in PLANNED for t in p.themes}):
        coded = [i for i, p in zip(made, PLANNED, strict=True) if theme in p.themes]
        themes.code(ctx, acting=PLANNER, theme=theme, add=True, opinion_ids=coded)
    return s.consultation_id


def _cells(table: object) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows]  # type: ignore[attr-defined]


def test_brief_docx_says_what_the_data_says_and_names_nobody(cli: Cli, ctx: ServiceContext, tmp_path: Path) -> None:
    """The county's brief states the figures counted by hand from the data, names no villager, and is private."""
    cid = _set_up(ctx)
    out = tmp_path / "汇报.docx"
    result = cli.ok("report", "brief", str(cid), "--out", str(out), "--pdf")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "PDF" in result.output or out.with_suffix(".pdf").exists()  # one line when no converter is installed

    document = docx.Document(str(out))
    text = "\n".join(p.text for p in document.paragraphs)
    tables = [_cells(t) for t in document.tables]
    every_cell = "\n".join(c for t in tables for row in t for c in row)
    for name in NAMES:  # nobody is named, in the text or in a table
        assert name not in text and name not in every_cell
    assert document.core_properties.author == document.core_properties.last_modified_by == "consultflow"

    total = len(PLANNED)
    per_category = Counter(p.category for p in PLANNED)
    assert f"累计收集村民意见建议{total}条" in text
    assert f"涉及产业发展的占{pct(100 * per_category['industry'] / total)}%" in text  # 5 of 7: 71.4%
    outcomes = Counter(p.outcome for p in PLANNED)
    assert (
        f"采纳{outcomes['adopted']}条，部分采纳{outcomes['partly_adopted']}条，不予采纳{outcomes['rejected']}条" in text
    )

    decided = sum(1 for p in PLANNED if p.outcome in ("adopted", "partly_adopted", "rejected"))
    assert f"不予采纳的{decided}条意见平均经过1.0轮办结，其中0条经过两轮及以上" in text  # all decided in round 1

    # Took part: opinions given plus re-participations, per person.
    times = Counter(p.who for p in PLANNED) + Counter(p.who for p in PLANNED if p.outcome is None)
    repeat = sum(1 for n in times.values() if n >= 2)
    kinds = "、".join(
        f"{label.zh}{sum(1 for g in GROUPS.values() if g == key)}人"
        for key, label in DEFAULT_GROUPS.items()
        if key in GROUPS.values()
    )  # in the workflow's order of groups
    assert (
        f"共有{len(times)}人提出意见建议，其中{kinds}；{repeat}人多次参与，占{pct(100 * repeat / len(times))}%。"
        in text
    )
    group_table = next(t for t in tables if t[0] == ["群体", "人数", "多次参与"])
    assert {row[0]: (int(row[1]), int(row[2])) for row in group_table[1:]} == {
        DEFAULT_GROUPS[GROUPS.get(name, "")].zh if name in GROUPS else "未填写": (1, int(times[name] >= 2))
        for name in NAMES
    }

    adopted = [p for p in PLANNED if p.outcome == "adopted"]
    by_theme = Counter(t for p in adopted for t in p.themes)
    top_of = {}
    for category in ("industry", "public_services", "environment_roads"):
        counted = Counter(t for p in adopted if p.category == category for t in p.themes)
        if counted:
            top_of[category] = max(counted.items(), key=lambda kv: (kv[1], kv[0]))
    named = "、".join(t for t, _n in sorted(top_of.values(), key=lambda kv: (-kv[1], kv[0])))
    assert f"{named}等{len(adopted)}条建议在规划成果中都予以了体现。" in text
    assert named.startswith("特色农业")  # 2 adopted, the most

    theme_table = next(t for t in tables if t[0] == ["主题", "采纳意见数"])
    assert {row[0]: int(row[1]) for row in theme_table[1:]} == dict(by_theme)
    category_table = next(t for t in tables if t[0][0] == "类别")
    assert {row[0]: int(row[1]) for row in category_table[1:]} == {
        "产业发展": per_category["industry"],
        "公共服务配套": per_category["public_services"],
        "环境卫生与农村路网": per_category["environment_roads"],
    }
    rounds_table = next(t for t in tables if t[0][0] == "轮次" and t[0][-1] == "已编码主题(%)")
    assert rounds_table[1][:2] == ["第1轮", str(total)] and rounds_table[1][-1] == "100"  # every opinion coded
    decided_table = next(t for t in tables if t[0][-1] == "合计")
    assert decided_table[0] == ["轮次", "采纳", "部分采纳", "不予采纳", "撤回", "合并", "合计"]
    in_round_one = [outcomes[o] for o in ("adopted", "partly_adopted", "rejected", "withdrawn", "merged")]
    assert decided_table[1] == ["第1轮", *map(str, in_round_one), str(sum(in_round_one))]  # all decided in round 1
    assert len(document.inline_shapes) == 3  # the rounds, categories and funnel charts


def test_brief_refuses_a_taken_name_and_a_wrong_suffix(cli: Cli, ctx: ServiceContext, tmp_path: Path) -> None:
    """A brief is not written over an existing file, nor under a name that does not end in .docx."""
    cid = _set_up(ctx)
    taken = tmp_path / "brief.docx"
    taken.write_bytes(b"last month's")
    refused = cli("report", "brief", str(cid), "--out", str(taken))
    assert refused.exit_code == 1 and "already a file" in refused.output
    assert taken.read_bytes() == b"last month's"
    wrong = cli("report", "brief", str(cid), "--out", str(tmp_path / "brief.pdf"))
    assert wrong.exit_code == 1 and "name it something.docx" in wrong.output


FAKE_SOFFICE = """#!/bin/sh
# soffice --headless -env:... --convert-to pdf --outdir DIR FILE.docx: writes DIR/FILE.pdf
while [ "$#" -gt 1 ]; do
  if [ "$1" = "--outdir" ]; then out="$2"; fi
  shift
done
name=$(basename "$1" .docx)
printf '%%PDF-1.4 converted' > "$out/$name.pdf"
"""


def test_pdf_beside_the_docx_where_a_converter_is_installed(
    cli: Cli, ctx: ServiceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a converter is installed the brief gets a private PDF too; without one, the DOCX and a line saying so."""
    cid = _set_up(ctx)
    tools = tmp_path / "bin"
    tools.mkdir()
    program = tools / "soffice"
    program.write_text(FAKE_SOFFICE)
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    out = tmp_path / "brief.docx"
    cli.ok("--lang", "en", "report", "brief", str(cid), "--out", str(out), "--pdf")
    pdf = out.with_suffix(".pdf")
    assert pdf.read_bytes() == b"%PDF-1.4 converted"
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
    text = "\n".join(p.text for p in docx.Document(str(out)).paragraphs)  # in English, asked for
    adopted = sum(1 for p in PLANNED if p.outcome == "adopted")
    assert f"{len(PLANNED)} opinions and suggestions were collected" in text
    assert f"{adopted} suggestions, on 特色农业" in text
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no converter: the DOCX, and one line saying so
    again = cli.ok("report", "brief", str(cid), "--out", str(tmp_path / "again.docx"), "--pdf")
    assert "no PDF: no converter installed" in again.output
    assert (tmp_path / "again.docx").exists() and not (tmp_path / "again.pdf").exists()
