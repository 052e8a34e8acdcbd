"""`consultflow db upgrade` while the previous release's server takes submissions (docs/operators/upgrading.md).

The previous release is the commit just before the newest migration was added, taken from git
history (`git archive`) and run from its own folder with this checkout's virtualenv. Its server
(`consultflow web`) receives portal submissions over HTTP from several threads while this
release's `db upgrade` runs in its own process. Afterwards every submission that was answered
with an opinion is in the database exactly once, the audit chain verifies, and nothing crashed.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from consultflow.store import migrate
from tests.web.portal import Consultflow, served
from tests.web.test_browser import COORD

pytestmark = [pytest.mark.slow, pytest.mark.long]

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def previous_release(into: Path) -> Path:
    """The code as it was before the newest migration was added, extracted into `into` (skips without git)."""
    head = migrate.head_revision()
    assert head is not None
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the previous release comes from git history")
    try:
        (added,) = [p for p in _git("ls-files", "migrations/versions").splitlines() if Path(p).name.startswith(head)]
        commit = _git("log", "--diff-filter=A", "--format=%H", "-1", "--", added)
        previous = _git("rev-parse", f"{commit}^")
    except (subprocess.CalledProcessError, ValueError) as exc:
        pytest.skip(f"no git history for migration {head} here ({exc})")
    module = ast.parse((ROOT / added).read_text(encoding="utf-8"))
    if any(isinstance(n, ast.AnnAssign | ast.Assign) and "CONTRACT" in ast.unparse(n) for n in module.body):
        pytest.skip(f"migration {head} is a contract step: the previous release is stopped before it runs")
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", previous, "consultflow", "migrations", "workflows"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, timeout=120)
    # The installed package maps these two subpackages to top-level folders of the checkout.
    (into / "consultflow" / "migrations").symlink_to(into / "migrations")
    (into / "consultflow" / "workflows").symlink_to(into / "workflows")
    return into


class Submitters:
    """Threads posting portal submissions, each with its own Idempotency-Key, until stopped.

    A 503 (the database busy: SQLite's writer waiting on the migration) or a cut connection is
    retried with the same key, as a kiosk does; anything else that is not an opinion is a failure.
    """

    def __init__(self, base: str, threads: int) -> None:
        self.base = base
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted: dict[str, int] = {}
        self.failures: list[str] = []
        self.retries = 0
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def _run(self, n: int) -> None:
        import httpx2 as httpx

        with httpx.Client(base_url=self.base, timeout=60) as web:
            i = 0
            while not self.stop.is_set():
                key = f"t{n}-{i}"
                body = {"category": "industry", "text": f"升级期间的意见 {key}", "village": "青龙村"}
                for _ in range(100):
                    try:
                        answer = web.post(
                            "/api/v1/consultations/1/opinions", json=body, headers={"Idempotency-Key": key}
                        )
                    except httpx.TransportError:
                        with self.lock:
                            self.retries += 1
                        time.sleep(0.1)
                        continue
                    if answer.status_code != 503:
                        break
                    with self.lock:
                        self.retries += 1
                    time.sleep(0.1)
                with self.lock:
                    if answer.status_code in (200, 201):
                        self.accepted[key] = int(answer.json()["opinion_id"])
                    else:
                        self.failures.append(f"{key}: {answer.status_code} {answer.text[:200]}")
                i += 1

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def wait_for(self, count: int) -> None:
        """Until `count` submissions were accepted (a minute at most, and not past a failure)."""
        deadline = time.monotonic() + 60
        while self.count() < count and not self.failures and time.monotonic() < deadline:
            time.sleep(0.05)


def test_db_upgrade_while_the_previous_release_serves(db_url: str, tmp_path: Path) -> None:
    """The database upgrades while the previous release takes submissions: none fails, none is lost or doubled."""
    old_code = previous_release(tmp_path / "previous")
    head = migrate.head_revision()
    assert head is not None
    old = Consultflow(db_url)
    old.env["PYTHONPATH"] = str(old_code)
    old.env["PYTHONSAFEPATH"] = "1"  # not the working directory (this checkout) first on sys.path
    new = Consultflow(db_url)
    probe = "import consultflow.store.migrate as m, consultflow; print(m.SCHEMA_HEAD, consultflow.__file__)"
    said = subprocess.run(
        [sys.executable, "-c", probe], env=old.env, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert said[1].startswith(str(old_code)), said
    previous_head = said[0]
    assert previous_head < head

    old("db", "upgrade")
    old("actor", "add", COORD, "--role", "coordinator")
    old("consultation", "create", "升级测试", "--area", "测试片区", actor=COORD)
    old("round", "open", "1", actor=COORD)
    workers = 1 if db_url.startswith("sqlite") else 2
    with served(old, tmp_path, workers=workers, limits="submits=1000000/60") as base:
        load = Submitters(base, threads=4)
        load.start()
        try:
            load.wait_for(20)  # opinions recorded before the upgrade
            during = load.count()
            upgrade = subprocess.run(
                [sys.executable, "-m", "consultflow", "db", "upgrade"],
                env=new.env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            after_upgrade = load.count()
            load.wait_for(after_upgrade + 20)  # the old server goes on serving the new schema
        finally:
            load.finish()
        assert upgrade.returncode == 0, upgrade.stderr
        assert upgrade.stdout.strip() == f"database at revision {head} (was {previous_head})"
        assert not load.failures, load.failures[:5]
    log = (tmp_path / "web.log").read_text(encoding="utf-8")
    assert "Traceback" not in log, log[-3000:]
    assert after_upgrade > during  # submissions were recorded while the upgrade ran
    assert len(load.accepted) >= after_upgrade + 20

    ids = list(load.accepted.values())
    assert len(set(ids)) == len(ids)  # one opinion per submission
    listed = json.loads(new("--json", "opinion", "list", "--consultation", "1"))
    assert sorted(o["id"] for o in listed) == sorted(ids)  # each exactly once, none lost
    verified = new("audit", "verify", "1")
    assert "chain intact" in verified, verified
