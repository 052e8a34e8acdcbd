"""The benchmarks still run: `make bench` is how a change's cost is measured, so a script that rots
goes unnoticed until someone needs it (engines.py once stopped when the raw loads it shares with
intake.py took a new argument). Each runs here at a tiny size; the figures themselves are read
from `make bench`, never asserted: machines are noisy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

BENCH = ROOT / "benchmarks"


def _bench(tmp_path: Path, script: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTFLOW_")}
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{script}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_engine_benchmark_runs_and_puts_each_figure_beside_its_raw_limit(tmp_path: Path) -> None:
    """engines.py measures intake, bulk fire, round close, reports and verify beside hand-written SQL."""
    out = _bench(tmp_path, "engines.py", "--sizes", "200")
    for work in ("intake (opinion import)", "bulk fire: screen", "round close", "audit verify"):
        row = next((line for line in out.splitlines() if work in line), None)
        assert row is not None, f"{work!r} missing:\n{out}"
        assert row.rstrip().rstrip("| ").endswith("×"), row  # a ratio beside the raw limit


def test_the_intake_and_startup_benchmarks_run(tmp_path: Path) -> None:
    """intake.py imports a generated questionnaire export; startup.py times the CLI beside importing click."""
    assert "| sqlite |" in _bench(tmp_path, "intake.py", "--rows", "300")
    assert "consultflow --help" in _bench(tmp_path, "startup.py", "--runs", "1")
