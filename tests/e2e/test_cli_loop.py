"""A coordinator's consultation, driven through the CLI alone."""

from __future__ import annotations

import json
from pathlib import Path

from consultflow.domain.clock import FixedClock
from tests.conftest import START, Cli

COORD, PLANNER, EXPERT = "李协调", "王规划", "赵专家"


def setup_people(cli: Cli) -> None:
    cli.ok("actor", "add", COORD, "--role", "coordinator")
    cli.ok("actor", "add", PLANNER, "--role", "planner", actor=COORD)
    cli.ok("actor", "add", EXPERT, "--role", "expert", actor=COORD)
    cli.ok("participant", "add", "张秀英", "--village", "青龙村", "--contact", "13812345678", actor=EXPERT)
    cli.ok("consultation", "create", "三产融合片区规划", "--area", "试点片区", actor=COORD)


def submit(cli: Cli, text: str, category: str = "industry") -> int:
    out = cli.ok(
        "--json",
        "opinion",
        "submit",
        "--consultation",
        "1",
        "--participant",
        "1",
        "--category",
        category,
        "--channel",
        "open_air_meeting",
        "--text",
        text,
        actor=EXPERT,
    )
    return int(json.loads(out.stdout)["id"])


def fire(cli: Cli, oid: int, trigger: str, *opts: str, actor: str = PLANNER) -> None:
    cli.ok("opinion", "fire", str(oid), trigger, *opts, actor=actor)


def test_three_rounds_through_the_cli(cli: Cli) -> None:
    """Three rounds, three outcomes, and `audit rounds` shows how many rounds each took."""
    setup_people(cli)
    cli.ok("round", "open", "1", "--closes-at", "2026-03-20", actor=COORD)
    adopted = submit(cli, "建议扩大生猪种业园区配套用地")
    partly = submit(cli, "希望增设卫生室", "public_services")
    rejected = submit(cli, "建议占用基本农田建厂")
    cli.ok("opinion", "assign", str(adopted), str(partly), str(rejected), "--to", PLANNER, actor=COORD)
    for oid in (adopted, partly, rejected):
        fire(cli, oid, "screen", actor=EXPERT)
    queue = json.loads(cli.ok("opinion", "list", "--assigned-to", PLANNER, "--state", "under_review", "--json").stdout)
    assert [o["id"] for o in queue] == [adopted, partly, rejected]
    fire(cli, rejected, "reject", "--reason", "涉及永久基本农田")
    for oid in (adopted, partly):
        fire(cli, oid, "give_feedback", "--text", "已研究，请确认")
        fire(cli, oid, "reparticipate", "--stance", "object", "--text", "仍需调整", actor=EXPERT)
    cli.ok("round", "close", "1", actor=COORD)
    cli.ok("round", "open", "1", actor=COORD)
    fire(cli, partly, "partly_adopt", "--text", "部分采纳", "--plan-ref", "v2 §4.1")
    fire(cli, adopted, "give_feedback", "--text", "第二轮反馈")
    cli.ok("round", "close", "1", actor=COORD)  # no reply: lapses back to review
    cli.ok("round", "open", "1", actor=COORD)
    fire(cli, adopted, "adopt", "--text", "已纳入", "--plan-ref", "v2 §3.2 产业布局")

    report = json.loads(cli.ok("audit", "rounds", "1", "--json").stdout)
    rows = {r["opinion_id"]: (r["outcome"], r["rounds"]) for r in report["opinions"]}
    assert rows == {adopted: ("adopted", 3), partly: ("partly_adopted", 2), rejected: ("rejected", 1)}
    text = cli.ok("--lang", "en", "audit", "rounds", "1").stdout
    assert "Adopted" in text and "3 round(s)" in text

    history = json.loads(cli.ok("audit", "history", str(adopted), "--json").stdout)
    triggers = [e["trigger"] for e in history["events"]]
    assert triggers == [
        "submit",
        "assign",
        "screen",
        "give_feedback",
        "reparticipate",  # round 1
        "carry_over",
        "give_feedback",  # round 1 closed while under review; round 2 feedback
        "lapse",
        "adopt",  # round 2 closed with no reply; adopted in round 3
    ]
    assert [e["round_no"] for e in history["events"]] == [1, 1, 1, 1, 1, 1, 2, 2, 3]
    assert [e["seq"] for e in history["events"]] == list(range(1, len(triggers) + 1))
    assert history["events"][-1]["to_state"] == "adopted"
    assert history["events"][0]["at"].endswith("+08:00")  # shown in Asia/Shanghai


def test_refused_trigger_is_one_line_and_changes_nothing(cli: Cli) -> None:
    """A wrong trigger names the state and the allowed triggers, exits 1, and writes nothing."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    oid = submit(cli, "建议硬化道路", "environment_roads")
    before = cli.ok("audit", "history", str(oid), "--json").stdout
    result = cli("opinion", "fire", str(oid), "adopt", "--text", "x", "--plan-ref", "v2", actor=PLANNER)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "state 'submitted'" in result.stderr and "allowed now: screen, withdraw, merge" in result.stderr
    assert "Traceback" not in result.output
    assert cli.ok("audit", "history", str(oid), "--json").stdout == before


def test_user_mistakes_are_one_clear_line(cli: Cli) -> None:
    """Unknown ids, missing fields, anonymous changes and bad roles: one line each, exit 1."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    oid = submit(cli, "意见")
    cases = [
        (("opinion", "show", "42"), None, "unknown opinion 42"),
        (("opinion", "fire", str(oid), "screen"), None, "say who you are with --as"),
        (("opinion", "fire", str(oid), "screen"), "nobody", "unknown actor 'nobody'"),
        (("round", "close", "1"), PLANNER, "may not close rounds; allowed roles: coordinator"),
        (("actor", "add", "x", "--role", "planner"), EXPERT, "may not add actors"),
        (("consultation", "show", "9"), None, "unknown consultation 9"),
        (
            (
                "opinion",
                "submit",
                "--consultation",
                "1",
                "--participant",
                "7",
                "--category",
                "industry",
                "--channel",
                "open_air_meeting",
                "--text",
                "x",
            ),
            EXPERT,
            "unknown participant 7",
        ),
    ]
    for args, actor, message in cases:
        result = cli(*args, actor=actor)
        assert result.exit_code == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    fire(cli, oid, "screen", actor=EXPERT)
    result = cli("opinion", "fire", str(oid), "adopt", "--text", "采纳", actor=PLANNER)
    assert result.exit_code == 1 and "missing: --plan-ref" in result.stderr


def test_as_may_follow_the_command_and_auditors_change_nothing(cli: Cli) -> None:
    """`--as` works after the command too; an auditor is refused every change."""
    setup_people(cli)
    cli.ok("actor", "add", "孙审计", "--role", "auditor", actor=COORD)
    cli.ok("round", "open", "1", "--as", COORD)
    oid = submit(cli, "意见")
    for args in (
        ("opinion", "fire", str(oid), "screen"),
        ("round", "close", "1"),
        ("opinion", "assign", str(oid), "--to", PLANNER),
    ):
        result = cli(*args, "--as", "孙审计")
        assert result.exit_code == 1, args
        assert "孙审计 (role: auditor) may not" in result.stderr
    reserved = cli("round", "close", "1", "--as", "system")
    assert reserved.exit_code == 2
    assert "'system' is reserved" in reserved.stderr


def test_unopenable_database_is_one_line(tmp_path: Path) -> None:
    """A database path in a missing directory is one clear line, even for `db upgrade`."""
    result = Cli(f"sqlite:///{tmp_path}/missing/x.sqlite", FixedClock(START))("db", "upgrade")
    assert result.exit_code == 1
    said = result.stderr.strip()
    assert said.startswith("Error: ") and "unable to open database file" in said and "\n" not in said


def test_json_errors_go_to_stderr_as_json(cli: Cli) -> None:
    """With --json, stdout stays clean and the error is a JSON object on stderr."""
    result = cli("--json", "opinion", "show", "5")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "unknown opinion 5" in json.loads(result.stderr)["error"]


def test_first_actor_must_be_a_coordinator(cli: Cli) -> None:
    """A fresh database accepts its first person only as a coordinator."""
    result = cli("actor", "add", "王规划", "--role", "planner")
    assert result.exit_code == 1 and "first person registered must be a coordinator" in result.stderr
    cli.ok("actor", "add", COORD, "--role", "coordinator")
    listed = json.loads(cli.ok("actor", "list", "--json").stdout)
    assert [a["name"] for a in listed] == [COORD]


def test_names_and_contacts_are_for_coordinators_with_a_purpose_and_on_record(cli: Cli) -> None:
    """Lists show pseudonyms; full names and contacts need a coordinator and --purpose, and each read is listed."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    submit(cli, "建议修路")
    plain = cli.ok("participant", "list", "--json").stdout
    assert "13812345678" not in plain and "张秀英" not in plain and "张某某" in plain
    assert "张秀英" not in cli.ok("opinion", "list").stdout + cli.ok("report", "account", "1").stdout
    refused = cli("participant", "list", "--with-contact", "--purpose", "回访", actor=EXPERT)
    assert refused.exit_code == 1 and "may not see participants' full names or contacts" in refused.stderr
    no_purpose = cli("participant", "list", "--with-contact", actor=COORD)
    assert no_purpose.exit_code == 1 and "give --purpose WHY" in no_purpose.stderr
    refused_report = cli("report", "account", "1", "--names", "full", "--purpose", "核对", actor=PLANNER)
    assert refused_report.exit_code == 1
    assert json.loads(cli.ok("audit", "access", "--json").stdout) == []  # refusals read nothing
    shown = cli.ok("participant", "list", "--with-contact", "--purpose", "第二轮电话回访", "--json", actor=COORD)
    assert json.loads(shown.stdout)[0]["contact"] == "13812345678"
    named = cli.ok("report", "account", "1", "--names", "full", "--purpose", "核对提出人", actor=COORD).stdout
    assert "张秀英" in named
    records = json.loads(cli.ok("audit", "access", "--participant", "1", "--json").stdout)
    assert [(r["actor"], r["what"], r["purpose"], r["participants"]) for r in records] == [
        (COORD, "account of consultation 1 with full names", "核对提出人", 1),
        (COORD, "participant list with contacts", "第二轮电话回访", 1),
    ]


def test_a_full_name_report_file_is_written_once_the_read_is_on_record(cli: Cli, tmp_path: Path) -> None:
    """The file appears after the record commits; a name already taken is refused before anything is read."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    submit(cli, "建议修路")
    target = tmp_path / "说明.md"
    full = ("report", "account", "1", "--names", "full", "--purpose", "公示前核对", "-o", str(target))
    cli.ok(*full, actor=COORD)
    assert "张秀英" in target.read_text(encoding="utf-8")
    assert len(json.loads(cli.ok("audit", "access", "--json").stdout)) == 1
    again = cli(*full, actor=COORD)
    assert again.exit_code == 1 and "already a file" in again.stderr
    assert len(json.loads(cli.ok("audit", "access", "--json").stdout)) == 1  # refused before the read
    cli.ok(*full, "--force", "--format", "xlsx", actor=COORD)
    assert target.read_bytes()[:2] == b"PK" and len(json.loads(cli.ok("audit", "access", "--json").stdout)) == 2


def test_dry_run_close_lists_what_the_close_does(cli: Cli) -> None:
    """`round close --dry-run` shows each opinion's fate and changes nothing."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    oid = submit(cli, "意见")
    dry = json.loads(cli.ok("--json", "round", "close", "1", "--dry-run", actor=COORD).stdout)
    assert dry["steps"] == [
        {"opinion_id": oid, "action": "carry_over", "trigger": None, "from_state": "submitted", "to_state": "submitted"}
    ]
    status = json.loads(cli.ok("round", "status", "1", "--json").stdout)
    assert status["open_round"]["number"] == 1
    real = json.loads(cli.ok("--json", "round", "close", "1", actor=COORD).stdout)
    assert real["steps"] == []  # a real close gives totals; each opinion's step is its audit event
    assert real["affected"] == dry["affected"] == 1
    assert (
        real["moves"]
        == dry["moves"]
        == [{"action": "carry_over", "from_state": "submitted", "to_state": "submitted", "opinions": 1}]
    )
    assert json.loads(cli.ok("round", "status", "1", "--json").stdout)["open_round"] is None


def test_fire_on_many_opinions_is_all_or_nothing(cli: Cli) -> None:
    """`opinion fire 1-3 screen` moves three opinions in one go; a list with a bad id moves none."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    ids = [submit(cli, f"意见{i}") for i in range(4)]
    refused = cli("opinion", "fire", f"{ids[0]}-{ids[3] + 1}", "screen", actor=EXPERT)
    assert refused.exit_code == 1 and f"unknown opinion(s): {ids[3] + 1}" in refused.stderr
    states = {o["id"]: o["state"] for o in json.loads(cli.ok("opinion", "list", "--json").stdout)}
    assert set(states.values()) == {"submitted"}
    moved = json.loads(cli.ok("--json", "opinion", "fire", f"{ids[0]}-{ids[2]}", "screen", actor=EXPERT).stdout)
    assert [(m["opinion_id"], m["to_state"]) for m in moved] == [(i, "under_review") for i in ids[:3]]
    malformed = cli("opinion", "fire", "1-x", "screen", actor=EXPERT)
    assert malformed.exit_code == 2 and "not an opinion id or a list" in malformed.stderr


def test_opinion_list_limit_gives_the_first_opinions(cli: Cli) -> None:
    """`--limit N` lists the first N opinions by id (it once filtered by participant N instead)."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    ids = [submit(cli, f"意见{i}") for i in range(4)]
    listed = json.loads(cli.ok("opinion", "list", "--limit", "2", "--json").stdout)
    assert [o["id"] for o in listed] == ids[:2]
    text = cli.ok("opinion", "list", "--limit", "3").stdout.splitlines()
    assert [line.split()[0] for line in text[2:]] == [str(i) for i in ids[:3]]
    assert json.loads(cli.ok("opinion", "list", "--state", "adopted", "--json").stdout) == []
