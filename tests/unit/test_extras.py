"""Without an extra, the command that needs it does nothing and names the extra in one line (exit 1).

These run in-process with the module hidden (as if not installed); tests/e2e/test_wheel.py runs the
same commands from a wheel installed with its core dependencies only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import docx
import pytest
from click.testing import CliRunner

from consultflow.cli.main import main
from tests.conftest import Cli

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _install(extra: str) -> str:
    return f"pip install 'consultflow[{extra}]'"


def _one_opinion(cli: Cli) -> None:
    cli.ok("actor", "add", "李协调", "--role", "coordinator")
    cli.ok("participant", "add", "张秀英", "--village", "青龙村", actor="李协调")
    cli.ok("consultation", "create", "片区规划", "--area", "试点片区", actor="李协调")
    cli.ok("round", "open", "1", actor="李协调")
    cli.ok(
        "opinion", "submit", "--consultation", "1", "--participant", "1", "--category", "industry",
        "--channel", "open_air_meeting", "--text", "建议发展民宿", actor="李协调",
    )  # fmt: skip


def test_a_postgresql_url_without_psycopg_names_the_postgres_extra(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A postgresql:// database without psycopg: one line naming the postgres extra, exit 1."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    done = CliRunner().invoke(main, ["--db", "postgresql://cf@127.0.0.1:1/county", "db", "current"])
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [f"Error: PostgreSQL needs the postgres extra: {_install('postgres')}"]


@pytest.mark.parametrize("command", ["serve", "web"])
def test_the_server_without_the_web_extra_names_it(cli: Cli, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    """`serve` (or `web`) without uvicorn: one line naming the web extra, exit 1, nothing listens."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    done = cli(command, "--port", "1")
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [
        f"Error: the server (consultflow serve) needs the web extra: {_install('web')}"
    ]


def test_xlsx_in_and_out_without_openpyxl_name_the_xlsx_extra(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Importing or writing an XLSX without openpyxl: one line naming the xlsx extra; nothing imported or written."""
    _one_opinion(cli)
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["村民", "村", "类别", "渠道", "意见"])  # type: ignore[union-attr]
    book.active.append(["张秀英", "青龙村", "产业", "坝坝会", "建议修路"])  # type: ignore[union-attr]
    book.save(tmp_path / "opinions.xlsx")
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    line = f"Error: reading or writing XLSX files needs the xlsx extra: {_install('xlsx')}"
    imported = cli("opinion", "import", str(tmp_path / "opinions.xlsx"), "--consultation", "1", actor="李协调")
    assert (imported.exit_code, imported.output.strip().splitlines()) == (1, [line])
    assert "建议修路" not in cli.ok("opinion", "list", "--consultation", "1").output
    out = tmp_path / "adoption.xlsx"
    exported = cli("report", "adoption", "1", "--format", "xlsx", "-o", str(out))
    assert (exported.exit_code, exported.output.strip().splitlines()) == (1, [line])
    assert not out.exists()


def test_a_chart_without_matplotlib_names_the_charts_extra(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`report chart` without matplotlib: one line naming the charts extra, no file."""
    _one_opinion(cli)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "rounds.png"
    done = cli("report", "chart", "1", "--kind", "funnel", "-o", str(out))
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [f"Error: drawing charts needs the charts extra: {_install('charts')}"]
    assert not out.exists()


def test_the_brief_without_matplotlib_is_written_without_charts_and_says_so(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`report brief` without matplotlib: the DOCX is written with its figures, saying the charts were left out."""
    _one_opinion(cli)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "brief.docx"
    done = cli("report", "brief", "1", "--out", str(out))
    assert done.exit_code == 0, done.output
    note = f"charts left out: drawing them needs the charts extra: {_install('charts')}"
    assert done.output.strip().splitlines() == [note, f"wrote {out}"]
    written = docx.Document(str(out))
    assert not written.inline_shapes
    text = "\n".join(p.text for p in written.paragraphs)
    assert "本汇报未附图表" in text
    assert "累计收集村民意见建议1条" in text
