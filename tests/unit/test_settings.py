"""Settings: declared once, read in one place, checked once, documented from the declaration."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from consultflow.cli.main import main
from consultflow.config import KNOWN, SETTINGS, TOOLING_PREFIXES, Environment, settings_table
from consultflow.domain.errors import ConfigurationError
from tests.helpers import docs_hooks

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_page_is_the_generated_table() -> None:
    """The configuration reference shows exactly what `consultflow settings --markdown` prints, every setting in it.

    The page holds only the mark the site's build fills from the settings object, never a copy.
    """
    hooks = docs_hooks()
    page = (ROOT / "docs" / "reference" / "configuration.md").read_text(encoding="utf-8")
    assert page.count(hooks.SETTINGS_MARK) == 1
    assert "| `CONSULTFLOW_" not in page
    built = hooks.on_page_markdown(
        page, page=SimpleNamespace(file=SimpleNamespace(src_uri="reference/configuration.md")), config=None, files=None
    )
    printed = CliRunner().invoke(main, ["settings", "--markdown"])
    assert printed.exit_code == 0
    assert printed.output.strip() == settings_table()
    assert built == page.replace(hooks.SETTINGS_MARK, printed.output.strip())
    assert [s.env for s in SETTINGS if f"| `{s.env}` |" not in built] == []


def test_no_module_reads_a_setting_but_the_settings_module() -> None:
    """Outside consultflow/config.py, no code reads os.environ for a CONSULTFLOW_* name or gives click an envvar."""
    offenders = []
    for path in (ROOT / "consultflow").rglob("*.py"):
        if path.name == "config.py" and path.parent.name == "consultflow":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "envvar":
                offenders.append(f"{path.relative_to(ROOT)}:{node.value.lineno} envvar=")
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv"):
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and str(first.value).startswith("CONSULTFLOW_"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {first.value!r}")
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                key = node.slice
                if isinstance(key, ast.Constant) and isinstance(node.ctx, ast.Load):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {key.value!r}")
    assert offenders == []


def test_every_setting_named_in_the_code_is_declared() -> None:
    """A CONSULTFLOW_* name written anywhere in the package is one of the declared settings."""
    written: set[str] = set()
    for path in (ROOT / "consultflow").rglob("*.py"):
        written |= set(re.findall(r"\bCONSULTFLOW_[A-Z_]+[A-Z]\b", path.read_text(encoding="utf-8")))
    assert {w for w in written - KNOWN if not w.startswith(TOOLING_PREFIXES)} == set()
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CONSULTFLOW_LANG", "fr", "CONSULTFLOW_LANG: 'fr' is not one of: zh, en"),
        ("CONSULTFLOW_TZ", "Mars/Olympus", "CONSULTFLOW_TZ: unknown time zone 'Mars/Olympus'"),
        ("CONSULTFLOW_WEB_PORT", "70000", "CONSULTFLOW_WEB_PORT: '70000' is outside 1 to 65535"),
        ("CONSULTFLOW_SMTP_SECURITY", "tls", "CONSULTFLOW_SMTP_SECURITY: 'tls' is not one of: none, starttls, ssl"),
        ("CONSULTFLOW_WEB_SECURE_COOKIES", "maybe", "CONSULTFLOW_WEB_SECURE_COOKIES: 'maybe' is not 1/0"),
    ],
)
def test_a_bad_value_stops_any_command_in_one_line(name: str, value: str, says: str, tmp_path: Path) -> None:
    """A bad setting is refused when the command starts, naming the variable and what it allows."""
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        Environment({name: value})
    result = CliRunner(env={name: value}).invoke(main, ["--db", str(tmp_path / "x.sqlite"), "consultation", "list"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"Error: {result.stderr.strip().removeprefix('Error: ')}"]
    assert says in result.stderr


def test_a_bad_value_says_what_the_setting_is_for_after_the_problem() -> None:
    """The setting's meaning follows the problem after a dash, so a meaning in brackets is not nested in more."""
    with pytest.raises(ConfigurationError) as info:
        Environment({"CONSULTFLOW_TZ": "Mars/Base"})
    assert str(info.value) == (
        "CONSULTFLOW_TZ: unknown time zone 'Mars/Base'; use an IANA name such as Asia/Shanghai or UTC"
        " — time zone times are shown in (stored in UTC)"
    )


def test_a_misspelt_variable_is_warned_of_with_the_setting_it_is_close_to(tmp_path: Path) -> None:
    """CONSULTFLOW_DBB is not a setting: the command runs, and the warning names it and CONSULTFLOW_DB."""
    db = str(tmp_path / "x.sqlite")
    assert CliRunner().invoke(main, ["--db", db, "-q", "db", "upgrade"]).exit_code == 0
    typo = CliRunner(env={"CONSULTFLOW_DBB": "x", "CONSULTFLOW_SOMETHING_ELSE": "y"})
    result = typo.invoke(main, ["--db", db, "-q", "--log-json", "actor", "list"])
    assert result.exit_code == 0, result.output
    (warning,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert warning["event"] == "unknown_settings" and warning["level"] == "warning"
    assert warning["names"] == ["CONSULTFLOW_DBB", "CONSULTFLOW_SOMETHING_ELSE"]
    assert warning["did_you_mean"] == {"CONSULTFLOW_DBB": "CONSULTFLOW_DB"}


def test_a_secrets_bad_value_is_not_echoed() -> None:
    """Secrets are declared as such: `settings` shows only that they are set."""
    result = CliRunner(env={"CONSULTFLOW_TOKEN": "cft_secret_value_here"}).invoke(main, ["--json", "settings"])
    assert result.exit_code == 0
    assert "cft_secret_value_here" not in result.output
    rows = {r["variable"]: r for r in __import__("json").loads(result.stdout)}
    assert rows["CONSULTFLOW_TOKEN"]["value"] == "(set)"


def test_the_environment_sets_options_and_the_command_line_wins(tmp_path: Path) -> None:
    """CONSULTFLOW_DB chooses the database (and local mode); --db given on the line overrides it."""
    runner = CliRunner(env={"CONSULTFLOW_DB": str(tmp_path / "from-env.sqlite"), "CONSULTFLOW_LANG": "en"})
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert (tmp_path / "from-env.sqlite").exists()
    assert runner.invoke(main, ["--db", str(tmp_path / "line.sqlite"), "db", "upgrade"]).exit_code == 0
    assert (tmp_path / "line.sqlite").exists()
    shown = runner.invoke(main, ["whoami"])
    assert "local mode on" in shown.stdout and "from-env.sqlite" in shown.stdout
