"""The portal's page of a county programme: its areas (片区) side by side, figures only, each linking its page.

Importing this module adds the page to the portal's router (`consultflow.web.app` does, before it
includes the router).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from consultflow.services import programmes
from consultflow.web.pages import _ctx, page_lang, render, router


@router.get("/programme/{programme_id}", response_class=HTMLResponse)
def programme_page(request: Request, programme_id: int) -> HTMLResponse:
    """A programme's areas side by side: opinions, % by category, rounds, outcomes, repeat participation.

    The figures name nobody (no names, no texts), so they are published as the staff report shows them.
    """
    lang = page_lang(request)
    figures = programmes.programme_figures(_ctx(request), str(programme_id))
    doc = programmes.dashboard(figures, lang)
    return render(request, "programme.html", p=figures.programme, areas=figures.areas, doc=doc)
