"""Files that hold personal information are their owner's alone (0600), whatever the umask."""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.e2e.test_cli_loop import COORD, EXPERT, setup_people, submit


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """A permissive umask for the test's length (a file would be 0644 or 0666 if nothing said otherwise)."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_full_name_report_file_is_readable_by_its_owner_only(cli: Cli, tmp_path: Path, umask: int) -> None:
    """A report file, with full names or pseudonymised, is readable by its owner only, whatever the umask."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    submit(cli, "建议扩大生猪种业园区配套用地")
    path = tmp_path / "account-full.csv"
    full = ["--names", "full", "--purpose", "核对提出人", "-o", str(path)]
    cli.ok("report", "account", "1", *full, actor=COORD)
    assert "张秀英" in path.read_text(encoding="utf-8-sig")  # the file does hold the full name
    assert mode(path) == 0o600
    # A published (pseudonymised) report is written the same way: the person widens it if they mean to.
    public = tmp_path / "account.md"
    cli.ok("report", "account", "1", "-o", str(public))
    assert mode(public) == 0o600


def test_a_file_replaced_with_force_is_private_too(cli: Cli, tmp_path: Path, umask: int) -> None:
    """A report written with force over a readable file leaves it private, with no temporary file beside it."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    submit(cli, "希望增设村卫生室")
    path = tmp_path / "account.json"
    path.write_text("last month's", encoding="utf-8")
    path.chmod(0o644)
    cli.ok("report", "account", "1", "--names", "full", "--purpose", "核对", "-o", str(path), "--force", actor=COORD)
    assert "张秀英" in path.read_text(encoding="utf-8")
    assert mode(path) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left beside it


def test_an_import_rejects_file_is_readable_by_its_owner_only(cli: Cli, tmp_path: Path, umask: int) -> None:
    """The file of rows an import rejected, names and phones included, is readable by its owner only."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    source = tmp_path / "assembly.csv"
    out = io.StringIO()
    csv.writer(out).writerows(
        [
            ["姓名", "村", "电话", "类别", "意见内容"],
            ["王秀兰", "青龙村", "13900001111", "产业发展", "建议扩大生猪种业园区配套用地"],
            ["李建国", "白马村", "13900002222", "道路交通", "希望增设村卫生室"],  # no such category
        ]
    )
    source.write_text(out.getvalue(), encoding="utf-8")
    base = ["opinion", "import", str(source), "--consultation", "1", "--channel", "villagers_assembly"]
    cli.ok(*base, "--skip-invalid", actor=EXPERT)
    rejects = tmp_path / "assembly.csv.rejects.csv"
    assert "李建国" in rejects.read_text(encoding="utf-8-sig")  # the rejected row, name and all
    assert mode(rejects) == 0o600
