"""What pyproject.toml promises whoever installs consultflow's tools: tests, linters and docs apart, linters pinned."""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the backport, in the test group
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_test_extra_is_every_extra_and_the_test_group_without_linters() -> None:
    """`pip install 'consultflow[test]'` gets what `make test` runs with, and no unpinned linter beside it."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    extra = project["project"]["optional-dependencies"]["test"]
    groups = project["dependency-groups"]
    assert "consultflow[all]" in extra
    assert _names([r for r in extra if not r.startswith("consultflow[")]) == _names(groups["test"])
    assert not _names(extra) & _names(groups["lint"])


def test_the_lint_and_docs_tools_are_pinned() -> None:
    """A new release of a linter or of the docs builder cannot turn CI red: each is pinned to one version."""
    groups = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["dependency-groups"]
    for requirement in (Requirement(r) for r in groups["lint"] + groups["docs"]):
        if requirement.name == "pre-commit":  # runs the pinned hooks; its own version does not lint
            continue
        assert str(requirement.specifier).startswith("=="), requirement
