"""The documentation: the README's links lead somewhere, and the generated references miss nothing."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from tests.helpers import docs_hooks

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_links_lead_to_files_that_exist() -> None:
    """Every relative link in the README (on GitHub and as the package's description) opens a file of the checkout."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in t]
    assert targets, "the README links into docs/"
    assert [t for t in targets if not (ROOT / t.split("#", 1)[0]).exists()] == []


def test_the_readme_keeps_the_two_quick_start_commands() -> None:
    """The README's quick start is still `make demo` and `make test`, and the guides moved to docs/."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quick start\n.*?```sh\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    assert [line.split()[:2] for line in block.group(1).splitlines()] == [["make", "demo"], ["make", "test"]]
    assert "docs/guides/coordinators.md" in readme


def test_the_api_reference_lists_every_operation_of_the_servers_document() -> None:
    """The API reference is made from the server's OpenAPI document: every operation in it, with its role."""
    hooks = docs_hooks()
    document = hooks.openapi_document()
    page = (ROOT / "docs" / "reference" / "api.md").read_text(encoding="utf-8")
    built = hooks.on_page_markdown(
        page, page=SimpleNamespace(file=SimpleNamespace(src_uri="reference/api.md")), config=None, files=None
    )
    operations = [(m.upper(), p) for p, ops in document["paths"].items() for m in ops]
    assert len(operations) > 50
    assert [op for op in operations if f"### {op[0]} `{op[1]}`" not in built] == []
    assert built.count("- Role: ") == len(operations)
    assert "- Role: coordinator" in built


def test_the_changelog_page_is_the_changelog() -> None:
    """The site's changelog is CHANGELOG.md itself, with an Unreleased section and 0.1.0."""
    hooks = docs_hooks()
    page = (ROOT / "docs" / "changelog.md").read_text(encoding="utf-8")
    built = hooks.on_page_markdown(
        page, page=SimpleNamespace(file=SimpleNamespace(src_uri="changelog.md")), config=None, files=None
    )
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert built.strip() == changelog.strip()
    assert "## [Unreleased]" in changelog
    assert "## [0.1.0]" in changelog
