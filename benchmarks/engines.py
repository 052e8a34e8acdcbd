"""consultflow's engines at N opinions, each beside its raw limit measured in the same run.

    python benchmarks/engines.py [--sizes 1000,10000,100000] [--pg postgresql://user@host/db] [--json FILE]

For each size, on SQLite (and PostgreSQL with --pg, in a fresh schema), two consultations receive
the same questionnaire rows: consultation 1 through consultflow, consultation 2 through
hand-written SQL on the same schema. The same sequence of work then runs on both: intake, bulk
screening of 80%, assignment, feedback on 50%, round close, adoption of 20%. Then come the reads
(`report adoption`, `audit rounds`, `audit verify`), a reminder sweep with 1% of pending reminders
due, and single transitions each in its own transaction.

Each consultflow command runs in its own process through the installed CLI, so its peak memory is
that process's maximum resident set. Each raw limit is the same change as one hand-written
statement (or executemany/COPY for intake), committed, or the same aggregate as one GROUP BY, or
hashing the same rows in a loop. Read the ratios, not the seconds: the machine is shared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from intake import RAW_POSTGRES, RAW_SQLITE, TEXT_AT, make_csv, timed

from consultflow.store.engine import make_engine

CLI = [sys.executable, "-m", "consultflow", "-q"]

# One consultflow command, timed in-process after a warm-up command has loaded the code and the
# database connection: the figure is the engine's, not the interpreter's start (measured apart by
# benchmarks/startup.py). Seconds go to the file named by the first argument.
RUNNER = """
import contextlib, io, sys, time
from consultflow.cli.main import main
out, args = sys.argv[1], sys.argv[2:]
with contextlib.redirect_stdout(io.StringIO()):
    main(["-q", "consultation", "list"], standalone_mode=False)
    main(["-q", "audit", "head", "1"], standalone_mode=False)
    started = time.perf_counter()
    code = main(["-q", *args], standalone_mode=False)
    elapsed = time.perf_counter() - started
if code:  # a refused or failed command is no figure: stop the run, saying why
    sys.exit(f"consultflow {' '.join(args)} exited with {code}")
open(out, "w").write(str(elapsed))
"""
COORD, PLANNER = "李协调", "王规划"
SINGLE_FIRES = 30

# A single transition beside a bare UPDATE + INSERT, both committed once per opinion, in one process.
SINGLE = """
import sys, time
from datetime import datetime, timezone
import sqlalchemy as sa
from consultflow.bootstrap import build_context
from consultflow.config import Settings
from consultflow.services import opinions
url, mine, raw = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], [int(x) for x in sys.argv[3].split(",")]
ctx = build_context(Settings(db_url=url))
opinions.fire(ctx, acting="李协调", opinion_id=mine[0], trigger="screen", fields={})  # warm: caches, connection
t = time.perf_counter()
for oid in mine[1:]:
    opinions.fire(ctx, acting="李协调", opinion_id=oid, trigger="screen", fields={})
ours = (time.perf_counter() - t) / (len(mine) - 1)
engine = ctx.database.engine
now = datetime.now(timezone.utc)
update = sa.text("UPDATE opinion SET state='under_review', state_entered_at=:now, last_seq=last_seq+1, "
                 "version=version+1 WHERE id=:id")
insert = sa.text("INSERT INTO audit_event (consultation_id, chain_seq, kind, opinion_id, opinion_seq, trigger, "
                 "from_state, to_state, round_no, completes_cycle, actor, role, at, payload, prev_hash, hash) "
                 "SELECT 2, :seq, 'transition', id, last_seq, 'screen', 'submitted', 'under_review', 1, false, 'x', "
                 "'coordinator', :now, '{}', '', '' FROM opinion WHERE id = :id")
with engine.begin() as con:
    base = con.execute(sa.text("SELECT coalesce(max(chain_seq), 0) FROM audit_event WHERE consultation_id = 2")).scalar()
t = time.perf_counter()
for i, oid in enumerate(raw, 1):
    with engine.begin() as con:
        con.execute(update, {"now": now, "id": oid})
        con.execute(insert, {"seq": base + i, "id": oid, "now": now})
print(ours, (time.perf_counter() - t) / len(raw))
"""


def _events_select(kind: str, trigger: str, to_state: str, role: str, where: str) -> str:
    """INSERT…SELECT of one audit event per opinion matching `where`, before they move (raw: no hash)."""
    return (
        "INSERT INTO audit_event (consultation_id, chain_seq, kind, opinion_id, opinion_seq, trigger, from_state, "
        "to_state, round_no, completes_cycle, actor, role, at, payload, prev_hash, hash) "
        "SELECT consultation_id, (SELECT coalesce(max(chain_seq), 0) FROM audit_event WHERE consultation_id = 2) "
        f"+ row_number() OVER (ORDER BY id), '{kind}', id, last_seq + 1, '{trigger}', state, '{to_state}', "
        f"current_round, false, 'x', '{role}', :now, '{{}}', '', '' FROM opinion WHERE {where}"
    )


class Run:
    """One backend at one size: the database, its two consultations' id ranges, and the figures."""

    def __init__(self, backend: str, url: str, n: int, folder: Path) -> None:
        self.backend, self.url, self.n, self.folder = backend, url, n, folder
        self.engine = make_engine(url)  # consultflow's own settings: SQLite WAL and BEGIN IMMEDIATE
        self.rows: list[dict[str, object]] = []
        self.env = {**os.environ, "CONSULTFLOW_DB": url, "PYTHONIOENCODING": "utf-8"}

    def cli(self, *args: str, actor: str | None = None) -> tuple[float, float]:
        """Seconds (in-process, after warm-up) and peak MB (the whole process) of one consultflow command."""
        env = {**self.env, **({"CONSULTFLOW_ACTOR": actor} if actor else {})}
        seconds = self.folder / "seconds.txt"
        _wall, mb = timed([sys.executable, "-c", RUNNER, str(seconds), *args], env)
        return float(seconds.read_text()), mb

    def setup(self, *args: str, actor: str | None = None) -> None:
        """A command that is not measured."""
        env = {**self.env, **({"CONSULTFLOW_ACTOR": actor} if actor else {})}
        timed([*CLI, *args], env)

    def raw(self, *statements: str, **params: object) -> float:
        """Seconds for statements in one committed transaction."""
        started = time.perf_counter()
        with self.engine.begin() as con:
            for statement in statements:
                con.execute(sa.text(statement), {"now": datetime.now(timezone.utc), **params})
        return time.perf_counter() - started

    def ids(self, consultation_id: int) -> tuple[int, int]:
        with self.engine.connect() as con:
            lo, hi = con.execute(
                sa.text("SELECT min(id), max(id) FROM opinion WHERE consultation_id = :c"), {"c": consultation_id}
            ).one()
        return int(lo), int(hi)

    def record(self, work: str, ours: tuple[float, float], raw_what: str, raw_s: float | None) -> None:
        seconds, mb = ours
        ratio = round(seconds / raw_s, 1) if raw_s else None
        self.rows.append(
            {
                "backend": self.backend,
                "n": self.n,
                "work": work,
                "s": round(seconds, 3),
                "peak_mb": round(mb),
                "raw": raw_what,
                "raw_s": round(raw_s, 4) if raw_s is not None else None,
                "ratio": ratio,
            }
        )
        shown = f"{ratio}×" if ratio is not None else ""
        print(
            f"  {self.backend} {self.n:>7} {work:<40} {seconds:8.2f} s {mb:6.0f} MB  {raw_what}: {raw_s or 0:.3f} s {shown}",
            flush=True,
        )


def _range(lo: int, share: float, n: int, start: float = 0.0) -> tuple[int, int]:
    return lo + int(start * n), lo + int((start + share) * n) - 1


def bench(run: Run, csv_path: Path, raw_load: list[str]) -> None:
    n = run.n
    for args, actor in (
        (("db", "upgrade"), None),
        (("actor", "add", COORD, "--role", "coordinator"), None),
        (("actor", "add", PLANNER, "--role", "planner"), COORD),
        (("consultation", "create", "基准", "--area", "片区"), COORD),
        (("consultation", "create", "原始", "--area", "片区"), COORD),
        (("round", "open", "1"), COORD),
        (("round", "open", "2"), COORD),
    ):
        run.setup(*args, actor=actor)

    ours = run.cli("opinion", "import", str(csv_path), "--consultation", "1", "--channel", "online_survey", actor=COORD)
    started = time.perf_counter()
    subprocess.run(raw_load, check=True, env=run.env)
    raw_s = time.perf_counter() - started
    run.record("intake (opinion import)", ours, "executemany" if run.backend == "sqlite" else "COPY", raw_s)

    c1, c2 = run.ids(1), run.ids(2)
    with run.engine.connect() as con:
        planner = con.execute(sa.text("SELECT id FROM actor WHERE name = :n"), {"n": PLANNER}).scalar_one()
    a1, b1 = _range(c1[0], 0.8, n)
    a2, b2 = _range(c2[0], 0.8, n)
    raw_s = run.raw(
        _events_select("transition", "screen", "under_review", "coordinator", f"id BETWEEN {a2} AND {b2}"),
        f"UPDATE opinion SET state='under_review', state_entered_at=:now, last_seq=last_seq+1, version=version+1 "
        f"WHERE id BETWEEN {a2} AND {b2}",
    )
    ours = run.cli("opinion", "fire", f"{a1}-{b1}", "screen", actor=COORD)
    run.record(f"bulk fire: screen {b1 - a1 + 1}", ours, "UPDATE + INSERT…SELECT", raw_s)

    raw_s = run.raw(
        _events_select("assigned", "assign", "under_review", "coordinator", f"id BETWEEN {a2} AND {b2}"),
        f"UPDATE opinion SET assigned_planner_id={planner}, last_seq=last_seq+1, version=version+1 WHERE id BETWEEN {a2} AND {b2}",
    )
    ours = run.cli("opinion", "assign", f"{a1}-{b1}", "--to", PLANNER, actor=COORD)
    run.record(f"bulk assign {b1 - a1 + 1}", ours, "UPDATE + INSERT…SELECT", raw_s)

    f1, g1 = _range(c1[0], 0.5, n)
    f2, g2 = _range(c2[0], 0.5, n)
    raw_s = run.raw(
        _events_select("transition", "give_feedback", "feedback_given", "planner", f"id BETWEEN {f2} AND {g2}"),
        f"UPDATE opinion SET state='feedback_given', state_entered_at=:now, last_seq=last_seq+1, "
        f"rounds_count=rounds_count+1, version=version+1 WHERE id BETWEEN {f2} AND {g2}",
        "INSERT INTO opinion_entry (opinion_id, opinion_seq, round_no, kind, text, actor_id, created_at) "
        f"SELECT id, last_seq, 1, 'feedback', '已研究', {planner}, :now FROM opinion WHERE id BETWEEN {f2} AND {g2}",
    )
    ours = run.cli("opinion", "fire", f"{f1}-{g1}", "give_feedback", "--text", "已研究", actor=PLANNER)
    run.record(f"bulk fire: feedback {g1 - f1 + 1}", ours, "UPDATE + 2 INSERT…SELECT", raw_s)

    active = "state IN ('submitted', 'under_review', 'feedback_given')"
    raw_s = run.raw(
        _events_select("carried_over", "carry_over", "under_review", "system", f"consultation_id=2 AND {active}"),
        f"UPDATE opinion SET current_round=2, last_seq=last_seq+1, version=version+1, "
        f"state=CASE WHEN state='feedback_given' THEN 'under_review' ELSE state END "
        f"WHERE consultation_id=2 AND {active}",
    )
    ours = run.cli("round", "close", "1", actor=COORD)
    run.record("round close", ours, "UPDATE + INSERT…SELECT", raw_s)
    run.setup("round", "open", "1", actor=COORD)

    d1, e1 = _range(c1[0], 0.2, n)
    d2, e2 = _range(c2[0], 0.2, n)
    raw_s = run.raw(
        _events_select("transition", "adopt", "adopted", "planner", f"id BETWEEN {d2} AND {e2}"),
        f"UPDATE opinion SET state='adopted', outcome='adopted', plan_ref='§3.2', state_entered_at=:now, "
        f"last_seq=last_seq+1, rounds_count=rounds_count+1, version=version+1 WHERE id BETWEEN {d2} AND {e2}",
    )
    ours = run.cli("opinion", "fire", f"{d1}-{e1}", "adopt", "--text", "采纳", "--plan-ref", "§3.2", actor=PLANNER)
    run.record(f"bulk fire: adopt {e1 - d1 + 1}", ours, "UPDATE + INSERT…SELECT", raw_s)

    aggregate = "SELECT category, channel, outcome, count(*) FROM opinion WHERE consultation_id = 1 GROUP BY 1, 2, 3"
    raw_s = min(run.raw(aggregate) for _ in range(3))
    ours = run.cli(
        "report", "adoption", "1", "--format", "json", "-o", str(run.folder / f"{run.backend}-adoption.json")
    )
    run.record("report adoption", ours, "GROUP BY", raw_s)
    rounds = "SELECT outcome, rounds_count, count(*) FROM opinion WHERE consultation_id = 1 GROUP BY 1, 2"
    raw_s = min(run.raw(rounds) for _ in range(3))
    ours = run.cli("audit", "rounds", "1")
    run.record("audit rounds", ours, "GROUP BY", raw_s)
    ours = run.cli("report", "account", "1", "--format", "json", "-o", str(run.folder / f"{run.backend}-account.json"))
    run.record("report account", ours, "", None)

    raw_s = _hash_loop(run)
    ours = run.cli("audit", "verify", "1")
    run.record("audit verify", ours, "hashing the same rows in a loop", raw_s)

    due = datetime.now(timezone.utc) + timedelta(days=30)
    with run.engine.begin() as con:  # 1% of pending reminders fall due before the sweep's moment
        pending = con.execute(sa.text("SELECT count(*) FROM reminder WHERE status = 'pending'")).scalar_one()
        con.execute(
            sa.text("UPDATE reminder SET send_at = :early WHERE status = 'pending' AND id % 100 = 0"),
            {"early": datetime.now(timezone.utc) - timedelta(hours=1)},
        )
        con.execute(
            sa.text("UPDATE reminder SET send_at = :late WHERE status = 'pending' AND id % 100 <> 0"), {"late": due}
        )
    raw_s = run.raw("SELECT id FROM reminder WHERE status = 'pending' AND send_at <= :now ORDER BY send_at LIMIT 500")
    ours = run.cli("reminders", "run-once")
    run.record(f"reminder sweep, {pending} pending, 1% due", ours, "SELECT of the due", raw_s)

    spare1 = list(range(c1[1] - SINGLE_FIRES, c1[1] + 1))  # never screened: the last 20% stayed submitted
    spare2 = list(range(c2[1] - SINGLE_FIRES + 1, c2[1] + 1))
    out = (
        subprocess.run(
            [sys.executable, "-c", SINGLE, run.url, ",".join(map(str, spare1)), ",".join(map(str, spare2))],
            check=True,
            capture_output=True,
            text=True,
            env=run.env,
        )
        .stdout.strip()
        .splitlines()[-1]
        .split()
    )
    run.record("one transition, own transaction", (float(out[0]), 0), "UPDATE + INSERT, committed", float(out[1]))


def _hash_loop(run: Run) -> float:
    """SHA-256 over the same events' fields in a loop: what verifying costs at the least."""
    stmt = sa.text(
        "SELECT prev_hash, kind, opinion_id, opinion_seq, trigger, from_state, to_state, round_no, "
        "completes_cycle, actor, role, at, payload FROM audit_event WHERE consultation_id = 1 ORDER BY chain_seq"
    )
    started = time.perf_counter()
    with run.engine.connect() as con:
        for row in con.execution_options(yield_per=2000).execute(stmt):
            digest = hashlib.sha256(row[0].encode())
            digest.update("|".join(map(str, row[1:])).encode())
            digest.hexdigest()
    return time.perf_counter() - started


def _pg_schema(url: str) -> tuple[str, Callable[[], None]]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", url, "-qc", f"CREATE SCHEMA {schema}"], check=True)
    sep = "&" if "?" in url else "?"

    def drop() -> None:
        subprocess.run(["psql", url, "-qc", f"DROP SCHEMA {schema} CASCADE"], check=True)

    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="comma-separated opinion counts (1000000 on request)"
    )
    parser.add_argument("--pg", help="PostgreSQL URL to measure too (a fresh schema per size, dropped after)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--keep", type=Path, help="keep each size's SQLite database and files under this folder")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) if args.keep is None else args.keep / str(n)
            folder.mkdir(parents=True, exist_ok=True)
            csv_path = folder / "rows.csv"
            make_csv(csv_path, n)
            db = str(folder / "bench.sqlite")
            run = Run("sqlite", db, n, folder)
            bench(run, csv_path, [sys.executable, "-c", RAW_SQLITE, db, str(csv_path), str(TEXT_AT["plain"])])
            run.engine.dispose()
            rows += run.rows
            if args.pg:
                url, drop = _pg_schema(args.pg)
                try:
                    run = Run("postgresql", url, n, folder)
                    schema = url.rsplit("%3D", 1)[1]
                    bench(
                        run,
                        csv_path,
                        [sys.executable, "-c", RAW_POSTGRES, args.pg, schema, str(csv_path), str(TEXT_AT["plain"])],
                    )
                    run.engine.dispose()
                    rows += run.rows
                finally:
                    drop()
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| backend | N | work | seconds | peak MB | raw limit | seconds | ratio |")
    print("| --- | ---: | --- | ---: | ---: | --- | ---: | ---: |")
    for r in rows:
        ratio = f"{r['ratio']}×" if r["ratio"] is not None else ""
        raw_s = r["raw_s"] if r["raw_s"] is not None else ""
        mb = r["peak_mb"] or ""
        print(f"| {r['backend']} | {r['n']} | {r['work']} | {r['s']} | {mb} | {r['raw']} | {raw_s} | {ratio} |")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
