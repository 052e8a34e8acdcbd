"""Dependencies point inward: the rules of the layout, checked on every import statement."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "consultflow"

FORBIDDEN = {
    "domain": (
        "sqlalchemy",
        "alembic",
        "click",
        "apscheduler",
        "consultflow.store",
        "consultflow.services",
        "consultflow.cli",
        "consultflow.scheduler",
    ),
    "store": ("click", "apscheduler", "consultflow.services", "consultflow.cli", "consultflow.scheduler"),
    "services": ("click", "apscheduler", "consultflow.cli", "consultflow.scheduler"),
    "cli": ("consultflow.store", "sqlalchemy"),
    "scheduler": ("consultflow.store", "consultflow.cli"),
    "export": ("consultflow.store", "consultflow.cli", "sqlalchemy", "click"),
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    """No module of a layer imports a package that layer must not depend on."""
    offences = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in imports_of(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])
    ]
    assert offences == []
