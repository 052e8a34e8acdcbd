"""Reports as the public gets them: the pilot's figures, read back from CSV and XLSX, in Chinese."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from python_calamine import CalamineWorkbook

from consultflow.cli.main import main
from consultflow.export.charts import cjk_font

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", name="demo_db")
def _demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One demo database shared by the report tests (they only read)."""
    db = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'demo.sqlite'}"
    result = CliRunner().invoke(main, ["--db", db, "-q", "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db


def run(db: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", db, "-q", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_adoption_report_shows_the_pilots_figures(demo_db: str) -> None:
    """800+ opinions, 203 adopted, and the 57% / 28.3% / 14.7% split by theme."""
    doc = json.loads(run(demo_db, "report", "adoption", "1", "--format", "json"))
    figures = doc["figures"]
    assert figures["opinions"] == 809 + 3  # the intake, and three comments in the plan's review (demo_plan)
    assert figures["outcomes"]["adopted"]["opinions"] == 203
    assert [(c["name"], c["share"]) for c in figures["by_category"]] == [
        ("industry", 57.0),
        ("public_services", 28.3),
        ("environment_roads", 14.7),
    ]
    text = run(demo_db, "report", "adoption", "1")
    assert "产业发展" in text and "57.0" in text and "采纳" in text
    english = run(demo_db, "--lang", "en", "report", "adoption", "1")
    assert "Industry development" in english


def test_csv_reads_back_into_the_same_figures(demo_db: str, tmp_path: Path) -> None:
    """The CSV starts with a BOM (Excel opens Chinese correctly) and holds the JSON's numbers."""
    figures = json.loads(run(demo_db, "report", "adoption", "1", "--format", "json"))["figures"]
    path = tmp_path / "adoption.csv"
    run(demo_db, "report", "adoption", "1", "-o", str(path))
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    start = next(i for i, r in enumerate(rows) if r == ["按类别"])
    categories = {r[0]: (int(r[1]), float(r[2]), int(r[3])) for r in rows[start + 2 : start + 5]}
    assert categories == {c["label"]: (c["opinions"], c["share"], c["adopted"]) for c in figures["by_category"]}


def test_xlsx_opened_by_an_independent_reader_gives_the_same_figures(demo_db: str, tmp_path: Path) -> None:
    """Calamine (not the library that wrote it) reads the workbook back: one sheet per table, numbers as numbers."""
    figures = json.loads(run(demo_db, "report", "adoption", "1", "--format", "json"))["figures"]
    path = tmp_path / "adoption.xlsx"
    run(demo_db, "report", "adoption", "1", "-o", str(path))
    book = CalamineWorkbook.from_path(str(path))
    assert "按类别" in book.sheet_names
    rows = book.get_sheet_by_name("按类别").to_python()
    assert rows[0][:3] == ["类别", "意见数", "占比(%)"]
    read = {r[0]: tuple(float(str(v)) for v in r[1:4]) for r in rows[1:]}
    assert read == {c["label"]: (c["opinions"], c["share"], c["adopted"]) for c in figures["by_category"]}
    outcomes = {r[0]: float(str(r[1])) for r in book.get_sheet_by_name("办理结果").to_python()[1:]}
    assert outcomes["采纳"] == 203


def test_published_account_in_chinese_markdown_hides_names_and_contacts(demo_db: str, tmp_path: Path) -> None:
    """The account groups by category, pseudonymises names, and never shows a contact."""
    path = tmp_path / "account.md"
    run(demo_db, "report", "account", "1", "-o", str(path))
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# 三产融合片区国土空间规划意见征集 — 意见采纳情况说明")
    assert "## 产业发展" in text and "## 公共服务配套" in text
    assert "某" in text
    full = ["--names", "full", "--purpose", "核对", "--as", "李协调"]
    doc = json.loads(run(demo_db, "report", "account", "1", *full, "--format", "json"))
    adopted = [i for items in doc["figures"]["categories"].values() for i in items if i["outcome"] == "adopted"]
    assert len(adopted) == 203
    assert all(i["why"].startswith("v2 §") for i in adopted)
    full_names = {i["raised_by"] for items in doc["figures"]["categories"].values() for i in items}
    assert not any(name in text for name in full_names if len(name) > 1 and "某" not in name)


def test_account_for_one_round_lists_what_was_answered_in_it(demo_db: str) -> None:
    """`--round 3` holds the opinions answered in round 3, all decided then."""
    doc = json.loads(run(demo_db, "report", "account", "1", "--round", "3", "--format", "json"))
    items = [i for items in doc["figures"]["categories"].values() for i in items]
    assert items
    assert all(i["outcome"] is not None for i in items)


def test_plan_report_goes_from_a_clause_to_its_opinions(demo_db: str) -> None:
    """Every adopted or partly adopted opinion appears under the plan section that reflects it."""
    doc = json.loads(run(demo_db, "report", "plan", "1", "--format", "json"))
    sections = doc["figures"]["sections"]
    assert [s["section"] for s in sections] == sorted(
        (s["section"] for s in sections), key=lambda r: tuple(int(x) for x in r.split("§")[1].split()[0].split("."))
    )
    assert sum(s["adopted"] for s in sections) == 203
    assert sum(len(s["opinions"]) for s in sections) == 203 + 146


@pytest.mark.parametrize("kind", ["rounds", "categories", "funnel"])
def test_charts_are_png_files(demo_db: str, tmp_path: Path, kind: str) -> None:
    """Each chart is written as a PNG; Chinese labels when a CJK font exists, English otherwise (and it says so)."""
    path = tmp_path / f"{kind}.png"
    result = CliRunner().invoke(main, ["--db", demo_db, "report", "chart", "1", "--kind", kind, "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    if cjk_font() is None:
        assert "English labels" in result.stderr
    else:
        assert "English labels" not in result.stderr


def test_category_chart_of_an_empty_consultation_is_refused_in_one_line(tmp_path: Path) -> None:
    """No opinions, no shares: one line and a usage exit, no file and no open figure left behind."""
    db = str(tmp_path / "empty.sqlite")
    path = tmp_path / "categories.png"
    runner = CliRunner()
    for args in (
        ["db", "upgrade"],
        ["actor", "add", "李协调", "--role", "coordinator"],
        ["--as", "李协调", "consultation", "create", "空的", "--area", "片区"],
    ):
        assert runner.invoke(main, ["--db", db, *args]).exit_code == 0
    result = runner.invoke(main, ["--db", db, "report", "chart", "1", "--kind", "categories", "-o", str(path)])
    assert result.exit_code == 1, result.output
    assert "no opinions yet" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not path.exists()


def test_binary_format_needs_a_file(demo_db: str) -> None:
    """XLSX to the terminal is refused with one line."""
    result = CliRunner().invoke(main, ["--db", demo_db, "report", "adoption", "1", "--format", "xlsx"])
    assert result.exit_code == 1
    assert "give --output FILE" in result.stderr


def test_verify_on_the_demo_is_intact_and_as_of_now_matches_live(demo_db: str) -> None:
    """The demo's chain verifies, and rebuilding states as of now gives today's states."""
    out = run(demo_db, "audit", "verify", "1")
    assert "chain intact" in out
    rebuilt = {r["opinion_id"]: r["state"] for r in json.loads(run(demo_db, "audit", "as-of", "2099-01-01", "--json"))}
    live = {o["id"]: o["state"] for o in json.loads(run(demo_db, "opinion", "list", "--json"))}
    assert rebuilt == live
