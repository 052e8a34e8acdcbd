"""Every refusal a villager can meet on the portal, in Chinese and English, from the message catalogue.

Each path is driven through the pages; the page must carry the catalogue's message in the page's
language and no English sentence from the services (nor a CLI hint) in Chinese.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consultflow.domain import messages
from consultflow.domain.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    RoundStateError,
    ValidationError,
)
from consultflow.domain.vocabulary import Field
from consultflow.services import opinions
from consultflow.services.context import ServiceContext
from consultflow.store.models import Opinion
from tests.conftest import sql_uow
from tests.helpers import COORD, PLANNER, seed
from tests.web.portal import client, hidden, shown_code, submit_form

# Three English words in a row: a service's sentence, not a label such as "PNG" or a code's digits.
ENGLISH = re.compile(r"[A-Za-z][A-Za-z'’]*(?:[ ,;:()]+[A-Za-z'’]+){2,}")


def main_text(page: Any) -> str:
    """The visible text of the page's <main> (the language switch and footer stay out)."""
    found = re.search(r"<main>(.*)</main>", page.text, re.DOTALL)
    assert found, page.text[:500]
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


def assert_chinese(page: Any, key: str, **values: object) -> None:
    """The page says the catalogue's `key` in Chinese, and nothing in English."""
    text = main_text(page)
    wanted = messages.say(messages.Said(key, dict(values)), "zh")
    assert wanted in text, f"{wanted!r} not in {text!r}"
    assert not ENGLISH.search(text), f"English on a Chinese page: {ENGLISH.search(text)!r} in {text!r}"
    assert "consultflow" not in text  # no CLI hint


def _feedback(ctx: ServiceContext) -> TestClient:
    """A villager's browser holding the code of an opinion whose feedback awaits an answer."""
    setup = seed(ctx)
    web = client(ctx)
    _key, data = submit_form(web, setup.consultation_id)
    web.post(f"/c/{setup.consultation_id}/submit", data=data)
    shown_code(web.get("/my").text)
    with sql_uow(ctx) as uow:
        (opinion_id,) = uow.session.scalars(select(Opinion.id)).all()
    opinions.assign(ctx, acting=COORD, opinion_ids=[opinion_id], planner=PLANNER)
    opinions.fire(ctx, acting=PLANNER, opinion_id=opinion_id, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=opinion_id, trigger="give_feedback", fields={Field.TEXT: "拟采纳"})
    return web


@pytest.mark.parametrize(
    ("fields", "status", "key", "values"),
    [
        ({"text": "  "}, 422, "required", {"field": "opinion text"}),
        ({"village": ""}, 422, "required", {"field": "village"}),
        ({"text": "x" * 5001}, 422, "too_long", {"field": "opinion text", "n": 5001, "limit": 5000}),
        ({"village": "村" * 121}, 422, "too_long", {"field": "village", "n": 121, "limit": 120}),
        ({"text": "bell\x07"}, 422, "control_character", {"field": "opinion text"}),
        ({"category": "weather"}, 422, "category_unknown", {}),
        ({"contact": "13812345678"}, 422, "consent_needed", {}),
        ({"contact": "call me", "consent": "yes"}, 422, "contact_invalid", {}),
        ({"csrf": "forged"}, 403, "form_expired", {}),
    ],
)
def test_a_refused_questionnaire_says_why_in_chinese(
    sqlite_ctx: ServiceContext, fields: dict[str, str], status: int, key: str, values: dict[str, object]
) -> None:
    """Each questionnaire refusal: its own message, in Chinese, with what was typed kept in the form."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx)
    _key, data = submit_form(web, setup.consultation_id, **fields)
    refused = web.post(f"/c/{setup.consultation_id}/submit", data=data)
    assert refused.status_code == status or (key == "form_expired" and refused.status_code == 422)  # 422 before #23a
    if key == "form_expired":
        text = main_text(refused)
        assert messages.say(messages.Said(key), "zh") in text and not ENGLISH.search(text)
        return
    assert_chinese(refused, key, **values)
    assert 'name="text"' in refused.text  # the form is shown again


def test_a_refused_questionnaire_says_why_in_english(sqlite_ctx: ServiceContext) -> None:
    """With the English switch, the same refusal reads in English, and the field is named as the form labels it."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx)
    web.get("/?lang=en")
    _key, data = submit_form(web, setup.consultation_id, text="x" * 5001)
    refused = web.post(f"/c/{setup.consultation_id}/submit", data=data)
    assert refused.status_code == 422
    assert "“Your opinion” may have at most 5000 characters; it has 5001." in main_text(refused)


def test_no_open_round_is_said_in_chinese(sqlite_ctx: ServiceContext) -> None:
    """Submitting while no round is open: 409, and no CLI hint about opening one."""
    setup = seed(sqlite_ctx, open_first_round=False)
    web = client(sqlite_ctx)
    token = hidden(web.get("/my").text, "csrf")
    refused = web.post(
        f"/c/{setup.consultation_id}/submit",
        data={"csrf": token, "category": "industry", "text": "建议硬化道路", "village": "青龙村"},
    )
    assert refused.status_code == 409
    assert_chinese(refused, "round_closed")


@pytest.mark.parametrize(
    ("code", "status", "key"),
    [("12345-67890-12345-67890-12345", 404, "receipt_unknown"), ("123", 422, "receipt_malformed")],
)
def test_a_wrong_receipt_code_is_said_in_chinese(sqlite_ctx: ServiceContext, code: str, status: int, key: str) -> None:
    """An unknown or malformed code: the code form again, with the catalogue's message."""
    seed(sqlite_ctx)
    web = client(sqlite_ctx)
    token = hidden(web.get("/my").text, "csrf")
    refused = web.post("/my", data={"csrf": token, "code": code})
    assert refused.status_code == status and 'name="code"' in refused.text
    assert_chinese(refused, key)
    english = web.post("/my?lang=en", data={"csrf": token, "code": code})
    assert messages.say(messages.Said(key), "en") in main_text(english)


def test_too_many_wrong_codes_is_said_in_chinese(sqlite_ctx: ServiceContext) -> None:
    """Past the limit of wrong codes: 429 and the catalogue's message."""
    seed(sqlite_ctx)
    web = client(sqlite_ctx, limits="lookups=1/900")
    token = hidden(web.get("/my").text, "csrf")
    web.post("/my", data={"csrf": token, "code": "12345-67890-12345-67890-12345"})
    stopped = web.post("/my", data={"csrf": token, "code": "12345-67890-12345-67890-12345"})
    assert stopped.status_code == 429
    assert_chinese(stopped, "too_many")


def test_answers_the_state_does_not_allow_are_said_in_chinese(sqlite_ctx: ServiceContext) -> None:
    """Replying before any feedback: 409 with the catalogue's reason; a reply's bad input too."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx)
    _key, data = submit_form(web, setup.consultation_id)
    web.post(f"/c/{setup.consultation_id}/submit", data=data)
    token = hidden(web.get("/my").text, "csrf")
    early = web.post("/my/reply", data={"csrf": token, "stance": "agree", "text": ""})
    assert early.status_code == 409
    assert_chinese(early, "cannot_reply")
    long_reason = web.post("/my/withdraw", data={"csrf": token, "reason": "太" * 2001})
    assert long_reason.status_code == 422
    assert_chinese(long_reason, "too_long", field="--reason", n=2001, limit=2000)


def test_a_reply_with_a_bad_stance_or_text_is_said_in_chinese(sqlite_ctx: ServiceContext) -> None:
    """While feedback awaits an answer: an unknown stance, an over-long reply."""
    web = _feedback(sqlite_ctx)
    token = hidden(web.get("/my").text, "csrf")
    bad = web.post("/my/reply", data={"csrf": token, "stance": "maybe", "text": ""})
    assert bad.status_code == 422
    assert_chinese(bad, "stance_unknown")
    long = web.post("/my/reply", data={"csrf": token, "stance": "revise", "text": "长" * 5001})
    assert long.status_code == 422
    text = main_text(long)
    assert "最多 5000 个字" in text and not ENGLISH.search(text)


@pytest.mark.parametrize(
    ("method", "path", "status", "key", "values"),
    [
        ("GET", "/c/99", 404, "not_found", {}),
        ("GET", "/c/99/submit", 404, "not_found", {}),
        ("GET", "/c/99/account", 404, "not_found", {}),
        ("GET", "/c/abc", 404, "not_found", {}),
        ("GET", "/nope", 404, "not_found", {}),
        ("GET", "/c/1/nope/deeper", 404, "not_found", {}),
        ("GET", "/c/1/account?round=99", 404, "round_unknown", {"n": 99}),
        ("GET", "/my/reply", 405, "method_not_allowed", {}),
        ("PUT", "/", 405, "method_not_allowed", {}),
    ],
)
def test_addresses_that_lead_nowhere_are_pages_in_chinese(
    sqlite_ctx: ServiceContext, method: str, path: str, status: int, key: str, values: dict[str, object]
) -> None:
    """Unknown pages, consultations and rounds, and wrong methods: a page in the visitor's language, not JSON."""
    seed(sqlite_ctx)
    web = client(sqlite_ctx)
    answer = web.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert_chinese(answer, key, **values)
    english = web.request(method, path + ("&" if "?" in path else "?") + "lang=en")
    assert messages.say(messages.Said(key, dict(values)), "en") in main_text(english)
    if status == 405:
        assert answer.headers["allow"]


def test_the_api_keeps_its_json_answers(sqlite_ctx: ServiceContext) -> None:
    """The JSON API's unknown paths and refusals are still JSON (the pages' answers stop at /api)."""
    seed(sqlite_ctx)
    web = client(sqlite_ctx)
    assert web.get("/api/v1/nope").headers["content-type"].startswith("application/json")
    refused = web.post("/api/v1/receipts/timeline", json={"code": "12345-67890-12345-67890-12345"})
    assert refused.status_code == 404 and "receipt code" in refused.json()["error"]


def test_a_bug_is_one_line_in_chinese(sqlite_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """An internal error's page: the catalogue's line, not the exception's name or text."""
    seed(sqlite_ctx)

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("boom in a view")

    monkeypatch.setattr("consultflow.services.consultations.list_consultations", broken)
    page = client(sqlite_ctx).get("/")
    assert page.status_code == 500
    assert_chinese(page, "internal")
    assert "RuntimeError" not in page.text and "boom" not in page.text


SERVICE_LINES: list[tuple[Callable[[], Exception], str]] = [
    (lambda: NotFoundError("consultation 9 not found; see 'consultflow consultation list'"), "not_found"),
    (
        lambda: RoundStateError("consultation 1 has no open round; open one with 'consultflow round open 1'"),
        "round_closed",
    ),
    (lambda: InvalidTransitionError("this opinion is closed: you cannot withdraw now"), "cannot_withdraw"),
    (lambda: ConflictError("someone else changed opinion 3 first; run the command again"), "busy"),
    (lambda: ValidationError("a brand new rule nobody mapped yet"), "invalid"),
    (lambda: RuntimeError("a bug"), "internal"),
]


@pytest.mark.parametrize(("make", "key"), SERVICE_LINES)
def test_every_error_lands_on_a_catalogue_entry(make: Callable[[], Exception], key: str) -> None:
    """Any error, recognised or not, is said from the catalogue: never its English line."""
    exc = make()
    assert messages.explain(exc).key == key
    for lang in ("zh", "en"):
        said = messages.message_for(exc, lang)
        assert str(exc) not in said and "consultflow" not in said
    assert not ENGLISH.search(messages.message_for(exc, "zh"))


def test_a_field_no_form_has_is_not_named() -> None:
    """A rule about a field the portal's forms do not have reads as the general "check the form"."""
    exc = ValidationError("frobnicator is required and may not be blank")
    assert messages.message_for(exc, "zh") == messages.say(messages.Said("invalid"), "zh")


def test_the_catalogue_has_both_languages_and_the_same_placeholders() -> None:
    """Every entry in Chinese and English, each naming the same values."""
    for key, (zh, en) in messages.MESSAGES.items():
        assert zh and en, key
        assert set(re.findall(r"{(\w+)}", zh)) == set(re.findall(r"{(\w+)}", en)), key
        assert not ENGLISH.search(zh.replace("{field}", "").replace("{n}", "")), key
