"""Metrics, readiness and failures in real processes: a server on SQLite and PostgreSQL, the CLI on damaged input.

The database going away is simulated with a TCP relay between the server and PostgreSQL, closed
under it: the machine's PostgreSQL keeps running for everyone else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from consultflow.store.engine import normalize_url
from tests.conftest import migrated

pytestmark = pytest.mark.slow

EXPECTED = {
    "consultflow_http_request_duration_seconds",
    "consultflow_database_up",
    "consultflow_deliveries",
    "consultflow_dead_letters",
    "consultflow_pending_reminders",
    "consultflow_open_rounds",
    "consultflow_chain_head_age_seconds",
    "consultflow_db_pool_checked_out",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "consultflow", *args], capture_output=True, text=True, timeout=180, check=False
    )
    return done.returncode, done.stdout + done.stderr


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode("utf-8"), {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8"), {k.lower(): v for k, v in exc.headers.items()}


class Server:
    """`consultflow web` in its own process, its stderr kept."""

    def __init__(self, url: str, tmp_path: Path, *options: str) -> None:
        self.port = _free_port()
        self.err = tmp_path / f"server-{self.port}.err"
        env = {**os.environ, "CONSULTFLOW_SERVER_JOBS": "0", "CONSULTFLOW_ERROR_LOG": str(tmp_path / "errors.log")}
        with self.err.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "consultflow", "--db", url, "web", "--port", str(self.port), *options],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr()
            try:
                if _get(self.port, "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"the server did not start: {self.stderr()}")

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def workers(self) -> list[int]:
        """The process ids of uvicorn's worker processes (with --workers N), from /proc."""
        found = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == self.process.pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
        return sorted(found)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _families(body: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    found: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body):
        found.setdefault(family.name, []).extend((s.name, s.labels, s.value) for s in family.samples)
    return found


def test_metrics_and_readiness_on_a_running_server(db_url: str, tmp_path: Path) -> None:
    """/metrics parses, holds every expected name and no id in a label; /readyz is 200, then 503 on an older schema."""
    migrated(db_url)  # what `db upgrade` makes, made in this process: the server is the real process here
    server = Server(db_url, tmp_path)
    try:
        status, body, _ = _get(server.port, "/readyz")
        assert status == 200 and json.loads(body)["ready"] is True
        for path in ("/api/v1/consultations/17", "/c/17", "/api/v1/consultations", "/no/such/4711", "/healthz"):
            _get(server.port, path)
        status, body, headers = _get(server.port, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        families = _families(body)
        assert set(families) >= EXPECTED, sorted(families)
        routes = {labels["route"] for _, labels, _ in families["consultflow_http_request_duration_seconds"]}
        assert {"/api/v1/consultations/{consultation_id}", "/c/{consultation_id}", "unmatched"} <= routes
        for _, labels, _ in (sample for samples in families.values() for sample in samples):
            for value in labels.values():
                if value.startswith("/"):
                    assert not re.search(r"\d", value.removeprefix("/api/v1")), value
        assert families["consultflow_database_up"][0][2] == 1
        assert _get(server.port, "/metrics", {"X-Forwarded-For": "203.0.113.9"})[0] == 403

        engine = create_engine(normalize_url(db_url))
        with engine.begin() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            older = f"{int(head) - 1:04d}"
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": older})
        try:
            status, body, _ = _get(server.port, "/readyz")
            answer = json.loads(body)
            assert status == 503 and answer["kind"] == "schema" and older in answer["error"]
            assert answer["exit_code"] == 78  # what a server starting on that schema exits with
            assert "\n" not in answer["error"]
        finally:
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
            engine.dispose()
        assert _get(server.port, "/healthz")[0] == 200  # liveness does not ask the database
    finally:
        server.stop()
    assert "Traceback" not in server.stderr()


class Relay:
    """A TCP relay to PostgreSQL that can be cut (every connection closed, nothing listening) and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if listener is not self.listener:  # cut meanwhile
                client.close()
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        listener, self.listener = self.listener, None
        assert listener is not None
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.sockets.clear()


@pytest.fixture(name="pg_url")
def _pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("the relay stands between the server and PostgreSQL")
    return db_url


@contextlib.contextmanager
def _behind_a_relay(pg_url: str, tmp_path: Path, *options: str) -> Iterator[tuple[Relay, Server]]:
    """A migrated database and `consultflow web` reaching it through a relay; both stopped after the block."""
    migrated(pg_url)
    url = make_url(normalize_url(pg_url))
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    server = Server(relayed, tmp_path, *options)
    try:
        yield relay, server
    finally:
        server.stop()
        if relay.listener is not None:
            relay.cut()


def test_the_portal_answers_503_while_postgresql_is_away_and_recovers(pg_url: str, tmp_path: Path) -> None:
    """Pages and API calls get 503 (exit code 69 in the API's body), never 500, and no traceback reaches stderr."""
    with _behind_a_relay(pg_url, tmp_path) as (relay, server):
        assert _get(server.port, "/readyz")[0] == 200
        assert _get(server.port, "/api/v1/consultations")[0] == 200
        relay.cut()
        for _ in range(5):
            status, body, headers = _get(server.port, "/api/v1/consultations")
            assert status == 503, body
            answer = json.loads(body)
            assert answer["exit_code"] == 69 and "not reachable" in answer["error"]
            assert headers.get("retry-after")
            status, body, _ = _get(server.port, "/")
            assert status == 503, body
            status, body, _ = _get(server.port, "/readyz")
            assert status == 503 and json.loads(body)["exit_code"] == 69
        status, body, _ = _get(server.port, "/metrics")
        assert status == 200 and _families(body)["consultflow_database_up"][0][2] == 0
        relay.start()
        deadline = time.monotonic() + 30
        while _get(server.port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "the server did not see the database come back"
            time.sleep(0.5)
        assert _get(server.port, "/api/v1/consultations")[0] == 200
    err = server.stderr()
    assert "Traceback" not in err and "internal_error" not in err, err
    assert 1 <= err.count("database_unavailable") <= 6, err  # one line per kind of failure, rate-limited


def test_a_worker_started_again_while_postgresql_is_away_says_so_in_one_line_and_serves_when_it_is_back(
    pg_url: str, tmp_path: Path
) -> None:
    """uvicorn starts a worker again when one dies; with the database away that is one line an attempt, no traceback.

    Once PostgreSQL answers again, the server has its two workers and answers.
    """
    with _behind_a_relay(pg_url, tmp_path, "--workers", "2") as (relay, server):
        deadline = time.monotonic() + 60
        while len(first := server.workers()) < 2:
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.2)
        relay.cut()
        os.kill(first[0], 9)  # a worker dies while the database is away: uvicorn starts another
        while "worker_start_refused" not in server.stderr():
            assert time.monotonic() < deadline + 60, server.stderr()
            time.sleep(0.3)
        relay.start()
        deadline = time.monotonic() + 60
        while _get(server.port, "/readyz")[0] != 200 or len(server.workers()) < 2 or first[0] in server.workers():
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.5)
        assert _get(server.port, "/api/v1/consultations")[0] == 200
    err = server.stderr()
    assert "Traceback" not in err and "internal_error" not in err, err
    refused = [line for line in err.splitlines() if "worker_start_refused" in line]
    assert refused and all("not reachable" in line and "exit_code=69" in line for line in refused), err


def test_a_sqlite_file_with_a_zeroed_page_is_one_line_and_exit_code_65(tmp_path: Path) -> None:
    """A damaged file names itself and the restore command; no traceback."""
    db = tmp_path / "county.sqlite"
    migrated(f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'actor'").fetchone()[0]
    conn.close()
    with db.open("r+b") as raw:
        raw.seek((root - 1) * page_size)
        raw.write(b"\0" * page_size)
    code, out = _run("--db", str(db), "actor", "list")
    assert code == 65, out
    assert out.strip().count("\n") == 0 and "is damaged" in out and "consultflow db restore" in out
    assert "Traceback" not in out


def _damaged_inputs(tmp_path: Path) -> dict[str, list[str]]:
    good = tmp_path / "good.xlsx"
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["类别", "意见", "村"])
    sheet.append(["industry", "建议修路", "一村"])
    book.save(good)
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(broken, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, data[: len(data) // 2] if item.filename.endswith("sheet1.xml") else data)
    not_xlsx = tmp_path / "notes.xlsx"
    with zipfile.ZipFile(not_xlsx, "w") as z:
        z.writestr("notes.txt", "hello")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("类别,意见,村\nindustry,建议修路,一村\n".encode("utf-16-le"))
    return {
        "broken XML": [str(broken)],
        "a ZIP that is no workbook": [str(not_xlsx)],
        "UTF-16 without BOM": [str(utf16)],
        "/dev/zero": ["/dev/zero", "--format", "csv"],
        "/dev/urandom": ["/dev/urandom", "--format", "xlsx"],
    }


def test_damaged_input_files_are_one_line_each(tmp_path: Path) -> None:
    """Broken XLSX XML, a ZIP that is no workbook, UTF-16 without BOM, endless devices: one line, exit code 1."""
    db = tmp_path / "county.sqlite"
    migrated(f"sqlite:///{db}")
    damaged = _damaged_inputs(tmp_path)

    def imported(args: list[str]) -> tuple[int, str]:
        return _run("--db", str(db), "--as", "someone", "opinion", "import", *args, "--consultation", "1")

    with ThreadPoolExecutor(max_workers=len(damaged)) as pool:  # each import its own process, side by side
        answers = dict(zip(damaged, pool.map(imported, damaged.values()), strict=True))
    for what, (code, out) in answers.items():
        assert code == 1, (what, out)
        assert out.strip().count("\n") == 0 and out.startswith("Error: "), (what, out)
        assert "internal error" not in out, (what, out)


def test_a_port_in_use_is_exit_code_71_before_listening(tmp_path: Path) -> None:
    """One line naming the port, its own exit code, and no "server on" line."""
    db = tmp_path / "county.sqlite"
    migrated(f"sqlite:///{db}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = _run("--db", str(db), "web", "--port", str(port))
    assert code == 71, out
    assert f"port {port}" in out and "server on" not in out and out.strip().count("\n") == 0
