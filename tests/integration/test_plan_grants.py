"""The plan's tables under the per-database roles (PostgreSQL): the server writes them, the reader reads figures only."""

from __future__ import annotations

from dataclasses import replace

from consultflow.domain.plan import parse_markdown
from consultflow.services import plans, rounds
from consultflow.services.plans import RatingIn
from tests.helpers import COORD, EXPERT, PLANNER
from tests.integration.test_db_roles import County, _allowed, _libpq, _refused
from tests.integration.test_db_roles import _county as _county  # noqa: PLC0414 - the fixture, shared

DRAFT = "# 草案\n\n## 一、交通\n\n1. 环线公路\n2. 通组道路硬化\n"


def test_the_server_records_a_review_and_the_reader_reads_its_figures_but_no_comment(county: County) -> None:
    """Under PostgreSQL roles the server records a review; the reader reads its figures but no comment or who rated."""
    cid = county.setup.consultation_id
    server = replace(county.ctx["server"], acting_proven=True)  # the server's login: the people it serves act
    plans.import_plan(server, acting=PLANNER, consultation_id=cid, clauses=parse_markdown(DRAFT))
    rounds.close_round(server, acting=COORD, consultation_id=cid)
    plans.open_review(server, acting=COORD, consultation_id=cid)
    done = plans.record_ratings(
        server,
        acting=EXPERT,
        consultation_id=cid,
        participant_id=county.setup.participant_id,
        ratings=(RatingIn("1.1", "满意"), RatingIn("1.2", "不满意", "路太窄")),
    )
    assert done.ratings[1].opinion_id is not None

    results = plans.review_results(county.ctx["reader"], cid)  # an auditor's login reads the results
    assert [(c.number, c.satisfied, c.not_satisfied, c.comments) for c in results.clauses] == [
        ("1.1", 1, 0, 0),
        ("1.2", 0, 1, 1),
    ]
    reader = _libpq(county.url, county.logins["reader"])
    _allowed(reader, "SELECT clause_id, rating, opinion_id FROM plan_rating")
    _allowed(reader, "SELECT * FROM plan_clause_text JOIN plan_version ON plan_version.id = version_id")
    for statement in (
        "SELECT comment FROM plan_rating",
        "SELECT participant_id FROM plan_rating",
        "UPDATE plan_clause_text SET text = 'x'",
        "INSERT INTO opinion_clause (opinion_id, clause_id, linked_at, linked_by_id) VALUES (1, 1, now(), 1)",
    ):
        _refused(reader, statement)
    worker = _libpq(county.url, county.logins["worker"])
    _refused(worker, "SELECT * FROM plan_rating")
