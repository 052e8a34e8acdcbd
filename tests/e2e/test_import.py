"""`opinion import`: Chinese spreadsheets and questionnaire exports in, nothing half-done, nothing twice."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from openpyxl import Workbook

from tests.conftest import Cli
from tests.e2e.test_cli_loop import COORD, EXPERT, setup_people

ASSEMBLY_HEADERS = ["序号", "姓名", "村", "电话", "类别", "意见内容"]
ASSEMBLY = [
    ["1", "王秀兰", "青龙村", "13900001111", "产业发展", "建议扩大生猪种业园区配套用地"],
    ["2", "李建国", "白马村", "", "公共服务配套", "希望增设村卫生室"],
    ["3", "王秀兰", "青龙村", "13900001111", "环境卫生与农村路网", "三组至五组通组道路需要硬化"],
    ["4", "", "白马村", "", "industry", "发展研学基地"],
]
QUESTIONNAIRE_HEADERS = [
    "序号",
    "提交答卷时间",
    "所用时间",
    "1、您所在的村：",
    "2、您的意见类别：",
    "3、您对规划的意见和建议：",
]


def _xlsx(path: Path, headers: list[str], rows: list[list[str]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "村民大会"
    sheet.append(headers)
    for row in rows:
        sheet.append([int(c) if c.isdigit() and len(c) < 3 else c for c in row])  # serials typed as numbers
    book.save(path)
    return path


def _csv(path: Path, headers: list[str], rows: list[list[str]], encoding: str) -> Path:
    out = io.StringIO()
    csv.writer(out).writerows([headers, *rows])
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def _questionnaire(n: int) -> list[list[str]]:
    villages = ["青龙村", "白马村", "石桥村"]
    kinds = ["产业发展", "公共服务配套", "环境卫生与农村路网"]
    return [
        [str(i), f"2023-03-0{1 + i % 5} 10:{i % 60:02d}", "95秒", villages[i % 3], kinds[i % 3], f"问卷意见第{i}条"]
        for i in range(1, n + 1)
    ]


def _ready(cli: Cli) -> None:
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)


def _count(cli: Cli) -> int:
    return len(json.loads(cli.ok("opinion", "list", "--json").stdout))


def test_an_assembly_spreadsheet_goes_in_with_one_command_and_only_once(cli: Cli, tmp_path: Path) -> None:
    """A local expert's XLSX in Chinese: columns found by header, people matched, a second import adds nothing."""
    _ready(cli)
    sheet = _xlsx(tmp_path / "村民大会.xlsx", ASSEMBLY_HEADERS, ASSEMBLY)
    args = ["opinion", "import", str(sheet), "--consultation", "1", "--channel", "villagers_assembly", "--json"]
    first = json.loads(cli.ok(*args, actor=EXPERT).stdout)
    assert (first["imported"], first["already"], first["invalid"]) == (4, 0, 0)
    assert first["columns"] == {
        "text": "意见内容", "category": "类别", "name": "姓名", "village": "村", "contact": "电话", "external_id": "序号",
    }  # fmt: skip
    again = json.loads(cli.ok(*args, actor=EXPERT).stdout)
    assert (again["imported"], again["already"]) == (0, 4)
    assert _count(cli) == 4
    people = json.loads(
        cli.ok("participant", "list", "--names", "full", "--purpose", "核对", "--json", actor=COORD).stdout
    )
    names = sorted(p["name"] for p in people)
    assert names == sorted(["张秀英", "王秀兰", "李建国", "匿名"])  # 王秀兰's two rows are one person
    history = json.loads(cli.ok("audit", "history", "--consultation", "1", "--json").stdout)
    submitted = [e for e in history if e["kind"] == "submitted"]
    assert [e["payload"]["intake"] for e in submitted][:2] == [
        {"source": "村民大会.xlsx", "sheet": "村民大会", "row": 2},
        {"source": "村民大会.xlsx", "sheet": "村民大会", "row": 3},
    ]
    assert "chain intact" in cli.ok("audit", "verify").stdout


def test_questionnaire_exports_in_each_encoding_and_an_overlapping_later_export(cli: Cli, tmp_path: Path) -> None:
    """GB18030, UTF-8 and UTF-8 with BOM exports with question texts as headers; a later export adds only new rows."""
    _ready(cli)
    for n, encoding in ((5, "gb18030"), (8, "utf-8-sig"), (10, "utf-8")):
        path = _csv(tmp_path / f"问卷_{encoding}.csv", QUESTIONNAIRE_HEADERS, _questionnaire(n), encoding)
        done = json.loads(
            cli.ok(
                "--json", "opinion", "import", str(path), "--consultation", "1", "--channel", "online_survey",
                actor=EXPERT,
            ).stdout
        )  # fmt: skip
        assert done["columns"]["text"] == "3、您对规划的意见和建议："
        assert done["columns"]["external_id"] == "序号"
        assert done["imported"] == n - (0 if n == 5 else (5 if n == 8 else 8))
    assert _count(cli) == 10
    texts = {o["text"] for o in json.loads(cli.ok("opinion", "list", "--json").stdout)}
    assert "问卷意见第7条" in texts


def test_bad_rows_mid_way_are_all_named_and_nothing_is_written(cli: Cli, tmp_path: Path) -> None:
    """Two bad rows among good ones: each named by row and column, exit 1, nothing written; --skip-invalid."""
    _ready(cli)
    rows = [list(r) for r in ASSEMBLY]
    rows[1][4] = "道路交通"  # row 3: no such category
    rows[3][5] = ""  # row 5: no text
    rows[2][3] = "1234"  # row 4: not a contact: left out, the opinion kept
    path = _csv(tmp_path / "assembly.csv", ASSEMBLY_HEADERS, rows, "gb18030")
    base = ["opinion", "import", str(path), "--consultation", "1", "--channel", "villagers_assembly"]
    refused = cli(*base, actor=EXPERT)
    assert refused.exit_code == 1
    assert "2 of 4 rows are invalid; nothing was written" in refused.stderr
    assert "row 3, column 类别: unknown category '道路交通'; allowed: 产业发展/industry" in refused.stderr
    assert "row 5, column 意见内容: the opinion text is empty" in refused.stderr
    assert "Traceback" not in refused.stderr and _count(cli) == 0
    dry = cli.ok(*base, "--dry-run", actor=EXPERT)
    assert "2 to import, 0 already there (same content), 2 refused" in dry.stdout
    assert "= 4 of 4 data row(s); nothing written (dry run)" in dry.stdout and _count(cli) == 0
    assert not (tmp_path / "assembly.csv.rejects.csv").exists()  # a dry run writes nothing at all
    partial = cli.ok(*base, "--skip-invalid", actor=EXPERT)
    assert "2 imported" in partial.stdout and _count(cli) == 2
    assert "1 contact(s) left out" in partial.stdout
    rejects = list(csv.reader(io.StringIO((tmp_path / "assembly.csv.rejects.csv").read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rejects[1:]] == ["3", "5"] and rejects[0][:2] == ["row", "problem"]


def test_files_that_cannot_be_read_get_one_clear_line(cli: Cli, tmp_path: Path) -> None:
    """Garbage, a wrong encoding, no text column, an unknown --map field, a participant importing: one line each."""
    _ready(cli)
    garbage = tmp_path / "x.xlsx"
    garbage.write_bytes(b"\x00\x01not a workbook")
    wrong = _csv(tmp_path / "gbk.csv", ASSEMBLY_HEADERS, ASSEMBLY, "gb18030")
    no_text = _csv(tmp_path / "nt.csv", ["姓名", "村"], [["王", "青龙村"]], "utf-8")
    cases = [
        ([str(garbage)], "is not a readable XLSX workbook"),
        ([str(wrong), "--encoding", "utf-8"], "is not utf-8 text near byte"),
        ([str(no_text)], "no column for text, category"),
        ([str(wrong), "--map", "colour=类别"], "--map takes FIELD=HEADER"),
        ([str(wrong), "--map", "text=不存在"], "no such column"),
        ([str(tmp_path / "notes.txt")], "does not exist"),
    ]
    for args, said in cases:
        result = cli("opinion", "import", *args, "--consultation", "1", "--channel", "villagers_assembly", actor=EXPERT)
        assert result.exit_code in (1, 2), (args, result.output)
        assert said in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    no_channel = cli("opinion", "import", str(wrong), "--encoding", "gb18030", "--consultation", "1", actor=EXPERT)
    assert no_channel.exit_code == 1
    assert no_channel.stderr.strip().count("\n") == 0, no_channel.stderr  # one line, not one per row
    assert "no channel column, so give the channel with --channel" in no_channel.stderr
    assert _count(cli) == 0


def test_a_typo_is_corrected_on_record_and_reports_use_the_correction(cli: Cli, tmp_path: Path) -> None:
    """`opinion correct`: the history keeps the original and the reason; the account shows the new text."""
    _ready(cli)
    sheet = _xlsx(tmp_path / "会议.xlsx", ASSEMBLY_HEADERS, ASSEMBLY[:1])
    cli.ok("opinion", "import", str(sheet), "--consultation", "1", "--channel", "villagers_assembly", actor=EXPERT)
    refused = cli("opinion", "correct", "1", "--text", "改", "--reason", "笔误", actor="王规划")
    assert refused.exit_code == 1 and "may not correct recorded opinions" in refused.stderr
    cli.ok("opinion", "correct", "1", "--text", "建议扩大生猪种业园区的配套用地", "--reason", "录入笔误", actor=EXPERT)
    same = cli("opinion", "correct", "1", "--text", "建议扩大生猪种业园区的配套用地", "--reason", "再改", actor=EXPERT)
    assert same.exit_code == 1 and "nothing to correct" in same.stderr
    events = json.loads(cli.ok("audit", "history", "1", "--json").stdout)["events"]
    fixed = [e for e in events if e["kind"] == "corrected"]
    assert fixed[0]["payload"] == {
        "previous": "建议扩大生猪种业园区配套用地", "text": "建议扩大生猪种业园区的配套用地", "reason": "录入笔误",
    }  # fmt: skip
    assert "建议扩大生猪种业园区的配套用地" in cli.ok("report", "account", "1").stdout
    assert "chain intact" in cli.ok("audit", "verify", "1").stdout


def test_the_planning_team_sees_duplicates_and_merges_them_on_record(cli: Cli, tmp_path: Path) -> None:
    """Imported copies group by similarity; one merge command folds them into the first, with lineage."""
    _ready(cli)
    copies = [
        ["1", "王秀兰", "青龙村", "", "环境卫生与农村路网", "建议硬化三组至五组的通组道路"],
        ["2", "李建国", "青龙村", "", "环境卫生与农村路网", "建议硬化三组至五组通组道路。"],
        ["3", "赵四", "白马村", "", "环境卫生与农村路网", "建议 硬化三组至五组的通组道路！"],
        ["4", "钱五", "白马村", "", "公共服务配套", "希望增设村卫生室"],
    ]
    sheet = _xlsx(tmp_path / "copies.xlsx", ASSEMBLY_HEADERS, copies)
    cli.ok("opinion", "import", str(sheet), "--consultation", "1", "--channel", "villagers_assembly", actor=EXPERT)
    groups = json.loads(cli.ok("opinion", "duplicates", "--consultation", "1", "--json").stdout)
    assert [(g["opinion_ids"], g["category"]) for g in groups] == [([1, 2, 3], "environment_roads")]
    shown = cli.ok("opinion", "duplicates", "--consultation", "1").stdout
    assert "merge: consultflow opinion merge 2 3 --into 1" in shown
    refused = cli("opinion", "merge", "2", "3", "--into", "4", actor=EXPERT)
    assert refused.exit_code == 1 and "may not" in refused.stderr  # experts do not merge
    cli.ok("opinion", "merge", "2", "3", "--into", "1", actor=COORD)
    target = json.loads(cli.ok("opinion", "show", "1", "--json").stdout)["opinion"]
    assert target["merged_from"] == [2, 3]
    events = json.loads(cli.ok("audit", "history", "2", "--json").stdout)["events"]
    assert events[-1]["trigger"] == "merge" and events[-1]["payload"]["merge_target"] == 1
    cycle = cli("opinion", "merge", "1", "--into", "2", actor=COORD)
    assert cycle.exit_code == 1 and "that opinion is merged; merge into 1 instead" in cycle.stderr
    assert json.loads(cli.ok("opinion", "duplicates", "--consultation", "1", "--json").stdout) == []


def test_a_bad_row_after_batches_were_recorded_leaves_nothing(cli: Cli, tmp_path: Path, monkeypatch: object) -> None:
    """Rows are recorded batch by batch as they are checked: a bad last row still leaves no opinion, person or event."""
    import pytest

    from consultflow.services import intake

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(intake, "BATCH", 1)  # every good row is recorded before the bad one is read
    _ready(cli)
    people = len(json.loads(cli.ok("participant", "list", "--json").stdout))
    events = cli.ok("audit", "verify").stdout
    rows = [list(r) for r in ASSEMBLY]
    rows[3][4] = "道路交通"  # the last row: no such category
    path = _csv(tmp_path / "late.csv", ASSEMBLY_HEADERS, rows, "utf-8")
    base = ["opinion", "import", str(path), "--consultation", "1", "--channel", "villagers_assembly"]
    refused = cli(*base, actor=EXPERT)
    assert refused.exit_code == 1 and "1 of 4 rows are invalid; nothing was written" in refused.stderr
    assert "row 5, column 类别: unknown category '道路交通'" in refused.stderr
    assert _count(cli) == 0 and len(json.loads(cli.ok("participant", "list", "--json").stdout)) == people
    assert cli.ok("audit", "verify").stdout == events  # no event was appended
    done = json.loads(cli.ok("--json", *base, "--skip-invalid", actor=EXPERT).stdout)
    assert (done["imported"], done["already"], done["invalid"], done["rows"]) == (3, 0, 1, 4) and _count(cli) == 3


def test_a_row_repeated_later_in_the_file_goes_in_once(cli: Cli, tmp_path: Path, monkeypatch: object) -> None:
    """Repeats within a batch and across batches (batches of two here) are each recorded once."""
    import pytest

    from consultflow.services import intake

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(intake, "BATCH", 2)
    _ready(cli)
    rows = [ASSEMBLY[0], ASSEMBLY[1], ASSEMBLY[2], ASSEMBLY[0], ASSEMBLY[3], ASSEMBLY[2], ASSEMBLY[2]]
    path = _csv(tmp_path / "repeats.csv", ASSEMBLY_HEADERS, rows, "utf-8")
    done = json.loads(
        cli.ok(
            "--json", "opinion", "import", str(path), "--consultation", "1", "--channel", "online_survey", actor=EXPERT
        ).stdout
    )
    assert (done["imported"], done["already"], done["rows"], done["invalid"]) == (4, 3, 7, 0)
    assert _count(cli) == 4


def test_the_adoption_table_counted_by_the_database_agrees_with_the_opinions(cli: Cli, tmp_path: Path) -> None:
    """On both backends: totals, outcomes and per-category/channel counts equal counting the opinions one by one."""
    _ready(cli)
    path = _csv(tmp_path / "q.csv", QUESTIONNAIRE_HEADERS, _questionnaire(12), "utf-8")
    cli.ok("opinion", "import", str(path), "--consultation", "1", "--channel", "online_survey", actor=EXPERT)
    cli.ok("opinion", "assign", *[str(i) for i in range(1, 13)], "--to", "王规划", actor=COORD)
    for oid in range(1, 7):
        cli.ok("opinion", "fire", str(oid), "screen", actor=EXPERT)
    for oid in (1, 2):
        cli.ok("opinion", "fire", str(oid), "reject", "--reason", "不可行", actor="王规划")
    cli.ok("opinion", "merge", "3", "--into", "4", actor=COORD)
    listed = json.loads(cli.ok("opinion", "list", "--json").stdout)
    figures = json.loads(cli.ok("report", "adoption", "1", "--format", "json").stdout)["figures"]
    assert figures["opinions"] == len(listed) == 12
    assert figures["open"] == sum(o["outcome"] is None for o in listed) == 9
    assert figures["outcomes"]["rejected"]["opinions"] == 2 and figures["outcomes"]["merged"]["opinions"] == 1
    for key in ("category", "channel"):
        counted = {f["name"]: f["opinions"] for f in figures[f"by_{key}"] if f["opinions"]}
        by_hand: dict[str, int] = {}
        for o in listed:
            by_hand[o[key]] = by_hand.get(o[key], 0) + 1
        assert counted == by_hand
