"""Workflows, the schema check, the demo, and a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from consultflow.cli.main import main
from consultflow.domain.clock import FixedClock
from tests.conftest import ROOT, WORKFLOWS, Cli, migrated


def test_workflow_commands(cli: Cli, tmp_path: Path) -> None:
    """List, show, validate and diagram read the same spec."""
    listed = json.loads(cli.ok("workflow", "list", "--json").stdout)
    assert {(w["name"], w["version"], w["valid"]) for w in listed} >= {("consultation-loop", 1, True)}
    shown = json.loads(cli.ok("workflow", "show", "consultation-loop@1", "--json").stdout)
    assert shown["round_close"]["feedback_given"] == "lapse"
    assert "坝坝会" in cli.ok("workflow", "show").stdout
    assert cli.ok("workflow", "diagram", "--format", "dot").stdout.startswith('digraph "consultation-loop@1"')
    assert "stateDiagram-v2" in cli.ok("--lang", "en", "workflow", "diagram").stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8").replace("dest: adopted", "dest: adoptd"),
        encoding="utf-8",
    )
    result = cli("workflow", "validate", str(WORKFLOWS / "consultation-loop.yaml"), str(bad))
    assert result.exit_code == 1
    assert "transitions[4].dest: unknown state 'adoptd'" in result.stdout
    assert "consultation-loop.yaml: ok" in result.stdout


def test_edited_workflow_needs_a_new_version(tmp_path: Path, sqlite_url: str, clock: FixedClock) -> None:
    """Opinions in flight keep the stored workflow; an edit without a version bump is refused."""
    wf_dir = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, wf_dir)
    runner = CliRunner()

    def run(*args: str, actor: str | None = "李协调") -> tuple[int, str, str]:
        head = ["--db", sqlite_url, "--workflows", str(wf_dir), "-q"] + (["--as", actor] if actor else [])
        r = runner.invoke(main, [*head, *args], obj={"clock": clock})
        return r.exit_code, r.stdout, r.stderr

    assert run("db", "upgrade", actor=None)[0] == 0
    assert run("actor", "add", "李协调", "--role", "coordinator", "--role", "planner", actor=None)[0] == 0
    assert run("consultation", "create", "一期", "--area", "A")[0] == 0
    path = wf_dir / "consultation-loop.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("after_days: 7", "after_days: 5"), encoding="utf-8")
    code, _, err = run("consultation", "create", "二期", "--area", "B")
    assert code == 1 and "give the changed file a new version number" in err
    path.write_text(path.read_text(encoding="utf-8").replace("version: 1", "version: 2"), encoding="utf-8")
    assert run("consultation", "create", "二期", "--area", "B")[0] == 0
    listed = json.loads(run("consultation", "list", "--json")[1])
    assert [c["workflow"] for c in listed] == ["consultation-loop@1", "consultation-loop@2"]


def test_commands_refuse_a_database_without_schema(sqlite_url: str) -> None:
    """Before `db upgrade`, commands say so in one line instead of failing on missing tables."""
    result = CliRunner().invoke(main, ["--db", sqlite_url, "opinion", "list"])
    assert result.exit_code == 1
    assert "run 'consultflow db upgrade'" in result.stderr


def test_demo_reproduces_the_pilots_shape(tmp_path: Path) -> None:
    """The demo collects ~800 opinions in three rounds and adopts 203."""
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    result = runner.invoke(main, ["--db", db, "--json", "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["demo"]["opinions"] == 809
    outcomes = {o["outcome"]: o for o in doc["rounds"]["outcomes"]}
    assert outcomes["adopted"]["total"] == 203
    assert set(outcomes["adopted"]["histogram"]) == {"1", "2", "3"}
    assert doc["by_state"]["submitted"] == doc["by_state"]["under_review"] == doc["by_state"]["feedback_given"] == 0
    share = json.loads(
        runner.invoke(
            main, ["--db", db, "opinion", "list", "--json", "--consultation", "1", "--category", "industry"]
        ).stdout
    )
    assert round(len(share) / (809 + 3) * 100, 1) == 57.0  # with the plan review's three comments


@pytest.mark.slow
def test_real_subprocess_runs_the_loop(tmp_path: Path) -> None:
    """The installed entry point works as a separate process, with env vars for db and actor.

    The consultation up to its screened, assigned opinion is made in this process, through the same
    env vars; the steps whose output a user reads (a transition, a refusal, the history) are
    processes of their own.
    """
    env = {
        **os.environ,
        "CONSULTFLOW_DB": str(tmp_path / "cf.sqlite"),
        "CONSULTFLOW_WORKFLOWS": str(WORKFLOWS),
        "PYTHONIOENCODING": "utf-8",
    }

    def here(*args: str, actor: str | None = None) -> None:
        e: dict[str, str | None] = {**env, "CONSULTFLOW_ACTOR": actor}
        result = CliRunner(env=e).invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output

    def run(*args: str, actor: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        e = {**env, **({"CONSULTFLOW_ACTOR": actor} if actor else {})}
        proc = subprocess.run(
            [sys.executable, "-m", "consultflow", *args],
            env=e,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    migrated(f"sqlite:///{tmp_path / 'cf.sqlite'}")  # what `db upgrade` makes
    here("actor", "add", "李协调", "--role", "coordinator", "--role", "planner")
    here("actor", "add", "赵专家", "--role", "expert", actor="李协调")
    here("participant", "add", "张秀英", "--village", "青龙村", actor="赵专家")
    here("consultation", "create", "片区规划", "--area", "试点", actor="李协调")
    here("round", "open", "1", actor="李协调")
    here(
        "opinion",
        "submit",
        "--consultation",
        "1",
        "--participant",
        "1",
        "--category",
        "industry",
        "--channel",
        "lecture_hall",
        "--text",
        "发展研学基地",
        actor="赵专家",
    )
    here("opinion", "fire", "1", "screen", actor="赵专家")
    here("opinion", "assign", "1", "--to", "李协调", actor="李协调")
    adopted = run("opinion", "fire", "1", "adopt", "--text", "采纳", "--plan-ref", "v2 §3.4", actor="李协调")
    assert "under_review -> adopted" in adopted.stdout
    assert "transition" in adopted.stderr  # the log line, on stderr
    bad = run("opinion", "fire", "1", "screen", actor="李协调", check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("Error: opinion 1 is in state 'adopted'")
    assert "Traceback" not in bad.stderr
    logged = run("--log-json", "opinion", "fire", "1", "withdraw", actor="李协调", check=False)
    assert logged.returncode == 1
    history = json.loads(run("audit", "history", "1", "--json").stdout)
    assert [e["trigger"] or e["kind"] for e in history["events"]] == ["submit", "screen", "assign", "adopt"]


def test_an_invalid_workflow_file_is_listed_with_its_problems_and_breaks_nothing(
    tmp_path: Path, sqlite_url: str, clock: FixedClock
) -> None:
    """A broken file beside a good one: `workflow list` names it and its problems; the good one still works."""
    wf_dir = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, wf_dir, ignore=shutil.ignore_patterns("*.py"))
    (wf_dir / "broken.yaml").write_text("name: broken\nversion: 1\ninitial: {a: 1}\nstates: [1]\n", encoding="utf-8")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        r = runner.invoke(main, ["--db", sqlite_url, "--workflows", str(wf_dir), "-q", *args], obj={"clock": clock})
        return r.exit_code, r.stdout, r.stderr

    assert run("db", "upgrade")[0] == 0
    code, out, _ = run("workflow", "list")
    assert code == 0
    assert "consultation-loop" in out and "broken.yaml: " in out
    assert "initial: {'a': 1} is not of type 'string'" in out
    listed = json.loads(run("workflow", "list", "--json")[1])
    broken = next(w for w in listed if w["file"].endswith("broken.yaml"))
    assert broken["valid"] is False and broken["problems"]
    assert run("actor", "add", "李协调", "--role", "coordinator")[0] == 0
    assert run("--as", "李协调", "consultation", "create", "一期", "--area", "A")[0] == 0


def test_two_files_giving_one_version_different_texts_are_both_named_and_neither_is_used(
    tmp_path: Path, sqlite_url: str, clock: FixedClock
) -> None:
    """A copy edited without a new version number clashes with the original: both are listed, nothing runs on either.

    The same text twice is one workflow, and works.
    """
    wf_dir = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, wf_dir, ignore=shutil.ignore_patterns("*.py"))
    original = (wf_dir / "consultation-loop.yaml").read_text(encoding="utf-8")
    (wf_dir / "乡里的.yaml").write_text(original.replace("after_days: 3", "after_days: 4"), encoding="utf-8")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        r = runner.invoke(main, ["--db", sqlite_url, "--workflows", str(wf_dir), "-q", *args], obj={"clock": clock})
        return r.exit_code, r.stdout, r.stderr

    assert "after_days: 3" in original
    assert run("db", "upgrade")[0] == 0
    listed = {Path(w["file"]).name: w for w in json.loads(run("workflow", "list", "--json")[1])}
    assert set(listed) == {"consultation-loop.yaml", "乡里的.yaml"}
    assert listed["consultation-loop.yaml"]["problems"] == [
        "consultation-loop@1 is also in 乡里的.yaml, with other content: give one of them a new version"
    ]
    assert listed["乡里的.yaml"]["problems"] == [
        "consultation-loop@1 is also in consultation-loop.yaml, with other content: give one of them a new version"
    ]
    assert not any(w["valid"] for w in listed.values())
    assert run("actor", "add", "李协调", "--role", "coordinator")[0] == 0
    code, out, err = run("--as", "李协调", "consultation", "create", "一期", "--area", "A")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "unknown workflow 'consultation-loop'" in err
    assert "consultation-loop.yaml, 乡里的.yaml could not be used: 'consultflow workflow list' says why" in err
    assert json.loads(run("consultation", "list", "--json")[1]) == []
    (wf_dir / "乡里的.yaml").write_text(original, encoding="utf-8")  # now the same text: one workflow
    assert [w["valid"] for w in json.loads(run("workflow", "list", "--json")[1])] == [True]
    assert run("--as", "李协调", "consultation", "create", "一期", "--area", "A")[0] == 0


def test_json_is_one_document_on_diagrams_and_written_reports(cli: Cli, tmp_path: Path) -> None:
    """`--json` after the command name, on commands that draw or write files: exactly one JSON document."""
    drawn = json.loads(cli.ok("workflow", "diagram", "--format", "dot", "--json").stdout)
    assert drawn["workflow"] == "consultation-loop@1" and drawn["format"] == "dot"
    assert '[label="已收集\\nsubmitted"]' in drawn["diagram"]  # DOT's own line break, not a literal backslash-n
    assert "\\\\n" not in drawn["diagram"]
    cli.ok("actor", "add", "李协调", "--role", "coordinator")
    cli.ok("consultation", "create", "一期", "--area", "A", actor="李协调")
    out = tmp_path / "adoption.md"
    wrote = json.loads(cli.ok("report", "adoption", "1", "-o", str(out), "--json").stdout)
    assert wrote == {"wrote": str(out), "format": "markdown"} and out.exists()
    inline = json.loads(cli.ok("report", "adoption", "1", "--json").stdout)
    assert inline["figures"]["opinions"] == 0


def test_opinions_are_listed_in_the_chosen_language(cli: Cli) -> None:
    """zh shows 已收集 and 产业发展 where en shows Submitted and Industry development; keys stay in JSON."""
    from tests.e2e.test_cli_loop import COORD, setup_people, submit

    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    oid = submit(cli, "建议发展乡村旅游", "industry")
    zh = cli.ok("--lang", "zh", "opinion", "list").stdout
    assert "已收集" in zh and "产业发展" in zh and "industry" not in zh
    en = cli.ok("--lang", "en", "opinion", "show", str(oid)).stdout
    assert "Submitted" in en and "Industry development" in en
    [listed] = json.loads(cli.ok("opinion", "list", "--json").stdout)
    assert listed["state"] == "submitted" and listed["state_label"] == {"zh": "已收集", "en": "Submitted"}


def test_long_texts_come_from_a_file_or_standard_input(cli: Cli, tmp_path: Path) -> None:
    """An assembly's minutes go in whole from a UTF-8 file or stdin; both at once, or neither, is a usage line."""
    from tests.e2e.test_cli_loop import COORD, EXPERT, PLANNER, setup_people

    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    minutes = "村民大会记录（2023年3月）：\n1. 建议硬化三组至五组的通组道路；\n2. 建议增设路灯。\n" * 40
    source = tmp_path / "minutes.txt"
    source.write_text(minutes, encoding="utf-8-sig")
    head = ["opinion", "submit", "--consultation", "1", "--participant", "1", "--category", "industry"]
    head += ["--channel", "villagers_assembly"]
    from_file = json.loads(cli.ok("--json", *head, "--text-file", str(source), actor=EXPERT).stdout)
    assert from_file["text"] == minutes.strip()
    piped = cli.runner.invoke(
        main,
        ["--db", cli.url, "--workflows", str(WORKFLOWS), "-q", "--json", "--as", EXPERT, *head, "--text-file", "-"],
        input="从标准输入来的意见".encode(),
        obj={"clock": cli.clock},
    )
    assert piped.exit_code == 0 and json.loads(piped.stdout)["text"] == "从标准输入来的意见"
    assert cli(*head, actor=EXPERT).exit_code == 2
    assert cli(*head, "--text", "x", "--text-file", str(source), actor=EXPERT).exit_code == 2
    (tmp_path / "gbk.txt").write_bytes("修路".encode("gb18030"))
    bad = cli(*head, "--text-file", str(tmp_path / "gbk.txt"), actor=EXPERT)
    assert bad.exit_code == 2 and "not UTF-8 text" in bad.stderr
    cli.ok("opinion", "fire", str(from_file["id"]), "screen", actor=EXPERT)
    cli.ok("opinion", "assign", str(from_file["id"]), "--to", PLANNER, actor=COORD)
    reply = tmp_path / "reply.txt"
    reply.write_text("已研究，逐条答复如下……", encoding="utf-8")
    cli.ok("opinion", "fire", str(from_file["id"]), "give_feedback", "--text-file", str(reply), actor=PLANNER)


def test_a_reader_that_stops_early_is_not_an_error(tmp_path: Path) -> None:
    """`consultflow demo | head`: the reader goes away; the command stops quietly with 141, never an internal error."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "consultflow",
        "--db",
        str(tmp_path / "demo.sqlite"),
        "-q",
        "demo",
        "--opinions",
        "300",
    ]
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # gone before the demo, seconds of work later, writes its first line
    err = reader.stderr.read().decode()
    reader.stderr.close()
    assert reader.wait(timeout=120) == 141, err
    assert "internal error" not in err and "Traceback" not in err


def test_a_chain_key_from_a_file_keys_new_consultations(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--chain-key-file (or its env) keys the chain; verify says the mode; without the key, one clear line."""
    from tests.e2e.test_cli_loop import COORD, setup_people

    key_file = tmp_path / "chain.key"
    key_file.write_text("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n")
    monkeypatch.setenv("CONSULTFLOW_CHAIN_KEY_FILE", str(key_file))
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    said = cli.ok("audit", "verify", "1", "--require-keyed").stdout
    assert "chain intact, HMAC-SHA256 with key " in said
    monkeypatch.delenv("CONSULTFLOW_CHAIN_KEY_FILE")
    refused = cli("audit", "verify", "1")
    assert refused.exit_code == 1 and "audit chain is keyed" in refused.stderr and "Traceback" not in refused.stderr
    closed = cli("round", "close", "1", actor=COORD)
    assert closed.exit_code == 1 and "CONSULTFLOW_CHAIN_KEY_FILE" in closed.stderr
    monkeypatch.setenv("CONSULTFLOW_CHAIN_KEY", "too short")
    short = cli("audit", "verify", "1")
    assert short.exit_code == 1 and "the chain key is 9 bytes; at least 32 are needed" in short.stderr
    monkeypatch.setenv("CONSULTFLOW_CHAIN_KEY_FILE", str(tmp_path / "missing.key"))
    both = cli("audit", "verify", "1")
    assert both.exit_code == 1 and "give the audit chain key one way" in both.stderr
    monkeypatch.delenv("CONSULTFLOW_CHAIN_KEY")
    missing = cli("audit", "verify", "1")
    assert missing.exit_code == 1 and "cannot read the chain key file" in missing.stderr
