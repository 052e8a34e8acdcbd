"""The JSON API through the test client: the same rules, messages and exit codes as the CLI."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from sqlalchemy import select

from consultflow.domain.errors import ValidationError
from consultflow.domain.receipts import ENTROPY_BITS, grouped, new_receipt_code, normalised, receipt_hash
from consultflow.domain.vocabulary import Field
from consultflow.services import opinions
from consultflow.services.context import ServiceContext
from consultflow.store.models import Opinion
from tests.conftest import Cli, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, seed, snapshot, submit
from tests.web.portal import client

OPINION = {"category": "public_services", "text": "希望增设村级卫生室", "village": "白鹤村"}


def _submit(web: Any, consultation_id: int, **extra: Any) -> Any:
    headers = extra.pop("headers", {})
    return web.post(f"/api/v1/consultations/{consultation_id}/opinions", json={**OPINION, **extra}, headers=headers)


def test_the_openapi_document_validates_and_names_every_call(sqlite_ctx: ServiceContext) -> None:
    """The API's OpenAPI document is valid, names every public call, and describes the one error format."""
    document = client(sqlite_ctx).get("/api/v1/openapi.json").json()
    validate(document)
    staff = {path for path in document["paths"] if path.startswith(("/api/v1/commands/", "/api/v1/auth/"))}
    assert set(document["paths"]) - staff == {
        "/api/v1/consultations",
        "/api/v1/consultations/{consultation_id}",
        "/api/v1/consultations/{consultation_id}/account",
        "/api/v1/consultations/{consultation_id}/plan",
        "/api/v1/consultations/{consultation_id}/opinions",
        "/api/v1/receipts/timeline",
        "/api/v1/receipts/reply",
        "/api/v1/receipts/withdraw",
    }
    assert "Error" in document["components"]["schemas"]


def test_submit_follow_reply_and_withdraw(ctx: ServiceContext) -> None:
    """Through the API a villager submits, follows her opinion by code, replies to feedback and withdraws it, once."""
    setup = seed(ctx)
    web = client(ctx)
    made = _submit(web, setup.consultation_id)
    assert made.status_code == 201, made.text
    code = made.json()["receipt_code"]
    opinion_id = made.json()["opinion_id"]
    line = web.post("/api/v1/receipts/timeline", json={"code": code}).json()
    assert line["opinion"]["text"] == OPINION["text"] and line["reply"] is None and line["withdraw"] == "withdraw"
    assert "participant_id" not in line["opinion"] and "13" not in str(line["opinion"]["participant"])

    opinions.assign(ctx, acting=COORD, opinion_ids=[opinion_id], planner=PLANNER)
    opinions.fire(ctx, acting=PLANNER, opinion_id=opinion_id, trigger="screen", fields={})
    opinions.fire(
        ctx, acting=PLANNER, opinion_id=opinion_id, trigger="give_feedback", fields={Field.TEXT: "拟在中心村设置"}
    )
    line = web.post("/api/v1/receipts/timeline", json={"code": code}).json()
    assert line["reply"] == "reparticipate" and line["rounds"][0]["entries"][0]["text"] == "拟在中心村设置"
    answered = web.post("/api/v1/receipts/reply", json={"code": code, "stance": "object", "text": "中心村太远"})
    assert answered.status_code == 200 and answered.json()["to_state"] == "under_review"
    gone = web.post("/api/v1/receipts/withdraw", json={"code": code, "reason": ""})
    assert gone.json()["to_state"] == "withdrawn"
    again = web.post("/api/v1/receipts/withdraw", json={"code": code})
    assert again.status_code == 409 and again.json()["kind"] == "invalid_transition"


def test_an_idempotency_key_makes_a_retried_submission_one_opinion(ctx: ServiceContext) -> None:
    """A submission retried with its Idempotency-Key is one opinion, same code; the key with new text is refused."""
    setup = seed(ctx)
    web = client(ctx)
    first = _submit(web, setup.consultation_id, headers={"Idempotency-Key": "kiosk-7-0001"})
    second = _submit(web, setup.consultation_id, headers={"Idempotency-Key": "kiosk-7-0001"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == {**first.json(), "repeated": True}  # the same receipt code again, never stored in clear
    assert first.json()["receipt_code"] != ""
    third = _submit(web, setup.consultation_id, headers={"Idempotency-Key": "kiosk-7-0002"})
    assert third.status_code == 201 and third.json()["opinion_id"] != first.json()["opinion_id"]
    other = _submit(web, setup.consultation_id, text="另一条意见", headers={"Idempotency-Key": "kiosk-7-0001"})
    assert other.status_code == 409 and other.json()["kind"] == "idempotency_key_reused"  # never dropped silently


def test_refusals_carry_the_clis_message_and_exit_code(cli: Cli, ctx_from_cli: ServiceContext) -> None:
    """An API refusal carries the CLI's message, exit code and kind, and writes nothing."""
    ctx = ctx_from_cli
    setup = seed(ctx)
    web = client(ctx)
    before = snapshot(ctx)
    refused = _submit(web, setup.consultation_id, category="weather")
    assert refused.status_code == 422
    from_cli = cli(
        "opinion", "submit", "--consultation", str(setup.consultation_id), "--participant", str(setup.participant_id),
        "--category", "weather", "--channel", "villagers_assembly", "--text", "x", actor=EXPERT,
    )  # fmt: skip
    assert refused.json() == {
        "error": from_cli.output.strip().removeprefix("Error: "),
        "exit_code": 1,
        "kind": "validation",
    }
    assert from_cli.exit_code == refused.json()["exit_code"]
    missing = _submit(web, 99)
    assert missing.status_code == 404 and missing.json()["kind"] == "not_found"
    typed = web.post(f"/api/v1/consultations/{setup.consultation_id}/opinions", json={**OPINION, "text": ["a list"]})
    assert typed.status_code == 422 and typed.json()["exit_code"] == 2 and typed.json()["kind"] == "usage"
    assert "text" in typed.json()["error"] and "\n" not in typed.json()["error"]
    bad_code = web.post("/api/v1/receipts/reply", json={"code": "12", "stance": "agree"})
    assert bad_code.status_code == 422 and bad_code.json()["error"].startswith("code:")  # the schema's pattern
    assert snapshot(ctx) == before


@pytest.fixture(name="ctx_from_cli")
def _ctx_from_cli(cli: Cli) -> Any:
    from tests.conftest import make_context

    made = make_context(cli.url, cli.clock)
    yield made
    made.database.dispose()


def test_a_guessed_code_gets_nothing_through_the_api(sqlite_ctx: ServiceContext) -> None:
    """Guessed receipt codes find nothing through the API, and guessing is stopped, even for the right code."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx, limits="lookups=2/900")
    code = _submit(web, setup.consultation_id).json()["receipt_code"]
    before = snapshot(sqlite_ctx)
    for guess in ("11111-11111-11111-11111-11111", "22222-22222-22222-22222-22222"):
        answer = web.post("/api/v1/receipts/reply", json={"code": guess, "stance": "agree"})
        assert answer.status_code == 404 and answer.json()["kind"] == "receipt_not_found"
    assert web.post("/api/v1/receipts/timeline", json={"code": code}).status_code == 429
    assert snapshot(sqlite_ctx) == before


def test_submissions_are_limited_per_client(sqlite_ctx: ServiceContext) -> None:
    """Submissions are limited per client: past the limit the API answers 429 and records nothing."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx, limits="submits=2/3600")
    assert [_submit(web, setup.consultation_id).status_code for _ in range(3)] == [201, 201, 429]
    with sql_uow(sqlite_ctx) as uow:
        assert len(uow.session.scalars(select(Opinion)).all()) == 2


def test_public_reads(ctx: ServiceContext) -> None:
    """Anyone can read the consultations, their account (pseudonymised, no phone) and the plan through the API."""
    setup = seed(ctx)
    submit(ctx, setup)
    web = client(ctx)
    listed = web.get("/api/v1/consultations").json()
    assert [c["title"] for c in listed] == ["片区规划意见征集"]
    one = web.get(f"/api/v1/consultations/{setup.consultation_id}?lang=en").json()
    assert one["rounds"][0]["number"] == 1 and one["adoption"]["figures"]["opinions"] == 1
    account = web.get(f"/api/v1/consultations/{setup.consultation_id}/account").json()
    assert "张秀英" not in str(account) and "13812345678" not in str(account) and "张某某" in str(account)
    assert web.get(f"/api/v1/consultations/{setup.consultation_id}/account?round=0").status_code == 422
    assert web.get(f"/api/v1/consultations/{setup.consultation_id}/plan").status_code == 200


def test_receipt_codes_are_unguessable_and_forgiving_to_type() -> None:
    """Receipt codes are unguessable and work typed with spaces or full-width digits; wrong shapes are refused."""
    codes = {new_receipt_code() for _ in range(2000)}
    assert len(codes) == 2000 and ENTROPY_BITS >= 80
    code = next(iter(codes))
    assert len(normalised(code)) == 25 and grouped(code) == code
    assert receipt_hash(code) == receipt_hash(" " + code.replace("-", " ") + " ")
    assert receipt_hash(code) == receipt_hash(code.translate(str.maketrans("0123456789", "０１２３４５６７８９")))
    for bad in ("", "1234", code + "1", code.replace(code[0], "a", 1)):
        with pytest.raises(ValidationError, match="25 digits"):
            receipt_hash(bad)


def test_opinion_receipt_issues_a_code_that_replaces_the_last(cli: Cli, ctx_from_cli: ServiceContext) -> None:
    """Staff may issue a new receipt code that voids the last, planners may not; the code stays off the record."""
    ctx = ctx_from_cli
    setup = seed(ctx)
    opinion_id = submit(ctx, setup)
    first = cli.ok("--json", "opinion", "receipt", str(opinion_id), actor=EXPERT)
    import json

    code = json.loads(first.output)["receipt_code"]
    web = client(ctx)
    assert web.post("/api/v1/receipts/timeline", json={"code": code}).json()["opinion"]["id"] == opinion_id
    second = cli.ok("opinion", "receipt", str(opinion_id), actor=COORD)
    assert "receipt code" in second.output and code not in second.output
    assert web.post("/api/v1/receipts/timeline", json={"code": code}).status_code == 404  # the old code is worthless
    refused = cli("opinion", "receipt", str(opinion_id), actor=PLANNER)
    assert refused.exit_code == 1 and "may not issue receipt codes" in refused.output
    history = cli.ok("audit", "history", str(opinion_id))
    assert "issue_receipt" in history.output and code not in history.output


def test_a_public_account_lists_a_bounded_number_of_rows(
    sqlite_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A province's account is a file; an API call holds the first rows of each table only (pages: test_page_phone)."""
    monkeypatch.setattr("consultflow.web.api.PUBLIC_REPORT_ROWS", 2)
    setup = seed(sqlite_ctx)
    ids = [submit(sqlite_ctx, setup, f"意见{i}") for i in range(3)]
    web = client(sqlite_ctx)
    account = web.get(f"/api/v1/consultations/{setup.consultation_id}/account").json()
    [roads] = [t for t in account["tables"] if t["key"] == "environment_roads"]
    assert [r[0] for r in roads["rows"]] == ids[:2] and roads["cut"] is True
    assert [i["id"] for i in account["figures"]["categories"]["environment_roads"]] == ids[:2]
    assert all("cut" not in t for t in account["tables"] if t["key"] != "environment_roads")  # short tables whole
    monkeypatch.setattr("consultflow.web.api.PUBLIC_REPORT_ROWS", 3)
    whole = web.get(f"/api/v1/consultations/{setup.consultation_id}/account").json()
    assert [t.get("cut") for t in whole["tables"] if t["key"] == "environment_roads"] == [None]


def test_a_villager_coming_back_is_the_participant_she_was(ctx: ServiceContext) -> None:
    """The same name, village and contact on the portal twice is one participant; without a contact, two."""
    setup = seed(ctx)
    web = client(ctx)
    her = {"name": "刘桂芳", "contact": "13611112222", "contact_consent": True}
    first = _submit(web, setup.consultation_id, **her).json()["opinion_id"]
    again = _submit(web, setup.consultation_id, text="再补充一条：卫生室要有全科医生", **her).json()["opinion_id"]
    elsewhere = _submit(web, setup.consultation_id, **{**her, "village": "青龙村"}).json()["opinion_id"]
    nameless = [_submit(web, setup.consultation_id, text=f"匿名意见{i}").json()["opinion_id"] for i in range(2)]
    with sql_uow(ctx) as uow:
        owner = dict(uow.session.execute(select(Opinion.id, Opinion.participant_id)).all())
    assert owner[first] == owner[again]  # she is counted once, with two opinions
    assert owner[elsewhere] != owner[first]  # another village: another person
    assert owner[nameless[0]] != owner[nameless[1]]  # nothing ties two anonymous submissions
