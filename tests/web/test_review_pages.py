"""The review of the draft plan on the portal and through the staff API, on both backends (issue 26).

A villager rates clauses on her phone (CSRF, the submission limit, zh/en); a comment comes back
through the loop linked to its clause and is followed with its receipt code; the results page
shows figures only; refusals write nothing.
"""

from __future__ import annotations

import re
from dataclasses import replace

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from consultflow.domain.plan import parse_markdown
from consultflow.domain.vocabulary import Field
from consultflow.services import accounts, opinions, plans, rounds
from consultflow.services.context import ServiceContext
from consultflow.store.models import AuditEvent, Opinion, OpinionClause, PlanClause, PlanRating
from tests.conftest import sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, seed, snapshot
from tests.web.portal import client, hidden

DRAFT = """# 片区规划（征求意见稿）

## 一、交通设施

1. 新建片区环线公路。
2. 各村通组道路全部硬化。

## 二、产业联农带农

1. 在金田村布局生猪种业园区。
"""
PASSWORD = "correct horse battery"


def _review(ctx: ServiceContext) -> None:
    seed(ctx, open_first_round=False)
    plans.import_plan(ctx, acting=PLANNER, consultation_id=1, clauses=parse_markdown(DRAFT), label="征求意见稿")
    plans.open_review(ctx, acting=COORD, consultation_id=1)


def _form(web: TestClient, **fields: str) -> dict[str, str]:
    page = web.get("/c/1/review")
    assert page.status_code == 200, page.text
    return {"csrf": hidden(page.text, "csrf"), "form_key": hidden(page.text, "form_key"), "village": "青龙村", **fields}


def _ratings(ctx: ServiceContext) -> list[tuple[str, str, int | None]]:
    with sql_uow(ctx) as uow:
        rows = uow.session.execute(
            select(PlanClause.number, PlanRating.rating, PlanRating.opinion_id)
            .join(PlanClause, PlanClause.id == PlanRating.clause_id)
            .order_by(PlanRating.id)
        )
        return [(n, r, o) for n, r, o in rows]


def _cells(html: str, clause: str) -> list[str]:
    """A clause's row of the results table, after the clause itself."""
    row = re.search(rf'<tr id="result-{re.escape(clause)}">(.*?)</tr>', html, re.DOTALL)
    assert row is not None, f"no row for clause {clause}"
    return list(re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1)))[1:]


def test_the_review_page_lists_clauses_with_one_control_each_in_both_languages(ctx: ServiceContext) -> None:
    """The review page lists every clause with three ratings and a comment box, in Chinese or English."""
    _review(ctx)
    web = client(ctx)
    page = web.get("/c/1/review")
    assert "规划成果评审（大众点评）" in page.text and "规划草案第 1 版" in page.text
    for number in ("1.1", "1.2", "2.1"):
        assert page.text.count(f'name="rate_{number}"') == 3  # 满意 / 基本满意 / 不满意
        assert f'name="comment_{number}"' in page.text
    assert "基本满意" in page.text and 'name="viewport"' in page.text
    english = web.get("/c/1/review?lang=en")
    assert "Review the draft plan" in english.text and "Mostly satisfied" in english.text
    assert "参与规划成果评审" in web.get("/c/1?lang=zh").text  # the consultation page links to it


def test_a_villager_rates_comments_and_follows_her_comment_through_the_loop(ctx: ServiceContext) -> None:
    """A villager rates clauses; her comment becomes an opinion she follows by code; the results name nobody."""
    _review(ctx)
    web = client(ctx)
    data = _form(
        web,
        **{"rate_1.1": "satisfied", "rate_2.1": "not_satisfied", "comment_2.1": "园区要优先招本村人", "name": "张秀英"},
    )
    answer = web.post("/c/1/review", data=data)
    assert answer.status_code == 200, answer.text
    assert "已记录您对 2 条条款的评价" in answer.text
    code = re.search(r'id="receipt-code-2\.1">([0-9-]+)<', answer.text)
    assert code, answer.text
    ((_c1, r1, none), (c2, r2, opinion_id)) = _ratings(ctx)
    assert (r1, none, c2, r2) == ("satisfied", None, "2.1", "not_satisfied") and opinion_id is not None
    with sql_uow(ctx) as uow:
        op = uow.session.get(Opinion, opinion_id)
        assert op is not None and (op.text, op.channel, op.state) == (
            "园区要优先招本村人",
            "online_survey",
            "submitted",
        )
        linked = uow.session.scalars(
            select(PlanClause.number).join(OpinionClause).where(OpinionClause.opinion_id == opinion_id)
        ).all()
        assert linked == ["2.1"]
        rated = uow.session.scalars(select(AuditEvent).where(AuditEvent.kind == "clause_rated")).all()
        assert len(rated) == 2 and all(e.role == "participant" and '"via":"online_survey"' in e.payload for e in rated)
    # the planning team answers; she reads it with her code and replies
    opinions.assign(ctx, acting=COORD, opinion_ids=[opinion_id], planner=PLANNER)
    opinions.fire(ctx, acting=PLANNER, opinion_id=opinion_id, trigger="screen", fields={})
    opinions.fire(
        ctx, acting=PLANNER, opinion_id=opinion_id, trigger="give_feedback", fields={Field.TEXT: "已在送审稿中调整"}
    )
    other = client(ctx, address="192.0.2.8")
    found = other.post("/my", data={"csrf": hidden(other.get("/my").text, "csrf"), "code": code.group(1)})
    assert found.status_code == 303
    timeline = other.get("/my")
    assert "园区要优先招本村人" in timeline.text and "已在送审稿中调整" in timeline.text
    reply = other.post("/my/reply", data={"csrf": hidden(timeline.text, "csrf"), "stance": "agree", "text": ""})
    assert reply.status_code == 303
    with sql_uow(ctx) as uow:
        assert uow.session.get(Opinion, opinion_id).state == "under_review"  # type: ignore[union-attr]
    # the results page: figures counted by hand, no names
    results = web.get("/c/1/review/results")
    # 满意, 基本满意, 不满意, share satisfied, comments
    assert _cells(results.text, "2.1") == ["0", "0", "1", "0.0%", "1"]
    assert _cells(results.text, "1.1") == ["1", "0", "0", "100.0%", "0"]
    assert _cells(results.text, "1.2") == ["0", "0", "0", "—", "0"]
    assert "张秀英" not in results.text and "张某某" not in results.text


def test_the_same_form_twice_records_once_and_a_form_without_csrf_nothing(ctx: ServiceContext) -> None:
    """A review form posted twice records once; one without its CSRF token, or from elsewhere, records nothing."""
    _review(ctx)
    web = client(ctx)
    data = _form(web, **{"rate_1.2": "mostly", "comment_1.2": "路面还要加宽"})
    assert web.post("/c/1/review", data=data).status_code == 200
    before, ratings = snapshot(ctx), _ratings(ctx)
    again = web.post("/c/1/review", data=data)
    assert again.status_code == 200 and "这份评价表已经提交过" in again.text
    assert snapshot(ctx) == before and _ratings(ctx) == ratings
    fresh = _form(web, **{"rate_1.1": "satisfied"})
    for token in ("", "forged"):
        refused = web.post("/c/1/review", data={**fresh, "csrf": token})
        assert refused.status_code == 403
    assert client(ctx, address="192.0.2.9").post("/c/1/review", data=fresh).status_code == 403  # another browser
    assert snapshot(ctx) == before and _ratings(ctx) == ratings


def test_refusals_are_in_the_pages_words_and_write_nothing(ctx: ServiceContext) -> None:
    """A review form with an unknown clause, bad rating, no rating or too long a comment is refused in plain words."""
    _review(ctx)
    web = client(ctx)
    before = snapshot(ctx)
    cases = [
        ({"rate_9.9": "satisfied", "rate_1.1": "satisfied"}, 404, "评价中有本版草案没有的条款"),
        ({"rate_1.1": "great", "comment_1.1": "好"}, 422, "评价只能是：满意、基本满意或不满意"),
        ({}, 422, "请至少评价一条条款"),
        ({"rate_1.1": "satisfied", "comment_1.1": "长" * 2001}, 422, "每条意见最多 2000 个字"),
        ({"rate_1.1": "satisfied", "comment_1.2": "没选评价的意见"}, 422, "您对条款 1.2 写了意见，请同时选择评价"),
    ]
    for fields, status, said in cases:
        answer = web.post("/c/1/review", data=_form(web, **fields))
        assert answer.status_code == status, answer.text
        assert said in answer.text
    assert snapshot(ctx) == before and _ratings(ctx) == []
    with sql_uow(ctx) as uow:  # nobody was registered by a refused form
        assert uow.session.scalar(select(func.count()).select_from(PlanRating)) == 0
    data = _form(web, **{"rate_1.1": "satisfied"})
    rounds.close_round(ctx, acting=COORD, consultation_id=1)
    closed = web.post("/c/1/review", data=data)
    assert closed.status_code == 409 and "目前没有正在进行的征求意见轮次" in closed.text
    assert web.get("/c/1/review").status_code == 409
    assert snapshot(ctx)["opinions"] == before["opinions"] and _ratings(ctx) == []
    assert web.get("/c/1/review/results").status_code == 200  # the results stay readable


def test_a_returning_villager_rates_each_clause_once(ctx: ServiceContext) -> None:
    """With her name and contact she is the participant she was: a clause she rated is refused, in her words."""
    _review(ctx)
    web = client(ctx)
    me = {"name": "王桂兰", "contact": "13900001111", "consent": "yes"}
    assert web.post("/c/1/review", data=_form(web, **me, **{"rate_1.1": "satisfied"})).status_code == 200
    before = _ratings(ctx)
    again = web.post("/c/1/review", data=_form(web, **me, **{"rate_1.1": "not_satisfied", "rate_1.2": "mostly"}))
    assert again.status_code == 422 and "您在本次评审中已经评价过条款 1.1" in again.text
    assert _ratings(ctx) == before
    assert web.post("/c/1/review", data=_form(web, **me, **{"rate_1.2": "mostly"})).status_code == 200
    assert [r for _c, r, _o in _ratings(ctx)] == ["satisfied", "mostly"]


def test_the_submission_limit_counts_review_forms(sqlite_ctx: ServiceContext) -> None:
    """Review forms count against the same submission limit as questionnaires."""
    _review(sqlite_ctx)
    web = client(sqlite_ctx, limits="submits=1/3600")
    assert web.post("/c/1/review", data=_form(web, **{"rate_1.1": "satisfied"})).status_code == 200
    stopped = web.post("/c/1/review", data=_form(web, **{"rate_1.2": "satisfied"}))
    assert stopped.status_code == 429
    assert len(_ratings(sqlite_ctx)) == 1


def _signed_in(ctx: ServiceContext, name: str) -> tuple[TestClient, dict[str, str]]:
    accounts.set_password(ctx, acting=None, name=name, password=PASSWORD)
    web = client(replace(ctx, acting_proven=True))
    answer = web.post("/api/v1/auth/signin", json={"name": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return web, {"Authorization": f"Bearer {answer.json()['token']}"}


def test_the_staff_api_records_ratings_and_reads_results(ctx: ServiceContext) -> None:
    """Through the staff API an expert records ratings from an assembly and reads results; bad ones write nothing."""
    _review(ctx)
    web, bearer = _signed_in(ctx, EXPERT)
    body = {
        "consultation_id": 1,
        "participant_id": 1,
        "ratings": [
            {"clause": "1.1", "rating": "基本满意"},
            {"clause": "2.1", "rating": "不满意", "comment": "用地太多"},
        ],
    }
    answer = web.post("/api/v1/commands/review.record", json=body, headers=bearer)
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert [(r["clause"], r["rating"]) for r in done["ratings"]] == [("1.1", "mostly"), ("2.1", "not_satisfied")]
    opinion_id = done["ratings"][1]["opinion_id"]
    linked = web.post("/api/v1/commands/plan.clauses-of", json={"opinion_id": opinion_id}, headers=bearer).json()
    assert [c["number"] for c in linked["clauses"]] == ["2.1"]
    before = snapshot(ctx)
    bad = {**body, "ratings": [{"clause": "1.2", "rating": "fine"}]}
    refused = web.post("/api/v1/commands/review.record", json=bad, headers=bearer)
    assert refused.status_code == 422 and "unknown rating 'fine'" in refused.json()["error"]
    unknown = {**body, "ratings": [{"clause": "7.7", "rating": "满意"}]}
    assert web.post("/api/v1/commands/review.record", json=unknown, headers=bearer).status_code == 404
    assert snapshot(ctx) == before
    results = web.post("/api/v1/commands/review.results", json={"consultation_id": 1}, headers=bearer).json()
    by_clause = {c["number"]: c for c in results["clauses"]}
    assert (by_clause["1.1"]["mostly"], by_clause["2.1"]["not_satisfied"], by_clause["2.1"]["comments"]) == (1, 1, 1)
    planner_web, planner = _signed_in(ctx, PLANNER)
    diff = planner_web.post(
        "/api/v1/commands/plan.diff", json={"consultation_id": 1, "from_version": 1, "to_version": 1}, headers=planner
    )
    assert diff.status_code == 200 and diff.json()["lines"] == []
