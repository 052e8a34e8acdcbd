"""Issue 26: who took part (groups, times, representation) and county programmes of areas, on both backends."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from consultflow.domain.errors import NotFoundError, ValidationError
from consultflow.domain.vocabulary import Field
from consultflow.services import consultations, opinions, participation, people, programmes, rounds, verify
from consultflow.services.context import ServiceContext
from consultflow.store.models import AuditEvent, Participant
from tests.conftest import WORKFLOWS, Cli, engine_of, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, seed
from tests.web.portal import client, submit_form


def _json(result: Any) -> Any:
    return json.loads(result.output)


def _participants(cli: Cli) -> dict[str, str | None]:
    """Each participant's group, by pseudonym and village (what `participant list --json` shows)."""
    shown = _json(cli.ok("--json", "participant", "list", actor=COORD))
    return {f"{p['name']}@{p['village']}": p["group"] for p in shown}


def _people(cli: Cli) -> None:
    cli.ok("actor", "add", COORD, "--role", "coordinator")
    cli.ok("actor", "add", EXPERT, "--role", "expert", actor=COORD)
    cli.ok("actor", "add", PLANNER, "--role", "planner", actor=COORD)
    cli.ok("actor", "add", "孙审计", "--role", "auditor", actor=COORD)


def test_groups_are_recorded_at_intake_by_id_or_label_and_an_unknown_one_is_refused(cli: Cli, tmp_path: Path) -> None:
    """participant add --group and an import's 群体 column take ids and zh/en labels; an unknown group is one
    line naming the allowed ones, and nothing is written."""
    _people(cli)
    cli.ok("participant", "add", "张秀英", "--village", "青龙村", "--group", "普通群众", actor=EXPERT)
    cli.ok("participant", "add", "王建国", "--village", "白鹤村", "--group", "Company representatives", actor=EXPERT)
    cli.ok("participant", "add", "李德明", "--village", "白鹤村", actor=EXPERT)  # no group given
    refused = cli("participant", "add", "赵玉梅", "--village", "白鹤村", "--group", "外星人", actor=EXPERT)
    assert refused.exit_code == 1
    line = refused.output.strip()
    assert "\n" not in line and "'外星人'" in line
    assert "乡镇干部/officials" in line and "普通群众/residents" in line
    assert _participants(cli) == {"张某某@青龙村": "residents", "王某某@白鹤村": "companies", "李某某@白鹤村": None}

    cli.ok("consultation", "create", "片区规划意见征集", "--area", "试点片区", actor=COORD)
    cli.ok("round", "open", "1", actor=COORD)
    good = tmp_path / "村民大会.csv"
    good.write_text(
        "姓名,村,群体,类别,意见内容\n"
        "刘一,石桥村,乡镇干部,产业,建议发展乡村旅游\n"
        "刘二,石桥村,business_leaders,公共服务,建议增设卫生室\n"
        "刘三,石桥村,Respected villagers,产业,建议扩大种业园区\n"
        "刘四,石桥村,,产业,建议修缮村道\n",
        encoding="utf-8",
    )
    cli.ok("opinion", "import", str(good), "--consultation", "1", "--channel", "villagers_assembly", actor=EXPERT)
    listed = _json(cli.ok("--json", "participant", "list", "--village", "石桥村", actor=COORD))
    assert [p["group"] for p in listed] == ["officials", "business_leaders", "respected_villagers", None]

    bad = tmp_path / "坏.csv"
    bad.write_text(
        "姓名,村,群体,类别,意见内容\n周五,石桥村,外星人,产业,建议甲\n周六,石桥村,乡镇干部,产业,建议乙\n", "utf-8"
    )
    refused = cli("opinion", "import", str(bad), "--consultation", "1", "--channel", "villagers_assembly", actor=EXPERT)
    assert refused.exit_code == 1
    assert "column 群体: unknown group '外星人'; allowed: 乡镇干部/officials" in refused.output
    assert (
        len(_json(cli.ok("--json", "participant", "list", "--village", "石桥村", actor=COORD))) == 4
    )  # nothing written
    assert "chain intact" in cli.ok("audit", "verify", "1", actor="孙审计").output


def test_changing_a_group_is_an_audited_change_in_every_consultation_taken_part_in(ctx: ServiceContext) -> None:
    """set-group writes an event in each chain the person took part in, and verify still passes."""
    setup = seed(ctx)
    other = consultations.create_consultation(ctx, acting=COORD, title="第二片区", area="第二片区").id
    rounds.open_round(ctx, acting=COORD, consultation_id=other)
    for cid in (setup.consultation_id, other):
        opinions.submit_opinion(
            ctx, acting=EXPERT, consultation_id=cid, participant_id=setup.participant_id,
            category="industry", channel="open_air_meeting", text="建议发展乡村旅游",
        )  # fmt: skip
    groups = participation.groups_of(ctx)
    done = participation.set_participant_group(
        ctx, acting=EXPERT, participant_id=setup.participant_id, group="致富带头人", groups=groups
    )
    assert (done.previous, done.group, done.consultations, done.changed) == (None, "business_leaders", (1, 2), True)
    again = participation.set_participant_group(
        ctx, acting=EXPERT, participant_id=setup.participant_id, group="business_leaders", groups=groups
    )
    assert not again.changed
    with sql_uow(ctx) as uow:
        events = uow.session.execute(
            select(AuditEvent.consultation_id, AuditEvent.payload, AuditEvent.actor).where(
                AuditEvent.kind == "participant_group_changed"
            )
        ).all()
        stored = uow.session.scalar(select(Participant.group_id).where(Participant.id == setup.participant_id))
    assert stored == "business_leaders"
    assert sorted(c for c, _p, _a in events) == [1, 2]
    assert all(
        json.loads(p) == {"participant_id": 1, "group": "business_leaders", "previous": None} for _c, p, _a in events
    )
    assert {a for _c, _p, a in events} == {EXPERT}
    assert all(verify.verify_chain(ctx, c).intact for c in (1, 2))
    with pytest.raises(ValidationError, match="unknown group"):
        participation.set_participant_group(ctx, acting=EXPERT, participant_id=1, group="坏", groups=groups)
    with pytest.raises(NotFoundError):
        participation.set_participant_group(ctx, acting=EXPERT, participant_id=99, group="residents", groups=groups)


def _hand_built(ctx: ServiceContext) -> tuple[int, dict[str, int]]:
    """Four people in one consultation, counted by hand:

    - 张 (residents, 青龙村): 2 opinions, each answered once after feedback: 4 times.
    - 王 (companies, 青龙村): 1 opinion, answered once: 2 times.
    - 李 (residents, 白鹤村): 1 opinion, never answered: 1 time.
    - 赵 (no group, 白鹤村): 3 opinions: 3 times.
    A feedback the participant did not answer, and a planner's feedback, are not taking part.
    """
    setup = seed(ctx)
    cid = setup.consultation_id
    who = {
        "张": people.add_participant(ctx, acting=EXPERT, name="张一", village="青龙村", group="普通群众").id,
        "王": people.add_participant(ctx, acting=EXPERT, name="王二", village="青龙村", group="companies").id,
        "李": people.add_participant(ctx, acting=EXPERT, name="李三", village="白鹤村", group="residents").id,
        "赵": people.add_participant(ctx, acting=EXPERT, name="赵四", village="白鹤村").id,
    }
    given = {"张": 2, "王": 1, "李": 1, "赵": 3}
    ids: dict[str, list[int]] = {}
    for person, n in given.items():
        items = [
            opinions.NewOpinion(who[person], "industry", "open_air_meeting", f"{person}的意见{i}") for i in range(n)
        ]
        ids[person] = [v.id for v in opinions.submit_many(ctx, acting=EXPERT, consultation_id=cid, items=items)]
    every = [i for got in ids.values() for i in got]
    opinions.fire_many(ctx, acting=EXPERT, requests=[opinions.FireRequest(i, "screen", {}) for i in every])
    opinions.assign(ctx, acting=COORD, opinion_ids=every, planner=PLANNER)
    answered = [*ids["张"], *ids["王"], ids["李"][0]]  # 李's feedback goes unanswered
    feedback = [opinions.FireRequest(i, "give_feedback", {Field.TEXT: "已研究"}) for i in answered]
    opinions.fire_many(ctx, acting=PLANNER, requests=feedback)
    replies = [*ids["张"], *ids["王"]]
    reply = {Field.STANCE: "revise", Field.TEXT: "补充"}
    opinions.fire_many(ctx, acting=EXPERT, requests=[opinions.FireRequest(i, "reparticipate", reply) for i in replies])
    return cid, who


def test_times_taken_part_count_submissions_and_answers_to_feedback(ctx: ServiceContext) -> None:
    """The hand-built scenario's figures: 4 people (the seed's villager gave nothing), 7 opinions and 3 answers."""
    cid, _who = _hand_built(ctx)
    s = participation.participation_summary(ctx, cid)
    assert (s.participants, s.submissions, s.reparticipations, s.times) == (4, 7, 3, 10)
    assert s.distribution == ((1, 1), (2, 1), (3, 1), (4, 1))  # 李 once, 王 twice, 赵 three times, 张 four
    assert (s.repeat, s.repeat_share) == (3, 75.0)
    assert {g: (n, r) for g, n, r in s.by_group} == {
        "officials": (0, 0),
        "companies": (1, 1),
        "business_leaders": (0, 0),
        "respected_villagers": (0, 0),
        "residents": (2, 1),
        None: (1, 1),
    }
    assert s.by_village == (("白鹤村", 2, 1), ("青龙村", 2, 2))
    cross = participation.use_participation_report(
        ctx, cid, lambda d: next(t for t in d.tables if t.key == "by_group_village"), lang="en"
    )
    assert cross.headers == (
        "Village", "Town and township officials", "Company representatives", "Local business leaders",
        "Respected villagers", "Residents", "not given", "People",
    )  # fmt: skip
    assert list(cross.rows) == [("白鹤村", 0, 0, 0, 0, 1, 1, 2), ("青龙村", 0, 1, 0, 0, 1, 0, 2)]


def test_the_report_pseudonymises_people_unless_a_coordinator_reads_them_on_record(ctx: ServiceContext) -> None:
    """Each person's times, under 张某某; full names only with a purpose, and the read is on record."""
    cid, who = _hand_built(ctx)
    rows = participation.use_participation_report(
        ctx, cid, lambda d: list(next(t for t in d.tables if t.key == "people").rows), lang="zh"
    )  # the people's table streams from the database while the report is used
    assert [(r[0], r[1], r[3], r[4], r[5], r[6]) for r in rows] == [
        (who["张"], "张某某", "普通群众", 2, 2, 4),
        (who["赵"], "赵某某", "未填写", 3, 0, 3),
        (who["王"], "王某某", "企业代表", 1, 1, 2),
        (who["李"], "李某某", "普通群众", 1, 0, 1),
    ]
    with pytest.raises(ValidationError, match="--purpose"):
        participation.use_participation_report(ctx, cid, lambda d: None, names="full", acting=COORD)
    names = participation.use_participation_report(
        ctx, cid, lambda d: [r[1] for r in next(t for t in d.tables if t.key == "people").rows],
        names="full", acting=COORD, purpose="回访核对",
    )  # fmt: skip
    assert names == ["张一", "赵四", "王二", "李三"]
    from consultflow.services import personal_data

    (record,) = personal_data.access_records(ctx)
    assert (record.actor, record.purpose, record.participants) == (COORD, "回访核对", 4)


def test_a_roster_names_the_groups_and_villages_under_represented_and_by_how_much(cli: Cli, tmp_path: Path) -> None:
    """Residents are 80% of the population but 1 of 4 participants; 白鹤村 half the population, a quarter taking part."""
    _people(cli)
    cli.ok("consultation", "create", "片区规划意见征集", "--area", "试点片区", actor=COORD)
    cli.ok("round", "open", "1", actor=COORD)
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "姓名,村,群体,类别,意见内容\n"
        "刘一,青龙村,普通群众,产业,建议一\n"
        "刘二,青龙村,企业代表,产业,建议二\n"
        "刘三,青龙村,企业代表,产业,建议三\n"
        "刘四,白鹤村,企业代表,产业,建议四\n",
        encoding="utf-8",
    )
    cli.ok("opinion", "import", str(rows), "--consultation", "1", "--channel", "villagers_assembly", actor=EXPERT)
    roster = tmp_path / "人口.csv"
    roster.write_text("名称,人口\n普通群众,800\ncompanies,200\n青龙村,500\n白鹤村,500\n", encoding="utf-8")
    doc = _json(cli.ok("--json", "report", "participation", "1", "--roster", str(roster), actor="孙审计"))
    shown = {(r["kind"], r["name"]): r for r in doc["figures"]["representation"]}
    residents = shown[("group", "residents")]
    assert (residents["population_share"], residents["participant_share"], residents["gap"]) == (80.0, 25.0, -55.0)
    assert residents["under_represented"]
    assert not shown[("group", "companies")]["under_represented"]
    assert shown[("village", "白鹤村")]["gap"] == -25.0 and shown[("village", "白鹤村")]["under_represented"]
    assert not shown[("village", "青龙村")]["under_represented"]
    text = cli.ok("report", "participation", "1", "--roster", str(roster), actor="孙审计").output
    assert "普通群众（群体）参与占比25.0%，低于人口占比80.0%，相差55.0个百分点" in text
    english = cli.ok("--lang", "en", "report", "participation", "1", "--roster", str(roster), actor="孙审计").output
    assert "白鹤村 (village): 25.0% of participants but 50.0% of the population, 25.0 points short" in english
    roster.write_text("普通群众,很多\n", encoding="utf-8")
    refused = cli("report", "participation", "1", "--roster", str(roster), actor="孙审计")
    assert refused.exit_code == 1 and "roster line 1: population '很多'" in refused.output
    out = tmp_path / "参与情况.xlsx"
    cli.ok("report", "participation", "1", "-o", str(out), actor="孙审计")
    from openpyxl import load_workbook

    assert {"总体情况", "参与次数分布", "按参与群体", "按村", "每人参与次数"} <= set(load_workbook(out).sheetnames)


def _workflows_with_custom_groups(tmp_path: Path) -> Path:
    """The bundled workflow, and a copy named village-loop whose groups are its own."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    loop = (WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8")
    (folder / "consultation-loop.yaml").write_text(loop, encoding="utf-8")
    custom = loop.replace("name: consultation-loop", "name: village-loop") + (
        "\ngroups:\n"
        "  - id: growers\n    label: {zh: 种植户, en: Growers}\n"
        "  - id: herders\n    label: {zh: 养殖户, en: Herders}\n"
    )
    (folder / "village-loop.yaml").write_text(custom, encoding="utf-8")
    return folder


def test_a_new_area_starts_from_another_areas_setup(ctx: ServiceContext, tmp_path: Path) -> None:
    """--from copies the workflow version (its categories and groups), auto-close and programme; no opinion."""
    ctx = replace(ctx, workflows_dir=_workflows_with_custom_groups(tmp_path))
    seed(ctx)
    county = programmes.create_programme(ctx, acting=COORD, name="县域片区", title="某县片区国土空间规划")
    first = consultations.create_consultation(
        ctx, acting=COORD, title="一片区", area="一片区", workflow="village-loop", auto_close=True, programme="县域片区"
    )
    rounds.open_round(ctx, acting=COORD, consultation_id=first.id)
    grower = people.add_participant(
        ctx, acting=EXPERT, name="张秀英", village="青龙村", group="种植户", consultation_id=first.id
    )
    assert grower.group == "growers"
    with pytest.raises(ValidationError, match="allowed: 种植户/growers, 养殖户/herders"):
        people.add_participant(
            ctx, acting=EXPERT, name="王", village="青龙村", group="普通群众", consultation_id=first.id
        )
    opinions.submit_opinion(
        ctx, acting=EXPERT, consultation_id=first.id, participant_id=grower.id, category="industry",
        channel="open_air_meeting", text="建议发展乡村旅游",
    )  # fmt: skip
    second = consultations.create_consultation(ctx, acting=COORD, title="二片区", area="二片区", copy_from=first.id)
    assert (second.workflow, second.auto_close, second.programme_id, second.opinions) == (
        "village-loop@1", True, county.id, 0
    )  # fmt: skip
    assert participation.groups_of(ctx, second.id) == participation.groups_of(ctx, first.id)
    assert list(participation.groups_of(ctx, second.id)) == ["growers", "herders"]
    assert consultations.show_consultation(ctx, second.id).opinions == 0
    with sql_uow(ctx) as uow:
        created = uow.session.scalar(
            select(AuditEvent.payload).where(AuditEvent.consultation_id == second.id, AuditEvent.chain_seq == 1)
        )
    assert json.loads(str(created))["copied_from"] == first.id
    assert json.loads(str(created))["programme"] == county.id
    assert all(verify.verify_chain(ctx, c).intact for c in (first.id, second.id))
    with pytest.raises(NotFoundError, match="unknown programme"):
        consultations.create_consultation(ctx, acting=COORD, title="三", area="三", programme="没有这个")


def _two_areas(ctx: ServiceContext) -> tuple[int, int, int]:
    """A programme of two areas: area 1 with 4 opinions (3 industry), 2 rounds, one adopted, one rejected and
    one person taking part twice of 3; area 2 with 1 opinion."""
    setup = seed(ctx)
    county = programmes.create_programme(ctx, acting=COORD, name="县域片区", title="某县片区国土空间规划")
    programmes.add_area(ctx, acting=COORD, programme="县域片区", consultation_id=setup.consultation_id)
    second = consultations.create_consultation(ctx, acting=COORD, title="二片区", area="二片区", copy_from=1).id
    a = people.add_participant(ctx, acting=EXPERT, name="张一", village="青龙村").id
    b = people.add_participant(ctx, acting=EXPERT, name="王二", village="青龙村").id
    items = [
        opinions.NewOpinion(setup.participant_id, "industry", "open_air_meeting", "意见一"),
        opinions.NewOpinion(setup.participant_id, "industry", "open_air_meeting", "意见二"),
        opinions.NewOpinion(a, "industry", "open_air_meeting", "意见三"),
        opinions.NewOpinion(b, "public_services", "open_air_meeting", "意见四"),
    ]
    ids = [v.id for v in opinions.submit_many(ctx, acting=EXPERT, consultation_id=1, items=items)]
    opinions.fire_many(ctx, acting=EXPERT, requests=[opinions.FireRequest(i, "screen", {}) for i in ids])
    opinions.assign(ctx, acting=COORD, opinion_ids=ids, planner=PLANNER)
    rounds.close_round(ctx, acting=COORD, consultation_id=1)
    rounds.open_round(ctx, acting=COORD, consultation_id=1)
    adopt = {Field.TEXT: "已纳入", Field.PLAN_REF: "v2 §3.2"}
    opinions.fire_many(
        ctx,
        acting=PLANNER,
        requests=[
            opinions.FireRequest(ids[0], "adopt", adopt),
            opinions.FireRequest(ids[3], "reject", {Field.REASON: "超出范围"}),
        ],
    )
    rounds.open_round(ctx, acting=COORD, consultation_id=second)
    opinions.submit_opinion(
        ctx, acting=EXPERT, consultation_id=second, participant_id=a, category="environment_roads",
        channel="open_air_meeting", text="建议硬化通组道路",
    )  # fmt: skip
    return county.id, setup.consultation_id, second


def test_the_dashboard_puts_the_areas_side_by_side(ctx: ServiceContext) -> None:
    """Opinions, % by category, rounds run, outcomes and repeat share per area, and all areas together."""
    county, first, second = _two_areas(ctx)
    doc = programmes.programme_report(ctx, "县域片区", "en")
    (table,) = doc.tables
    assert table.headers == (
        "Area", "Consultation", "Opinions", "Industry development (%)", "Public services (%)",
        "Environment, sanitation and rural roads (%)", "Rounds run", "Adopted", "Partly adopted", "Rejected",
        "People", "Took part twice or more (%)",
    )  # fmt: skip
    assert list(table.rows) == [
        ("三产融合片区", first, 4, 75.0, 25.0, 0.0, 2, 1, 0, 1, 3, 33.3),
        ("二片区", second, 1, 0.0, 0.0, 100.0, 1, 0, 0, 0, 1, 0.0),
        ("All areas", None, 5, 60.0, 20.0, 20.0, 3, 1, 0, 1, 4, 25.0),
    ]
    in_chinese = programmes.programme_report(ctx, str(county), "zh").tables[0].rows  # by id too
    assert list(in_chinese) == [*list(table.rows)[:2], ("合计", None, 5, 60.0, 20.0, 20.0, 3, 1, 0, 1, 4, 25.0)]


def test_the_programme_page_is_public_figures_only_and_links_each_area(ctx: ServiceContext) -> None:
    """/programme/1 in zh and en: the areas with links to their pages, the figures, no name anywhere."""
    _county, first, second = _two_areas(ctx)
    web = client(ctx)
    page = web.get("/programme/1")
    assert page.status_code == 200
    html = page.text
    assert "某县片区国土空间规划" in html and "共2个片区" in html
    assert f'href="/c/{first}"' in html and f'href="/c/{second}"' in html
    for name in ("张秀英", "张一", "王二", "张某某", "13812345678"):
        assert name not in html
    english = web.get("/programme/1?lang=en").text
    assert "2 area(s)" in english and "Took part twice or more (%)" in english
    assert 'href="/programme/1"' in web.get(f"/c/{first}").text  # an area's page links its programme
    home = web.get("/?lang=zh").text
    assert 'href="/programme/1"' in home and "各片区规划" in home  # so does the home page
    assert web.get("/programme/9").status_code == 404


def test_the_portal_asks_the_villager_which_group_she_belongs_to(ctx: ServiceContext) -> None:
    """The questionnaire lists the groups (zh and en); the answer is her group, in the audit trail too."""
    setup = seed(ctx)
    web = client(ctx)
    form = web.get(f"/c/{setup.consultation_id}/submit").text
    assert 'name="group" value="respected_villagers"' in form and "乡村乡贤" in form
    assert "Respected villagers" in web.get(f"/c/{setup.consultation_id}/submit?lang=en").text
    _key, data = submit_form(web, setup.consultation_id, group="respected_villagers", name="陈桂兰")
    assert web.post(f"/c/{setup.consultation_id}/submit", data=data).status_code == 303
    with sql_uow(ctx) as uow:
        group = uow.session.scalar(select(Participant.group_id).where(Participant.name == "陈桂兰"))
        logged = uow.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "participant_group_changed")
        )
    assert (group, logged) == ("respected_villagers", 1)
    _key, data = submit_form(web, setup.consultation_id, group="外星人")
    refused = web.post(f"/c/{setup.consultation_id}/submit", data=data)
    assert refused.status_code == 422
    assert participation.participation_summary(ctx, setup.consultation_id).participants == 1  # nothing written


def test_the_demo_has_groups_repeat_participation_and_two_areas(sqlite_ctx: ServiceContext) -> None:
    """Most of the demo's villagers take part more than once; its programme holds the pilot and a second area."""
    from consultflow.services import demo, reports

    made = demo.run_demo(sqlite_ctx)
    s = participation.participation_summary(sqlite_ctx, made.consultation_id)
    assert s.repeat_share > 50
    residents = {g: n for g, n, _r in s.by_group}
    assert residents["residents"] > sum(n for g, n in residents.items() if g != "residents")  # mostly 普通群众
    assert all(n > 0 for n in residents.values())
    adoption = reports.adoption_report(sqlite_ctx, made.consultation_id)
    by_category = adoption.figures["by_category"]
    assert isinstance(by_category, list) and by_category[0]["share"] == 57.0  # the pilot's figures stay
    dashboard = programmes.programme_figures(sqlite_ctx, str(made.programme_id))
    assert [a.consultation_id for a in dashboard.areas] == [made.consultation_id, made.second_area]
    assert dashboard.areas[0].outcomes[0] == ("adopted", 203)


def test_programme_refusals_are_one_line_and_write_nothing(cli: Cli) -> None:
    """A taken or numeric name, an area of another programme, --from with --workflow: refused, exit 1."""
    _people(cli)
    cli.ok("programme", "create", "县域片区", "--title", "某县片区规划", actor=COORD)
    cli.ok("programme", "create", "邻县片区", "--title", "邻县片区规划", actor=COORD)
    taken = cli("programme", "create", "县域片区", "--title", "again", actor=COORD)
    assert taken.exit_code == 1 and "a programme named '县域片区' already exists" in taken.output
    numeric = cli("programme", "create", "2026", "--title", "t", actor=COORD)
    assert numeric.exit_code == 1 and "may not be a number" in numeric.output
    cli.ok("consultation", "create", "一片区", "--area", "一片区", "--programme", "县域片区", actor=COORD)
    other = cli("programme", "add-area", "邻县片区", "1", actor=COORD)
    assert other.exit_code == 1 and "is an area of programme 1 already" in other.output
    assert "nothing changed" in cli.ok("programme", "add-area", "1", "1", actor=COORD).output
    both = cli("consultation", "create", "二", "--area", "二", "--from", "1", "--workflow", "x", actor=COORD)
    assert both.exit_code == 1 and "leave --workflow out" in both.output
    unknown = cli("consultation", "create", "二", "--area", "二", "--from", "9", actor=COORD)
    assert unknown.exit_code == 1 and "unknown consultation 9" in unknown.output
    listed = _json(cli.ok("--json", "programme", "list", actor="孙审计"))
    assert [(p["name"], p["areas"]) for p in listed] == [("县域片区", 1), ("邻县片区", 0)]
    assert len(_json(cli.ok("--json", "consultation", "list", actor="孙审计"))) == 1
    planner = cli("programme", "create", "x片区", "--title", "t", actor=PLANNER)
    assert planner.exit_code == 1


def test_verify_names_a_programme_edited_in_the_live_table(ctx: ServiceContext) -> None:
    """A consultation moved to another programme behind consultflow's back breaks verify, naming the programme."""
    _county, first, second = _two_areas(ctx)
    assert verify.verify_chain(ctx, first).intact and verify.verify_chain(ctx, second).intact
    other = programmes.create_programme(ctx, acting=COORD, name="邻县片区", title="邻县").id
    with engine_of(ctx).begin() as conn:
        conn.execute(text("UPDATE consultation SET programme_id = :p WHERE id = :c"), {"p": other, "c": second})
    report = verify.verify_chain(ctx, second)
    assert not report.intact
    assert report.broken is not None and "programme" in report.broken.problem
