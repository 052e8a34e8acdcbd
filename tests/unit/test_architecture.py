"""The layout's other rules: lazy commands, the schema head, docstrings.

Which layer may import which is checked by import-linter alone (its contracts are in setup.cfg;
`make lint` and CI run `lint-imports`): one checker, one set of rules.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "consultflow"


def test_help_loads_no_command_module_and_no_database_code() -> None:
    """`consultflow --help` lists every command without importing SQLAlchemy, Alembic or a command module."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from consultflow.cli.main import main\n"
        "try:\n    main(['--help'], prog_name='consultflow')\nexcept SystemExit:\n    pass\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', 'structlog')"
        " or m.startswith('consultflow.cli.') and m not in ('consultflow.cli.main', 'consultflow.cli.output'))\n"
        "print('LOADED', loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out
    for name in ("opinion", "round", "audit", "worker", "workflow"):
        assert f"  {name} " in out


def test_lazy_command_table_matches_the_commands() -> None:
    """The help table kept for lazy loading says what each command's own help says."""
    import click

    from consultflow.cli.main import LAZY_COMMANDS, main

    ctx = click.Context(main)
    for name, (_module, _attribute, short) in LAZY_COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None
        assert command.get_short_help_str(limit=200) == short


def test_schema_head_constant_is_alembics_head() -> None:
    """The head revision kept as a constant (no Alembic import at start) is the one Alembic finds."""
    from consultflow.store import migrate

    assert migrate.head_revision() == migrate.alembic_head_revision()


def test_every_test_says_what_a_user_relies_on() -> None:
    """Every test has a docstring, so a failure says which promise to a user broke, not only which code did."""
    tests = Path(__file__).resolve().parents[1]
    offences = [
        f"{path.relative_to(tests.parent)}:{node.lineno} {node.name} has no docstring"
        for path in sorted(tests.rglob("test_*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
        and not ast.get_docstring(node)
    ]
    assert offences == []
