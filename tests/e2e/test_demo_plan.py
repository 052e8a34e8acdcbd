"""The demo's draft plan: reviewed in a final round, then a second version the adopted opinions changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from consultflow.cli.main import main
from consultflow.services.demo_plan import COMMENTS, RATERS, SECOND

pytestmark = pytest.mark.slow


def _run(db: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", db, "-q", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_demo_reviews_its_draft_and_traces_version_two_to_adopted_opinions(tmp_path: Path) -> None:
    """The demo's draft is reviewed in a final round; the diff to version two names the adopted opinions behind it."""
    db = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    _run(db, "demo")
    shown = json.loads(_run(db, "--json", "plan", "show", "1"))
    assert [v["label"] for v in shown["versions"]] == ["征求意见稿", "送审稿"]
    assert len(shown["clauses"]) == 12
    assert [(r["round_no"], r["version_number"], r["open"]) for r in shown["reviews"]] == [(4, 1, False)]

    diff = json.loads(_run(db, "--json", "plan", "diff", "1", "1", "2"))
    assert {line["number"] for line in diff["lines"]} == set(SECOND)
    assert all(line["change"] == "changed" for line in diff["lines"])
    traced = {line["number"]: line["opinions"] for line in diff["lines"]}
    assert traced["4.1"] == []  # changed without an opinion linked to it
    for number in set(SECOND) - {"4.1"}:
        assert traced[number], number
        assert {o["outcome"] for o in traced[number]} == {"adopted"}
    linked = traced["2.1"][0]["opinion_id"]
    assert "2.1" in _run(db, "opinion", "show", str(linked))

    review = json.loads(_run(db, "report", "review", "1", "--format", "json"))["figures"]
    by_clause = {c["clause"]: c for c in review["by_clause"]}
    assert review["rounds"] == [4]
    assert sum(c["comments"] for c in by_clause.values()) == len(COMMENTS)
    for clause, _category, _text in COMMENTS:
        assert by_clause[clause]["comment_states"] == {"merged": 1}  # answered: merged into the adopted ask
    assert all(c["ratings"] == c["satisfied"] + c["mostly"] + c["not_satisfied"] for c in by_clause.values())
    assert 3 * RATERS <= sum(c["ratings"] for c in by_clause.values()) <= 6 * RATERS + len(COMMENTS)
    assert "chain intact" in _run(db, "audit", "verify", "1")
