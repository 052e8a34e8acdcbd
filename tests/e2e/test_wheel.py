"""The package as a user installs it: a wheel in a fresh virtualenv, run from another directory."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(name="installed", scope="module")
def _installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding consultflow installed from a wheel built from this checkout.

    The dependencies come from the test environment (a .pth file), so the test needs no network
    beyond building the wheel; consultflow itself comes only from the wheel.
    """
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT], cwd=base)
    (wheel,) = dist.glob("consultflow-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=base)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=base)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base).strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_wheel_runs_upgrade_demo_and_verify_from_any_directory(installed: Path, tmp_path: Path, db_url: str) -> None:
    """The installed wheel migrates a new database, runs the demo and verifies its audit chain."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTFLOW_")}
    env["PYTHONPATH"] = ""
    consultflow = installed / "bin" / "consultflow"
    where = _run([installed / "bin" / "python", "-c", "import consultflow; print(consultflow.__file__)"], tmp_path, env)
    assert str(installed) in where, f"consultflow was imported from {where}, not the wheel"
    upgraded = _run([consultflow, "--db", db_url, "db", "upgrade"], tmp_path, env)
    assert "(was empty)" in upgraded
    assert "consultation-loop" in _run([consultflow, "--db", db_url, "workflow", "list"], tmp_path, env)
    out = _run([consultflow, "--db", db_url, "demo", "--opinions", "300"], tmp_path, env)
    assert "300 opinions" in out
    verified = _run([consultflow, "--db", db_url, "audit", "verify", "1"], tmp_path, env)
    assert "chain intact" in verified


def test_the_walk_through_runs_against_a_server_started_from_the_wheel(
    installed: Path, tmp_path: Path, db_url: str
) -> None:
    """`consultflow serve` from the wheel on a fresh database; staff sign in with the wheel's CLI and run the loop."""

    from tests.web.portal import _free_port
    from tests.web.test_staff import _wait_for

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTFLOW_")}
    env |= {"PYTHONPATH": "", "CONSULTFLOW_CREDENTIALS": str(tmp_path / "me" / "credentials.json")}
    consultflow = installed / "bin" / "consultflow"
    db = ["--db", db_url]
    _run([consultflow, *db, "db", "upgrade"], tmp_path, env)
    _run([consultflow, *db, "actor", "add", "李协调", "--role", "coordinator"], tmp_path, env)
    password = subprocess.run(
        [consultflow, *db, "account", "set-password", "李协调", "--password-stdin"],
        cwd=tmp_path,
        env=env,
        input="a long enough password\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert password.returncode == 0, password.stderr
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [consultflow, *db, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, server, log)
        signed = subprocess.run(
            [consultflow, "login", base, "--name", "李协调", "--password-stdin"],
            cwd=tmp_path,
            env=env,
            input="a long enough password\n",
            capture_output=True,
            text=True,
            check=False,
        )
        assert signed.returncode == 0, signed.stderr
        for args in (
            ["actor", "add", "王规划", "--role", "planner"],
            ["participant", "add", "张秀英", "--village", "青龙村"],
            ["consultation", "create", "三产融合片区规划意见征集", "--area", "试点片区"],
            ["round", "open", "1"],
            [
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
            ],
            ["opinion", "fire", "1", "screen"],
            ["opinion", "assign", "1", "--to", "王规划"],
        ):
            _run([consultflow, *args], tmp_path, env)
        assert "王规划" in _run([consultflow, "opinion", "list", "--state", "under_review"], tmp_path, env)
        assert "chain intact" in _run([consultflow, "audit", "verify", "1"], tmp_path, env)
        assert "signin" in _run([consultflow, "audit", "accounts"], tmp_path, env)
    finally:
        server.terminate()
        server.wait(timeout=30)
