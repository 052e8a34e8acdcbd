"""Every registered command goes through the server in a walk that compares it with the local CLI, or says why not.

The walks (`WALK` and `MORE` in test_staff.py, the steps of test_staff_files.py) run each step
locally and through `consultflow serve` and compare what is printed. Here they run in-process on
SQLite only to learn which registered commands their steps call, so a new command cannot be added
without a step that takes it through the server, or a reason below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from consultflow.cli.main import CliState, main
from consultflow.services.commands import registry
from tests.conftest import WORKFLOWS
from tests.web.test_staff import AUDITOR, COORD, EXPERT, MORE, PLANNER, PLANNER2, WALK
from tests.web.test_staff_files import ROWS
from tests.web.test_staff_files import _steps as file_steps

# Registered commands no walk takes through the server, and why.
NOT_WALKED: dict[str, str] = {
    "account.set-password": "reads the password from standard input, which walk steps do not give "
    "(every walk sets its people's passwords with it, locally)",
    "account.issue-token": "prints a new secret each run; through the server in test_an_auditor_and_a_read_token_...",
    "account.tokens": "lists the tokens people signed in with, which a local run has none of",
    "account.revoke-token": "revokes one of the tokens people signed in with, which a local run has none of",
    "account.totp-enable": "prints a new random secret each run",
    "account.totp-confirm": "needs a code from the secret totp-enable printed",
    "audit.accounts": "the server's account log also holds the walk's sign-ins, so its numbers differ from a "
    "local run's; through the server in test_revoked_unknown_... and test_failed_sign_ins_...",
    "audit.verify-accounts": "counts the account log's events, which through the server include the sign-ins",
    "audit.sign": "needs the signing key, which only the server holds (the walk's local runs have none); "
    "through the server in test_signed_heads_server.py",
    "audit.heads": "lists what the server signed, which a local run without the key has nothing of; "
    "through the server in test_signed_heads_server.py",
    "review.results": "the staff API's structured figures of a review (the CLI reads them as 'report review'); "
    "through the server in tests/web/test_review_pages.py",
}


def _run(runner: CliRunner, url: str, who: str, args: tuple[str, ...]) -> None:
    runner.invoke(main, ["--db", url, "--workflows", str(WORKFLOWS), "-q", "--as", who, *args])


@pytest.mark.long
def test_every_registered_command_is_walked_through_the_server_or_says_why_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command in the registry is called by a step of a local-and-remote walk, or is listed with a reason."""
    called: set[str] = set()
    call, stream = CliState.call, CliState.stream

    def calling(state: CliState, name: str, given: Any, **hooks: Any) -> Any:
        called.add(name)
        return call(state, name, given, **hooks)

    def streaming(state: CliState, name: str, given: Any, use: Callable[[Iterable[Any]], Any]) -> Any:
        called.add(name)
        return stream(state, name, given, use)

    runner = CliRunner()
    walks = {"walk": WALK + MORE, "files": file_steps(tmp_path)}
    (tmp_path / "村民大会.csv").write_text(ROWS, encoding="utf-8")
    for name, steps in walks.items():
        url = f"sqlite:///{tmp_path / name}.sqlite"
        _run(runner, url, COORD, ("db", "upgrade"))
        _run(runner, url, COORD, ("actor", "add", COORD, "--role", "coordinator"))
        for person, role in ((PLANNER, "planner"), (PLANNER2, "planner"), (EXPERT, "expert"), (AUDITOR, "auditor")):
            _run(runner, url, COORD, ("actor", "add", person, "--role", role))
        with monkeypatch.context() as patched:
            patched.setattr(CliState, "call", calling)
            patched.setattr(CliState, "stream", streaming)
            for who, args in steps:
                _run(runner, url, who, args)

    unwalked = set(registry()) - called - NOT_WALKED.keys()
    assert not unwalked, f"add a step to MORE in test_staff.py (or a reason to NOT_WALKED) for {sorted(unwalked)}"
    assert NOT_WALKED.keys() <= registry().keys(), "NOT_WALKED names commands that are gone"
    assert not NOT_WALKED.keys() & called, f"walked now, drop them from NOT_WALKED: {NOT_WALKED.keys() & called}"
