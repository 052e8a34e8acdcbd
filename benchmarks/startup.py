"""CLI start-up beside its raw limit, measured in the same run.

    python benchmarks/startup.py [--runs 20] [--db FILE]

Prints the median wall time of `consultflow --help` next to `python -c "import click"`, and of a
read command (`consultflow consultation list` on a migrated SQLite file) next to importing click and
SQLAlchemy and sending the same query by hand, each as a ratio. Not part of the tests: machines are noisy,
so read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The raw limit of a read command: the imports it cannot avoid and its query, by hand.
RAW_LIST = (
    "import click, sqlalchemy as sa\n"
    "e = sa.create_engine('sqlite:///{db}')\n"
    "with e.connect() as c:\n"
    "    c.execute(sa.text('SELECT version_num FROM alembic_version')).all()\n"
    "    c.execute(sa.text('SELECT c.id, c.title, w.name, w.version, count(o.id) FROM consultation c "
    "JOIN workflow w ON w.id = c.workflow_id LEFT JOIN opinion o ON o.consultation_id = c.id "
    "GROUP BY c.id, w.name, w.version')).all()\n"
)


def _median(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    py = sys.executable
    cli = [py, "-m", "consultflow"]
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.sqlite")
        subprocess.run([*cli, "--db", db, "-q", "db", "upgrade"], check=True, capture_output=True)
        rows = [
            (
                "consultflow --help",
                _median([*cli, "--help"], args.runs),
                "python -c 'import click'",
                _median([py, "-c", "import click"], args.runs),
            ),
            (
                "consultflow consultation list",
                _median([*cli, "--db", db, "-q", "consultation", "list"], args.runs),
                "import click, sqlalchemy + the same query",
                _median([py, "-c", RAW_LIST.format(db=db)], args.runs),
            ),
        ]
    print("| work | seconds | raw limit | seconds | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for work, t, raw, r in rows:
        print(f"| `{work}` | {t:.3f} | `{raw}` | {r:.3f} | {t / r:.2f}× |")
    print(json.dumps([{"work": w, "s": t, "raw": raw, "raw_s": r, "ratio": t / r} for w, t, raw, r in rows]))


if __name__ == "__main__":
    main()
