"""The JSON API (for messaging mini-programs and kiosks): the same services, messages and exit codes as the CLI.

Request fields are loosely typed on purpose: the services check them, so an empty text or an
unknown category gets the CLI's own message. Errors are `{"error", "exit_code", "kind"}` with an
HTTP status that fits. Receipt codes travel in request bodies, never in URLs.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from consultflow.domain.document import Document
from consultflow.domain.labels import Lang
from consultflow.export.formats import to_json
from consultflow.export.values import to_jsonable
from consultflow.logconfig import get_logger
from consultflow.services import consultations, receipts, reports
from consultflow.services.context import ServiceContext
from consultflow.web.common import Error, client_of, error_body, guard_of
from consultflow.web.security import PUBLIC_REPORT_ROWS

log = get_logger(__name__)
router = APIRouter(prefix="/api/v1", tags=["consultflow"])

MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="an id, 1 to 2**31-1")]


def _decodable(value: str) -> str:
    """Text that can be stored: no lone surrogate (from a JSON escape such as a lone high surrogate), no NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        msg = "holds text that is not valid Unicode (a lone surrogate)"
        raise ValueError(msg) from None
    if "\x00" in value:
        msg = "holds a NUL character"
        raise ValueError(msg)
    return value


def _text(max_length: int, description: str = "") -> Any:
    return Field("", max_length=max_length, description=description)


Text = Annotated[str, AfterValidator(_decodable)]
CODE_PATTERN = r"^[\s\-_.\u2013\u2014]*(?:\d[\s\-_.\u2013\u2014]*){25}$"  # \d: full-width digits too


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "model": Error}
    for status, what in (
        (400, "malformed request"),
        (403, "not allowed"),
        (404, "no such consultation, or no opinion has this receipt code"),
        (409, "not possible in the opinion's or consultation's current state"),
        (413, "the body is over 64 KB"),
        (415, "the body is not JSON"),
        (422, "invalid input (the CLI's message and exit code)"),
        (429, "too many attempts from this client or for this receipt code"),
        (500, "internal error (logged)"),
        (503, "busy: nothing was written; try again"),
    )
}
_SUBMIT_ERRORS = {
    **_ERRORS,
    409: {"description": "no open round, or the Idempotency-Key was used for another body", "model": Error},
}


class OpinionIn(BaseModel):
    """The online questionnaire."""

    model_config = ConfigDict(extra="forbid")

    category: Text = _text(64, "a category name of the consultation's workflow, e.g. industry")
    text: Text = Field(..., min_length=1, max_length=5000, pattern=r"\S", description="the opinion (required)")
    village: Text = Field(..., min_length=1, max_length=120, pattern=r"\S", description="village or area (required)")
    name: Text = _text(120, "optional; never published")
    contact: Text = _text(200, "optional phone or e-mail; kept only with contact_consent")
    contact_consent: bool = False
    lang: Text = Field("zh", max_length=2, description="zh or en: the language messages to the submitter use")
    group: Text = _text(100, "optional: the kind of person, an id or label of the workflow's groups, e.g. residents")


class Submitted(BaseModel):
    """A recorded opinion and its receipt code (the same code again when the same key and body were sent before)."""

    opinion_id: int
    receipt_code: str
    repeated: bool
    state: str


class CodeIn(BaseModel):
    """A receipt code: 25 digits, spaces and dashes allowed."""

    model_config = ConfigDict(extra="forbid")

    code: Text = Field(..., max_length=64, pattern=CODE_PATTERN, description="25 digits, spaces and dashes allowed")


class ReplyIn(CodeIn):
    """Re-participation: agree, object or revise, with text."""

    stance: Literal["agree", "object", "revise"] = Field(..., description="agree, object or revise")
    text: Text = _text(5000)


class WithdrawIn(CodeIn):
    """Withdrawal, with an optional reason."""

    reason: Text = _text(5000)


class Answered(BaseModel):
    """What an answer did to the opinion."""

    opinion_id: int
    trigger: str
    from_state: str
    to_state: str
    round: int


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _plain(request: Request, value: object) -> Any:
    return to_jsonable(value, _ctx(request).tz)


def _document(doc: Document) -> Any:
    return json.loads(to_json(doc))


def _refused(status: int, message: str, exit_code: int, kind: str) -> JSONResponse:
    return JSONResponse(error_body(message, exit_code, kind), status)


def _too_many(
    request: Request, what: str, message: str = "too many attempts; wait a while and try again"
) -> JSONResponse:
    log.warning("rate_limited", what=what, client=client_of(request))
    return _refused(429, message, 1, "rate_limited")


@router.get("/consultations")
def list_consultations(request: Request) -> list[dict[str, Any]]:
    """Every consultation with its opinion count."""
    return list(_plain(request, consultations.list_consultations(_ctx(request))))


@router.get("/consultations/{consultation_id}", responses=_ERRORS)
def consultation(request: Request, consultation_id: Id, lang: Lang = "zh") -> dict[str, Any]:
    """A consultation's rounds and deadlines, opinions by state, and the adoption figures."""
    ctx = _ctx(request)
    shown = consultations.show_consultation(ctx, consultation_id)
    adoption = reports.adoption_report(ctx, consultation_id, lang)
    return {**_plain(request, shown), "adoption": _document(adoption)}


@router.get("/consultations/{consultation_id}/account", responses=_ERRORS)
def account(
    request: Request,
    consultation_id: Id,
    lang: Lang = "zh",
    round: Annotated[int | None, Query(ge=1, le=10_000)] = None,  # noqa: A002
) -> Any:
    """The published account (意见采纳情况说明), for all rounds or one; surnames only, never a contact."""
    return _document(
        reports.account_report(_ctx(request), consultation_id, lang=lang, round_no=round, at_most=PUBLIC_REPORT_ROWS)
    )


@router.get("/consultations/{consultation_id}/plan", responses=_ERRORS)
def plan(request: Request, consultation_id: Id, lang: Lang = "zh") -> Any:
    """Plan traceability: each plan section and the opinions it answers."""
    return _document(reports.plan_report(_ctx(request), consultation_id, lang=lang, at_most=PUBLIC_REPORT_ROWS))


@router.post(
    "/consultations/{consultation_id}/opinions", status_code=201, responses=_SUBMIT_ERRORS, response_model=Submitted
)
def submit(
    request: Request,
    consultation_id: Id,
    body: OpinionIn,
    idempotency_key: Annotated[str, Header(max_length=100, pattern=r"^[\x21-\x7e]*$")] = "",
) -> Any:
    """Submit an opinion in the open round; the answer holds its receipt code.

    Send an `Idempotency-Key` header to make retries safe: the same key and body, from the same
    client, record one opinion and answer 200 with the same receipt code; the same key with
    another body is refused (409).
    """
    if not guard_of(request).spend("submits", client_of(request)):
        return _too_many(request, "submits")
    form = receipts.OnlineOpinion(
        consultation_id,
        body.category,
        body.text,
        body.village,
        body.name,
        body.contact,
        body.contact_consent,
        idempotency_key,
        body.lang,
        client_of(request),
        body.group,
    )
    receipt = receipts.submit_online(_ctx(request), form)
    result = Submitted(
        opinion_id=receipt.opinion.id, receipt_code=receipt.code, repeated=receipt.repeated, state=receipt.opinion.state
    )
    return JSONResponse(result.model_dump(), 200 if receipt.repeated else 201)


def _asker(request: Request) -> receipts.Asker:
    return guard_of(request).asker(client_of(request))


@router.post("/receipts/timeline", responses=_ERRORS)
def timeline(request: Request, body: CodeIn) -> Any:
    """An opinion's timeline by its receipt code: each round's feedback and replies, outcome, plan clause."""
    line = receipts.timeline(_ctx(request), body.code, _asker(request))
    plain = _plain(request, line)
    plain["opinion"].pop("participant_id", None)
    plain["reply"] = line.reply.trigger if line.reply else None
    plain["withdraw"] = line.withdraw.trigger if line.withdraw else None
    return plain


@router.post("/receipts/reply", responses=_ERRORS, response_model=Answered)
def reply(request: Request, body: ReplyIn) -> Any:
    """Re-participate: answer the planners' feedback while it awaits an answer."""
    r = receipts.reply(_ctx(request), code=body.code, stance=body.stance, text=body.text, asker=_asker(request))
    return _answered(r)


@router.post("/receipts/withdraw", responses=_ERRORS, response_model=Answered)
def withdraw(request: Request, body: WithdrawIn) -> Any:
    """Withdraw the opinion."""
    return _answered(receipts.withdraw(_ctx(request), code=body.code, reason=body.reason, asker=_asker(request)))


def _answered(r: Any) -> Answered:
    return Answered(
        opinion_id=r.opinion_id, trigger=r.trigger, from_state=r.from_state, to_state=r.to_state, round=r.round_no
    )
