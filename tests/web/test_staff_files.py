"""Files through the server: an import read where the person is, reports written where the person is.

The same steps run locally (`--db`, `--as`) and through `consultflow serve` with each person signed
in; the output, the exit codes and the files written must be the same.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest

from tests.web.test_staff import (
    AUDITOR,
    COORD,
    EXPERT,
    PLANNER,
    PLANNER2,
    People,
    _another_database,
    _login,
    _same,
    _staff,
    server,
)

pytestmark = [pytest.mark.slow, pytest.mark.long]

ROWS = """序号,姓名,村,意见内容,类别
1,张秀英,青龙村,建议硬化三组至五组的通组道路,环境卫生与农村路网
2,李建国,白马村,建议硬化三组至五组通组道路。,环境卫生与农村路网
3,王明,石桥村,,产业发展
4,刘华,梨园村,建设农产品冷链仓储点,产业发展
5,陈桂兰,青龙村,=HYPERLINK("http://x"),公共服务配套
"""


def _steps(folder: Path) -> list[tuple[str, tuple[str, ...]]]:
    source = folder / "村民大会.csv"
    return [
        (COORD, ("consultation", "create", "片区规划", "--area", "试点片区")),
        (COORD, ("round", "open", "1")),
        (EXPERT, ("opinion", "import", str(source), "--consultation", "1", "--channel", "villagers_assembly")),
        (
            EXPERT,
            (
                "opinion",
                "import",
                str(source),
                "--consultation",
                "1",
                "--channel",
                "villagers_assembly",
                "--dry-run",
                "--rejects",
                str(folder / "dry.csv"),
            ),
        ),
        (
            EXPERT,
            (
                "opinion",
                "import",
                str(source),
                "--consultation",
                "1",
                "--channel",
                "villagers_assembly",
                "--skip-invalid",
            ),
        ),
        (
            EXPERT,
            (
                "--json",
                "opinion",
                "import",
                str(source),
                "--consultation",
                "1",
                "--channel",
                "villagers_assembly",
                "--skip-invalid",
                "--rejects",
                str(folder / "again.csv"),
            ),
        ),
        (PLANNER, ("opinion", "duplicates", "--consultation", "1")),
        (COORD, ("opinion", "merge", "2", "--into", "1")),
        (PLANNER2, ("opinion", "merge", "3", "--into", "1")),  # refused: not a planner's to merge? (the workflow says)
        (EXPERT, ("opinion", "fire", "1,3,4", "screen")),
        (COORD, ("opinion", "assign", "1", "3", "4", "--to", PLANNER)),
        (PLANNER, ("opinion", "fire", "1", "adopt", "--text", "已纳入", "--plan-ref", "v2 §5.3")),
        (PLANNER, ("opinion", "fire", "3", "reject", "--reason", "超出范围")),
        (AUDITOR, ("report", "adoption", "1")),
        (AUDITOR, ("report", "account", "1")),
        (AUDITOR, ("--lang", "en", "report", "account", "1", "--format", "markdown")),
        (AUDITOR, ("report", "plan", "1", "--format", "json")),
        (AUDITOR, ("report", "account", "1", "-o", str(folder / "account.csv"))),
        (AUDITOR, ("report", "account", "1", "-o", str(folder / "account.csv"))),  # refused: the file exists
        (AUDITOR, ("report", "account", "1", "--format", "xlsx")),  # refused: binary needs a file
        (AUDITOR, ("report", "account", "1", "--names", "full", "--purpose", "核对")),  # refused: not a coordinator
        (COORD, ("report", "account", "1", "--names", "full", "--purpose", "回访核对", "-o", str(folder / "n.md"))),
        (AUDITOR, ("report", "chart", "1", "--kind", "rounds", "-o", str(folder / "rounds.png"))),
        (AUDITOR, ("--lang", "en", "report", "chart", "1", "--kind", "funnel", "-o", str(folder / "funnel.png"))),
        (AUDITOR, ("report", "chart", "1", "--kind", "categories", "-o", str(folder / "categories.png"))),
        (PLANNER, ("opinion", "theme", "add", "1", "4", "农村路网")),
        (AUDITOR, ("report", "brief", "1", "--out", str(folder / "brief.docx"))),
        (AUDITOR, ("report", "brief", "1", "--out", str(folder / "brief.docx"))),  # refused: the file exists
        *_plan_steps(folder),
        (AUDITOR, ("--json", "audit", "access")),
    ]


def _plan_steps(folder: Path) -> list[tuple[str, tuple[str, ...]]]:
    """The draft plan read where the planner is, reviewed, and its second version diffed (issue 26)."""
    (folder / "草案.md").write_text("# 草案\n\n## 一、交通\n\n1. 环线公路\n2. 通组道路硬化\n", encoding="utf-8")
    (folder / "草案2.csv").write_text("章节,条款,内容\n1,1,环线公路\n1,2,通组道路硬化，宽4米\n", encoding="utf-8")
    return [
        (PLANNER, ("plan", "import", "1", str(folder / "草案.md"), "--version-label", "征求意见稿")),
        (AUDITOR, ("plan", "show", "1")),
        (PLANNER, ("plan", "link", "1", "1.2")),
        (COORD, ("round", "close", "1")),
        (COORD, ("review", "open", "1")),
        (
            EXPERT,
            (
                "review",
                "record",
                "1",
                "1",
                "--rate",
                "1.1",
                "满意",
                "--rate",
                "1.2",
                "不满意",
                "--comment",
                "1.2",
                "要加宽",
            ),
        ),
        (EXPERT, ("review", "record", "1", "1", "--rate", "9.9", "满意")),  # refused: no such clause
        (PLANNER, ("--json", "plan", "import", "1", str(folder / "草案2.csv"))),
        (AUDITOR, ("plan", "diff", "1", "1", "2")),
        (AUDITOR, ("report", "review", "1")),
        (AUDITOR, ("--lang", "en", "report", "review", "1", "--format", "csv")),
    ]


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in (".csv", ".md", ".png")
    }


def test_imports_and_reports_are_the_same_through_the_server(db_url: str, tmp_path: Path) -> None:
    """Import (refused, dry run, skipping), duplicates, merge and every report: same output and the same files."""
    runs: list[list[tuple[int, str, str]]] = []
    files: list[dict[str, bytes]] = []
    for side in ("local", "remote"):
        folder = tmp_path / side
        folder.mkdir()
        (folder / "村民大会.csv").write_text(ROWS, encoding="utf-8")
        with _another_database(db_url) if side == "remote" else nullcontext(db_url) as url:
            people = People(url, tmp_path / f"{side}-home")
            _staff(people)
            steps = _steps(folder)
            if side == "local":
                done = [people.run(*args, person=who, local=True) for who, args in steps]
            else:
                with server(people, folder) as base:
                    _login(people, base, COORD, PLANNER, PLANNER2, EXPERT, AUDITOR)
                    done = [people.run(*args, person=who) for who, args in steps]
        runs.append(
            [
                (r.code, _same(r.out).replace(str(folder), "<dir>"), _same(r.err).replace(str(folder), "<dir>"))
                for r in done
            ]
        )
        files.append(_files(folder))
    for (who, args), here, there in zip(_steps(tmp_path), runs[0], runs[1], strict=True):
        assert here == there, (who, args)
    assert (
        files[0].keys()
        == files[1].keys()
        >= {"account.csv", "n.md", "村民大会.csv.rejects.csv", "rounds.png", "categories.png"}
    )
    assert "dry.csv" not in files[0]  # a dry run writes nothing, its rejects file neither
    for name in files[0]:
        if name != "n.md":  # names the time it was made
            assert files[0][name] == files[1][name], name
    codes = [code for code, _out, _err in runs[0]]
    assert codes.count(1) >= 4  # the refusals in the list are refused both ways
    assert "回访核对" in runs[1][-1][1], "the full-name report's read is on record through the server too"
