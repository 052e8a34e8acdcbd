"""Themes under the per-database roles (PostgreSQL): the server codes and uncodes, the reader reads the figures."""

from __future__ import annotations

from dataclasses import replace

from consultflow.services import brief, themes, verify
from tests.helpers import PLANNER
from tests.integration.test_db_roles import County, _allowed, _libpq, _refused
from tests.integration.test_db_roles import _county as _county  # noqa: PLC0414 - the fixture, shared


def test_the_server_codes_themes_and_the_reader_counts_and_verifies_them(county: County) -> None:
    """Under PostgreSQL roles the server codes themes, the reader counts them, and neither writes what it may not."""
    cid, oid = county.setup.consultation_id, county.opinion_id
    server = replace(county.ctx["server"], acting_proven=True)  # the server's login: the people it serves act
    themes.code(server, acting=PLANNER, theme="农村路网", add=True, opinion_ids=[oid])
    themes.code(server, acting=PLANNER, theme="学校", add=True, matching="道路", consultation_id=cid)
    themes.code(server, acting=PLANNER, theme="学校", add=False, opinion_ids=[oid])

    reader = county.ctx["reader"]  # an auditor's login: counts, % coded, the brief's figures
    assert [(t.theme, t.opinions) for t in themes.theme_counts(reader, cid)] == [("农村路网", 1)]
    assert [(r.opinions, r.coded) for r in themes.progress(reader, cid)] == [(1, 1)]
    assert brief.brief_figures(reader, cid).opinions == 1
    assert verify.verify_chain(county.owner, cid).intact  # the events the server wrote replay to its rows

    as_reader = _libpq(county.url, county.logins["reader"])
    _allowed(as_reader, "SELECT opinion_id, theme FROM opinion_theme")
    _refused(as_reader, "DELETE FROM opinion_theme")
    _refused(as_reader, "INSERT INTO opinion_theme (consultation_id, opinion_id, theme, added_by_id, added_at) "
                        "VALUES (1, 1, 'x', 1, now())")  # fmt: skip
    _refused(_libpq(county.url, county.logins["server"]), "UPDATE opinion_theme SET theme = 'x'")
    _refused(_libpq(county.url, county.logins["worker"]), "SELECT * FROM opinion_theme")
