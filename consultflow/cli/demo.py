"""`consultflow demo`: the newcomer's first run."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import click

from consultflow.cli.main import CliState, pass_state
from consultflow.cli.output import table
from consultflow.domain.vocabulary import Outcome
from consultflow.services import consultations, demo, participation, reports, schema, statistics


@click.command("demo")
@click.option(
    "--opinions",
    "total",
    type=click.IntRange(min=300),
    default=809,
    show_default=True,
    help="How many opinions to collect.",
)
@click.option(
    "--seed",
    type=int,
    default=2023,
    show_default=True,
    help="Random seed (the same seed gives the same run).",
)
@pass_state
def demo_command(state: CliState, total: int, seed: int) -> None:
    """Run a consultation shaped like the county pilot: ~800 opinions, three rounds, 203 adopted."""
    ctx = state.services(check_schema=False, create=True)
    schema.upgrade(ctx)
    if state.settings.log_level != "DEBUG":  # thousands of per-step lines would bury the summary
        logging.getLogger("consultflow").setLevel(logging.WARNING)
    started = time.perf_counter()
    result = demo.run_demo(ctx, total=total, seed=seed)
    elapsed = time.perf_counter() - started
    report = statistics.rounds_report(ctx, result.consultation_id)
    shown = consultations.show_consultation(ctx, result.consultation_id)
    if state.json:
        state.emit(
            {
                "demo": result,
                "rounds": report,
                "by_state": dict(shown.by_state),
                "seconds": round(elapsed, 2),
            },
            str,
        )
        return
    most = max((max(o.histogram, default=0) for o in report.outcomes), default=0)
    now = sum(n for _state, n in shown.by_state)
    click.echo(
        f"consultation {result.consultation_id}: {result.opinions} opinions from {result.participants} participants, "
        f"{result.rounds} rounds (simulated dates from March 2023), then the draft plan reviewed clause by clause "
        f"in round {result.rounds + 1} ({now - result.opinions} comments became opinions: {now} in all), {elapsed:.1f}s\n"
    )
    click.echo("Rounds each opinion went through before its outcome:")
    click.echo(
        table(
            [
                "outcome",
                "opinions",
                *[f"{n} round(s)" for n in range(1, most + 1)],
                "mean",
            ],
            [
                (
                    state.label(Outcome(o.outcome).label),
                    o.total,
                    *[o.histogram.get(n, 0) for n in range(1, most + 1)],
                    f"{o.mean:.2f}",
                )
                for o in report.outcomes
            ],
        )
    )
    click.echo("")
    click.echo(table(["final state", "opinions"], [(s, n) for s, n in shown.by_state if n]))
    themes = reports.adoption_report(ctx, result.consultation_id, state.settings.lang).figures["by_category"]
    assert isinstance(themes, list)
    click.echo("\nBy theme: " + " / ".join(f"{t['label']} {t['share']}%" for t in themes))
    took_part = participation.participation_summary(ctx, result.consultation_id)
    click.echo(
        f"Took part twice or more: {took_part.repeat} of {took_part.participants} people ({took_part.repeat_share}%); "
        f"programme {result.programme_id} holds this area and area {result.second_area}"
    )
    db = state.settings.db_url
    prog = _program()
    click.echo(
        f"\nNext: {prog} --db {db} report adoption {result.consultation_id}\n"
        f"      {prog} --db {db} audit rounds {result.consultation_id}\n"
        f"      {prog} --db {db} audit history 1\n"
        f"      {prog} --db {db} audit verify {result.consultation_id}\n"
        f"      {prog} --db {db} report account {result.consultation_id} -o account.md\n"
        f"      {prog} --db {db} report participation {result.consultation_id}\n"
        f"      {prog} --db {db} report review {result.consultation_id}\n"
        f"      {prog} --db {db} theme list {result.consultation_id}\n"
        f"      {prog} --db {db} report programme {result.programme_id}\n"
        f"      {prog} --db {db} report brief {result.consultation_id} --out brief.docx"
        + ("" if find_spec("docx") else "   # pip install 'consultflow[brief]' first")
    )


def _program() -> str:
    """How the user ran us, so the suggested commands can be pasted as they are."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "__main__.py":
        return "python -m consultflow"
    if argv0.name == "consultflow" and argv0.parent != Path() and shutil.which("consultflow") != str(argv0):
        relative = os.path.relpath(argv0)
        return relative if not relative.startswith("..") else str(argv0)
    return "consultflow"


def register(main: click.Group) -> None:
    """Attach the command."""
    main.add_command(demo_command)
