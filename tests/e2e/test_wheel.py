"""The package as a user installs it: a wheel in a fresh virtualenv, run from another directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from consultflow.cli.main import main
from consultflow.domain.clock import FixedClock
from tests.conftest import START, WORKFLOWS, Cli, migrated

ROOT = Path(__file__).resolve().parents[2]

Done = subprocess.CompletedProcess[str]

pytestmark = [pytest.mark.slow, pytest.mark.long]

# What the core install leaves out, each refused in one line naming its extra (docs/install.md).
OPTIONAL_MODULES = (
    "apscheduler",
    "psycopg",
    "pydantic",
    "fastapi",
    "uvicorn",
    "jinja2",
    "openpyxl",
    "matplotlib",
    "docx",
    "jieba",
    "xlrd",
)


def _run(args: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _side_by_side(commands: Sequence[Sequence[str | Path]], cwd: Path, env: dict[str, str]) -> list[Done]:
    """Independent commands, each its own process, run at the same time; their results in order."""

    def one(args: Sequence[str | Path]) -> Done:
        return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, commands))


@pytest.fixture(name="wheel", scope="module")
def _wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout.

    Built from a copy of the sources: setuptools writes build/ and *.egg-info into the tree it
    builds, and two test workers (or a developer's own build) building the checkout at once collide.
    """
    dist = tmp_path_factory.mktemp("dist")
    source = dist.parent / f"{dist.name}-source"
    left_out = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*left_out), symlinks=True)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source], cwd=dist)
    (wheel,) = dist.glob("consultflow-*.whl")
    return wheel


def _venv(base: Path, wheel: Path) -> tuple[Path, Path]:
    """A fresh virtualenv holding consultflow from `wheel` alone (no dependencies), and its site-packages.

    The venv gets no pip of its own (seeding one costs about ten seconds): this environment's pip
    installs the wheel into it (`pip --python`), entry point and byte code as a user's pip would.
    """
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], base)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base).strip())
    return venv, site


@pytest.fixture(name="installed", scope="module")
def _installed(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh virtualenv holding consultflow installed from a wheel built from this checkout.

    The dependencies come from the test environment (a .pth file), so the test needs no network
    beyond building the wheel; consultflow itself comes only from the wheel.
    """
    venv, site = _venv(tmp_path_factory.mktemp("wheel"), wheel)
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _wanted(requires: Iterable[str], extras: Collection[str]) -> list[Requirement]:
    """The requirements that apply here with `extras` asked for (none: the core)."""
    wanted = []
    for line in requires:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in (*extras, "")):
            wanted.append(req)
    return wanted


def _distributions(wheel: Path, extras: Collection[str]) -> dict[str, metadata.Distribution]:
    """The distributions `pip install 'consultflow[extras]'` would install, found in the test environment.

    Read from the wheel's own metadata and followed through every dependency's requirements.
    """
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        own = HeaderParser().parsestr(archive.read(name).decode()).get_all("Requires-Dist") or []
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = _wanted(own, extras)
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        if key[0] == "consultflow":  # an extra naming others ([all])
            todo += _wanted(own, req.extras)
            continue
        dist = metadata.distribution(req.name)
        found[key[0]] = dist
        todo += _wanted(dist.requires or [], req.extras)
    return found


def _with_only(tmp_path_factory: pytest.TempPathFactory, wheel: Path, extras: Collection[str]) -> Path:
    """A fresh virtualenv holding the wheel and only what `pip install 'consultflow[extras]'` installs.

    Each of those distributions is linked from the test environment into one folder the venv reads
    (a .pth file): nothing else is importable there, and no network is needed.
    """
    base = tmp_path_factory.mktemp("wheel-" + ("-".join(extras) or "core"))
    venv, site = _venv(base, wheel)
    deps = base / "dependencies"
    deps.mkdir()
    for dist in _distributions(wheel, extras).values():
        for top in {f.parts[0] for f in dist.files or ()}:
            source = Path(str(dist.locate_file(top)))
            if top in ("..", "__pycache__") or top.endswith(".pth") or not source.exists():
                continue
            if not (deps / top).exists():
                (deps / top).symlink_to(source)
    (site / "zz_dependencies.pth").write_text(f"{deps}\n")
    return venv


@pytest.fixture(name="core", scope="module")
def _core(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """`pip install consultflow`: the wheel and its core dependencies only."""
    return _with_only(tmp_path_factory, wheel, ())


@pytest.fixture(name="core_and_brief", scope="module")
def _core_and_brief(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """`pip install 'consultflow[brief]'`: python-docx, but no matplotlib."""
    return _with_only(tmp_path_factory, wheel, ("brief",))


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTFLOW_")}
    env |= {"PYTHONPATH": "", "CONSULTFLOW_CREDENTIALS": str(tmp_path / "me" / "credentials.json")}
    return env


# A coordinator, a planner, a villager, a consultation, its first round and one opinion.
ONE_OPINION = (
    ["actor", "add", "李协调", "--role", "coordinator"],
    ["actor", "add", "王规划", "--role", "planner", "--as", "李协调"],
    ["participant", "add", "张秀英", "--village", "青龙村", "--as", "李协调"],
    ["consultation", "create", "三产融合片区规划意见征集", "--area", "试点片区", "--as", "李协调"],
    ["round", "open", "1", "--as", "李协调"],
    ["opinion", "submit", "--consultation", "1", "--participant", "1", "--category", "environment_roads",
     "--channel", "open_air_meeting", "--text", "建议硬化通组道路", "--as", "李协调"],
)  # fmt: skip


def _one_opinion(consultflow: list[str | Path], cwd: Path, env: dict[str, str]) -> None:
    """A new database with ONE_OPINION in it, each step a command of the installed wheel."""
    _run([*consultflow, "db", "upgrade"], cwd, env)
    for args in ONE_OPINION:
        _run([*consultflow, *args], cwd, env)


def _one_opinion_here(db: Path) -> None:
    """The database `_one_opinion` makes, made by this checkout's CLI in this process.

    For the tests whose subject is a later command of the wheel: preparing the data in a process of
    its own per step would only add an interpreter's start-up (the core install runs those steps).
    """
    cli = Cli(f"sqlite:///{db}", FixedClock(START, tick=timedelta(seconds=1)))
    migrated(cli.url)
    for args in ONE_OPINION:
        cli.ok(*args)


QUIET: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 120}


def _refused(done: Done) -> str:
    """The one line a refused command printed on stderr (exit code 1, nothing on stdout, no traceback)."""
    assert done.returncode == 1, f"{done.args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


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
    """`consultflow serve` from the wheel on a fresh database; staff sign in with the wheel's CLI and run the loop.

    The administrator's account is made in this process (the wheel's `db upgrade` is the first test's
    subject): the server, the sign-in and every step of the loop are the wheel's, in their own processes.
    """

    from tests.web.portal import _free_port
    from tests.web.test_staff import _wait_for

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTFLOW_")}
    env |= {"PYTHONPATH": "", "CONSULTFLOW_CREDENTIALS": str(tmp_path / "me" / "credentials.json")}
    consultflow = installed / "bin" / "consultflow"
    db = ["--db", db_url]
    migrated(db_url)
    here = ["--db", db_url, "--workflows", str(WORKFLOWS)]
    for args, given in (
        (["actor", "add", "李协调", "--role", "coordinator"], None),
        (["account", "set-password", "李协调", "--password-stdin"], "a long enough password\n"),
    ):
        done = CliRunner().invoke(main, [*here, *args], input=given, catch_exceptions=False)
        assert done.exit_code == 0, done.output
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


def test_the_wheel_ships_its_license_migrations_workflows_templates_and_extras(wheel: Path) -> None:
    """The MIT licence, the migrations, the bundled workflow and the portal's files are inside the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (meta,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        info = HeaderParser().parsestr(archive.read(meta).decode())
        (licence,) = (n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(licence).decode().startswith("MIT License")
    assert info["License-Expression"] == "MIT"
    assert {"consultflow/migrations/env.py", "consultflow/migrations/script.py.mako"} <= names
    assert any(n.startswith("consultflow/migrations/versions/0001") for n in names)
    assert "consultflow/workflows/consultation-loop.yaml" in names
    assert {"consultflow/web/templates/base.html", "consultflow/web/static/site.css"} <= names
    extras = set(info.get_all("Provides-Extra") or [])
    assert {
        "postgres",
        "remote",
        "worker",
        "web",
        "xlsx",
        "charts",
        "all",
        "test",
        "xls",
        "oidc",
        "themes",
        "brief",
        "plan",
    } <= extras
    core = {canonicalize_name(Requirement(r).name) for r in info.get_all("Requires-Dist") or [] if "extra ==" not in r}
    assert not core & {
        "psycopg",
        "pydantic",
        "fastapi",
        "uvicorn",
        "jinja2",
        "python-multipart",
        "openpyxl",
        "matplotlib",
        "apscheduler",
    }
    # The IANA zones come from the system, except on Windows, which has none.
    (tzdata,) = (Requirement(r) for r in info.get_all("Requires-Dist") or [] if r.startswith("tzdata"))
    assert tzdata.marker is not None
    assert tzdata.marker.evaluate({"sys_platform": "win32"})
    assert not tzdata.marker.evaluate({"sys_platform": "linux"})
    assert not tzdata.marker.evaluate({"sys_platform": "darwin"})


def test_the_core_install_runs_the_loop_on_sqlite(core: Path, tmp_path: Path) -> None:
    """With the core alone: help, the demo, and a consultation's loop on SQLite, its chain verified."""
    env = _clean_env(tmp_path)
    python, consultflow = core / "bin" / "python", core / "bin" / "consultflow"
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    with ThreadPoolExecutor(max_workers=1) as aside:  # the demo, on its own database, beside the loop
        demo = aside.submit(_run, [consultflow, "--db", "demo.sqlite", "demo", "--opinions", "300"], tmp_path, env)
        assert _run([python, "-c", probe, *OPTIONAL_MODULES], tmp_path, env).strip() == "[]"
        assert "consultation" in _run([consultflow, "--help"], tmp_path, env)
        db = ["--db", str(tmp_path / "loop.sqlite")]
        _one_opinion([consultflow, *db], tmp_path, env)
        _run([consultflow, *db, "opinion", "fire", "1", "screen", "--as", "李协调"], tmp_path, env)
        _run([consultflow, *db, "opinion", "assign", "1", "--to", "王规划", "--as", "李协调"], tmp_path, env)
        assert "王规划" in _run([consultflow, *db, "opinion", "list", "--state", "under_review"], tmp_path, env)
        assert "chain intact" in _run([consultflow, *db, "audit", "verify", "1"], tmp_path, env)
        # Reminders and rounds closing on time, from cron: no worker extra needed.
        assert "found 0 due reminder(s)" in _run([consultflow, *db, "reminders", "run-once"], tmp_path, env)
        report = _run([consultflow, *db, "report", "adoption", "1", "--format", "csv"], tmp_path, env)
        assert "环境卫生与农村路网" in report
        assert "300 opinions" in demo.result()


def test_without_an_extra_a_command_names_it_in_one_line(core: Path, tmp_path: Path) -> None:
    """PostgreSQL, the server, the worker, signing in to one, XLSX in and out, and charts each name their extra.

    Nothing is written.

    The consultation is made in this process; each refusal is the core install's, a process of its own
    (independent of each other, they run side by side).
    """
    env = _clean_env(tmp_path)
    consultflow = core / "bin" / "consultflow"
    db = ["--db", str(tmp_path / "c.sqlite")]
    _one_opinion_here(tmp_path / "c.sqlite")
    book = openpyxl.Workbook()
    book.active.append(["村民", "村", "类别", "渠道", "意见"])  # type: ignore[union-attr]
    book.active.append(["张秀英", "青龙村", "产业", "坝坝会", "建议发展民宿"])  # type: ignore[union-attr]
    book.save(tmp_path / "opinions.xlsx")

    def install(extra: str) -> str:
        return f"pip install 'consultflow[{extra}]'"

    pg, served, web, worker, imported, exported, charted, brief = (
        _refused(done)
        for done in _side_by_side(
            [
                [consultflow, "--db", "postgresql://postgres@127.0.0.1:5432/test", "db", "current"],
                [consultflow, *db, "serve", "--port", "1"],
                [consultflow, *db, "web", "--port", "1"],
                [consultflow, *db, "worker"],
                [consultflow, *db, "opinion", "import", "opinions.xlsx", "--consultation", "1", "--as", "李协调"],
                [consultflow, *db, "report", "adoption", "1", "--format", "xlsx", "-o", "adoption.xlsx"],
                [consultflow, *db, "report", "chart", "1", "-o", "rounds.png"],
                [consultflow, *db, "report", "brief", "1", "--out", "brief.docx"],
            ],
            tmp_path,
            env,
        )
    )
    assert pg == f"Error: PostgreSQL needs the postgres extra: {install('postgres')}"
    assert served == f"Error: the server (consultflow serve) needs the web extra: {install('web')}"
    assert web == served
    assert worker == f"Error: the reminder worker (consultflow worker) needs the worker extra: {install('worker')}"
    xlsx = f"Error: reading or writing XLSX files needs the xlsx extra: {install('xlsx')}"
    assert imported == xlsx
    assert exported == xlsx
    assert not (tmp_path / "adoption.xlsx").exists()
    assert charted == f"Error: drawing charts needs the charts extra: {install('charts')}"
    assert not (tmp_path / "rounds.png").exists()
    assert brief == f"Error: writing the brief needs the brief extra: {install('brief')}"
    assert not (tmp_path / "brief.docx").exists()
    remote = f"Error: signing in to a consultflow server needs the remote extra: {install('remote')}"
    login: list[str | Path] = [consultflow, "login", "http://127.0.0.1:1", "--name", "李协调", "--password-stdin"]
    # Refused before the password is read or the server is asked, and before a signed-in command is sent.
    assert _refused(subprocess.run(login, check=False, cwd=tmp_path, env=env, input="", **QUIET)) == remote
    signed_in = env | {"CONSULTFLOW_SERVER": "http://127.0.0.1:1", "CONSULTFLOW_TOKEN": "cf_x"}
    listed = subprocess.run([consultflow, "opinion", "list"], check=False, cwd=tmp_path, env=signed_in, **QUIET)
    assert _refused(listed) == remote
    assert not (tmp_path / "me" / "credentials.json").exists()
    # A system without time zone files, or with UTC only (a minimal container): the core has no
    # tzdata off Windows. Either way the line names tzdata (exit 1), not the --tz option.
    only_utc = tmp_path / "only-utc"
    only_utc.mkdir()
    shutil.copy(Path("/usr/share/zoneinfo/UTC"), only_utc / "UTC")
    for zones in (tmp_path / "no-zones", only_utc):
        no_zones = env | {"PYTHONTZPATH": str(zones)}
        listed = subprocess.run([consultflow, *db, "opinion", "list"], check=False, cwd=tmp_path, env=no_zones, **QUIET)
        assert _refused(listed) == (
            "Error: time zone 'Asia/Shanghai' cannot be read: this system's time zone database is missing or "
            "incomplete; install the system's tzdata package or pip install tzdata"
        )


def test_the_brief_without_the_charts_extra_is_written_and_says_charts_were_left_out(
    core_and_brief: Path, tmp_path: Path
) -> None:
    """`report brief` with python-docx but no matplotlib: the DOCX is written, the charts are left out and said so."""
    env = _clean_env(tmp_path)
    consultflow = core_and_brief / "bin" / "consultflow"
    db = ["--db", str(tmp_path / "b.sqlite")]
    _one_opinion_here(tmp_path / "b.sqlite")  # the data, made in this process; the brief is the wheel's
    done = subprocess.run(
        [consultflow, *db, "report", "brief", "1", "--out", "brief.docx"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    left_out = "charts left out: drawing them needs the charts extra: pip install 'consultflow[charts]'"
    assert done.stderr.strip().splitlines() == [left_out, "wrote brief.docx"]
    written = docx.Document(str(tmp_path / "brief.docx"))
    assert not written.inline_shapes
    text = "\n".join(p.text for p in written.paragraphs)
    assert "本汇报未附图表" in text
    assert "公众参与情况汇报" in text
