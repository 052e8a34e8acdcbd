"""The portal's pages through FastAPI's test client, on both backends: the villager's loop and every refusal."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from consultflow.domain.identity import PORTAL_ACTOR
from consultflow.domain.vocabulary import Field
from consultflow.services import opinions, rounds
from consultflow.services.context import ServiceContext
from consultflow.store.models import AuditEvent, Opinion, Participant
from consultflow.web.security import CSP
from tests.conftest import sql_uow
from tests.helpers import COORD, PLANNER, assert_loop_invariants, seed, snapshot
from tests.web.portal import client, hidden, shown_code, submit_form


def _answer(ctx: ServiceContext, opinion_id: int, text: str = "已纳入产业用地布局研究") -> None:
    opinions.assign(ctx, acting=COORD, opinion_ids=[opinion_id], planner=PLANNER)
    opinions.fire(ctx, acting=PLANNER, opinion_id=opinion_id, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=opinion_id, trigger="give_feedback", fields={Field.TEXT: text})


def _only_opinion(ctx: ServiceContext) -> Opinion:
    with sql_uow(ctx) as uow:
        (row,) = uow.session.scalars(select(Opinion)).all()
        uow.session.expunge(row)
        return row


def test_public_pages_in_chinese_and_english(ctx: ServiceContext) -> None:
    """The public pages answer in Chinese or, once asked, in English, kept by a cookie; the health check says ok."""
    setup = seed(ctx)
    web = client(ctx)
    home = web.get("/")
    assert home.status_code == 200
    assert "片区规划意见征集" in home.text and "正在征求意见的规划" in home.text
    page = web.get(f"/c/{setup.consultation_id}")
    assert "第1轮" in page.text and "提交意见" in page.text and "意见采纳情况" in page.text
    english = web.get(f"/c/{setup.consultation_id}?lang=en")
    assert "Round 1" in english.text and "Give your opinion" in english.text
    assert "cf_lang=en" in english.headers["set-cookie"]
    assert "Give your opinion" in web.get(f"/c/{setup.consultation_id}/submit").text  # the cookie keeps English
    for path in ("account", "account?round=1", "plan"):
        assert web.get(f"/c/{setup.consultation_id}/{path}").status_code == 200
    assert web.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/", "/c/1", "/my", "/static/site.css", "/c/99", "/api/v1/consultations", "/nope"])
def test_every_answer_carries_the_security_headers(sqlite_ctx: ServiceContext, path: str) -> None:
    """Every answer, page, file, API call or 404, carries the security headers, and no script runs on the portal."""
    seed(sqlite_ctx)
    response = client(sqlite_ctx).get(path)
    assert response.headers["content-security-policy"] == CSP
    assert "script-src" not in CSP and "default-src 'none'" in CSP  # no script runs on the portal at all
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_villager_submits_reads_feedback_replies_and_sees_the_outcome(ctx: ServiceContext) -> None:
    """A villager submits, reads feedback with her code, replies and sees the outcome; her steps are on record."""
    setup = seed(ctx)
    web = client(ctx)
    _key, data = submit_form(web, setup.consultation_id)
    posted = web.post(f"/c/{setup.consultation_id}/submit", data=data)
    assert posted.status_code == 303 and posted.headers["location"] == "/my"  # the code is never in a URL
    page = web.get("/my")
    code = shown_code(page.text)
    assert re.fullmatch(r"\d{5}(-\d{5}){4}", code)
    assert "建议在村口建设农产品冷链仓储点" in page.text and "已收集" in page.text
    assert "回应反馈" not in page.text  # nothing to answer yet
    row = _only_opinion(ctx)
    assert row.channel == "online_survey" and row.receipt_hash is not None and code not in str(row.receipt_hash)

    _answer(ctx, row.id)
    page = web.get("/my")
    assert "已纳入产业用地布局研究" in page.text and "回应反馈（再参与）" in page.text
    replied = web.post(
        "/my/reply", data={"csrf": hidden(page.text, "csrf"), "stance": "revise", "text": "请同时考虑停车"}
    )
    assert replied.status_code == 303
    page = web.get("/my")
    assert "您的回应已记录" in page.text and "请同时考虑停车" in page.text and "修改补充" in page.text

    rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    fields = {Field.TEXT: "采纳，冷链仓储点落在村口", Field.PLAN_REF: "规划第3.2条"}
    opinions.fire(ctx, acting=PLANNER, opinion_id=row.id, trigger="adopt", fields=fields)
    page = web.get("/my?lang=en")
    assert 'id="outcome">Adopted<' in page.text and 'id="plan-ref">规划第3.2条<' in page.text
    assert "Round 1" in page.text and "Round 2" in page.text

    with sql_uow(ctx) as uow:
        events = uow.session.scalars(select(AuditEvent).where(AuditEvent.opinion_id == row.id)).all()
    by_web = [e for e in events if e.actor == PORTAL_ACTOR]
    assert [e.trigger for e in by_web] == ["submit", "reparticipate"]
    assert all(json.loads(e.payload)["via"] == "online_survey" and e.role == "participant" for e in by_web)
    assert_loop_invariants(ctx, setup.consultation_id)


def test_the_same_form_posted_twice_records_one_opinion(ctx: ServiceContext) -> None:
    """A questionnaire posted twice (a double tap, a retry) records one opinion and says it was sent already."""
    setup = seed(ctx)
    web = client(ctx)
    _key, data = submit_form(web, setup.consultation_id)
    assert web.post(f"/c/{setup.consultation_id}/submit", data=data).status_code == 303
    again = web.post(f"/c/{setup.consultation_id}/submit", data=data)
    assert again.status_code == 303
    assert "这份表单已经提交过" in web.get("/my").text
    with sql_uow(ctx) as uow:
        assert len(uow.session.scalars(select(Opinion)).all()) == 1


def test_a_form_without_its_csrf_token_writes_nothing(ctx: ServiceContext) -> None:
    """A questionnaire without its own CSRF token, or from another browser, is refused and writes nothing."""
    setup = seed(ctx)
    web = client(ctx)
    _key, data = submit_form(web, setup.consultation_id)
    before = snapshot(ctx)
    for token in ("", "forged-token"):
        refused = web.post(f"/c/{setup.consultation_id}/submit", data={**data, "csrf": token})
        assert refused.status_code in (403, 422) and "表单已过期" in refused.text
    assert snapshot(ctx) == before
    stranger = client(ctx)  # another browser: no cookie to match
    assert stranger.post(f"/c/{setup.consultation_id}/submit", data=data).status_code in (403, 422)
    assert snapshot(ctx) == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": "  "}, "请填写“意见内容”"),
        ({"village": ""}, "请填写“所在村/片区”"),
        ({"category": "weather"}, "请从列出的类别中选择一项"),
        ({"contact": "13812345678"}, "只有勾选同意后才能保存联系方式"),
        ({"contact": "call me", "consent": "yes"}, "联系方式请填写一个手机号码"),
        ({"text": "x" * 5001}, "最多 5000 个字"),
        ({"text": "bell\x07"}, "特殊字符"),
    ],
)
def test_bad_questionnaires_are_refused_in_the_pages_language_and_nothing_written(
    sqlite_ctx: ServiceContext, fields: dict[str, str], message: str
) -> None:
    """A questionnaire with a missing, wrong or too long field is refused in the page's words; nothing written."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx)
    _key, data = submit_form(web, setup.consultation_id, **fields)
    before = snapshot(sqlite_ctx)
    with sql_uow(sqlite_ctx) as uow:
        people_before = len(uow.session.scalars(select(Participant)).all())
    refused = web.post(f"/c/{setup.consultation_id}/submit", data=data)
    assert refused.status_code == 422
    assert message in refused.text
    assert snapshot(sqlite_ctx) == before
    with sql_uow(sqlite_ctx) as uow:
        assert len(uow.session.scalars(select(Participant)).all()) == people_before


def test_no_open_round_means_no_questionnaire(ctx: ServiceContext) -> None:
    """With no round open there is no questionnaire, and a post is refused in plain words with no CLI hint."""
    setup = seed(ctx, open_first_round=False)
    web = client(ctx)
    page = web.get(f"/c/{setup.consultation_id}/submit")
    assert "目前没有正在进行的征求意见轮次" in page.text and 'name="text"' not in page.text
    refused = web.post(
        f"/c/{setup.consultation_id}/submit",
        data={"csrf": hidden(web.get("/my").text, "csrf"), "category": "industry", "text": "x", "village": "v"},
    )
    assert refused.status_code == 409 and "目前没有正在进行的征求意见轮次，暂时不能提交" in refused.text
    assert "consultflow round open" not in refused.text  # no CLI hint for villagers


def test_contact_is_kept_with_consent_and_never_shown_publicly(ctx: ServiceContext) -> None:
    """A contact given with consent is kept, and neither it nor the name shows on a public page or in the log."""
    setup = seed(ctx)
    web = client(ctx)
    _key, data = submit_form(web, setup.consultation_id, name="王小明", contact="13900001111", consent="yes")
    with capture_logs() as logs:
        assert web.post(f"/c/{setup.consultation_id}/submit", data=data).status_code == 303
    with sql_uow(ctx) as uow:
        person = uow.session.scalars(select(Participant).where(Participant.name == "王小明")).one()
        assert person.contact == "13900001111"
    public = "".join(web.get(f"/c/{setup.consultation_id}/{p}").text for p in ("account", "plan", ""))
    assert "13900001111" not in public and "王小明" not in public
    assert "13900001111" not in str(logs) and "王小明" not in str(logs)


def test_a_guessed_code_gets_nothing_and_guessing_is_stopped(ctx: ServiceContext) -> None:
    """Guessed codes show nothing and are logged without codes; past the limit even the right code is refused."""
    setup = seed(ctx)
    web = client(ctx, limits="lookups=3/900")
    _key, data = submit_form(web, setup.consultation_id)
    web.post(f"/c/{setup.consultation_id}/submit", data=data)
    real = shown_code(web.get("/my").text)
    guesser = client(ctx, limits="lookups=3/900", address="192.0.2.7")  # the villager's own lookups are not his
    token = hidden(guesser.get("/my").text, "csrf")
    with capture_logs() as logs:
        for guess in (
            "00000-00000-00000-00000-00001",
            "12345-67890-12345-67890-12345",
            "99999-99999-99999-99999-99999",
        ):
            answer = guesser.post("/my", data={"csrf": token, "code": guess})
            assert answer.status_code == 404 and "建议在村口" not in answer.text
    assert [e["event"] for e in logs if e["event"] == "receipt_refused"] == ["receipt_refused"] * 3
    assert all(real.replace("-", "") not in str(e) for e in logs)
    stopped = guesser.post("/my", data={"csrf": token, "code": real})  # even the right code, once past the limit
    assert stopped.status_code == 429 and "cf_receipt" not in stopped.headers.get("set-cookie", "")
    assert "建议在村口" not in stopped.text


def test_a_receipt_code_typed_with_spaces_or_full_width_digits_works(sqlite_ctx: ServiceContext) -> None:
    """A receipt code typed with spaces or full-width digits finds the villager's opinion."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx)
    _key, data = submit_form(web, setup.consultation_id)
    web.post(f"/c/{setup.consultation_id}/submit", data=data)
    code = shown_code(web.get("/my").text)
    other = client(sqlite_ctx)
    token = hidden(other.get("/my").text, "csrf")
    typed = code.replace("-", " ").translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    found = other.post("/my", data={"csrf": token, "code": typed})
    assert found.status_code == 303
    assert "建议在村口建设农产品冷链仓储点" in other.get("/my").text


def test_per_code_limit(sqlite_ctx: ServiceContext) -> None:
    """One receipt code can be looked up only so often: past its limit the lookup is refused with 429."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx, limits="code=4/3600")  # every lookup counts: the two pages below, then two posts
    _key, data = submit_form(web, setup.consultation_id)
    web.post(f"/c/{setup.consultation_id}/submit", data=data)
    code = shown_code(web.get("/my").text)
    token = hidden(web.get("/my").text, "csrf")
    assert [web.post("/my", data={"csrf": token, "code": code}).status_code for _ in range(3)] == [303, 303, 429]


def test_withdraw_and_replies_the_state_does_not_allow(ctx: ServiceContext) -> None:
    """A reply the opinion's state does not allow is refused, writing nothing; she can withdraw, then leave."""
    setup = seed(ctx)
    web = client(ctx)
    _key, data = submit_form(web, setup.consultation_id)
    web.post(f"/c/{setup.consultation_id}/submit", data=data)
    page = web.get("/my")
    token = hidden(page.text, "csrf")
    before = snapshot(ctx)
    early = web.post("/my/reply", data={"csrf": token, "stance": "agree", "text": ""})
    assert early.status_code == 409 and "这条意见现在不能回应" in early.text
    assert snapshot(ctx) == before
    gone = web.post("/my/withdraw", data={"csrf": token, "reason": "已自行解决"})
    assert gone.status_code == 303
    page = web.get("/my")
    assert (
        "意见已撤回" in page.text and 'id="outcome">已撤回<' in page.text and 'action="/my/withdraw"' not in page.text
    )
    assert _only_opinion(ctx).outcome == "withdrawn"
    left = web.post("/my/leave", data={"csrf": token})
    assert left.status_code == 303
    assert 'name="code"' in web.get("/my").text
    assert_loop_invariants(ctx, setup.consultation_id)


def test_an_internal_error_is_one_line_and_the_traceback_stays_in_the_log(
    sqlite_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """An internal error shows the villager one plain line (the API its kind and exit code), never the traceback."""
    monkeypatch.setenv("CONSULTFLOW_ERROR_LOG", str(tmp_path) + "/errors.log")
    seed(sqlite_ctx)

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("boom in a view")

    monkeypatch.setattr("consultflow.services.consultations.list_consultations", broken)
    page = client(sqlite_ctx).get("/")
    assert page.status_code == 500 and "系统出现故障，已记录" in page.text and "Traceback" not in page.text
    assert "RuntimeError" not in page.text and "boom" not in page.text
    api = client(sqlite_ctx).get("/api/v1/consultations")
    assert api.status_code == 500 and api.json()["exit_code"] == 70 and "boom" not in api.text
