"""Every migration's `upgrade()` is expand-only, or says what it contracts or locks (migrations/versions/__init__.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from consultflow.store import migrate

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
SCRIPTS = sorted(VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))

# Tables that grow with the opinions (an index or foreign key on one blocks its writers while it builds).
LARGE = {
    "opinion",
    "opinion_entry",
    "audit_event",
    "participant",
    "reminder",
    "delivery",
    "delivery_attempt",
    "personal_data_access",
    "personal_data_access_item",
    "account_event",
}
INCOMPATIBLE_CALLS = {"drop_column", "drop_table", "rename_table", "drop_constraint", "drop_index", "alter_column"}
INCOMPATIBLE_SQL = re.compile(r"\b(DROP|RENAME|REVOKE|ALTER\s+COLUMN|TRUNCATE)\b", re.IGNORECASE)
REWRITE_SQL = re.compile(r"^\s*(UPDATE|DELETE\s+FROM)\b", re.IGNORECASE)


def _declared(module: ast.Module, name: str) -> str | None:
    for node in module.body:
        target: ast.expr | None = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == name and isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and len(value.value) >= 20:
                return value.value
    return None


def _table(call: ast.Call, created: set[str], batch: dict[str, str], index: int) -> str | None:
    """The table a call works on (its `index`th argument), or the batch it runs in."""
    owner = call.func.value if isinstance(call.func, ast.Attribute) else None
    if isinstance(owner, ast.Name) and owner.id in batch:
        return batch[owner.id]
    given = call.args[index] if len(call.args) > index else None
    if isinstance(given, ast.Constant):
        return str(given.value)
    return None


def findings(path: Path) -> tuple[list[str], list[str]]:
    """What `upgrade()` does that the previous release cannot run beside, and what blocks writers."""
    module = ast.parse(path.read_text(encoding="utf-8"))
    upgrade = next(n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    calls = [n for n in ast.walk(upgrade) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    created = {str(c.args[0].value) for c in calls if c.func.attr == "create_table" and isinstance(c.args[0], ast.Constant)}  # type: ignore[attr-defined]  # fmt: skip
    batch: dict[str, str] = {}
    for node in ast.walk(upgrade):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "batch_alter_table"
                    and isinstance(item.optional_vars, ast.Name)
                    and call.args
                    and isinstance(call.args[0], ast.Constant)
                ):
                    batch[item.optional_vars.id] = str(call.args[0].value)
    incompatible: list[str] = []
    locks: list[str] = []
    for call in calls:
        name = call.func.attr  # type: ignore[attr-defined]
        where = f"line {call.lineno}: {name}"
        if name in INCOMPATIBLE_CALLS:
            incompatible.append(where)
        elif name == "add_column":
            column = call.args[-1] if call.args else None
            keywords = {k.arg: k.value for k in column.keywords} if isinstance(column, ast.Call) else {}
            nullable = keywords.get("nullable")
            if isinstance(nullable, ast.Constant) and nullable.value is False and "server_default" not in keywords:
                incompatible.append(f"{where} NOT NULL without a server default")
        elif name == "create_index":
            table = _table(call, created, batch, 1)
            concurrently = any(k.arg == "postgresql_concurrently" for k in call.keywords)
            if table in LARGE and table not in created and not concurrently:
                locks.append(f"{where} on {table}")
        elif name == "create_foreign_key":
            table = _table(call, created, batch, 1)
            if table in LARGE and table not in created:
                locks.append(f"{where} on {table}")
        elif name in {"update", "delete"} and isinstance(call.func.value, ast.Name) and call.func.value.id == "sa":  # type: ignore[attr-defined]
            locks.append(f"{where}: rewrites existing rows")
    for node in ast.walk(upgrade):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if INCOMPATIBLE_SQL.search(node.value):
                incompatible.append(f"line {node.lineno}: SQL {node.value.strip()[:40]!r}")
            elif REWRITE_SQL.search(node.value):
                locks.append(f"line {node.lineno}: SQL {node.value.strip()[:40]!r} rewrites existing rows")
    return incompatible, locks


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem[:4] for p in SCRIPTS])
def test_each_migration_expands_or_declares_what_it_contracts_or_locks(path: Path) -> None:
    """An upgrade breaks no running release and blocks no writer unless its migration says so (CONTRACT, LOCKS)."""
    module = ast.parse(path.read_text(encoding="utf-8"))
    incompatible, locks = findings(path)
    contract, locking = _declared(module, "CONTRACT"), _declared(module, "LOCKS")
    if incompatible:
        assert contract, f"{path.name} is not expand-only ({'; '.join(incompatible)}): declare CONTRACT = 'why'"
    if locks:
        assert contract or locking, f"{path.name} blocks writers ({'; '.join(locks)}): declare LOCKS = 'what waits'"
    if contract is not None:
        assert incompatible or locks, f"{path.name} declares CONTRACT but does nothing that needs it"


def test_revisions_are_numbered_without_gaps_up_to_the_head() -> None:
    """`services.schema` tells an older revision from a later release's by its number."""
    numbers = [p.name[:4] for p in SCRIPTS]
    assert numbers == [f"{n:04d}" for n in range(1, len(SCRIPTS) + 1)]
    assert numbers[-1] == migrate.head_revision() == migrate.alembic_head_revision()
    for path in SCRIPTS:
        text = path.read_text(encoding="utf-8")
        assert f'revision: str = "{path.name[:4]}"' in text
