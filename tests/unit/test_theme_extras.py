"""The themes and brief extras load only where they are needed, and their absence is one line naming the extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.helpers import PLANNER


def test_jieba_and_python_docx_load_only_in_the_commands_that_need_them() -> None:
    """The whole registry (as the server loads it) and the CLI's command modules import neither."""
    probe = (
        "import sys\n"
        "import consultflow.services.commands, consultflow.cli.themes, consultflow.cli.report, consultflow.cli.opinion\n"
        "import consultflow.web.app\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('jieba', 'docx')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "LOADED []" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_missing_extra_is_one_line_naming_it(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the themes or brief extra, suggest and brief fail in one line naming what to install; no file."""
    cli.ok("actor", "add", "李协调", "--role", "coordinator")
    cli.ok("actor", "add", PLANNER, "--role", "planner", actor="李协调")
    cli.ok("consultation", "create", "片区规划", "--area", "试点片区", actor="李协调")
    monkeypatch.setitem(sys.modules, "jieba", None)  # as if not installed: importing it fails
    monkeypatch.setitem(sys.modules, "docx", None)
    suggested = cli("theme", "suggest", "1")
    assert suggested.exit_code != 0
    assert suggested.output.strip().splitlines() == [
        "Error: theme suggestions need the themes extra: pip install 'consultflow[themes]'"
    ]
    brief = cli("report", "brief", "1", "--out", str(tmp_path / "b.docx"))
    assert brief.exit_code != 0 and "pip install 'consultflow[brief]'" in brief.output
    assert not (tmp_path / "b.docx").exists()
