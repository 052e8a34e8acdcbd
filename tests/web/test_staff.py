"""The server as the only writer: staff sign in with the CLI, and the CLI through it prints what it prints locally.

Real processes: `consultflow serve` from this checkout, and the CLI as a subprocess per person, each
with their own credentials file; on SQLite, and on PostgreSQL where CONSULTFLOW_TEST_PG is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from consultflow.cli.main import main
from consultflow.services.commands import registry
from tests.conftest import _pg_schema_url, _sqlite_file
from tests.web.portal import _free_port

pytestmark = pytest.mark.slow

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
COORD, PLANNER, PLANNER2, EXPERT, AUDITOR = "李协调", "王规划", "陈规划", "赵专家", "孙审计"
PASSWORD = "correct horse battery"


@dataclass
class Run:
    """A finished CLI process."""

    code: int
    out: str
    err: str


class People:
    """The CLI as each person runs it: locally on the database, or through the server with their own sign-in."""

    def __init__(self, db_url: str, home: Path) -> None:
        self.db_url, self.home = db_url, home
        self.env = {
            **os.environ,
            "CONSULTFLOW_WORKFLOWS": str(WORKFLOWS),
            "PYTHONIOENCODING": "utf-8",
            "CONSULTFLOW_WEB_SECRET": "s" * 40,
        }
        for name in ("CONSULTFLOW_DB", "CONSULTFLOW_ACTOR", "CONSULTFLOW_SERVER", "CONSULTFLOW_TOKEN"):
            self.env.pop(name, None)

    def credentials(self, person: str) -> Path:
        """Where `person`'s sign-in is kept."""
        return self.home / f"{abs(hash(person))}" / "credentials.json"

    def run(self, *args: str, person: str | None = None, local: bool = False, stdin: str = "") -> Run:
        """The CLI as `person`: with --db and --as when `local`, else through their sign-in."""
        head = ["--db", self.db_url] if local else []
        if local and person:
            head += ["--as", person]
        # In-process (the server is a real process; tests/e2e/test_wheel.py runs the CLI as one too):
        # a subprocess per step would cost a second and a half of start-up each, on every backend.
        env: dict[str, str | None] = {
            "CONSULTFLOW_WORKFLOWS": str(WORKFLOWS),
            "CONSULTFLOW_CREDENTIALS": str(self.credentials(person or "admin")),
            **dict.fromkeys(("CONSULTFLOW_DB", "CONSULTFLOW_ACTOR", "CONSULTFLOW_SERVER", "CONSULTFLOW_TOKEN")),
        }
        result = CliRunner(env=env).invoke(main, ["-q", *head, *args], input=stdin)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return Run(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, person: str | None = None, local: bool = False, stdin: str = "") -> str:
        """Run, and insist it succeeds."""
        done = self.run(*args, person=person, local=local, stdin=stdin)
        assert done.code == 0, f"{args} as {person}: {done.err}"
        return done.out


@contextmanager
def server(people: People, folder: Path) -> Iterator[str]:
    """`consultflow serve` on its own port until the block ends."""
    port = _free_port()
    log = folder / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consultflow", "--db", people.db_url, "serve", "--port", str(port)],
            env=people.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, proc, log)
        yield base
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def _wait_for(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90  # a loaded 2-core machine running two test workers starts it slowly
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"consultflow serve did not start: {log.read_text(encoding='utf-8')[-2000:]}")


_STAFFED: list[Path] = []


def _staff(people: People) -> None:
    """The people of the walk-through, each with a password (set by the administrator on the server's machine).

    A new SQLite file is a copy of one database these same commands staffed once per test process
    (argon2id makes each password cost a quarter of a second); a PostgreSQL schema runs them each time.
    """
    target = _sqlite_file(people.db_url)
    if target is None:
        _staff_by_cli(people)
        return
    if not _STAFFED:
        folder = Path(tempfile.mkdtemp(prefix="consultflow-staffed-"))
        _staff_by_cli(People(f"sqlite:///{folder / 'staffed.sqlite'}", folder / "home"))
        _STAFFED.append(folder / "staffed.sqlite")
    source, copy = sqlite3.connect(_STAFFED[0]), sqlite3.connect(target)
    try:
        source.backup(copy)  # a consistent copy, whatever is still in the write-ahead log
    finally:
        copy.close()
        source.close()


def _staff_by_cli(people: People) -> None:
    """Migrate, add the five people and set their passwords, as the administrator does with the CLI."""
    people.ok("db", "upgrade", local=True)
    people.ok("actor", "add", COORD, "--role", "coordinator", local=True)
    for name, role in ((PLANNER, "planner"), (PLANNER2, "planner"), (EXPERT, "expert"), (AUDITOR, "auditor")):
        people.ok("actor", "add", name, "--role", role, person=COORD, local=True)
    for name in (COORD, PLANNER, PLANNER2, EXPERT, AUDITOR):
        people.ok("account", "set-password", name, "--password-stdin", local=True, stdin=PASSWORD + "\n")


def _login(people: People, base: str, *names: str) -> None:
    for name in names:
        people.ok("login", base, "--name", name, "--password-stdin", person=name, stdin=PASSWORD + "\n")


# The README's walk-through, a step at a time: (person, arguments).
WALK: list[tuple[str, tuple[str, ...]]] = [
    (EXPERT, ("participant", "add", "张秀英", "--village", "青龙村", "--contact", "13812345678")),
    (COORD, ("consultation", "create", "三产融合片区规划意见征集", "--area", "试点片区")),
    (COORD, ("round", "open", "1", "--closes-at", "2030-12-20T18:00")),
    (
        EXPERT,
        (
            "opinion",
            "submit",
            "--consultation",
            "1",
            "--participant",
            "1",
            "--category",
            "environment_roads",
            "--channel",
            "open_air_meeting",
            "--text",
            "建议硬化通组道路",
        ),
    ),
    (
        EXPERT,
        (
            "opinion",
            "submit",
            "--consultation",
            "1",
            "--participant",
            "1",
            "--category",
            "industry",
            "--channel",
            "villagers_assembly",
            "--text",
            "建设冷链仓储点",
        ),
    ),
    (EXPERT, ("opinion", "fire", "1,2", "screen")),
    (COORD, ("opinion", "assign", "1", "2", "--to", PLANNER)),
    (PLANNER, ("opinion", "list", "--assigned-to", PLANNER, "--state", "under_review")),
    (PLANNER, ("--json", "opinion", "list", "--consultation", "1")),
    (PLANNER, ("opinion", "fire", "1", "give_feedback", "--text", "已研究，请确认具体路段")),
    (EXPERT, ("opinion", "fire", "1", "reparticipate", "--stance", "revise", "--text", "补充：青龙村三组至五组")),
    (EXPERT, ("opinion", "correct", "2", "--text", "建设农产品冷链仓储点", "--reason", "录入笔误")),
    (COORD, ("round", "close", "1", "--dry-run")),
    (COORD, ("round", "close", "1")),
    (COORD, ("round", "open", "1")),
    (COORD, ("round", "status", "1")),
    (PLANNER, ("opinion", "fire", "1", "adopt", "--text", "已纳入规划", "--plan-ref", "v2 §5.3 农村路网")),
    (PLANNER, ("--json", "opinion", "fire", "2", "reject", "--reason", "不在本片区范围")),
    (PLANNER, ("opinion", "fire", "1", "screen")),  # refused: exit 1, one line
    (PLANNER2, ("opinion", "fire", "2", "withdraw")),  # refused by the workflow's roles
    (AUDITOR, ("opinion", "show", "1")),
    (AUDITOR, ("audit", "history", "1")),
    (AUDITOR, ("--json", "audit", "history", "2")),
    (AUDITOR, ("audit", "rounds", "1")),
    (AUDITOR, ("audit", "verify", "1")),
    (AUDITOR, ("consultation", "show", "1")),
    (AUDITOR, ("consultation", "list")),
    (AUDITOR, ("actor", "list")),
    (AUDITOR, ("--json", "round", "status", "1")),
]

# Every other command the CLI sends to the server, after the walk-through: (person, arguments).
MORE: list[tuple[str, tuple[str, ...]]] = [
    (COORD, ("actor", "add", "周规划", "--role", "planner")),
    (COORD, ("actor", "bind", "周规划", "--login", "cf_nobody")),  # refused: no such login (or SQLite)
    (COORD, ("actor", "grant", "周规划", "--role", "expert")),
    (COORD, ("actor", "revoke", "周规划", "--role", "expert")),
    (COORD, ("consultation", "auto-close", "1", "on")),
    (COORD, ("round", "reschedule", "1", "2031-01-10T18:00")),
    (EXPERT, ("opinion", "receipt", "1")),
    (
        EXPERT,
        (
            "opinion",
            "submit",
            "--consultation",
            "1",
            "--participant",
            "1",
            "--category",
            "industry",
            "--channel",
            "online_survey",
            "--text",
            "建议发展乡村旅游",
        ),
    ),
    (EXPERT, ("opinion", "fire", "3", "screen")),
    (AUDITOR, ("participant", "list")),
    (COORD, ("participant", "list", "--names", "full", "--purpose", "回访核对")),
    (COORD, ("--json", "participant", "list", "--with-contact", "--village", "青龙村", "--purpose", "电话回访")),
    (PLANNER, ("participant", "list", "--names", "full", "--purpose", "好奇")),  # refused: not a coordinator
    (COORD, ("participant", "list", "--with-contact")),  # refused: no purpose
    (AUDITOR, ("audit", "access")),
    (AUDITOR, ("--json", "audit", "access", "--participant", "1", "--actor", COORD)),
    (EXPERT, ("participant", "add", "李四", "--village", "白马村")),
    (COORD, ("participant", "erase", "2", "--reason", "本人申请 #7")),
    (COORD, ("--json", "participant", "erase", "2", "--reason", "本人申请 #7")),  # refused: already erased
    (AUDITOR, ("--json", "participant", "list", "--village", "白马村")),
    (AUDITOR, ("audit", "history", "--consultation", "1")),
    (AUDITOR, ("--json", "audit", "history", "--state", "adopted")),
    (AUDITOR, ("audit", "history", "--round", "2", "--limit", "3", "--channel", "open_air_meeting")),
    (AUDITOR, ("audit", "history", "--since", "2000-01-01", "--until", "2001-01-01")),
    (AUDITOR, ("audit", "history", "--participant", "9")),  # refused: no such participant
    (AUDITOR, ("audit", "as-of", "2999-01-01")),
    (AUDITOR, ("--json", "audit", "as-of", "2999-01-01", "--consultation", "1")),
    (AUDITOR, ("audit", "as-of", "2001-01-01")),
    (AUDITOR, ("audit", "funnel", "1")),
    (AUDITOR, ("--json", "audit", "funnel", "1")),
    (AUDITOR, ("--json", "audit", "rounds", "1", "--by", "category")),
    (AUDITOR, ("audit", "head", "1")),
    (COORD, ("reminders", "list")),
    (COORD, ("--json", "reminders", "list", "--consultation", "1", "--status", "pending", "--limit", "2")),
    (COORD, ("reminders", "list", "--failed")),
    (COORD, ("reminders", "show", "1")),
    (COORD, ("--json", "reminders", "show", "1")),
    (COORD, ("reminders", "cancel", "1", "--reason", "已电话提醒")),  # refused: no longer pending
    (COORD, ("reminders", "cancel", "14", "15", "--reason", "已电话提醒")),
    (COORD, ("reminders", "requeue", "--all-dead")),
    (COORD, ("reminders", "requeue", "5")),  # refused: not dead-lettered
    (AUDITOR, ("workflow", "list")),
    (AUDITOR, ("--json", "workflow", "list")),
    (AUDITOR, ("workflow", "show")),
    (AUDITOR, ("--lang", "en", "workflow", "show", "consultation-loop@1")),
    (AUDITOR, ("--json", "workflow", "show")),
    (AUDITOR, ("workflow", "show", "no-such-loop")),  # refused: unknown workflow
    (AUDITOR, ("workflow", "diagram")),
    (AUDITOR, ("--lang", "en", "workflow", "diagram", "--format", "dot")),
    (AUDITOR, ("--json", "workflow", "diagram")),
    (AUDITOR, ("audit", "verify")),
    (PLANNER, ("opinion", "theme", "add", "1", "2", "农村路网")),
    (PLANNER, ("--json", "opinion", "theme", "add", "--consultation", "1", "--matching", "乡村旅游", "乡村旅游")),
    (COORD, ("opinion", "theme", "remove", "2", "农村路网")),
    (AUDITOR, ("theme", "list", "1")),
    (AUDITOR, ("--lang", "en", "--json", "theme", "progress", "1")),
    (AUDITOR, ("theme", "suggest", "1", "--top", "5")),
    (COORD, ("account", "totp", "disable", PLANNER2)),  # refused: two-step codes are not on
    (COORD, ("account", "disable", PLANNER2)),
    (COORD, ("account", "enable", PLANNER2)),
    (COORD, ("programme", "create", "县域片区", "--title", "某县片区国土空间规划")),
    (COORD, ("programme", "add-area", "县域片区", "1")),
    (COORD, ("consultation", "create", "第二片区规划意见征集", "--area", "第二片区", "--from", "1")),
    (AUDITOR, ("programme", "list")),
    (EXPERT, ("participant", "set-group", "1", "普通群众")),
    (EXPERT, ("participant", "add", "王五", "--village", "白马村", "--group", "企业代表")),
    (EXPERT, ("participant", "add", "王六", "--village", "白马村", "--group", "外星人")),  # refused: unknown group
    (AUDITOR, ("report", "participation", "1")),
    (AUDITOR, ("--json", "report", "participation", "1")),
    (AUDITOR, ("--lang", "en", "report", "programme", "县域片区", "--format", "markdown")),
]
MORE_REFUSED = 10  # the steps of MORE marked "refused"

_TIMES = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( CST|[+-]\d{2}:\d{2}|Z)?")
_HASHES = re.compile(r"\b[0-9a-f]{64}\b")
_RECEIPTS = re.compile(r"\b\d{5}(-\d{5}){4}\b")  # a new random receipt code each run
_WIDE = re.compile(r"[ -]{2,}")


# Events written through the server record the token the change came with (JSON output only);
# a local run has none. The one intended difference between the two runs' outputs.
_TOKEN_ONLY = re.compile(r'\{\s*"token": \d+\s*\}')
_TOKEN = re.compile(r',\s*"token": \d+(?=\s*\})|"token": \d+,\s*')


def _same(text: str) -> str:
    """Output with times, hashes and receipt codes (which differ between two runs) blanked, and columns unpadded."""
    text = _TOKEN.sub("", _TOKEN_ONLY.sub("{}", text))
    return _WIDE.sub(" ", _RECEIPTS.sub("<code>", _HASHES.sub("<hash>", _TIMES.sub("<time>", text))))


def test_the_walk_through_prints_the_same_locally_and_through_the_server(db_url: str, tmp_path: Path) -> None:
    """Every step of the README's walk-through, and every other command after it, gives the same output both ways."""
    steps = WALK + MORE
    local = People(db_url, tmp_path / "local-home")
    _staff(local)
    expected = [local.run(*args, person=who, local=True) for who, args in steps]

    with _another_database(db_url) as remote_db:
        remote = People(remote_db, tmp_path / "remote-home")
        _staff(remote)
        with server(remote, tmp_path) as base:
            _login(remote, base, COORD, PLANNER, PLANNER2, EXPERT, AUDITOR)
            got = [remote.run(*args, person=who) for who, args in steps]
    for (who, args), want, have in zip(steps, expected, got, strict=True):
        assert (have.code, _same(have.out)) == (want.code, _same(want.out)), (who, args, have.err)
        assert _same(have.err) == _same(want.err), (who, args)
    assert {r.code for r in expected} == {0, 1}  # no step is a usage mistake that both ways would make alike
    refused = [args for (_who, args), r in zip(steps, expected, strict=True) if r.code == 1]
    assert len(refused) == 2 + MORE_REFUSED, refused  # the refusals marked in the lists, and only those


@contextmanager
def _another_database(db_url: str) -> Iterator[str]:
    """A second fresh database on the same backend."""
    if db_url.startswith("sqlite"):
        yield db_url.replace(".sqlite", "-served.sqlite")
        return
    made = _pg_schema_url()
    try:
        yield next(made)
    finally:
        next(made, None)  # drops the schema


@pytest.fixture(
    name="shared_db", scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def _shared_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database on each backend, for the server the module's `served` tests share."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('shared') / 'consultflow.sqlite'}"
    else:
        yield from _pg_schema_url()


@pytest.fixture(name="shared_server", scope="module")
def _shared_server(shared_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[People, str]]:
    """One server per backend for the tests below, on a fresh database with everyone signed in.

    Round 1 is open and two opinions are with 王规划. The tests that share it change nothing another
    one asserts: their writes are refused, or are a token or a failed sign-in no other test counts;
    the one that signs out does so with a sign-in of its own.
    """
    folder = tmp_path_factory.mktemp("served")
    people = People(shared_db, folder / "home")
    _staff(people)
    with server(people, folder) as base:
        _login(people, base, COORD, PLANNER, PLANNER2, EXPERT, AUDITOR)
        for who, args in WALK[:7]:
            people.ok(*args, person=who)
        yield people, base


@pytest.fixture(name="served")
def _served(shared_server: tuple[People, str], tmp_path: Path) -> tuple[People, str]:
    """The module's server, with everyone's sign-in copied into this test's own home (its files are its own)."""
    shared, base = shared_server
    people = People(shared.db_url, tmp_path / "home")
    for name in (COORD, PLANNER, PLANNER2, EXPERT, AUDITOR):
        people.credentials(name).parent.mkdir(mode=0o700, parents=True)
        shutil.copy2(shared.credentials(name), people.credentials(name))
    return people, base


def _post(base: str, token: str | None, path: str, body: object) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


def _token(people: People, person: str) -> str:
    token: str = json.loads(people.credentials(person).read_text(encoding="utf-8"))["token"]
    return token


_EXAMPLES: dict[str, dict[str, object]] = {
    "actor.add": {"name": "冒名者", "roles": ["coordinator"]},
    "consultation.create": {"title": "t", "area": "a"},
    "round.open": {"consultation_id": 1},
    "round.reschedule": {"consultation_id": 1, "closes_at": "2031-01-01T00:00:00Z"},
    "round.close": {"consultation_id": 1},
    "opinion.submit": {
        "consultation_id": 1,
        "participant_id": 1,
        "category": "industry",
        "channel": "online_survey",
        "text": "x",
    },
    "opinion.assign": {"opinion_ids": [1, 2], "planner": PLANNER2},
    "opinion.correct": {"opinion_id": 1, "text": "改写", "reason": "r"},
    "account.set-password": {"name": COORD, "password": "a new password 123"},
    "account.disable": {"name": COORD},
    "account.enable": {"name": PLANNER2},
    "account.totp-disable": {"name": COORD},
    "role.grant": {"name": PLANNER, "role": "coordinator"},
    "role.revoke": {"name": COORD, "role": "coordinator"},
    "actor.bind": {"name": PLANNER, "login": "postgres"},
    "participant.erase": {"participant_id": 1, "reason": "r"},
    "consultation.auto-close": {"consultation_id": 1, "enabled": True},
    "opinion.receipt": {"opinion_id": 1},
    "reminders.cancel": {"reminder_ids": [1]},
    "reminders.requeue": {},
}


def test_a_planners_token_cannot_exceed_the_role_or_ownership(served: tuple[People, str]) -> None:
    """What the insiders of the issue did with SQL, a planner tries through the API: each is refused, nothing changes."""
    people, base = served
    planner = _token(people, PLANNER)
    for name, body in _EXAMPLES.items():
        status, answer = _post(base, planner, f"/api/v1/commands/{name}", body)
        assert status == 403, (name, status, answer)
        assert answer["exit_code"] == 1 and PLANNER in str(answer["error"]), (name, answer)
    # ownership: 陈规划 may not answer what is assigned to 王规划
    other = _token(people, PLANNER2)
    status, answer = _post(
        base, other, "/api/v1/commands/opinion.fire", {"opinion_ids": [1], "trigger": "give_feedback", "text": "x"}
    )
    assert status == 200  # a stream: the refusal is its last line
    assert "assigned to another planner" in str(answer) or "error" in str(answer)
    refused = people.run("opinion", "fire", "1", "give_feedback", "--text", "抢答", person=PLANNER2)
    assert refused.code == 1 and "assigned to another planner" in refused.err
    # nothing above changed anything: the coordinator is still the only coordinator, and signs in
    actors = json.loads(people.ok("--json", "actor", "list", person=AUDITOR))
    assert {a["name"]: a["roles"] for a in actors}[PLANNER] == ["planner"]
    assert "冒名者" not in {a["name"] for a in actors}
    shown = json.loads(people.ok("--json", "opinion", "show", "1", person=AUDITOR))
    assert shown["opinion"]["text"] == "建议硬化通组道路" and shown["opinion"]["state"] == "under_review"
    listed = json.loads(people.ok("--json", "participant", "list", person=AUDITOR))
    assert [(p["name"], p["erased"]) for p in listed] == [("张某某", False)]
    assert not json.loads(people.ok("--json", "consultation", "list", person=AUDITOR))[0]["auto_close"]


def test_an_auditor_and_a_read_token_change_nothing(served: tuple[People, str]) -> None:
    """Auditors read everything and change nothing; a read-only token cannot write whatever the role."""
    people, base = served
    refused = people.run("opinion", "fire", "1", "give_feedback", "--text", "x", person=AUDITOR)
    assert refused.code == 1 and "may not" in refused.err
    issued = json.loads(people.ok("--json", "account", "issue-token", "dashboard", "--scope", "read", person=COORD))
    status, answer = _post(base, str(issued["token"]), "/api/v1/commands/round.close", {"consultation_id": 1})
    assert status == 403 and "may only read" in str(answer["error"])
    status, answer = _post(base, str(issued["token"]), "/api/v1/commands/round.status", {"consultation_id": 1})
    assert status == 200 and answer["open_round"] is not None


def test_revoked_unknown_and_missing_tokens_are_refused(served: tuple[People, str]) -> None:
    """After logout the old token is dead; a made-up token and no token are refused in one line."""
    people, base = served
    _login(people, base, EXPERT)  # a sign-in of this test's own: the other tests' one stays good
    old = _token(people, EXPERT)
    people.ok("logout", person=EXPERT)
    assert not people.credentials(EXPERT).exists()
    for token in (old, "cft_" + "A" * 43, None):
        status, answer = _post(base, token, "/api/v1/commands/consultation.list", {})
        assert status == 403, answer
    # a signed-out person's CLI says how to sign in, instead of touching a database
    again = people.run("consultation", "list", person=EXPERT)
    assert again.code == 1 and "does not exist" in again.err and "consultflow login URL" in again.err
    events = json.loads(people.ok("--json", "audit", "accounts", "--kind", "token_revoked", person=AUDITOR))
    assert [e["subject"] for e in events] == [EXPERT]


def test_failed_sign_ins_are_limited_and_on_record(served: tuple[People, str]) -> None:
    """Five wrong passwords lock the account for everyone's server process; the right one is then refused too (429)."""
    people, base = served
    for _ in range(5):
        status, answer = _post(base, None, "/api/v1/auth/signin", {"name": PLANNER2, "password": "wrong password!"})
        assert status == 403 and answer["error"] == "sign-in refused: wrong name, password or code"
    status, answer = _post(base, None, "/api/v1/auth/signin", {"name": PLANNER2, "password": PASSWORD})
    assert status == 429 and "too many failed sign-ins" in str(answer["error"])
    failed = json.loads(people.ok("--json", "audit", "accounts", "--kind", "signin_failed", person=AUDITOR))
    assert len(failed) >= 5 and all(e["subject"] == PLANNER2 for e in failed)
    assert PASSWORD not in json.dumps(failed) and "wrong password" not in json.dumps(failed)


def test_the_openapi_document_lists_every_command(served: tuple[People, str]) -> None:
    """The API document is generated from the registry: a path, a body schema and roles for each command."""
    from openapi_spec_validator import validate

    _people, base = served
    with urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=30) as answer:
        document = json.loads(answer.read())
    validate(document)
    paths = document["paths"]
    for name, command in registry().items():
        operation = paths[f"/api/v1/commands/{name}"]["post"]
        assert operation["operationId"] == name
        assert "requestBody" in operation
        assert all(role.value in operation["description"] for role in command.roles)


def test_the_credentials_file_is_private_and_a_shared_one_is_refused(served: tuple[People, str]) -> None:
    """The token is kept readable by its owner only; a file others may read is refused before use."""
    people, base = served
    _login(people, base, COORD)  # the file as `login` writes it, in this test's own home
    path = people.credentials(COORD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    refused = people.run("consultation", "list", person=COORD)
    assert refused.code == 1 and "may be read by others" in refused.err
    path.chmod(0o600)


def test_a_server_killed_mid_request_leaves_nothing_half_written(db_url: str, tmp_path: Path) -> None:
    """SIGKILL while a bulk fire runs: afterwards every opinion moved or none did, and the chain verifies."""
    people = People(db_url, tmp_path / "home")
    _staff(people)
    people.ok("consultation", "create", "大", "--area", "片区", person=COORD, local=True)
    people.ok("round", "open", "1", person=COORD, local=True)
    rows = "\n".join(f"{i},意见{i}号：建议在第{i}组修路,产业发展,青龙村" for i in range(1, 3001))
    source = tmp_path / "many.csv"
    source.write_text("序号,意见内容,类别,村\n" + rows + "\n", encoding="utf-8")
    people.ok(
        "opinion",
        "import",
        str(source),
        "--consultation",
        "1",
        "--channel",
        "online_survey",
        person=EXPERT,
        local=True,
    )
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consultflow", "--db", people.db_url, "serve", "--port", str(port)],
            env=people.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    _wait_for(base, proc, log)
    _login(people, base, EXPERT)
    env = {**people.env, "CONSULTFLOW_CREDENTIALS": str(people.credentials(EXPERT))}
    client = subprocess.Popen(
        [sys.executable, "-m", "consultflow", "-q", "opinion", "fire", "1-3000", "screen"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    for _ in range(600):  # the server has the request and is working on it: kill it now
        if "opinion.fire" in log.read_text(encoding="utf-8", errors="replace"):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _out, err = client.communicate(timeout=120)
    states = json.loads(people.ok("--json", "opinion", "list", "--consultation", "1", local=True))
    moved = {o["state"] for o in states}
    assert len(states) == 3000 and len(moved) == 1, moved
    assert client.returncode == 1, err  # the client says so in one line, never a traceback
    assert (b"cannot reach" in err or b"cut off" in err) and b"Traceback" not in err, err
    people.ok("audit", "verify", "1", local=True)
