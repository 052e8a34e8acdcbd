"""Real exports go in whole: 问卷星, 腾讯问卷, 金数据 and a clerk's sheet, every row accounted for, none lost in silence."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.conftest import Cli
from tests.e2e.test_cli_loop import COORD, EXPERT, setup_people

WJX_HEADERS = [
    "序号", "提交答卷时间", "所用时间", "来源", "来源详情", "来自IP",
    "1、您所在的村：", "2、您的意见属于哪一类？", "3、您对规划的意见和建议：", "4、您的联系电话：",
]  # fmt: skip
TENCENT_HEADERS = [
    "编号", "开始答题时间", "结束答题时间", "答题时长", "IP",
    "Q1.您所在的村", "Q2.您的意见属于哪一类", "Q2.您的意见属于哪一类-其他（请注明）", "Q3.请填写您的意见",
]  # fmt: skip
CLERK_TITLE = ["青龙村村民大会意见记录表", "", "", "", "", ""]
CLERK_HEADERS = ["序号", "姓名", "村组", "意见内容", "类别", "记录人"]
KINDS = ["产业", "公共服务", "农村路网"]  # as people write them


def _wjx(n: int) -> list[list[str]]:
    rows = []
    for i in range(1, n + 1):
        phone = ["(空)", "028-87765767", "１５９１２３４５６７８", "13900001111"][i % 4] if i != 5 else "87765767"
        rows.append([
            str(i), f"2023/3/{1 + i % 9} 10:{i % 60:02d}:05", f"{60 + i}秒", "微信", "N/A", f"10.0.0.{i}",
            ["青龙村", "白马村"][i % 2], KINDS[i % 3], f"问卷星意见第{i}条", phone,
        ])  # fmt: skip
    return rows


def _tencent(n: int) -> list[list[str]]:
    return [
        [
            str(i), "2023-03-05 09:00:00", f"2023-03-05 09:{i % 60:02d}:00", "120", f"10.1.0.{i}",
            "石桥村", ["产业发展", "公共服务配套", "其他"][i % 3], "道路" if i % 3 == 2 else "",
            f"腾讯问卷意见第{i}条",
        ]
        for i in range(1, n + 1)
    ]  # fmt: skip


def _write_csv(path: Path, rows: list[list[str]], encoding: str, delimiter: str = ",") -> Path:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def _ready(cli: Cli) -> None:
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)


def _import(cli: Cli, path: Path, *extra: str, ok: bool = True) -> dict[str, object]:
    args = ["--json", "opinion", "import", str(path), "--consultation", "1", "--channel", "online_survey", *extra]
    result = cli.ok(*args, actor=EXPERT) if ok else cli(*args, actor=EXPERT)
    return json.loads(result.stdout) if ok else {"stderr": result.stderr, "code": result.exit_code}


def _accounted(done: dict[str, object], data_rows: int) -> None:
    counted = [done["imported"], done["already"], done["invalid"], done["skipped"]]
    assert sum(int(str(c)) for c in counted) == done["rows"] == data_rows, done


def _count(cli: Cli) -> int:
    return len(json.loads(cli.ok("opinion", "list", "--json").stdout))


def test_three_platforms_and_a_clerk_sheet_into_one_consultation_lose_nothing(cli: Cli, tmp_path: Path) -> None:
    """问卷星 (GB18030 CSV), 腾讯问卷 (XLSX) and a clerk's sheet with a title row: overlapping 序号, every row in."""
    _ready(cli)
    wjx = _write_csv(tmp_path / "问卷星.csv", [WJX_HEADERS, *_wjx(12)], "gb18030")
    done = _import(cli, wjx)
    _accounted(done, 12)
    assert done["profile"] == "wjx" and (done["imported"], done["invalid"]) == (12, 0)
    assert done["columns"]["category"] == "2、您的意见属于哪一类？"  # type: ignore[index]
    assert done["contacts_dropped"] == 1  # 87765767 lacks its area code; landlines, full-width digits are contacts
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [TENCENT_HEADERS, *_tencent(9)]:
        sheet.append(row)
    book.save(tmp_path / "腾讯问卷.xlsx")
    done = _import(cli, tmp_path / "腾讯问卷.xlsx", "--skip-invalid")
    _accounted(done, 9)
    assert done["profile"] == "tencent" and done["columns"]["text"] == "Q3.请填写您的意见"  # type: ignore[index]
    assert (done["imported"], done["invalid"], done["refused"]) == (6, 3, {"unknown category": 3})
    clerk = [CLERK_TITLE, CLERK_HEADERS] + [
        [str(i), f"村民{i}", "青龙村三组", f"会上意见第{i}条", KINDS[i % 3], "张文书"] for i in range(1, 6)
    ]
    clerk += [["合计", "5条", "", "", "", ""], ["记录人：张文书", "", "签字：", "", "", ""]]
    path = _write_csv(tmp_path / "会议记录.csv", clerk, "utf-8-sig")
    done = _import(cli, path, "--channel", "villagers_assembly")
    _accounted(done, 7)
    assert (done["imported"], done["skipped"], done["header_row"], done["profile"]) == (5, 2, 2, "clerk")
    assert _count(cli) == 12 + 6 + 5
    shown = cli.ok("opinion", "import", str(path), "--consultation", "1", "--channel", "villagers_assembly",
                   "--dry-run", actor=EXPERT).stdout  # fmt: skip
    assert "0 to import, 5 already there (same content), 0 refused, 2 skipped" in shown
    assert "= 7 of 7 data row(s)" in shown and "row 8 skipped: totals row" in shown
    assert not list(tmp_path.glob("会议记录.csv.rejects*"))  # a dry run writes nothing


def test_a_key_recorded_with_other_content_is_refused_naming_both(cli: Cli, tmp_path: Path) -> None:
    """The same source's 序号 saying something else: refused (dry run too) with the opinion named; --source is its own."""
    _ready(cli)
    first = _write_csv(tmp_path / "a.csv", [WJX_HEADERS, *_wjx(4)], "utf-8")
    _import(cli, first)
    changed = _wjx(4)
    changed[1][8] = "完全不同的意见"
    second = _write_csv(tmp_path / "b.csv", [WJX_HEADERS, *changed], "utf-8")
    dry = cli.ok("opinion", "import", str(second), "--consultation", "1", "--dry-run", actor=EXPERT).stdout
    assert "row 3, column key: its key in source 'wjx' is already recorded as opinion 2" in dry
    refused = _import(cli, second, ok=False)
    assert refused["code"] == 1 and "recorded as opinion 2 with different content" in str(refused["stderr"])
    done = _import(cli, second, "--source", "第二轮问卷")
    _accounted(done, 4)
    assert done["imported"] == 4 and _count(cli) == 8


def test_workbook_sheets_tsv_placeholders_and_submission_times(cli: Cli, tmp_path: Path) -> None:
    """Sheet 2 numbered like sheet 1 goes in; a TSV; (空) is blank; times kept as submitted_at; fields kept."""
    _ready(cli)
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "一组"
    second = book.create_sheet("二组")
    for n, sheet in enumerate((first, second)):
        sheet.append(["序号", "姓名", "村", "类别", "意见内容", "备注"])
        for i in range(1, 4):
            sheet.append([i, "(空)", "白马村", "产业", f"第{n}页第{i}条", "（空）" if i == 1 else "会后补记"])
    book.save(tmp_path / "两页.xlsx")
    for name in ("一组", "二组"):
        done = _import(cli, tmp_path / "两页.xlsx", "--sheet", name)
        _accounted(done, 3)
        assert done["imported"] == 3
    people = json.loads(cli.ok("participant", "list", "--names", "full", "--purpose", "核对", "--json",
                               actor=COORD).stdout)  # fmt: skip
    assert "(空)" not in {p["name"] for p in people}
    rows = [["序号", "提交时间", "村", "类别", "意见内容", "来源"]]
    rows += [["1", "2023-03-01 08:30:00", "石桥村", "公共服务", "增设卫生室", "纸质"]]
    rows += [["2", "昨天下午", "石桥村", "公共服务", "修路", "纸质"]]
    rows += [["3", "2023-03-01T08:30:00+00:00", "石桥村", "custom", "路灯", "纸质"]]
    tsv = _write_csv(tmp_path / "表.tsv", rows, "utf-8", delimiter="\t")
    done = _import(cli, tsv, "--skip-invalid", "--map-value", "category:custom=industry")
    _accounted(done, 3)
    assert (done["imported"], done["refused"]) == (2, {"bad submission time": 1})
    opinions = json.loads(cli.ok("opinion", "list", "--json").stdout)
    by_text = {o["text"]: o for o in opinions}
    assert by_text["增设卫生室"]["submitted_at"] == "2023-03-01T08:30:00+08:00"  # China's time unless it says
    assert by_text["路灯"]["submitted_at"] == "2023-03-01T16:30:00+08:00" and by_text["路灯"]["category"] == "industry"
    shown = json.loads(cli.ok("opinion", "show", str(by_text["增设卫生室"]["id"]), "--json").stdout)
    assert shown["opinion"]["source_fields"] == {"来源": "纸质"}
    again = _import(cli, tsv, "--skip-invalid", "--map-value", "category:custom=industry")  # rejects: a free name
    assert again["already"] == 2 and (tmp_path / "表.tsv.rejects-2.csv").exists()
    history = json.loads(cli.ok("audit", "history", "--consultation", "1", "--json").stdout)
    fields = [e["payload"].get("source_fields") for e in history if e["kind"] == "submitted"]
    assert '{"来源": "纸质"}' in fields and not any("10.0.0" in str(f) for f in fields)
    assert "chain intact" in cli.ok("audit", "verify").stdout


def test_an_unknown_value_names_the_allowed_ones_and_an_xls_file_is_read(cli: Cli, tmp_path: Path) -> None:
    """A category no label starts with is refused naming the allowed; .xls read with xlrd (written with xlwt)."""
    _ready(cli)
    rows = [["序号", "村", "类别", "意见内容"], ["1", "青龙村", "道路交通", "修路"], ["2", "青龙村", "服务", "x"]]
    path = _write_csv(tmp_path / "x.csv", rows, "utf-8")
    refused = _import(cli, path, ok=False)
    assert "unknown category '道路交通'; allowed: 产业发展/industry" in str(refused["stderr"])
    if importlib.util.find_spec("xlwt") is None or importlib.util.find_spec("xlrd") is None:
        pytest.skip("xlwt (to write an .xls here) or xlrd (to read it) is not installed")
    xlwt = importlib.import_module("xlwt")

    book = xlwt.Workbook()
    sheet = book.add_sheet("Sheet1")
    for r, row in enumerate([["序号", "村", "类别", "意见内容"], ["1", "青龙村", "产业", "发展茶园"]]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(tmp_path / "old.xls"))
    done = _import(cli, tmp_path / "old.xls")
    assert done["imported"] == 1


def test_an_export_imported_before_landlines_were_contacts_is_already_there(cli: Cli, tmp_path: Path) -> None:
    """Earlier releases left a landline out of what a row said; the same export imported again is not a conflict."""
    _ready(cli)
    rows = _wjx(4)  # row 1 gives a landline
    assert rows[0][-1] == "028-87765767"
    earlier = [[*r[:-1], ""] if r[-1] == "028-87765767" else r for r in rows]  # as an earlier release read it
    _accounted(_import(cli, _write_csv(tmp_path / "earlier.csv", [WJX_HEADERS, *earlier], "utf-8")), 4)
    again = _import(cli, _write_csv(tmp_path / "问卷星.csv", [WJX_HEADERS, *rows], "utf-8"))
    assert (again["imported"], again["already"], again["invalid"]) == (0, 4, 0)
    changed = [[*r[:8], r[8] + "（改）", r[9]] if r[0] == "1" else r for r in rows]  # what it says differs: refused
    refused = _import(cli, _write_csv(tmp_path / "changed.csv", [WJX_HEADERS, *changed], "utf-8"), ok=False)
    assert refused["code"] == 1 and "already recorded as opinion 1 with different content" in str(refused["stderr"])
