"""The staff API in-process (a controllable clock), and the CLI client against peers that are not consultflow."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from consultflow.cli.main import main
from consultflow.domain.clock import FixedClock
from consultflow.services import accounts
from consultflow.services.context import ServiceContext
from tests.conftest import make_context
from tests.helpers import COORD, PLANNER, seed, snapshot, submit
from tests.servers import raw_server
from tests.web.portal import client

PASSWORD = "correct horse battery"


def _signed_in(ctx: ServiceContext, name: str, **extra: Any) -> tuple[TestClient, str]:
    accounts.set_password(ctx, acting=None, name=name, password=PASSWORD)
    web = client(replace(ctx, acting_proven=True))
    answer = web.post("/api/v1/auth/signin", json={"name": name, "password": PASSWORD, **extra})
    assert answer.status_code == 200, answer.text
    return web, str(answer.json()["token"])


def test_an_expired_token_is_refused_and_a_fresh_sign_in_works(ctx: ServiceContext, clock: FixedClock) -> None:
    """A token works until its expiry, then every command refuses it in one line, writing nothing."""
    seed(ctx)
    web, token = _signed_in(ctx, COORD, expires_days=1)
    bearer = {"Authorization": f"Bearer {token}"}
    assert web.post("/api/v1/commands/consultation.list", json={}, headers=bearer).status_code == 200
    clock.advance(timedelta(days=1, seconds=1))
    before = snapshot(ctx)
    refused = web.post("/api/v1/commands/round.close", json={"consultation_id": 1}, headers=bearer)
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "token refused: unknown, expired or revoked; sign in again with 'consultflow login'",
        "exit_code": 1,
        "kind": "permission_denied",
    }
    assert snapshot(ctx) == before
    _web, again = _signed_in(ctx, COORD)
    assert web.post("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {again}"}).status_code == 405
    me = web.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {again}"}).json()
    assert me["name"] == COORD and me["roles"] == ["coordinator"]


def test_malformed_bodies_and_unknown_commands_are_one_line(sqlite_ctx: ServiceContext) -> None:
    """A body that does not fit the command's fields is a usage error (exit 2), naming the field; nothing runs."""
    seed(sqlite_ctx)
    web, token = _signed_in(sqlite_ctx, COORD)
    bearer = {"Authorization": f"Bearer {token}"}
    wrong = web.post("/api/v1/commands/round.open", json={"consultation_id": "one"}, headers=bearer)
    assert wrong.status_code == 422 and wrong.json()["exit_code"] == 2
    assert "consultation_id" in wrong.json()["error"] and "\n" not in wrong.json()["error"]
    assert web.post("/api/v1/commands/no.such", json={}, headers=bearer).status_code == 404
    assert web.post("/api/v1/commands/round.open", content=b"{", headers=bearer).status_code == 422


def test_a_refusal_inside_a_stream_is_its_last_line(sqlite_ctx: ServiceContext) -> None:
    """A streamed command that is refused part-way ends with the refusal, and the CLI's one line and exit code."""
    setup = seed(sqlite_ctx)
    submit(sqlite_ctx, setup)
    web, token = _signed_in(sqlite_ctx, PLANNER)
    answer = web.post(
        "/api/v1/commands/opinion.fire",
        json={"opinion_ids": [1], "trigger": "adopt", "text": "x"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    last = answer.text.strip().splitlines()[-1]
    assert last.startswith('{"error":') and '"exit_code": 1' in last


GARBAGE = [
    b"SSH-2.0-OpenSSH_9.2\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\n\r\n<html>hi</html>",
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\n\r\nBad Gateway",
    b'HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n{"item":{"opinion_id":1',
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"id": "x"}\n',
    b"",
]


@pytest.mark.parametrize("answer", GARBAGE, ids=["ssh", "html", "502", "cut-stream", "wrong-shape", "nothing"])
def test_the_cli_says_one_line_when_the_server_is_not_consultflow(
    answer: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a peer answers, the CLI prints one line and exit code 1: no traceback, nothing printed as a result."""
    with raw_server([answer]) as url:
        monkeypatch.setenv("CONSULTFLOW_SERVER", url)
        monkeypatch.setenv("CONSULTFLOW_TOKEN", "cft_" + "x" * 43)
        for args in (["consultation", "show", "1"], ["opinion", "fire", "1", "screen"], ["opinion", "list"]):
            result = CliRunner().invoke(main, ["-q", *args])
            assert result.exit_code == 1, (args, result.output)
            assert result.stdout == "", (args, result.stdout)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), (args, result.stderr)
            assert "Traceback" not in result.output and "internal error" not in result.stderr


def test_an_unreachable_server_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening: one line naming the server, exit 1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CONSULTFLOW_SERVER", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("CONSULTFLOW_TOKEN", "cft_" + "x" * 43)
    result = CliRunner().invoke(main, ["-q", "consultation", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot reach the consultflow server at http://127.0.0.1:{port}")


def test_staff_requests_without_a_token_or_with_too_much_body_are_refused_unread(sqlite_ctx: ServiceContext) -> None:
    """No token: 403 before the body is read; a body past its limit: 413 with one line; nothing runs."""
    from consultflow.web import limits

    seed(sqlite_ctx)
    web, token = _signed_in(sqlite_ctx, COORD)
    refused = web.post("/api/v1/commands/round.close", json={"consultation_id": 1})
    assert refused.status_code == 403 and refused.json()["exit_code"] == 1
    before = snapshot(sqlite_ctx)
    huge = b'{"title": "' + b"x" * (limits.BODY_LIMIT + 1) + b'", "area": "a"}'
    answer = web.post(
        "/api/v1/commands/consultation.create",
        content=huge,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 413 and "over 8 MB" in answer.json()["error"]
    streamed = web.post(
        "/api/v1/commands/consultation.create",
        content=iter([huge[:1000], huge[1000:]]),  # no Content-Length: counted as it arrives
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert snapshot(sqlite_ctx) == before
    big_sign_in = web.post("/api/v1/auth/signin", content=b"{" + b" " * (limits.SIGN_IN_LIMIT + 1) + b"}")
    assert big_sign_in.status_code == 413


def test_a_bad_token_is_refused_before_a_byte_of_its_body_is_read(sqlite_ctx: ServiceContext) -> None:
    """A made-up token with a huge id list costs one token lookup: the body is never read, nothing is held."""
    seed(sqlite_ctx)
    web, _token = _signed_in(sqlite_ctx, COORD)
    sent = [0]

    def body() -> Iterator[bytes]:
        yield b'{"opinion_ids": [1'
        for _ in range(10_000):  # 100 MB if it were all read
            sent[0] += 1
            yield b",1" * 5_000
        yield b'], "trigger": "screen"}'

    answer = web.post(
        "/api/v1/commands/opinion.fire",
        content=body(),
        headers={"Authorization": "Bearer cft_" + "A" * 43, "Content-Type": "application/json"},
    )
    assert answer.status_code == 403 and "token refused" in answer.json()["error"]
    assert sent[0] < 10


def test_the_portals_json_calls_take_one_opinions_worth_of_body(sqlite_ctx: ServiceContext) -> None:
    """The villagers' JSON API needs no token, so its bodies are small: 64 KB, then 413 in one line."""
    setup = seed(sqlite_ctx)
    web = client(sqlite_ctx)
    huge = b'{"text": "' + b"x" * (70 * 1024) + b'"}'
    answer = web.post(
        f"/api/v1/consultations/{setup.consultation_id}/opinions",
        content=huge,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert (
        web.post("/api/v1/receipts/timeline", content=huge, headers={"Content-Type": "application/json"}).status_code
        == 413
    )


@pytest.mark.parametrize("text", ["\ud800", "名\x00字"], ids=["lone-surrogate", "nul"])
def test_text_no_database_can_store_is_one_line_not_an_internal_error(sqlite_ctx: ServiceContext, text: str) -> None:
    """A lone surrogate or a NUL, signed in or not, is refused in one line (422) before anything runs."""
    seed(sqlite_ctx)
    web, token = _signed_in(sqlite_ctx, COORD)
    raw = json.dumps({"name": text, "password": text}).encode()  # ensure_ascii keeps the surrogate as \\ud800
    anonymous = web.post("/api/v1/auth/signin", content=raw, headers={"Content-Type": "application/json"})
    assert anonymous.status_code == 422 and anonymous.json()["kind"] == "validation", anonymous.text
    before = snapshot(sqlite_ctx)
    body = json.dumps({"title": text, "area": "片区"}).encode()
    signed = web.post(
        "/api/v1/commands/consultation.create",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert signed.status_code == 422 and "title" in signed.json()["error"]
    assert snapshot(sqlite_ctx) == before


@pytest.mark.parametrize(
    ("command", "body", "named"),
    [
        ("audit.access", {"limit": -3}, "limit"),
        ("audit.as-of", {"moment": "9999-12-31T23:59:00+00:00"}, "moment"),
        ("audit.as-of", {"moment": "0001-01-01T00:00:00+00:00"}, "moment"),
        ("audit.history", {"opinion_id": 2**40}, "opinion_id"),
    ],
    ids=["negative-limit", "year-9999", "year-1", "huge-id"],
)
def test_values_no_database_holds_are_one_line_not_an_internal_error(
    ctx: ServiceContext, command: str, body: dict[str, Any], named: str
) -> None:
    """A negative limit, a date out of the years a consultation runs in, an id past INTEGER: 422 naming the field."""
    seed(ctx)
    web, token = _signed_in(ctx, COORD)
    refused = web.post(f"/api/v1/commands/{command}", json=body, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 422, refused.text
    assert named in refused.json()["error"] and "\n" not in refused.json()["error"]


def test_two_apps_in_one_process_each_answer_from_their_own_database(
    sqlite_ctx: ServiceContext, tmp_path: Path, clock: FixedClock
) -> None:
    """Apps built in one process share the staff API's routes, never each other's database or tokens."""
    other = make_context(f"sqlite:///{tmp_path / 'other.sqlite'}", clock)
    try:
        seed(sqlite_ctx)
        seed(other, open_first_round=False)
        here, here_token = _signed_in(sqlite_ctx, COORD)
        there, there_token = _signed_in(other, COORD)
        assert here.app is not there.app

        def rounds(web: TestClient, token: str) -> Any:
            answer = web.post(
                "/api/v1/commands/round.status",
                json={"consultation_id": 1},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200, answer.text
            return answer.json()

        before_there = snapshot(other)
        closed = here.post(
            "/api/v1/commands/round.close",
            json={"consultation_id": 1},
            headers={"Authorization": f"Bearer {here_token}"},
        )
        assert closed.status_code == 200, closed.text
        assert snapshot(other) == before_there  # the close went to its own app's database only
        assert rounds(here, here_token) != rounds(there, there_token)
        # A token is only known where it was issued.
        crossed = there.post(
            "/api/v1/commands/round.status",
            json={"consultation_id": 1},
            headers={"Authorization": f"Bearer {here_token}"},
        )
        assert crossed.status_code == 403
    finally:
        other.database.dispose()
