"""The draft plan in versions and its public review, through the CLI on both backends (issue 26).

Markdown, DOCX and CSV drafts become versions whose clauses keep their ids by number; the diff
names what changed and the adopted opinions behind it; ratings recorded at an assembly end as
opinions linked to their clause that move through the loop; results are counted by hand here;
every refusal writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from consultflow.domain.clock import FixedClock
from consultflow.services.context import ServiceContext
from tests.conftest import Cli, make_context, sql_uow
from tests.helpers import snapshot

COORD, PLANNER, EXPERT = "李协调", "王规划", "赵专家"

DRAFT_MD = """# 三产融合片区规划（征求意见稿）

## 一、交通设施

1. 新建片区环线公路，路面宽度6米。
2. 各村通组道路全部硬化，
   宽度不小于3.5米。

## 二、产业联农带农

1. 在金田村布局生猪种业园区。
2. 推行“企业+合作社+农户”利益联结机制。

## 三、环境整治

开展农村生活污水治理，覆盖率达到60%。

每村设置垃圾收集点一处。
"""


def _people(cli: Cli) -> None:
    cli.ok("actor", "add", COORD, "--role", "coordinator")
    cli.ok("actor", "add", PLANNER, "--role", "planner", actor=COORD)
    cli.ok("actor", "add", EXPERT, "--role", "expert", actor=COORD)
    for name in ("张秀英", "李建国", "王桂兰"):
        cli.ok("participant", "add", name, "--village", "青龙村", actor=EXPERT)
    cli.ok("consultation", "create", "三产融合片区规划", "--area", "试点片区", actor=COORD)


def _json(cli: Cli, *args: str, actor: str | None = None) -> dict:  # type: ignore[type-arg]
    out: dict = json.loads(cli.ok("--json", *args, actor=actor).stdout)  # type: ignore[type-arg]
    return out


def _ctx(cli: Cli, clock: FixedClock) -> ServiceContext:
    return make_context(cli.url, clock)


def _count(ctx: ServiceContext, table: str) -> int:
    from consultflow.store import models

    kinds = {"rating": models.PlanRating, "clause": models.PlanClause, "version": models.PlanVersion}
    with sql_uow(ctx) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(kinds[table])) or 0)


def _docx(path: Path) -> None:
    import docx

    doc = docx.Document()
    doc.add_heading("三产融合片区规划（送审稿）", level=0)
    doc.add_heading("一、交通设施", level=1)
    doc.add_paragraph("新建片区环线公路，路面宽度6米。", style="List Number")
    doc.add_paragraph("各村通组道路全部硬化，宽度不小于4米。", style="List Number")
    doc.add_heading("二、产业联农带农", level=1)
    doc.add_paragraph("在金田村布局生猪种业园区，优先吸纳本村劳动力。", style="List Number")
    doc.add_heading("三、环境整治", level=1)
    doc.add_paragraph("开展农村生活污水治理，覆盖率达到80%。")
    doc.add_paragraph("每村设置垃圾收集点一处。")
    doc.add_paragraph("修缮河口村村道桥梁两座。")
    doc.save(str(path))


def test_markdown_docx_and_csv_become_versions_with_stable_clauses(cli: Cli, clock: FixedClock, tmp_path: Path) -> None:
    """Markdown, DOCX and CSV drafts become versions whose clauses keep their ids by number; the diff says so."""
    _people(cli)
    (tmp_path / "v1.md").write_text(DRAFT_MD, encoding="utf-8")
    first = _json(cli, "plan", "import", "1", str(tmp_path / "v1.md"), "--version-label", "征求意见稿", actor=PLANNER)
    assert (first["number"], first["clauses"], first["label"]) == (1, 6, "征求意见稿")
    shown = _json(cli, "plan", "show", "1")
    assert [(c["number"], c["section_title"], c["text"]) for c in shown["clauses"]] == [
        ("1.1", "交通设施", "新建片区环线公路，路面宽度6米。"),
        ("1.2", "交通设施", "各村通组道路全部硬化，宽度不小于3.5米。"),  # a wrapped line joined without a space
        ("2.1", "产业联农带农", "在金田村布局生猪种业园区。"),
        ("2.2", "产业联农带农", "推行“企业+合作社+农户”利益联结机制。"),
        ("3.1", "环境整治", "开展农村生活污水治理，覆盖率达到60%。"),
        ("3.2", "环境整治", "每村设置垃圾收集点一处。"),
    ]
    ids_v1 = {c["number"]: c["clause_id"] for c in shown["clauses"]}

    _docx(tmp_path / "v2.docx")
    second = _json(cli, "plan", "import", "1", str(tmp_path / "v2.docx"), actor=PLANNER)
    assert (second["number"], second["clauses"], second["source"]) == (2, 6, "v2.docx")
    shown2 = _json(cli, "plan", "show", "1", "--version", "2")
    ids_v2 = {c["number"]: c["clause_id"] for c in shown2["clauses"]}
    assert sorted(ids_v2) == ["1.1", "1.2", "2.1", "3.1", "3.2", "3.3"]
    assert all(ids_v2[n] == ids_v1[n] for n in ids_v1.keys() & ids_v2.keys())  # same number, same clause
    assert ids_v2["3.3"] not in ids_v1.values()

    (tmp_path / "v3.csv").write_text(
        "章节,条款,内容\n1,1,新建片区环线公路。\n4,1,新增：建设电动车充电桩。\n", encoding="utf-8-sig"
    )
    third = _json(cli, "plan", "import", "1", str(tmp_path / "v3.csv"), actor=PLANNER)
    assert third["number"] == 3
    ids_v3 = {c["number"]: c["clause_id"] for c in _json(cli, "plan", "show", "1")["clauses"]}
    assert ids_v3["1.1"] == ids_v1["1.1"] and "4.1" in ids_v3
    assert [v["number"] for v in _json(cli, "plan", "show", "1")["versions"]] == [1, 2, 3]
    text = cli.ok("plan", "show", "1", "--version", "1").stdout
    assert "规划草案第 1 版（征求意见稿）" in text and "  2.1  在金田村布局生猪种业园区。" in text

    diff = _json(cli, "plan", "diff", "1", "1", "2")
    changes = {line["number"]: line["change"] for line in diff["lines"]}
    assert changes == {"1.2": "changed", "2.1": "changed", "3.1": "changed", "3.3": "added", "2.2": "removed"}

    ctx = _ctx(cli, clock)
    try:
        assert _count(ctx, "version") == 3 and _count(ctx, "clause") == 8  # 6, then 3.3, then 4.1
    finally:
        ctx.database.dispose()


def test_bad_drafts_are_one_line_and_write_nothing(cli: Cli, clock: FixedClock, tmp_path: Path) -> None:
    """A bad draft, or one imported by an expert, is refused in one line and no version or clause is written."""
    _people(cli)
    cases = {
        "loose.md": ("开头没有标题的一段话。\n\n## 一、交通设施\n\n1. 条款\n", "text before the first heading"),
        "twice.csv": ("section,clause,text\n1,1,甲\n1,1,乙\n", "clause '1.1' is given twice"),
        "empty.json": ("[]", "the draft has no clauses"),
        "plan.pdf": ("x", "a plan draft is a .md, .docx, .csv or .json file"),
        "bad.docx": ("not a zip", "is not a readable DOCX file"),
    }
    for name, (content, said) in cases.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
        result = cli("plan", "import", "1", str(tmp_path / name), actor=PLANNER)
        assert result.exit_code == 1, (name, result.output)
        assert said in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    (tmp_path / "good.csv").write_text("section,clause,text\n1,1,甲\n", encoding="utf-8")
    refused = cli("plan", "import", "1", str(tmp_path / "good.csv"), actor=EXPERT)  # experts import no plans
    assert refused.exit_code == 1 and "may not import plan drafts" in refused.output
    ctx = _ctx(cli, clock)
    try:
        assert _count(ctx, "version") == 0 and _count(ctx, "clause") == 0
    finally:
        ctx.database.dispose()


def _rate(cli: Cli, participant: int, *pairs: tuple[str, str], comments: tuple[tuple[str, str], ...] = ()) -> dict:  # type: ignore[type-arg]
    args = ["review", "record", "1", str(participant)]
    for clause, rating in pairs:
        args += ["--rate", clause, rating]
    for clause, comment in comments:
        args += ["--comment", clause, comment]
    return _json(cli, *args, actor=EXPERT)


def test_a_review_round_rates_clauses_and_comments_go_round_the_loop(
    cli: Cli, clock: FixedClock, tmp_path: Path
) -> None:
    """A review counts villagers' ratings by clause; comments become opinions, sealed, traced in the diff, erasable."""
    _people(cli)
    (tmp_path / "v1.md").write_text(DRAFT_MD, encoding="utf-8")
    cli.ok("plan", "import", "1", str(tmp_path / "v1.md"), actor=PLANNER)
    opened = _json(cli, "review", "open", "1", "--category", "环境卫生与农村路网", actor=COORD)
    assert (opened["round"]["number"], opened["version"], opened["clauses"]) == (1, 1, 6)
    assert opened["category"] == "environment_roads" and opened["category_zh"] == "环境卫生与农村路网"

    first = _rate(cli, 1, ("1.1", "满意"), ("3.1", "不满意"), comments=(("3.1", "污水治理覆盖率应提高到80%"),))
    _rate(cli, 2, ("1.1", "基本满意"), ("3.1", "not_satisfied"), ("2.1", "satisfied"))
    _rate(cli, 3, ("1.1", "不满意"), ("3.1", "基本满意"), comments=(("1.1", "环线公路要经过石桥村"),))
    (comment_opinion,) = [r["opinion_id"] for r in first["ratings"] if r["opinion_id"]]

    # the comment is an opinion like any other: linked to its clause, screened, answered, adopted
    shown = _json(cli, "opinion", "show", str(comment_opinion))
    opinion = shown["opinion"]
    assert [c["number"] for c in shown["clauses"]] == ["3.1"]
    assert (opinion["text"], opinion["category"], opinion["state"]) == (
        "污水治理覆盖率应提高到80%",
        "environment_roads",
        "submitted",
    )
    assert "关联的规划条款：3.1 开展农村生活污水治理" in cli.ok("opinion", "show", str(comment_opinion)).stdout
    cli.ok("opinion", "assign", str(comment_opinion), "--to", PLANNER, actor=COORD)
    cli.ok("opinion", "fire", str(comment_opinion), "screen", actor=PLANNER)
    cli.ok(
        "opinion", "fire", str(comment_opinion), "adopt", "--text", "已调整覆盖率", "--plan-ref", "3.1", actor=PLANNER
    )

    report = json.loads(cli.ok("report", "review", "1", "--format", "json").stdout)
    by_clause = {c["clause"]: c for c in report["figures"]["by_clause"]}
    # counted by hand: 1.1 = 满意 (1), 基本满意 (2), 不满意 (3, with a comment); 3.1 = 不满意 (1, comment), 不满意 (2), 基本满意 (3)
    assert by_clause["1.1"] == {
        "clause": "1.1", "satisfied": 1, "mostly": 1, "not_satisfied": 1, "ratings": 3,
        "share_satisfied": round(2 / 3, 4), "comments": 1, "comment_states": {"submitted": 1},
    }  # fmt: skip
    assert by_clause["3.1"] == {
        "clause": "3.1", "satisfied": 0, "mostly": 1, "not_satisfied": 2, "ratings": 3,
        "share_satisfied": round(1 / 3, 4), "comments": 1, "comment_states": {"adopted": 1},
    }  # fmt: skip
    assert by_clause["2.1"]["ratings"] == 1 and by_clause["2.1"]["share_satisfied"] == 1.0
    assert by_clause["2.2"]["ratings"] == 0 and by_clause["2.2"]["share_satisfied"] is None
    table = cli.ok("report", "review", "1").stdout
    assert "满意率（满意+基本满意）" in table and "66.7%" in table and "33.3%" in table and "采纳 1" in table
    assert "张秀英" not in table and "李建国" not in table  # figures only
    english = cli.ok("--lang", "en", "report", "review", "1").stdout
    assert "Share satisfied" in english and "Adopted 1" in english

    # the version that follows: the diff names the adopted comment under the clause it changed
    changed = DRAFT_MD.replace("覆盖率达到60%", "覆盖率达到80%")
    (tmp_path / "v2.md").write_text(changed, encoding="utf-8")
    cli.ok("plan", "import", "1", str(tmp_path / "v2.md"), actor=PLANNER)
    diff = _json(cli, "plan", "diff", "1", "1", "2")
    (line,) = diff["lines"]
    assert (line["number"], line["change"]) == ("3.1", "changed")
    assert [(o["opinion_id"], o["outcome"]) for o in line["opinions"]] == [(comment_opinion, "adopted")]
    assert "3.1  [修改]" in cli.ok("plan", "diff", "1", "1", "2").stdout
    assert cli.ok("audit", "verify", "1").exit_code == 0

    ctx = _ctx(cli, clock)
    try:
        with sql_uow(ctx) as uow:  # as stored: plain SQL, not the columns' opening types
            said = {"o": comment_opinion}
            raw = str(uow.session.scalar(text("SELECT comment FROM plan_rating WHERE opinion_id = :o"), said))
            events = [
                str(p) for p in uow.session.scalars(text("SELECT payload FROM audit_event WHERE kind = 'clause_rated'"))
            ]
        assert raw.startswith("cf1:") and "污水" not in raw  # sealed with the participant's key
        assert len(events) == 7  # each rating is an audit event
        assert sum(raw in e for e in events) == 1 and not any("污水" in e for e in events)
        # erasing the person forgets her comment, in the rating and its opinion alike; the figures stay
        cli.ok("participant", "erase", "1", "--reason", "本人申请", actor=COORD)
        with sql_uow(ctx) as uow:
            from consultflow.store.models import PlanRating

            comments = uow.session.scalars(select(PlanRating.comment).where(PlanRating.opinion_id == comment_opinion))
            assert list(comments) == ["（已删除）"]
        assert _json(cli, "opinion", "show", str(comment_opinion))["opinion"]["text"] == "（已删除）"
        after = json.loads(cli.ok("report", "review", "1", "--version", "1", "--format", "json").stdout)
        assert after["figures"]["by_clause"] == report["figures"]["by_clause"]
        assert cli.ok("audit", "verify", "1").exit_code == 0
    finally:
        ctx.database.dispose()


def test_refusals_write_nothing(cli: Cli, clock: FixedClock, tmp_path: Path) -> None:
    """A rating with no review open, for an unknown clause or rating, or twice, is refused in one line; no write."""
    _people(cli)
    (tmp_path / "v1.md").write_text(DRAFT_MD, encoding="utf-8")
    cli.ok("plan", "import", "1", str(tmp_path / "v1.md"), actor=PLANNER)
    ctx = _ctx(cli, clock)
    try:
        no_review = cli("review", "record", "1", "1", "--rate", "1.1", "满意", actor=EXPERT)
        assert no_review.exit_code == 1 and "no round is open" in no_review.output
        cli.ok("round", "open", "1", actor=COORD)
        plain = cli("review", "record", "1", "1", "--rate", "1.1", "满意", actor=EXPERT)
        assert plain.exit_code == 1 and "round 1 is open but is no review" in plain.output
        cli.ok("round", "close", "1", actor=COORD)
        cli.ok("review", "open", "1", actor=COORD)
        _rate(cli, 1, ("1.1", "满意"))
        before, ratings = snapshot(ctx), _count(ctx, "rating")
        refusals = [
            (("--rate", "9.9", "满意"), "plan version 1 has no clause '9.9'"),
            (
                ("--rate", "1.2", "很好"),
                "unknown rating '很好'; allowed: 满意/satisfied, 基本满意/mostly, 不满意/not_satisfied",
            ),
            (("--rate", "1.2", "满意", "--rate", "1.2", "不满意"), "has rated clause 1.2 in this review already"),
            (("--rate", "1.1", "不满意"), "has rated clause 1.1 in this review already"),
            # one bad rating refuses the whole record, the good comment with it
            (("--rate", "1.2", "满意", "--comment", "1.2", "好", "--rate", "2.1", "差"), "unknown rating '差'"),
        ]
        for args, said in refusals:
            result = cli("review", "record", "1", "1", *args, actor=EXPERT)
            assert result.exit_code == 1, result.output
            assert said in result.output and len(result.output.strip().splitlines()) == 1
        unrated = cli("review", "record", "1", "1", "--comment", "1.2", "好", actor=EXPERT)
        assert unrated.exit_code == 2 and "rate that clause too" in unrated.output
        assert snapshot(ctx) == before and _count(ctx, "rating") == ratings
        cli.ok("round", "close", "1", actor=COORD)
        closed_before, closed_ratings = snapshot(ctx), _count(ctx, "rating")
        closed = cli("review", "record", "1", "2", "--rate", "1.1", "满意", actor=EXPERT)
        assert closed.exit_code == 1 and "takes no ratings now: no round is open" in closed.output
        assert snapshot(ctx) == closed_before and _count(ctx, "rating") == closed_ratings
        unknown_version = cli("review", "open", "1", "--version", "7", actor=COORD)
        assert unknown_version.exit_code == 1 and "has no plan version 7; versions: 1" in unknown_version.output
        assert snapshot(ctx) == closed_before  # no round opened
    finally:
        ctx.database.dispose()


@pytest.mark.parametrize("rating", ["满意", "satisfied", "Mostly satisfied", "基本满意", "不满意", "NOT_SATISFIED"])
def test_ratings_are_understood_in_either_language(rating: str) -> None:
    """A villager's rating is understood in Chinese or English, in any case."""
    from consultflow.domain.plan import resolve_rating

    assert resolve_rating(rating) in ("satisfied", "mostly", "not_satisfied")
