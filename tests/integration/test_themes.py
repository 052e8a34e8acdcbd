"""Themes (issue 26): coding on the record, suggestions from the texts, % coded per round. Both backends."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from consultflow.domain.errors import PermissionDeniedError, ValidationError
from consultflow.domain.vocabulary import Field
from consultflow.services import audit, consultations, opinions, reports, rounds, themes, verify
from consultflow.services.context import ServiceContext
from consultflow.services.opinions import FireRequest
from tests.conftest import Cli, engine_of
from tests.helpers import COORD, EXPERT, PLANNER, Setup, assert_loop_invariants, seed, snapshot, submit


def _events(ctx: ServiceContext, opinion_id: int) -> list[tuple[str, dict[str, object]]]:
    _view, events = audit.history(ctx, opinion_id)
    return [(e.kind, dict(e.payload)) for e in events]


def test_adding_and_removing_a_theme_is_on_the_record_and_verify_holds(ctx: ServiceContext) -> None:
    """Adding and removing a theme is an event on the opinion's record, never doubled, and the chain still verifies."""
    s = seed(ctx)
    first, second, third = (submit(ctx, s, said) for said in ("建议增设幼儿园", "希望改善小学条件", "建议硬化通组道路"))

    done = themes.code(ctx, acting=PLANNER, theme="  学校。", add=True, opinion_ids=[second, first])
    assert done.theme == "学校"  # spaces and punctuation at the ends taken off
    assert sorted(done.changed) == [first, second]
    again = themes.code(ctx, acting=COORD, theme="学校", add=True, opinion_ids=[first, third])
    assert (again.changed, again.unchanged) == ((third,), (first,))  # the same theme is not added twice
    themes.code(ctx, acting=COORD, theme="学校", add=False, opinion_ids=[third])

    assert [(k, p.get("theme")) for k, p in _events(ctx, first) if k.startswith("theme")] == [("theme_added", "学校")]
    assert [(k, p.get("theme")) for k, p in _events(ctx, third) if k.startswith("theme")] == [
        ("theme_added", "学校"),
        ("theme_removed", "学校"),
    ]
    counted = themes.theme_counts(ctx, s.consultation_id)
    assert [(t.category, t.theme, t.opinions) for t in counted] == [("environment_roads", "学校", 2)]
    assert verify.verify_chain(ctx, s.consultation_id).intact
    assert_loop_invariants(ctx, s.consultation_id)


def test_refusals_write_nothing(ctx: ServiceContext) -> None:
    """A theme coded by an expert, removed where absent, empty, too long or matching nothing is refused; no write."""
    s = seed(ctx)
    opinion = submit(ctx, s)
    themes.code(ctx, acting=PLANNER, theme="农村路网", add=True, opinion_ids=[opinion])
    before = snapshot(ctx)
    with pytest.raises(PermissionDeniedError, match="allowed roles: coordinator, planner"):
        themes.code(ctx, acting=EXPERT, theme="道路", add=True, opinion_ids=[opinion])
    with pytest.raises(ValidationError, match="is not coded with '学校'"):
        themes.code(ctx, acting=PLANNER, theme="学校", add=False, opinion_ids=[opinion])
    with pytest.raises(ValidationError, match="empty"):
        themes.code(ctx, acting=PLANNER, theme=" 。", add=True, opinion_ids=[opinion])
    with pytest.raises(ValidationError, match="at most 30"):
        themes.code(ctx, acting=PLANNER, theme="长" * 31, add=True, opinion_ids=[opinion])
    with pytest.raises(ValidationError, match="no opinion of consultation"):
        themes.code(ctx, acting=PLANNER, theme="光伏", add=True, matching="光伏", consultation_id=s.consultation_id)
    assert snapshot(ctx) == before
    assert [t.theme for t in themes.theme_counts(ctx, s.consultation_id)] == ["农村路网"]


PLANTED = (
    "建议在青龙村建设光伏发电站，增加集体收入",
    "希望发展屋顶光伏，张秀英家愿意带头",
    "村里荒坡可以搞光伏发电",
    "光伏板补贴能不能落实到户",
    "建议把光伏和养殖结合起来，张秀英说效益好",
)
OTHERS = (
    "建议硬化通组道路",
    "希望整治生活污水排放",
    "建议增设垃圾收集点",
    "希望修缮村道桥梁",
    "希望改善幼儿园和小学条件",
    "建议村里增设卫生室",
    "建议发展乡村旅游和研学基地",
)


def test_suggestions_find_a_planted_keyword_and_name_nobody(ctx: ServiceContext) -> None:
    """Theme suggestions find the common keyword, name no person or place, and count what they would tag."""
    s = seed(ctx)
    for said in PLANTED + OTHERS:
        submit(ctx, s, said, category="industry", assign=False)
    found = themes.suggest(ctx, s.consultation_id, top=5)
    assert found.read == len(PLANTED) + len(OTHERS)
    assert found.keywords[0].keyword == "光伏"
    assert found.keywords[0].opinions == sum("光伏" in t for t in PLANTED + OTHERS) == 5
    everything = themes.suggest(ctx, s.consultation_id, top=200)
    assert not any("秀英" in k.keyword or "青龙" in k.keyword for k in everything.keywords)  # no person, no place
    assert themes.suggest(ctx, s.consultation_id, category="public_services").read == 0

    # Suggestions code nothing; a planner applies the keyword, and sees how many it tagged.
    assert themes.theme_counts(ctx, s.consultation_id) == []
    done = themes.code(
        ctx, acting=PLANNER, theme="光伏产业", add=True, matching="光伏", consultation_id=s.consultation_id
    )
    assert len(done.changed) == 5 == found.keywords[0].opinions  # what the suggestion said it would tag
    assert verify.verify_chain(ctx, s.consultation_id).intact


def test_percent_coded_per_round_counted_by_hand(ctx: ServiceContext) -> None:
    """The share of opinions coded per round, carried-over opinions included, is what counting by hand gives."""
    s: Setup = seed(ctx)
    round_one = [submit(ctx, s, f"建议{n}号", assign=False) for n in range(4)]
    themes.code(ctx, acting=PLANNER, theme="道路", add=True, opinion_ids=round_one[:1])
    rounds.close_round(ctx, acting=COORD, consultation_id=s.consultation_id)  # all four carried over
    rounds.open_round(ctx, acting=COORD, consultation_id=s.consultation_id)
    late = submit(ctx, s, "第二轮的新意见", assign=False)
    themes.code(ctx, acting=PLANNER, theme="道路", add=True, opinion_ids=[late, round_one[1]])
    # Round 1: its 4 opinions, 2 coded now. Round 2: the 4 carried over and 1 new, 3 coded.
    coded = themes.progress(ctx, s.consultation_id)
    assert [(r.round_no, r.opinions, r.coded, r.percent) for r in coded] == [(1, 4, 2, 50.0), (2, 5, 3, 60.0)]


def test_cli_theme_commands(cli: Cli, ctx: ServiceContext) -> None:
    """From the CLI a planner codes opinions by keyword or id and sees their themes; a wrong removal is refused."""
    s = seed(ctx)
    ids = [submit(ctx, s, said, assign=False) for said in ("建议增设垃圾收集点", "希望整治垃圾乱倒", "建议硬化道路")]
    added = cli.ok("opinion", "theme", "add", "--consultation", str(s.consultation_id), "--matching", "垃圾", "垃圾处理",
                   actor=PLANNER)  # fmt: skip
    assert "新增2条意见" in added.output and "垃圾" in added.output
    cli.ok("opinion", "theme", "add", f"{ids[2]}", "农村路网", actor=PLANNER)
    listed = cli.ok("--lang", "en", "theme", "list", str(s.consultation_id))
    assert "垃圾处理" in listed.output and "农村路网" in listed.output
    refused = cli("opinion", "theme", "remove", str(ids[2]), "学校", actor=PLANNER)
    assert refused.exit_code == 1 and "is not coded with '学校'" in refused.output
    shown = cli.ok("opinion", "show", str(ids[0]))
    assert "主题：垃圾处理" in shown.output
    assert json.loads(cli.ok("--json", "opinion", "show", str(ids[2])).output)["themes"] == ["农村路网"]
    progress = cli.ok("theme", "progress", str(s.consultation_id), "--json")
    assert json.loads(progress.output)["rounds"][0]["percent"] == 100.0
    assert "主题" not in cli.ok("opinion", "show", str(submit(ctx, s, "未编码的意见", assign=False))).output


def test_the_adoption_report_counts_adopted_opinions_by_theme(ctx: ServiceContext) -> None:
    """The adoption report counts adopted opinions per theme, with shares; with no themes it is as before."""
    s = seed(ctx)
    coded = {"学校": [0, 1], "道路": [1, 2]}  # opinion 0 and 1 adopted, 2 rejected
    ids = [submit(ctx, s, f"建议{n}") for n in range(3)]
    opinions.fire_many(ctx, acting=EXPERT, requests=[FireRequest(i, "screen", {}) for i in ids])
    adopt = {Field.TEXT: "已纳入", Field.PLAN_REF: "v1 §1"}
    opinions.fire_many(
        ctx,
        acting=PLANNER,
        requests=[
            FireRequest(ids[0], "adopt", adopt),
            FireRequest(ids[1], "adopt", adopt),
            FireRequest(ids[2], "reject", {Field.REASON: "超出范围"}),
        ],
    )
    for theme, which in coded.items():
        themes.code(ctx, acting=PLANNER, theme=theme, add=True, opinion_ids=[ids[i] for i in which])
    doc = reports.adoption_report(ctx, s.consultation_id)
    # 学校: both adopted opinions; 道路: one of them (the other is rejected). Shares of the 2 adopted.
    assert doc.figures["adopted_by_theme"] == [
        {"theme": "学校", "adopted": 2, "share": 100.0},
        {"theme": "道路", "adopted": 1, "share": 50.0},
    ]
    table = next(t for t in doc.tables if t.key == "by_theme")
    assert [tuple(r) for r in table.rows] == [("学校", 2, 100.0), ("道路", 1, 50.0)]
    # A consultation with no theme has no theme table: its adoption report is as before.
    other = consultations.create_consultation(ctx, acting=COORD, title="第二片区", area="第二片区")
    assert all(t.key != "by_theme" for t in reports.adoption_report(ctx, other.id).tables)


def test_verify_names_a_theme_row_edited_behind_consultflows_back(ctx: ServiceContext) -> None:
    """Audit verify names the opinion whose themes were put back or taken off with plain SQL."""
    s = seed(ctx)
    first, second = submit(ctx, s, "建议增设幼儿园"), submit(ctx, s, "希望改善小学条件")
    themes.code(ctx, acting=PLANNER, theme="学校", add=True, opinion_ids=[first, second])
    themes.code(ctx, acting=PLANNER, theme="学校", add=False, opinion_ids=[second])
    assert verify.verify_chain(ctx, s.consultation_id).intact
    with engine_of(ctx).begin() as conn:  # the owner, with plain SQL: the removed theme put back
        conn.execute(
            text(
                "INSERT INTO opinion_theme (consultation_id, opinion_id, theme, added_by_id, added_at) "
                "SELECT consultation_id, :o, theme, added_by_id, added_at FROM opinion_theme WHERE opinion_id = :f"
            ),
            {"o": second, "f": first},
        )
    report = verify.verify_chain(ctx, s.consultation_id)
    assert not report.intact and report.broken is not None
    assert f"opinion {second}: the live themes are ['学校'] but its events say []" in report.broken.problem
    with engine_of(ctx).begin() as conn:  # and a theme taken off
        conn.execute(text("DELETE FROM opinion_theme"))
    report = verify.verify_chain(ctx, s.consultation_id)
    assert not report.intact and report.broken is not None
    assert f"opinion {first}: the live themes are [] but its events say ['学校']" in report.broken.problem
