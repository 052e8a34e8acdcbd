"""Every command, fed arguments made from its own declarations: only documented exit codes, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consultflow.cli.main import LAZY_COMMANDS, main
from consultflow.domain.clock import FixedClock
from tests.conftest import START, WORKFLOWS, Cli
from tests.e2e.test_cli_loop import COORD, EXPERT, PLANNER, setup_people, submit

pytestmark = pytest.mark.slow

SKIPPED = {("worker", "worker"), ("web", "web"), ("serve", "serve"), ("demo", "demo"), ("login", "login")}
# blocking servers; a minutes-long build; a sign-in that prompts and dials out (tests/web/test_staff.py)
DOCUMENTED = {0, 1, 2, 3, 75}  # success, refused, usage, dead letters, try again (70 would be a bug)
NAMES = [COORD, PLANNER, EXPERT, "村民代表", "nobody"]
TIMES = ["2026-03-20", "2026-03-20T18:00", "0001-01-01", "9999-12-31T23:59+00:00", "2026-13-40", "yesterday"]


def _leaves() -> list[tuple[str, str, click.Command]]:
    ctx = click.Context(main)
    found = []
    for name in sorted(LAZY_COMMANDS):
        command = main.get_command(ctx, name)
        assert command is not None
        subs = sorted(command.commands.items()) if isinstance(command, click.Group) else [(name, command)]
        found += [(name, sub, c) for sub, c in subs if (name, sub) not in SKIPPED]
    return found


LEAVES = _leaves()
# Mostly plausible values (real ids, real names), so that most runs reach the services; some hostile ones.
small_ids = st.integers(1, 3)
numbers = st.one_of(
    small_ids, small_ids, small_ids, st.integers(-3, 12), st.integers(-(2**70), 2**70), st.sampled_from([2**31, 2**63])
)
texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "建议硬化通组道路", '=HYPERLINK("x")', "a\x07b", "1-5,9", "10-", "industry", "screen"]),
    st.sampled_from(["open_air_meeting", "villagers_assembly", "give_feedback", "adopt", "public_services"]),
    st.sampled_from(TIMES),
    st.sampled_from(NAMES),
)


def _value(param: click.Parameter, tmp: Path) -> st.SearchStrategy[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        valid = st.sampled_from([str(c) for c in kind.choices])
        return st.one_of(valid, valid, valid, texts)
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        return numbers.map(str)
    if kind.name == "IDS":  # opinion id lists: 12, 3,5,8, 10-40
        return st.one_of(numbers.map(str), st.sampled_from(["1,2", "1-2", "2-1", "1-99999999999"]), texts)
    if isinstance(kind, click.Path):
        return st.sampled_from(["out.md", "out.csv", "out.xlsx", "out.png", "chart", "x.txt"]).map(
            lambda n: str(tmp / n)
        )
    return texts


def _given(flag: str) -> Any:
    """`--flag VALUE` as two arguments."""

    def pair(value: str) -> list[str]:
        return [flag, value]

    return pair


def _args(command: click.Command, tmp: Path) -> st.SearchStrategy[list[str]]:
    parts: list[st.SearchStrategy[list[str]]] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            count = (0, 3) if param.nargs == -1 else (1, 1)
            parts.append(st.lists(_value(param, tmp), min_size=count[0], max_size=count[1]))
        elif isinstance(param, click.Option) and not param.hidden:
            flag = param.opts[0]
            if flag.startswith(("--smtp", "--webhook")):
                continue  # settings that reach out to the network are tested on loopback elsewhere
            if param.is_flag:
                parts.append(st.sampled_from([[], [flag]]))
            elif flag == "--as":
                parts.append(st.sampled_from(NAMES).map(_given(flag)))
            elif param.required:
                parts.append(_value(param, tmp).map(_given(flag)))
            else:  # an optional option is left out two times in three
                parts.append(st.one_of(st.just([]), st.just([]), _value(param, tmp).map(_given(flag))))

    def join(lists: list[list[str]]) -> list[str]:
        return [a for chunk in lists for a in chunk]

    return st.tuples(*parts).map(lambda t: join(list(t))) if parts else st.just([])


@pytest.fixture(name="populated", scope="module")
def _populated(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """People, a consultation with an open round and a few opinions in different states."""
    tmp = tmp_path_factory.mktemp("fuzz")
    cli = Cli(f"sqlite:///{tmp / 'county.sqlite'}", FixedClock(START))
    cli.ok("db", "upgrade")
    setup_people(cli)
    cli.ok("round", "open", "1", "--closes-at", "2026-03-20", actor=COORD)
    first = submit(cli, "建议硬化通组道路", "environment_roads")
    submit(cli, "建设卫生室", "public_services")
    cli.ok("opinion", "fire", str(first), "screen", actor=EXPERT)
    return cli.url, tmp


@pytest.mark.parametrize(("group", "name", "command"), LEAVES, ids=[f"{g}-{n}" for g, n, _ in LEAVES])
def test_no_argument_makes_a_traceback(
    populated: tuple[str, Path], group: str, name: str, command: click.Command
) -> None:
    """Whatever a person types into this command, the answer is a documented exit code and no traceback."""
    url, tmp = populated

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(args=_args(command, tmp))
    def check(args: list[str]) -> None:
        head = ["--db", url, "--workflows", str(WORKFLOWS), "-q"]
        path = [group] if group == name and not isinstance(main.commands.get(group), click.Group) else [group, name]
        result = CliRunner().invoke(main, [*head, *path, *args], obj={"clock": FixedClock(START)})
        where: Any = (path, args, result.output[-400:])
        assert result.exception is None or isinstance(result.exception, SystemExit), where
        assert result.exit_code in DOCUMENTED, where
        assert "Traceback" not in result.output, where
        for leftover in tmp.glob("out.*"):
            leftover.unlink()  # files a command wrote; the next example starts clean

    check()


@pytest.mark.parametrize("name", ["a\x00b", "\ud800.jsonl"])
def test_a_heads_file_name_no_file_can_have_is_one_line(populated: tuple[str, Path], name: str) -> None:
    """A heads file named with a NUL or a lone surrogate is refused as a usage error, shown escaped, no traceback."""
    url, _tmp = populated
    result = CliRunner().invoke(
        main, ["--db", url, "-q", "audit", "verify", "--heads", name], obj={"clock": FixedClock(START)}
    )
    assert result.exit_code == 2 and "not a file name" in result.output and "Traceback" not in result.output
    assert "\x00" not in result.output
