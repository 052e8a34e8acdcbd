"""Where the database is: clear lines for a missing, empty, in-memory, unreachable or read-only one."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from consultflow.cli.main import main


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-q", *args])
    return result.exit_code, result.output


def test_read_commands_never_create_a_database(tmp_path: Path) -> None:
    """A typo in --db is one line naming the file; no empty database file is left behind."""
    missing = tmp_path / "typo.sqlite"
    for command in (["consultation", "list"], ["audit", "verify"], ["db", "current"]):
        code, out = _run("--db", str(missing), *command)
        assert code == 1 and f"database file {missing} does not exist" in out, (command, out)
        assert not missing.exists()
    assert _run("--db", str(missing), "db", "upgrade")[0] == 0  # the command that builds one may
    assert missing.exists()


def test_empty_and_in_memory_databases_are_refused(tmp_path: Path) -> None:
    """Nothing would persist: --db '' and in-memory SQLite are refused, not reported as upgraded."""
    for url, words in (("", "the database is empty"), ("sqlite://", "in-memory"), ("sqlite:///:memory:", "in-memory")):
        code, out = _run("--db", url, "db", "upgrade")
        assert code == 1 and words in out, (url, out)
        assert "Traceback" not in out


def test_a_password_in_the_database_url_is_never_shown() -> None:
    """An unreachable PostgreSQL named with a password: the error shows the URL without it."""
    code, out = _run("--db", "postgresql://root:S3cret@127.0.0.1:1/county", "consultation", "list")
    assert code == 69 and "is not reachable (connection refused); nothing was written" in out
    assert "S3cret" not in out and "root:***@127.0.0.1:1/county" in out


def test_a_read_only_database_is_one_clear_line(tmp_path: Path) -> None:
    """Opened read-only, a change is refused in words, not with a driver traceback."""
    db = tmp_path / "county.sqlite"
    assert _run("--db", str(db), "db", "upgrade")[0] == 0
    code, out = _run("--db", f"sqlite:///file:{db}?mode=ro&uri=true", "actor", "add", "李协调", "--role", "coordinator")
    assert code == 1 and "cannot be written" in out and "Traceback" not in out
