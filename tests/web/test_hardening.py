"""What the outside audit of the portal found (issue 23), each as a test: shared limits, bound CSRF
tokens, bounded bodies, one error format with the security headers, idempotency that drops nothing.

The limits and the body test run real `consultflow web` processes (two workers) on SQLite and
PostgreSQL; the rest drive the app in-process.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from consultflow.services.context import ServiceContext
from consultflow.store.models import Opinion
from consultflow.web.security import HEADERS
from tests.conftest import migrated, sql_uow
from tests.helpers import seed, snapshot
from tests.web.portal import Consultflow, client, hidden, submit_form
from tests.web.test_browser import COORD

OPINION = {"category": "industry", "text": "建议修缮村口道路", "village": "青龙村"}
WRONG = [f"{i:05d}-11111-22222-33333-{i:05d}" for i in range(1, 41)]


def _has_security_headers(headers: Any) -> bool:
    return all(headers.get(name.decode()) == value.decode() for name, value in HEADERS)


# CSRF: bound to the session, and for answers to the receipt code


def test_a_planted_csrf_cookie_cannot_withdraw_a_villagers_opinion(ctx: ServiceContext) -> None:
    """A planted CSRF cookie or another session's token cannot withdraw a villager's opinion; her own form can."""
    setup = seed(ctx)
    villager = client(ctx)
    _key, data = submit_form(villager, setup.consultation_id)
    assert villager.post(f"/c/{setup.consultation_id}/submit", data=data).status_code == 303
    page = villager.get("/my")
    assert page.status_code == 200 and 'action="/my/withdraw"' in page.text
    attacker = client(ctx, address="192.0.2.66")
    own = hidden(attacker.get("/my").text, "csrf")  # a token the attacker got for his own session
    before = snapshot(ctx)
    # The audit's attack: a cf_csrf cookie planted from another port, with the matching field.
    villager.cookies.set("cf_csrf", "planted-token")
    assert villager.post("/my/withdraw", data={"csrf": "planted-token", "reason": "x"}).status_code == 403
    # His own session's cookie planted in her browser, with his session's token: not for her code.
    session = villager.cookies.get("cf_session")
    villager.cookies.set("cf_session", attacker.cookies.get("cf_session") or "")
    refused = villager.post("/my/withdraw", data={"csrf": own, "reason": "x"})
    assert refused.status_code == 403 and "表单已过期" in refused.text
    villager.cookies.set("cf_session", session or "")
    for token in ("", "forged.forged", own):
        assert villager.post("/my/withdraw", data={"csrf": token, "reason": "x"}).status_code == 403
    english = villager.post("/my/withdraw?lang=en", data={"csrf": "", "reason": "x"})
    assert english.status_code == 403 and "The form expired" in english.text and "表单" not in english.text
    assert snapshot(ctx) == before
    mine = hidden(villager.get("/my").text, "csrf")  # her own page's token still works
    assert villager.post("/my/withdraw", data={"csrf": mine, "reason": "已解决"}).status_code == 303


# One error format, the headers on every answer, the real constraints


def test_every_api_refusal_is_in_the_error_format_with_the_headers(sqlite_ctx: ServiceContext) -> None:
    """Every API refusal, from 404 to 422, is in the one error format with the security headers, and writes nothing."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx)
    answers = {
        404: web.get("/api/v1/nothing-here"),
        405: web.get("/api/v1/receipts/timeline"),
        413: web.post("/api/v1/receipts/timeline", content=b"{" + b" " * 70_000 + b"}"),
        415: web.post("/api/v1/receipts/timeline", content=b"code=1", headers={"content-type": "text/plain"}),
        422: web.post("/api/v1/receipts/timeline", content=b"{not json", headers={"content-type": "application/json"}),
    }
    for status, answer in answers.items():
        assert answer.status_code == status, (status, answer.text)
        assert set(answer.json()) == {"error", "exit_code", "kind"}, answer.text
        assert _has_security_headers(answer.headers)
    for path in ("/api/v1/consultations/0", "/api/v1/consultations/2147483648", "/api/v1/consultations/-1"):
        assert web.get(path).status_code == 422 and web.get(path).json()["kind"] == "usage"
    base = f"/api/v1/consultations/{setup.consultation_id}/opinions"
    lone = web.post(
        base,
        content=b'{"category": "industry", "village": "v", "text": "a\\ud800b"}',
        headers={"content-type": "application/json"},
    )
    assert lone.status_code == 422 and lone.json()["error"].startswith("text:"), lone.text
    long = web.post(base, json={**OPINION, "village": "村" * 121})
    assert long.status_code == 422 and long.json()["error"].startswith("village:")
    with sql_uow(sqlite_ctx) as uow:
        assert uow.session.scalars(select(Opinion)).all() == []


def test_a_bug_is_answered_with_the_security_headers(
    sqlite_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is answered 500 with the security headers, and the page does not show the error."""
    seed(sqlite_ctx)

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("consultflow.services.consultations.list_consultations", broken)
    web = client(sqlite_ctx)
    api, page = web.get("/api/v1/consultations"), web.get("/")
    assert api.status_code == 500 and api.json()["kind"] == "internal" and _has_security_headers(api.headers)
    assert page.status_code == 500 and "boom" not in page.text and _has_security_headers(page.headers)


# Idempotency: scoped to the client and the body


def test_an_idempotency_key_is_scoped_to_its_client_and_its_body(sqlite_ctx: ServiceContext) -> None:
    """An Idempotency-Key is its client's and body's: on another kiosk it is a new opinion; with new text, refused."""
    setup = seed(sqlite_ctx)
    kiosk, other = client(sqlite_ctx), client(sqlite_ctx, address="192.0.2.9")
    url, key = f"/api/v1/consultations/{setup.consultation_id}/opinions", {"Idempotency-Key": "k-1"}
    first = kiosk.post(url, json=OPINION, headers=key)
    again = kiosk.post(url, json=OPINION, headers=key)  # the answer was lost: the retry gets the code again
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["receipt_code"] == first.json()["receipt_code"] != ""
    code = again.json()["receipt_code"]
    assert kiosk.post("/api/v1/receipts/timeline", json={"code": code}).status_code == 200
    theirs = other.post(url, json={**OPINION, "text": "另一位村民的意见"}, headers=key)  # the same key, elsewhere
    assert theirs.status_code == 201 and theirs.json()["opinion_id"] != first.json()["opinion_id"]
    changed = kiosk.post(url, json={**OPINION, "text": "改过的意见"}, headers=key)
    assert changed.status_code == 409 and changed.json()["kind"] == "idempotency_key_reused"
    with sql_uow(sqlite_ctx) as uow:
        rows = uow.session.scalars(select(Opinion)).all()
        assert len(rows) == 2
        assert all(code.replace("-", "") not in str(vars(r)) for r in rows)  # only the hash is stored


# Real processes: limits shared by two workers, bodies bounded


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(run: Consultflow, folder: Path, limits: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = _port()
    with (folder / "web.log").open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consultflow", "web", "--port", str(port), "--workers", "2"],
            env={**run.env, "CONSULTFLOW_WEB_SECRET": "s" * 40, "CONSULTFLOW_WEB_LIMITS": limits},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90  # a loaded 2-core machine running two test workers starts it slowly
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if _request(port, "GET", "/healthz")[0] == 200 and len(_workers(proc.pid)) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail((folder / "web.log").read_text(encoding="utf-8")[-2000:])
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _workers(pid: int) -> list[int]:
    """The server's worker processes (uvicorn spawns them; the resource tracker is not one)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text, cmdline = status.read_text(), (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in text and b"resource_tracker" not in cmdline:
            found.append(int(status.parent.name))
    return found


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _seeded(db_url: str) -> Consultflow:
    """A migrated database with round 1 open, prepared in this process for the server to serve."""
    run = Consultflow(db_url)
    migrated(db_url)
    run.here("actor", "add", COORD, "--role", "coordinator")
    run.here("consultation", "create", "限流测试", "--area", "测试片区", actor=COORD)
    run.here("round", "open", "1", actor=COORD)
    return run


@pytest.mark.slow
def test_forty_wrong_codes_at_once_through_two_workers_pass_at_most_the_limit(db_url: str, tmp_path: Path) -> None:
    """Forty wrong codes at once via two workers pass at most the limit, then lock every path; no code is logged."""
    run = _seeded(db_url)
    with _server(run, tmp_path, "lookups=20/900,code=1000/3600") as (port, _proc):
        status, body = _request(
            port,
            "POST",
            "/api/v1/consultations/1/opinions",
            json.dumps(OPINION).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 201, body
        real = json.loads(body)["receipt_code"]
        start = threading.Barrier(40)

        def guess(i: int) -> int:
            code = WRONG[i]
            start.wait()
            if i % 2:  # through the API
                return _request(
                    port,
                    "POST",
                    "/api/v1/receipts/timeline",
                    json.dumps({"code": code}).encode(),
                    {"Content-Type": "application/json"},
                )[0]
            return _request(port, "GET", "/my", headers={"Cookie": f"cf_receipt={code.replace('-', '')}"})[0]

        with ThreadPoolExecutor(max_workers=40) as pool:
            answers = list(pool.map(guess, range(40)))
        looked_up = [a for a in answers if a not in (429, 503)]
        assert len(looked_up) <= 20 and set(looked_up) <= {404}, answers
        assert answers.count(429) >= 20, answers
        # Every path is locked for this client now, even with the right code.
        digits = real.replace("-", "")
        api = _request(
            port,
            "POST",
            "/api/v1/receipts/timeline",
            json.dumps({"code": real}).encode(),
            {"Content-Type": "application/json"},
        )
        assert api[0] == 429, api
        assert _request(port, "GET", "/my", headers={"Cookie": f"cf_receipt={digits}"})[0] == 429
        assert (
            _request(
                port,
                "POST",
                "/api/v1/receipts/withdraw",
                json.dumps({"code": real}).encode(),
                {"Content-Type": "application/json"},
            )[0]
            == 429
        )
    log = (tmp_path / "web.log").read_text(encoding="utf-8")
    assert log.count("receipt_refused") >= 40
    assert all(c.replace("-", "") not in log and c not in log for c in [*WRONG, real])


@pytest.mark.slow
def test_a_100_mb_body_is_refused_without_the_worker_growing(sqlite_url: str, tmp_path: Path) -> None:
    """A 100 MB body is refused with 413 before it is read, and the worker does not grow."""
    run = _seeded(sqlite_url)
    with _server(run, tmp_path, "") as (port, proc):
        workers = _workers(proc.pid)
        before = {pid: _rss_kb(pid) for pid in workers}
        chunk = b"x" * 65536
        for path, chunked in (
            ("/api/v1/receipts/timeline", False),
            ("/api/v1/consultations/1/opinions", True),
            ("/my", True),
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                media = "application/x-www-form-urlencoded" if path == "/my" else "application/json"
                head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {media}\r\n"
                head += (
                    "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
                )
                s.sendall(head.encode())
                sent, answered = [0], threading.Event()

                def send(
                    s: socket.socket = s,
                    chunked: bool = chunked,
                    sent: list[int] = sent,
                    answered: threading.Event = answered,
                ) -> None:
                    try:
                        while sent[0] < 100 * 1024 * 1024 and not answered.is_set():
                            s.sendall(b"10000\r\n" + chunk + b"\r\n" if chunked else chunk)
                            sent[0] += len(chunk)
                    except OSError:
                        pass  # the server answered and closed: the rest is never read

                sender = threading.Thread(target=send)
                sender.start()
                answer = s.recv(65536).decode("latin-1")
                s.settimeout(3)
                while "\r\n\r\n{" not in answer or not answer.endswith("}"):
                    try:
                        more = s.recv(65536).decode("latin-1")
                    except OSError:
                        break
                    if not more:
                        break
                    answer += more
                answered.set()
                sender.join(timeout=60)
            assert answer.startswith("HTTP/1.1 413"), answer[:200]
            assert '"kind":"too_large"' in answer.replace(" ", "") and "content-security-policy" in answer.lower()
            assert sent[0] < 100 * 1024 * 1024, "the server read the whole body"
        grown = {pid: _rss_kb(pid) - before[pid] for pid in workers}
        assert max(grown.values()) < 8 * 1024, grown  # kB: a few MB at most, not 100
