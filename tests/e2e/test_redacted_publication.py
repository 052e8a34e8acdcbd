"""Issue 21, item 1: a villager's phone, ID number and name typed into her opinion are never published.

She writes her mobile number, her ID-card number and her name into the opinion; the planner's
feedback quotes her name and number. The portal's pages, its JSON API, and the account and plan
reports in every format show none of it; a coordinator's `--names full --purpose ...` shows the
texts whole. Coordinators are warned at intake. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from tests.conftest import Cli, make_context
from tests.e2e.test_cli_loop import COORD, EXPERT, PLANNER, setup_people
from tests.web.portal import client, hidden

OPINION = "青龙村张秀英建议硬化三组到五组的通组道路（13812345678），身份证号11010519491231002X，秀英家门口最烂。"
FEEDBACK = "张秀英同志：已电话联系（138-1234-5678），秀英表示同意按4.5米宽度硬化，投资约80万元。"
REPLY = "同意。我是张秀英，有事打13812345678。"
# What must never be published, in every form it was written.
SECRETS = ("13812345678", "138-1234-5678", "1234-5678", "11010519491231002X", "张秀英", "秀英")
# What must stay: the rest of her opinion and the planner's answer.
KEPT = ("青龙村", "建议硬化三组到五组的通组道路", "〔手机号已隐去〕", "〔身份证号已隐去〕", "4.5米", "80万元")
FORMATS = ("table", "markdown", "csv", "json", "xlsx")


def _loop(cli: Cli) -> tuple[int, str, str]:
    """Her opinion, answered with feedback that quotes her, adopted; returns its id, the intake output and a code."""
    setup_people(cli)
    cli.ok("round", "open", "1", "--closes-at", "2026-03-20", actor=COORD)
    submitted = cli.ok(
        "opinion", "submit", "--consultation", "1", "--participant", "1", "--category", "environment_roads",
        "--channel", "open_air_meeting", "--text", OPINION, actor=EXPERT,
    ).stdout  # fmt: skip
    cli.ok("opinion", "assign", "1", "--to", PLANNER, actor=COORD)
    cli.ok("opinion", "fire", "1", "screen", actor=EXPERT)
    cli.ok("opinion", "fire", "1", "give_feedback", "--text", FEEDBACK, actor=PLANNER)
    cli.ok("opinion", "fire", "1", "reparticipate", "--stance", "agree", "--text", REPLY, actor=EXPERT)
    cli.ok("opinion", "fire", "1", "adopt", "--text", FEEDBACK, "--plan-ref", "v2 §5.3 农村路网", actor=PLANNER)
    code = cli.ok("opinion", "receipt", "1", actor=EXPERT).stdout.split("receipt code ")[1].split()[0]
    return 1, submitted, code


def _published(path: Path, fmt: str) -> str:
    """Everything a reader of the file sees: the text formats' bytes decoded, the workbook's every cell."""
    if fmt != "xlsx":
        return path.read_bytes().decode("utf-8-sig")
    book = CalamineWorkbook.from_path(str(path))
    return "\n".join(
        "\t".join(str(v) for v in row) for name in book.sheet_names for row in book.get_sheet_by_name(name).to_python()
    )


def _report(cli: Cli, tmp_path: Path, kind: str, fmt: str, *extra: str, actor: str | None = None) -> str:
    path = tmp_path / f"{kind}-{fmt}-{len(extra)}.{'md' if fmt == 'markdown' else 'txt' if fmt == 'table' else fmt}"
    cli.ok("report", kind, "1", "--format", fmt, "-o", str(path), *extra, actor=actor)
    return _published(path, fmt)


def test_intake_flags_the_personal_data_it_will_mask(cli: Cli) -> None:
    """`opinion submit` warns in Chinese and English, naming the kinds; `opinion show` shows the flag."""
    _, submitted, _ = _loop(cli)
    assert "注意：意见内容含个人信息（手机号、身份证号、本人姓名）" in submitted
    assert "note: the text holds personal information (mobile number, ID-card number, the participant's name)" in (
        submitted
    )
    shown = cli.ok("opinion", "show", "1", actor=COORD).stdout
    assert "注意：意见内容含个人信息（手机号、身份证号、本人姓名）" in shown
    assert json.loads(cli.ok("opinion", "show", "1", "--json", actor=COORD).stdout)["opinion"]["personal_data"] == [
        "mobile",
        "id_card",
        "name",
    ]
    clean = cli.ok(
        "opinion", "submit", "--consultation", "1", "--participant", "1", "--category", "industry",
        "--channel", "open_air_meeting", "--text", "建议2026年投资3000元建设G318国道旁的冷链仓储点（规划3.2.1条）",
        actor=EXPERT,
    ).stdout  # fmt: skip
    assert "注意" not in clean and "personal information" not in clean


@pytest.mark.parametrize("kind", ["account", "plan"])
def test_reports_in_every_format_never_hold_her_number_id_or_name(cli: Cli, tmp_path: Path, kind: str) -> None:
    """Pseudonymised and nameless reports mask the texts; `--names full` (coordinator, purpose) keeps them whole."""
    _loop(cli)
    for names in ((), ("--names", "none")):
        for fmt in FORMATS:
            out = _report(cli, tmp_path, kind, fmt, *names)
            leaked = [s for s in SECRETS if s in out]
            assert leaked == [], (kind, names, fmt, leaked)
            assert all(k in out for k in KEPT[:4]), (kind, names, fmt, out)
    full = _report(cli, tmp_path, kind, "markdown", "--names", "full", "--purpose", "核实第二轮回访名单", actor=COORD)
    assert OPINION in full
    assert "张秀英" in full
    if kind == "account":
        assert FEEDBACK in full


def test_csv_and_json_accounts_carry_the_masked_text_in_its_cell(cli: Cli, tmp_path: Path) -> None:
    """Read back as data: the opinion and feedback cells hold the masked text, readable around the masks."""
    _loop(cli)
    rows = list(csv.reader(io.StringIO(_report(cli, tmp_path, "account", "csv"))))
    (row,) = [r for r in rows if r[:1] == ["1"]]
    assert row[1] == "张某某"
    assert (
        row[3]
        == "青龙村张某某建议硬化三组到五组的通组道路（〔手机号已隐去〕），身份证号〔身份证号已隐去〕，某某家门口最烂。"
    )
    assert row[4] == "张某某同志：已电话联系（〔手机号已隐去〕），某某表示同意按4.5米宽度硬化，投资约80万元。"
    doc = json.loads(_report(cli, tmp_path, "account", "json"))
    (item,) = doc["figures"]["categories"]["environment_roads"]
    assert item["asked"] == row[3] and item["feedback"] == row[4]


def test_the_portal_and_its_api_never_show_them(cli: Cli) -> None:
    """The account and plan pages, the consultation page, the API, and the receipt holder's timeline."""
    _, _, code = _loop(cli)
    ctx = make_context(cli.url, cli.clock)
    try:
        web = client(ctx)
        bodies = {path: web.get(path) for path in ("/c/1", "/c/1/account", "/c/1/account?round=1", "/c/1/plan")}
        for path in ("/api/v1/consultations/1", "/api/v1/consultations/1/account", "/api/v1/consultations/1/plan"):
            bodies[path] = web.get(path)
        bodies["POST /api/v1/receipts/timeline"] = web.post("/api/v1/receipts/timeline", json={"code": code})
        looked = web.post("/my", data={"csrf": hidden(web.get("/my").text, "csrf"), "code": code})
        assert looked.status_code == 303
        bodies["/my"] = web.get("/my")
    finally:
        ctx.database.dispose()
    for path, response in bodies.items():
        assert response.status_code == 200, (path, response.text)
        body = response.content.decode("utf-8")
        body = json.dumps(json.loads(body), ensure_ascii=False) if path.startswith(("/api", "POST")) else body
        leaked = [s for s in SECRETS if s in body]
        assert leaked == [], (path, leaked)
    for path in ("/c/1/account", "/api/v1/consultations/1/account", "/c/1/plan", "/my"):
        body = bodies[path].content.decode("utf-8")
        body = json.dumps(json.loads(body), ensure_ascii=False) if path.startswith("/api") else body
        assert "〔手机号已隐去〕" in body and "〔身份证号已隐去〕" in body, path
    timeline = bodies["POST /api/v1/receipts/timeline"].json()
    assert "〔手机号已隐去〕" in timeline["opinion"]["text"]
    feedback = [e["text"] for r in timeline["rounds"] for e in r["entries"] if e["kind"] == "feedback"]
    assert feedback and all("张某某同志" in t and "〔手机号已隐去〕" in t for t in feedback)


def test_import_summary_counts_rows_holding_personal_data(cli: Cli, tmp_path: Path) -> None:
    """Of three imported rows, two hold personal data (a number; the writer's own given name): the summary says 2."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    rows = [
        ["姓名", "村", "类别", "意见内容"],
        ["李桂兰", "白马村", "产业发展", "猕猴桃销路不好，请联系我 159 8876 5432"],
        ["王德福", "石桥村", "公共服务配套", "德福家离卫生室12公里，建议增加坐诊时间"],
        ["陈玉梅", "青龙村", "环境卫生与农村路网", "建议2026年硬化3.5米宽的通组道路，投资350万元"],
    ]
    path = tmp_path / "assembly.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    base = ["opinion", "import", str(path), "--consultation", "1", "--channel", "villagers_assembly"]
    dry = cli.ok(*base, "--dry-run", actor=EXPERT).stdout
    assert "注意：2 行意见内容含个人信息 / note: 2 row(s) hold personal information" in dry
    done = cli.ok(*base, actor=EXPERT).stdout
    assert "3 imported" in done and "note: 2 row(s) hold personal information" in done
    account = cli.ok("report", "account", "1", "--format", "csv").stdout
    assert "159 8876 5432" not in account and "德福" not in account and "350万元" in account
