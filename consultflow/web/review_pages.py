"""The portal's review pages (大众点评): rate each clause of the draft plan, and read the results.

`/c/{id}/review` lists the open review's clauses, one rating control (满意 / 基本满意 / 不满意) and
an optional comment each; posting it records the ratings through the same use case as an
assembly's (a comment becomes an opinion, with a receipt code to follow it on /my). The form
carries a CSRF token and a one-time key, and counts against the client's submission limit like the
questionnaire. `/c/{id}/review/results` shows the figures per clause: no names.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from consultflow.domain.errors import ConsultflowError, NotFoundError, RoundStateError
from consultflow.domain.messages import Said
from consultflow.domain.plan import MAX_COMMENT_CHARS, RATINGS
from consultflow.domain.receipts import grouped
from consultflow.services import plans
from consultflow.services.context import ServiceContext
from consultflow.web.common import client_of, guard_of, http_status
from consultflow.web.pages import _check_csrf, _PageRoute, _too_many, message_page, page_lang, refusal, render
from consultflow.web.security import new_token
from consultflow.web.words import word

router = APIRouter(include_in_schema=False, route_class=_PageRoute)

_MAX_FIELD = 5000  # characters of any one posted value kept (a comment is refused past its own limit)


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


# The review's own refusals, matched on the service's words (as consultflow.domain.messages does for
# the questionnaire): (error type, pattern, the portal's word). Anything else: the catalogue's message.
_REFUSALS: tuple[tuple[type[ConsultflowError], re.Pattern[str], str], ...] = (
    (RoundStateError, re.compile(r"takes no ratings now"), "review_none"),
    (NotFoundError, re.compile(r"has no clause"), "review_clause_unknown"),
    (ConsultflowError, re.compile(r"^unknown rating"), "review_rating_unknown"),
    (ConsultflowError, re.compile(r"has rated clause (?P<clause>\S+) in this review already"), "review_rated_already"),
    (ConsultflowError, re.compile(r"^rate at least one clause"), "review_rate_one"),
    (ConsultflowError, re.compile(r"^comment is \d+ characters; at most"), "review_comment_long"),
)


def _review_refusal(request: Request, exc: ConsultflowError) -> str:
    """A refusal of the review form in the visitor's words (a clause or rating the form did not offer, no review)."""
    for kind, pattern, key in _REFUSALS:
        found = pattern.search(str(exc))
        if isinstance(exc, kind) and found:
            return word(key, page_lang(request), limit=MAX_COMMENT_CHARS, **found.groupdict())
    return refusal(request, exc)


@router.get("/c/{consultation_id}/review", response_class=HTMLResponse)
def review_page(request: Request, consultation_id: int) -> HTMLResponse:
    """The open review's clauses, one rating control each (a page saying so when no review is open)."""
    try:
        form = plans.review_form(_ctx(request), consultation_id)
    except RoundStateError:
        return message_page(request, Said("round_closed"), 409)
    return render(request, "review.html", form=form, form_key=new_token(), ratings=RATINGS, values={}, error=None)


@router.post("/c/{consultation_id}/review", response_model=None)
async def review_submit(request: Request, consultation_id: int) -> Response:
    """Record the ratings given (and comments as opinions); the receipt codes are shown on the answer page."""
    posted = {k: str(v)[:_MAX_FIELD] for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    _check_csrf(request, posted.get("csrf", ""))
    if not await run_in_threadpool(guard_of(request).spend, "submits", client_of(request)):
        return _too_many(request, "review")
    ctx = _ctx(request)
    unrated = [
        k.removeprefix("comment_")
        for k, v in posted.items()
        if k.startswith("comment_") and v.strip() and not posted.get("rate_" + k.removeprefix("comment_"))
    ]
    if unrated:  # a comment on a clause not rated would be lost: say so, record nothing
        form = await run_in_threadpool(plans.review_form, ctx, consultation_id)
        shown = {"form": form, "form_key": posted.get("form_key", ""), "ratings": RATINGS, "values": posted}
        error = word("review_comment_unrated", page_lang(request), clause=", ".join(unrated))
        return render(request, "review.html", 422, error=error, **shown)
    ratings = tuple(
        plans.RatingIn(key.removeprefix("rate_"), value, posted.get("comment_" + key.removeprefix("rate_")) or None)
        for key, value in posted.items()
        if key.startswith("rate_") and value
    )
    sent = plans.OnlineReview(
        consultation_id,
        ratings,
        posted.get("village", ""),
        posted.get("name", ""),
        posted.get("contact", ""),
        bool(posted.get("consent")),
        posted.get("form_key", "")[:100],
        page_lang(request),
        client_of(request),
    )
    try:
        done = await run_in_threadpool(plans.submit_review_online, ctx, sent)
    except ConsultflowError as exc:
        try:
            form = await run_in_threadpool(plans.review_form, ctx, consultation_id)
        except RoundStateError:
            return message_page(request, Said("round_closed"), 409)
        shown = {"form": form, "form_key": posted.get("form_key", ""), "ratings": RATINGS, "values": posted}
        return render(request, "review.html", http_status(exc), error=_review_refusal(request, exc), **shown)
    codes = [(clause, grouped(code)) for clause, code in done.codes]
    return render(request, "review_done.html", consultation_id=consultation_id, done=done.recorded, codes=codes)


@router.get("/c/{consultation_id}/review/results", response_class=HTMLResponse)
def review_results_page(request: Request, consultation_id: int, version: int | None = None) -> HTMLResponse:
    """Per clause: how many rated it 满意 / 基本满意 / 不满意, the share satisfied, comments (figures only)."""
    results = plans.review_results(_ctx(request), consultation_id, version)
    return render(
        request, "review_results.html", consultation_id=consultation_id, results=results, ratings=RATINGS,
        percent=plans.percent,
    )  # fmt: skip
