"""Built for a phone: the account and the plan a page at a time, tables as cards, answers compressed."""

from __future__ import annotations

import gzip
import re

import pytest

from consultflow.domain.vocabulary import Field
from consultflow.services import opinions
from consultflow.services.context import ServiceContext
from consultflow.services.opinions import NewOpinion
from consultflow.web.paging import PAGE_ROWS
from tests.helpers import COORD, EXPERT, PLANNER, seed
from tests.web.portal import client


def _many(ctx: ServiceContext, industry: int = 70, roads: int = 20) -> int:
    """A consultation with `industry` opinions on industry and `roads` on roads; three adopted into the plan."""
    setup = seed(ctx)
    items = [
        NewOpinion(setup.participant_id, "industry", "villagers_assembly", f"产业意见第{n}条") for n in range(industry)
    ]
    items += [
        NewOpinion(setup.participant_id, "environment_roads", "villagers_assembly", f"道路意见第{n}条")
        for n in range(roads)
    ]
    views = opinions.submit_many(ctx, acting=EXPERT, consultation_id=setup.consultation_id, items=items)
    opinions.assign(ctx, acting=COORD, opinion_ids=[v.id for v in views[:3]], planner=PLANNER)
    for v in views[:3]:
        opinions.fire(ctx, acting=PLANNER, opinion_id=v.id, trigger="screen", fields={})
        opinions.fire(ctx, acting=PLANNER, opinion_id=v.id, trigger="give_feedback", fields={Field.TEXT: "拟采纳"})
    return setup.consultation_id


def _ids(page: str) -> list[int]:
    """The opinion numbers listed on a page, in order (each row's first cell)."""
    return [int(n) for n in re.findall(r"<tr><td data-label=\"[^\"]*\">(\d+)</td>", page)]


def test_the_account_is_paged_with_linkable_prev_and_next(sqlite_ctx: ServiceContext) -> None:
    """50 opinions a page across the categories; prev and next keep the round and category in the address."""
    cid = _many(sqlite_ctx)
    web = client(sqlite_ctx)
    first = web.get(f"/c/{cid}/account")
    assert first.status_code == 200
    assert len(_ids(first.text)) == PAGE_ROWS
    assert f'rel="next" href="/c/{cid}/account?page=2"' in first.text and 'rel="prev"' not in first.text
    second = web.get(f"/c/{cid}/account?page=2")
    assert len(_ids(second.text)) == 40 and 'rel="next"' not in second.text
    assert f'rel="prev" href="/c/{cid}/account"' in second.text
    assert "（续）" in second.text  # industry goes on from page 1
    assert set(_ids(first.text)).isdisjoint(_ids(second.text))
    assert len(set(_ids(first.text) + _ids(second.text))) == 90

    only = web.get(f"/c/{cid}/account?category=environment_roads")
    assert len(_ids(only.text)) == 20 and "道路意见" in only.text and "产业意见" not in only.text
    industry = web.get(f"/c/{cid}/account?category=industry")
    assert len(_ids(industry.text)) == PAGE_ROWS
    assert f'rel="next" href="/c/{cid}/account?category=industry&amp;page=2"' in industry.text
    assert len(_ids(web.get(f"/c/{cid}/account?category=industry&page=2").text)) == 20
    by_round = web.get(f"/c/{cid}/account?round=1&category=industry")
    assert by_round.status_code == 200
    assert f'href="/c/{cid}/account?round=1"' in by_round.text  # every category of round 1
    assert f'href="/c/{cid}/account?round=1&amp;category=environment_roads"' in by_round.text
    assert f'href="/c/{cid}/account?category=industry"' in by_round.text  # every round of the category
    assert 'aria-current="page">第1轮<' in by_round.text


@pytest.mark.parametrize("query", ["page=0", "page=3", "page=999", "page=x", "category=weather"])
def test_pages_that_do_not_exist_are_404(sqlite_ctx: ServiceContext, query: str) -> None:
    """A page past the last, an unknown category, a page that is not a number: 404 in the page's language."""
    cid = _many(sqlite_ctx)
    answer = client(sqlite_ctx).get(f"/c/{cid}/account?{query}")
    assert answer.status_code == 404 and "页面不存在" in answer.text


def test_the_plan_is_paged(sqlite_ctx: ServiceContext) -> None:
    """The plan table: its first page and no next page when it all fits."""
    cid = _many(sqlite_ctx, industry=5, roads=0)
    web = client(sqlite_ctx)
    page = web.get(f"/c/{cid}/plan")
    assert page.status_code == 200 and 'rel="next"' not in page.text
    assert web.get(f"/c/{cid}/plan?page=2").status_code == 404


def test_tables_are_cards_on_a_phone_and_nothing_scrolls_sideways(sqlite_ctx: ServiceContext) -> None:
    """Each cell names its column (the phone's card shows it); no sideways-scrolling region is left."""
    cid = _many(sqlite_ctx, industry=3, roads=1)
    web = client(sqlite_ctx)
    for path in (f"/c/{cid}", f"/c/{cid}/account", f"/c/{cid}/plan", f"/c/{cid}?lang=en"):
        text = web.get(path).text
        assert 'class="scroll"' not in text
        assert "<td>" not in text  # every cell carries data-label
    css = web.get("/static/site.css").text
    assert "td::before{content:attr(data-label)" in css and "@media (max-width:40rem)" in css
    assert "min-height:44px" in css


def test_answers_are_compressed_when_the_browser_accepts_gzip(sqlite_ctx: ServiceContext) -> None:
    """Pages, the stylesheet and the API come gzip-compressed when asked, plain otherwise."""
    cid = _many(sqlite_ctx)
    web = client(sqlite_ctx)
    for path in (f"/c/{cid}/account", "/static/site.css", f"/api/v1/consultations/{cid}/account"):
        packed = web.get(path, headers={"Accept-Encoding": "gzip"})
        assert packed.status_code == 200 and packed.headers.get("content-encoding") == "gzip", path
        assert "accept-encoding" in packed.headers.get("vary", "").lower()
    plain = web.get(f"/c/{cid}/account", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    raw = web.get(f"/c/{cid}/account", headers={"Accept-Encoding": "gzip"})
    assert len(gzip.compress(raw.content)) < len(raw.content) / 3  # the body is the page (the client unpacks it)
    assert "产业意见" in raw.text
