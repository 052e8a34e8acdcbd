"""The portal's pages: server-rendered, no script, Chinese by default (`?lang=en` switches).

A receipt code never appears in a URL: it travels in a form's body, then in an HttpOnly,
SameSite=Strict cookie for the holder's session. Every form carries a CSRF token matched against
a cookie; every write goes through the same services as the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from consultflow.domain.document import Document
from consultflow.domain.errors import ConsultflowError, TooManyAttemptsError
from consultflow.domain.labels import Lang
from consultflow.domain.messages import Said, explain, say
from consultflow.domain.receipts import grouped, normalised
from consultflow.domain.vocabulary import STANCE_LABELS, Outcome
from consultflow.export.values import local_time
from consultflow.logconfig import get_logger
from consultflow.services import consultations, heads, programmes, receipts, reports
from consultflow.services.context import ServiceContext
from consultflow.web.common import HERE, WebSettings, client_of, guard_of, http_status
from consultflow.web.paging import href, window
from consultflow.web.security import FormRefusedError, form_token, form_token_ok, new_token
from consultflow.web.words import word

log = get_logger(__name__)


class _PageRoute(APIRoute):
    """A page: a refusal from a service, or an address that does not parse, is answered by a page.

    The page says it in the visitor's language from the message catalogue; the service's English
    line (and any CLI hint in it) is for coordinators and never shown here.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, answering refusals with a page."""
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ConsultflowError as exc:
                return refusal_page(request, exc)
            except RequestValidationError:  # /c/abc, ?page=x: no such page
                return message_page(request, Said("not_found"), 404)

        return answer


router = APIRouter(include_in_schema=False, route_class=_PageRoute)
templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True))

CSRF_COOKIE = "cf_session"  # the visitor's session: forms carry a token signed for it (web/security.py)
LANG_COOKIE = "cf_lang"
RECEIPT_COOKIE = "cf_receipt"
FLASH_COOKIE = "cf_flash"
RECEIPT_MINUTES = 30

_OUTCOME_ORDER = (Outcome.ADOPTED, Outcome.PARTLY_ADOPTED, Outcome.REJECTED, Outcome.WITHDRAWN, Outcome.MERGED)


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def page_lang(request: Request) -> Lang:
    """`?lang=` if given, else the cookie, else Chinese."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return "en" if asked == "en" else "zh"


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page in the visitor's language, with a CSRF token for its forms (set as a cookie on first visit)."""
    lang = page_lang(request)
    settings: WebSettings = request.app.state.web
    session = request.cookies.get(CSRF_COOKIE) or new_token()
    token = form_token(settings.secret, session, request.cookies.get(RECEIPT_COOKIE))
    tz = _ctx(request).tz

    def t(key: str, **kw: object) -> str:
        return word(key, lang, **kw)

    values = {
        "lang": lang,
        "t": t,
        "csrf": token,
        "when": lambda moment: local_time(moment, tz),
        "path": request.url.path,
        **context,
    }
    response: HTMLResponse = templates.TemplateResponse(request, name, values, status_code=status)
    if request.cookies.get(CSRF_COOKIE) != session:
        _cookie(response, settings, CSRF_COOKIE, session, max_age=None)
    if request.query_params.get("lang") in ("zh", "en"):
        _cookie(response, settings, LANG_COOKIE, lang, max_age=365 * 86400)
    return response


def _cookie(response: Response, settings: WebSettings, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="strict", secure=settings.secure_cookies, path="/"
    )


_BY_STATUS = {404: "not_found", 405: "method_not_allowed", 422: "invalid", 429: "too_many", 500: "internal"}


def error_page(request: Request, message: str, status: int) -> HTMLResponse:
    """The app's own error handlers' page (a bug, a refusal outside the pages' routes).

    `message` is the English line for coordinators and logs; the visitor reads the catalogue's
    message for the status, in their language.
    """
    del message
    return message_page(request, Said(_BY_STATUS.get(status, "busy" if status == 503 else "refused")), status)


def message_page(request: Request, said: Said, status: int, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """A page holding one message from the catalogue, in the visitor's language."""
    response = render(request, "error.html", status, message=say(said, page_lang(request)))
    response.headers.update(headers or {})
    return response


def refusal_page(request: Request, exc: ConsultflowError) -> HTMLResponse:
    """A service's refusal as a page, worded from the catalogue (Retry-After when there is a wait)."""
    status = http_status(exc)
    headers = {"Retry-After": "2"} if status == 503 else {}
    if isinstance(exc, TooManyAttemptsError):
        headers = {"Retry-After": str(max(1, int((exc.until - _ctx(request).clock.now()).total_seconds())))}
    return message_page(request, explain(exc), status, headers)


def refusal(request: Request, exc: ConsultflowError) -> str:
    """What the visitor reads for a refusal shown inside a form's page."""
    return say(explain(exc), page_lang(request))


def _check_csrf(request: Request, token: str, *, bound: bool = False) -> None:
    """403 unless the token was signed for this session (`bound`: and for the receipt code in its cookie)."""
    secret = request.app.state.web.secret
    cookies = request.cookies
    if not form_token_ok(secret, token, cookies.get(CSRF_COOKIE), cookies.get(RECEIPT_COOKIE), bound=bound):
        raise FormRefusedError


def _too_many(request: Request, what: str) -> HTMLResponse:
    log.warning("rate_limited", what=what, client=client_of(request))
    return message_page(request, Said("too_many"), 429)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Every consultation."""
    ctx = _ctx(request)
    return render(
        request, "home.html", items=consultations.list_consultations(ctx), programmes=programmes.list_programmes(ctx)
    )


@router.get("/healthz")
def health() -> Mapping[str, str]:
    """For the reverse proxy and systemd: the process answers."""
    return {"status": "ok"}


@router.get("/c/{consultation_id}", response_class=HTMLResponse)
def consultation_page(request: Request, consultation_id: int) -> HTMLResponse:
    """A consultation's rounds and deadlines, its adoption table and chart, links to the account and plan."""
    ctx, lang = _ctx(request), page_lang(request)
    shown = consultations.show_consultation(ctx, consultation_id)
    adoption = reports.adoption_report(ctx, consultation_id, lang)
    return render(
        request,
        "consultation.html",
        c=shown,
        doc=adoption,
        chart=outcome_chart(adoption, lang),
        form=receipts.questionnaire(ctx, consultation_id),
        head=heads.latest(ctx, consultation_id),
    )


@router.get("/c/{consultation_id}/heads.jsonl")
def consultation_heads(request: Request, consultation_id: int) -> Response:
    """Every signed head of the consultation's chain, oldest first, one JSON line each (public, no personal data).

    Keep a copy: 'consultflow audit verify --heads URL' checks a chain against them.
    """
    body = "".join(heads.published_lines(_ctx(request), consultation_id))  # the server's file, not the database
    return Response(body, media_type="application/x-ndjson; charset=utf-8")


@router.get("/heads.jsonl")
def all_heads(request: Request) -> Response:
    """Every signed head of every consultation, oldest first (public)."""
    body = "".join(heads.published_lines(_ctx(request)))
    return Response(body, media_type="application/x-ndjson; charset=utf-8")


def outcome_chart(doc: Document, lang: Lang) -> list[dict[str, Any]]:
    """Per category, its opinions split by outcome (widths in percent of the largest category), for SVG bars."""
    rows: list[dict[str, Any]] = list(doc.figures.get("by_category", ()))  # type: ignore[call-overload]
    largest = max((int(r["opinions"]) for r in rows), default=0) or 1
    chart = []
    for r in rows:
        counts = [(o.value, o.label.get(lang), int(r.get(o.value, 0))) for o in _OUTCOME_ORDER]
        counts.append(("open", word("open_now", lang), int(r["opinions"]) - sum(n for _c, _l, n in counts)))
        x, segments = 0.0, []
        for css, label, n in counts:
            width = 100.0 * n / largest
            segments.append({"class": css, "x": x, "width": width, "n": n, "label": label})
            x += width
        chart.append({"label": r["label"], "opinions": r["opinions"], "segments": segments})
    return chart


@router.get("/c/{consultation_id}/account", response_class=HTMLResponse)
def account_page(
    request: Request,
    consultation_id: int,
    round: int | None = None,  # noqa: A002 - the address's word
    category: str | None = None,
    page: int = 1,
) -> HTMLResponse:
    """The published account (意见采纳情况说明), for all rounds or one, all categories or one, a page at a time.

    Names are surnames only.
    """
    ctx, lang = _ctx(request), page_lang(request)
    shown = consultations.show_consultation(ctx, consultation_id)
    if round is not None and round not in {r.number for r in shown.rounds}:
        return message_page(request, Said("round_unknown", {"n": round}), 404)
    only = category or None
    paged = reports.use_account_report(
        ctx, consultation_id, lambda doc: window(doc, only=only, page=page), lang=lang, round_no=round
    )
    if paged is None:
        return message_page(request, Said("not_found"), 404)
    path = f"/c/{consultation_id}/account"
    return render(
        request,
        "document.html",
        w=paged,
        c=shown,
        round=round,
        category=only,
        kind="account",
        page_href=lambda n: href(path, round=round, category=only, page=n),
        round_href=lambda n: href(path, round=n, category=only),
        category_href=lambda key: href(path, round=round, category=key),
    )


@router.get("/c/{consultation_id}/plan", response_class=HTMLResponse)
def plan_page(request: Request, consultation_id: int, page: int = 1) -> HTMLResponse:
    """Plan traceability: each plan section and the opinions it answers, a page at a time."""
    ctx, lang = _ctx(request), page_lang(request)
    shown = consultations.show_consultation(ctx, consultation_id)
    paged = reports.use_plan_report(ctx, consultation_id, lambda doc: window(doc, only=None, page=page), lang=lang)
    if paged is None:
        return message_page(request, Said("not_found"), 404)
    path = f"/c/{consultation_id}/plan"
    return render(
        request,
        "document.html",
        w=paged,
        c=shown,
        round=None,
        category=None,
        kind="plan",
        page_href=lambda n: href(path, page=n),
    )


@router.get("/c/{consultation_id}/submit", response_class=HTMLResponse)
def questionnaire_page(request: Request, consultation_id: int) -> HTMLResponse:
    """The online questionnaire, while a round is open."""
    form = receipts.questionnaire(_ctx(request), consultation_id)
    return render(request, "submit.html", form=form, form_key=new_token(), values={}, error=None)


@router.post("/c/{consultation_id}/submit", response_model=None)
def submit(
    request: Request,
    consultation_id: int,
    csrf: Annotated[str, Form()] = "",
    form_key: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    village: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    contact: Annotated[str, Form()] = "",
    consent: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
) -> Response:
    """Record the opinion; the receipt code is shown on the next page (and kept in the holder's cookie)."""
    _check_csrf(request, csrf)
    if not guard_of(request).spend("submits", client_of(request)):
        return _too_many(request, "submit")
    ctx, lang = _ctx(request), page_lang(request)
    sent = receipts.OnlineOpinion(
        consultation_id, category, text, village, name, contact, bool(consent), form_key[:100], lang,
        group=group[:100],
    )  # fmt: skip
    try:
        receipt = receipts.submit_online(ctx, sent)
    except ConsultflowError as exc:
        form = receipts.questionnaire(ctx, consultation_id)
        values = {
            "category": category, "text": text, "village": village, "name": name, "contact": contact, "group": group
        }  # fmt: skip
        shown = {"form": form, "form_key": form_key, "values": values, "error": refusal(request, exc)}
        return render(request, "submit.html", http_status(exc), **shown)
    response = RedirectResponse("/my", status_code=303)
    settings: WebSettings = request.app.state.web
    if receipt.repeated:
        _cookie(response, settings, FLASH_COOKIE, "repeat", max_age=60)
    else:
        _cookie(response, settings, RECEIPT_COOKIE, normalised(receipt.code), max_age=RECEIPT_MINUTES * 60)
        _cookie(response, settings, FLASH_COOKIE, "new", max_age=60)
    return response


@router.get("/my", response_class=HTMLResponse)
def my_opinion(request: Request) -> HTMLResponse:
    """With a receipt code in the session: the opinion's timeline and what may be done now; else the code form."""
    code = request.cookies.get(RECEIPT_COOKIE)
    flash = request.cookies.get(FLASH_COOKIE)
    if not code:
        response = render(request, "lookup.html", flash=flash, error=None)
    else:
        try:
            line = receipts.timeline(_ctx(request), code, guard_of(request).asker(client_of(request)))
        except ConsultflowError as exc:  # a code replaced since (or a limit): back to the form
            response = render(request, "lookup.html", http_status(exc), flash=None, error=refusal(request, exc))
            response.delete_cookie(RECEIPT_COOKIE, path="/")
            return response
        response = render(
            request, "timeline.html", line=line, code=grouped(code), flash=flash, stances=STANCE_LABELS, error=None
        )
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


@router.post("/my", response_model=None)
def look_up(request: Request, csrf: Annotated[str, Form()] = "", code: Annotated[str, Form()] = "") -> Response:
    """Check a receipt code; wrong codes are counted per client, and past the limit refused unchecked."""
    _check_csrf(request, csrf)
    try:
        receipts.timeline(_ctx(request), code, guard_of(request).asker(client_of(request)))
    except ConsultflowError as exc:
        return render(request, "lookup.html", http_status(exc), flash=None, error=refusal(request, exc))
    response = RedirectResponse("/my", status_code=303)
    _cookie(response, request.app.state.web, RECEIPT_COOKIE, normalised(code), max_age=RECEIPT_MINUTES * 60)
    return response


@router.post("/my/reply", response_model=None)
def reply(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    stance: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
) -> Response:
    """Re-participate: answer the feedback."""
    return _answer(
        request,
        csrf,
        lambda ctx, code, who: receipts.reply(ctx, code=code, stance=stance, text=text, asker=who),
        "replied",
    )


@router.post("/my/withdraw", response_model=None)
def withdraw(request: Request, csrf: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "") -> Response:
    """Withdraw the opinion."""
    return _answer(
        request, csrf, lambda ctx, code, who: receipts.withdraw(ctx, code=code, reason=reason, asker=who), "withdrawn"
    )


def _answer(request: Request, csrf: str, act: Any, done: str) -> Response:
    _check_csrf(request, csrf, bound=True)  # bound to the receipt code it acts on
    code = request.cookies.get(RECEIPT_COOKIE)
    if not code:
        return RedirectResponse("/my", status_code=303)
    ctx = _ctx(request)
    try:
        act(ctx, code, guard_of(request).asker(client_of(request)))  # counted and limited in the database
    except (receipts.ReceiptNotFoundError, TooManyAttemptsError):
        raise
    except ConsultflowError as exc:
        line = receipts.timeline(ctx, code)  # the code was counted and found above, in this request
        status = http_status(exc)
        error = refusal(request, exc)
        shown = {"line": line, "code": grouped(code), "flash": None, "stances": STANCE_LABELS, "error": error}
        return render(request, "timeline.html", status, **shown)
    response = RedirectResponse("/my", status_code=303)
    _cookie(response, request.app.state.web, FLASH_COOKIE, done, max_age=60)
    return response


@router.post("/my/leave", response_model=None)
def leave(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """Forget the receipt code in this browser."""
    _check_csrf(request, csrf)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(RECEIPT_COOKIE, path="/")
    return response
