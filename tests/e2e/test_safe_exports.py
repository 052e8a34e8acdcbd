"""Exports a county can publish safely: no formula evaluated, no control character, no file clobbered."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from openpyxl import load_workbook
from python_calamine import CalamineWorkbook
from sqlalchemy import text

from consultflow.store.engine import make_engine
from tests.conftest import Cli
from tests.e2e.test_cli_loop import COORD, EXPERT, PLANNER, setup_people

FORMULAS = ['=HYPERLINK("http://evil.example","点我")', "+1+1", "-2+3", "@SUM(1,2)"]


def _opinions(cli: Cli, texts: list[str]) -> None:
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    for t in texts:
        cli.ok(
            "opinion", "submit", "--consultation", "1", "--participant", "1",
            "--category", "industry", "--channel", "open_air_meeting", "--text", t, actor=EXPERT,
        )  # fmt: skip
    ids = [str(oid) for oid in range(1, len(texts) + 1)]
    cli.ok("opinion", "assign", *ids, "--to", PLANNER, actor=COORD)
    for oid in range(1, len(texts) + 1):
        cli.ok("opinion", "fire", str(oid), "screen", actor=EXPERT)
        cli.ok("opinion", "fire", str(oid), "give_feedback", "--text", "已研究", actor=PLANNER)


def _texts_in_xlsx(path: Path) -> set[str]:
    return {
        str(value)
        for sheet in CalamineWorkbook.from_path(str(path)).sheet_names
        for row in CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()
        for value in row
    }


def test_a_text_that_looks_like_a_formula_is_never_one(cli: Cli, tmp_path: Path) -> None:
    """In XLSX they are text cells (not formulas); in CSV a leading apostrophe keeps Excel from evaluating."""
    _opinions(cli, FORMULAS)
    xlsx, csv_path = tmp_path / "account.xlsx", tmp_path / "account.csv"
    cli.ok("report", "account", "1", "-o", str(xlsx))
    cli.ok("report", "account", "1", "-o", str(csv_path))
    book = load_workbook(xlsx)
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"], "a formula cell was written"
    assert set(FORMULAS) <= {str(c.value) for c in cells}  # the texts themselves, as text
    assert set(FORMULAS) <= _texts_in_xlsx(xlsx)  # an independent reader sees the same text
    rows = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    written = {v for row in rows for v in row}
    assert {"'" + f for f in FORMULAS} <= written
    assert not [v for v in written if v and (v[0] in "=+@" or (v[0] == "-" and v != "-"))]


def test_control_characters_are_refused_when_typed(cli: Cli) -> None:
    """A bell in an opinion, an escape in feedback: one line naming the character; nothing written."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    refused = cli(
        "opinion", "submit", "--consultation", "1", "--participant", "1", "--category", "industry",
        "--channel", "open_air_meeting", "--text", "修路\x07", actor=EXPERT,
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "opinion text contains a control character (U+0007) at character 3" in refused.stderr
    assert cli.ok("opinion", "list", "--json").stdout.strip() == "[]"
    cli.ok(
        "opinion", "submit", "--consultation", "1", "--participant", "1", "--category", "industry",
        "--channel", "open_air_meeting", "--text", "第一行\r\n第二行\t附注", actor=EXPERT,
    )  # fmt: skip
    cli.ok("opinion", "fire", "1", "screen", actor=EXPERT)
    bad = cli("opinion", "fire", "1", "give_feedback", "--text", "\x1b[31m红字", actor=PLANNER)
    assert bad.exit_code == 1 and "--text contains a control character (U+001B)" in bad.stderr


def test_old_rows_with_control_characters_still_export(cli: Cli, tmp_path: Path) -> None:
    """Rows stored before the check: the export drops what a spreadsheet cannot hold instead of crashing."""
    _opinions(cli, ["建议修路"])
    engine = make_engine(cli.url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE opinion SET text = :t"), {"t": "建议\x01修\x0b路"})
    engine.dispose()
    out = tmp_path / "account.xlsx"
    cli.ok("report", "account", "1", "-o", str(out))
    assert "建议修路" in _texts_in_xlsx(out)


def test_output_files_are_not_clobbered_and_links_not_followed(cli: Cli, tmp_path: Path) -> None:
    """An existing file or a planted link is refused; --force replaces the name itself, never the link's target."""
    _opinions(cli, ["建议修路"])
    existing = tmp_path / "published.md"
    existing.write_text("last month's account", encoding="utf-8")
    refused = cli("report", "account", "1", "-o", str(existing))
    assert refused.exit_code == 1 and "is already a file" in refused.stderr and "--force" in refused.stderr
    assert existing.read_text(encoding="utf-8") == "last month's account"
    target = tmp_path / "precious.txt"
    target.write_text("do not touch", encoding="utf-8")
    link = tmp_path / "report.md"
    link.symlink_to(target)
    for args in (("report", "account", "1", "-o", str(link)), ("report", "chart", "1", "-o", str(link))):
        result = cli(*args)
        assert result.exit_code == 1 and "is already a link" in result.stderr, args
    cli.ok("report", "account", "1", "-o", str(link), "--force")
    assert target.read_text(encoding="utf-8") == "do not touch"
    assert not link.is_symlink() and "建议修路" in link.read_text(encoding="utf-8")
    cli.ok("report", "adoption", "1", "-o", str(existing), "--force")
    assert existing.read_text(encoding="utf-8") != "last month's account"


def test_over_long_trigger_texts_are_refused_with_their_limit(cli: Cli) -> None:
    """A 201-character plan reference or a 2001-character reason: one line with the limit; the opinion stays."""
    _opinions(cli, ["建议修缮村道"])
    cli.ok("opinion", "fire", "1", "reparticipate", "--stance", "agree", "--text", "同意", actor=EXPERT)
    long_ref = cli("opinion", "fire", "1", "adopt", "--text", "已纳入", "--plan-ref", "条" * 201, actor=PLANNER)
    assert long_ref.exit_code == 1
    assert "--plan-ref is 201 characters; at most 200 are allowed" in long_ref.stderr
    long_reason = cli("opinion", "fire", "1", "reject", "--reason", "因" * 2001, actor=PLANNER)
    assert long_reason.exit_code == 1 and "--reason is 2001 characters; at most 2000" in long_reason.stderr
    assert "Traceback" not in long_ref.stderr + long_reason.stderr
    shown = cli.ok("opinion", "show", "1", "--json").stdout
    assert '"state": "under_review"' in shown or '"state":"under_review"' in shown
    cli.ok("opinion", "fire", "1", "adopt", "--text", "已纳入", "--plan-ref", "条" * 200, actor=PLANNER)
