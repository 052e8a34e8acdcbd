"""Helpers for driving the portal in tests: a client over a service context, and form tokens from pages."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from consultflow.cli.main import main
from consultflow.services.context import ServiceContext
from consultflow.web.app import create_app
from consultflow.web.common import WebSettings, parse_limits
from tests.conftest import WORKFLOWS

SECRET = b"t" * 32


def client(ctx: ServiceContext, limits: str = "", address: str = "testclient") -> TestClient:
    """A test client over `ctx`, with the portal's default limits unless told otherwise.

    Limits are counted in the database, per client address: give clients that must not share
    counts an `address` of their own.
    """
    app = create_app(ctx, WebSettings(SECRET, parse_limits(limits)))
    return TestClient(app, follow_redirects=False, raise_server_exceptions=False, client=(address, 50000))


def hidden(html: str, name: str) -> str:
    """The value of a hidden form field."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name!r} in the page"
    return found.group(1)


def submit_form(web: TestClient, consultation_id: int, **fields: str) -> tuple[str, dict[str, str]]:
    """Open the questionnaire and post it; returns the form key and what was posted (the response is checked by the caller)."""
    page = web.get(f"/c/{consultation_id}/submit")
    assert page.status_code == 200, page.text
    data = {
        "csrf": hidden(page.text, "csrf"),
        "form_key": hidden(page.text, "form_key"),
        "category": "industry",
        "text": "建议在村口建设农产品冷链仓储点",
        "village": "青龙村",
        **fields,
    }
    return data["form_key"], data


def shown_code(html: str) -> str:
    """The receipt code shown on the page after submitting."""
    found = re.search(r'id="receipt-code">([0-9-]+)<', html)
    assert found, "no receipt code on the page"
    return found.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Consultflow:
    """The CLI as a real subprocess on one database."""

    def __init__(self, db_url: str) -> None:
        self.env = {
            **os.environ,
            "CONSULTFLOW_DB": db_url,
            "CONSULTFLOW_WORKFLOWS": str(WORKFLOWS),
            "PYTHONIOENCODING": "utf-8",
        }

    def __call__(self, *args: str, actor: str | None = None) -> str:
        env = {**self.env, **({"CONSULTFLOW_ACTOR": actor} if actor else {})}
        proc = subprocess.run(
            [sys.executable, "-m", "consultflow", "-q", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
        return proc.stdout

    def here(self, *args: str, actor: str | None = None) -> str:
        """The same command run in this process, on the same database and settings.

        For preparing and reading the database around a served test: the server under test is still
        a real process, and a subprocess per command would only add an interpreter's start-up.
        """
        env: dict[str, str | None] = {
            "CONSULTFLOW_DB": self.env["CONSULTFLOW_DB"],
            "CONSULTFLOW_WORKFLOWS": str(WORKFLOWS),
            "CONSULTFLOW_ACTOR": actor,
            **dict.fromkeys(("CONSULTFLOW_SERVER", "CONSULTFLOW_TOKEN")),
        }
        result = CliRunner(env=env).invoke(main, ["-q", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code == 0, f"{args}: {result.stderr}"
        return result.stdout


@contextmanager
def served(run: Consultflow, folder: Path, workers: int = 1, limits: str = "") -> Iterator[str]:
    """`consultflow web` on its own port until the block ends; its log goes to folder/web.log."""
    port = _free_port()
    log = folder / "web.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "consultflow", "web", "--port", str(port), "--workers", str(workers)],
            env={**run.env, "CONSULTFLOW_WEB_SECRET": "s" * 40, "CONSULTFLOW_WEB_LIMITS": limits},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded 2-core machine running two test workers starts it slowly
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            server.kill()
            server.wait(timeout=20)
            pytest.fail(f"consultflow web did not start: {log.read_text(encoding='utf-8')[-2000:]}")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
