"""`consultflow web` as a service: settings refused in one line, and several worker processes sharing one database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import migrated
from tests.web.portal import Consultflow, _free_port, served
from tests.web.test_browser import COORD

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CONSULTFLOW_WEB_LIMITS": "submits=lots"},
            "CONSULTFLOW_WEB_LIMITS: 'submits=lots' is not NAME=COUNT/SECONDS",
        ),
        ({"CONSULTFLOW_WEB_SECRET": "short"}, "CONSULTFLOW_WEB_SECRET must be at least 32 characters"),
        (
            {"CONSULTFLOW_WEB_SECRET_FILE": "/nonexistent/secret"},
            "CONSULTFLOW_WEB_SECRET_FILE '/nonexistent/secret' cannot be read",
        ),
    ],
)
def test_bad_settings_stop_the_portal_in_one_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    """A bad limit or secret setting stops the portal at start in one line naming the setting, with no traceback."""
    run = Consultflow(str(tmp_path / "cf.sqlite"))
    migrated(run.env["CONSULTFLOW_DB"])  # what `db upgrade` makes
    proc = subprocess.run(
        [sys.executable, "-m", "consultflow", "web", "--port", "1"],
        env={**run.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"Error: {proc.stderr.strip().removeprefix('Error: ')}"]
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_server_without_a_secret_of_its_own_starts_and_warns_what_that_costs(tmp_path: Path) -> None:
    """No CONSULTFLOW_WEB_SECRET: the server makes one for this run and says, once, what a restart will forget."""
    run = Consultflow(str(tmp_path / "cf.sqlite"))
    migrated(run.env["CONSULTFLOW_DB"])  # what `db upgrade` makes
    env = {k: v for k, v in run.env.items() if not k.startswith("CONSULTFLOW_WEB_SECRET")}
    command = [sys.executable, "-m", "consultflow", "--log-json", "web", "--port", str(_free_port())]
    lines = []
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        try:
            for line in proc.stderr:
                lines.append(line)
                if line.startswith("consultflow server on http://"):
                    break
        finally:
            proc.terminate()
    warnings = [json.loads(x) for x in lines if x.startswith("{")]
    assert [w["event"] for w in warnings] == ["web_secret_random"], lines
    assert "CONSULTFLOW_WEB_SECRET_FILE" in warnings[0]["hint"] and warnings[0]["level"] == "warning"


def test_a_missing_database_stops_the_portal_in_one_line(tmp_path: Path) -> None:
    """A portal pointed at a database that does not exist stops in one line saying so."""
    proc = subprocess.run(
        [sys.executable, "-m", "consultflow", "--db", str(tmp_path / "none.sqlite"), "web"],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "does not exist" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_two_worker_processes_record_each_submission_once(db_url: str, tmp_path: Path) -> None:
    """Kiosks retry: every submission is sent twice with its key, to two worker processes at once."""
    import httpx2 as httpx

    run = Consultflow(db_url)
    migrated(db_url)  # what `db upgrade` makes; the commands around the server run in this process
    run.here("actor", "add", COORD, "--role", "coordinator")
    run.here("consultation", "create", "并发测试", "--area", "测试片区", actor=COORD)
    run.here("round", "open", "1", actor=COORD)
    with served(run, tmp_path, workers=2, limits="submits=1000/60") as base:

        def send(i: int) -> int:
            body = {"category": "industry", "text": f"意见{i // 2}", "village": "青龙村"}
            with httpx.Client(base_url=base, timeout=60) as web:
                for _ in range(20):
                    answer = web.post(
                        "/api/v1/consultations/1/opinions", json=body, headers={"Idempotency-Key": f"k{i // 2}"}
                    )
                    if answer.status_code != 503:
                        break
                assert answer.status_code in (200, 201), answer.text
                return int(answer.json()["opinion_id"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = list(pool.map(send, range(60)))
    assert all(ids[i] == ids[i + 1] for i in range(0, 60, 2))  # both sends of a key got the same opinion
    listed = json.loads(run.here("--json", "opinion", "list", "--consultation", "1"))
    assert sorted(o["id"] for o in listed) == sorted(set(ids)) and len(listed) == 30
    assert "intact" in run.here("audit", "verify", "1")
