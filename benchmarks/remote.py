"""A bulk change through the server beside the same change in local mode, in the same run.

    python benchmarks/remote.py [--sizes 10000,100000] [--pg postgresql://user@host/db] [--json FILE]

For each size, one database gets two consultations with the same N questionnaire rows. Then
`opinion fire <all of consultation 1's ids> screen` runs in local mode (`--db`, `--as`), and the
same call on consultation 2's ids runs through `consultflow serve` with a signed-in token: both as
whole CLI processes with their output going to /dev/null (the remote one receives every result line
over HTTP and prints it as the local one does). The ratio remote / local is the figure; the target
is at most 1.5×.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from intake import make_csv, timed

from consultflow.store.engine import make_engine

CLI = [sys.executable, "-m", "consultflow", "-q"]
COORD, EXPERT = "李协调", "赵专家"
PASSWORD = "benchmark password"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(db: str, *args: str, env: dict[str, str], stdin: str = "") -> None:
    """One local CLI call that must succeed."""
    subprocess.run([*CLI, "--db", db, *args], check=True, capture_output=True, env=env, input=stdin, text=True)


def bench(name: str, db: str, size: int, folder: Path) -> dict[str, object]:
    """Prepare, then time the local and the remote bulk fire."""
    env = {**os.environ, "CONSULTFLOW_CREDENTIALS": str(folder / f"{name}-{size}.json")}
    env.pop("CONSULTFLOW_DB", None)
    run(db, "db", "upgrade", env=env)
    run(db, "actor", "add", COORD, "--role", "coordinator", env=env)
    run(db, "--as", COORD, "actor", "add", EXPERT, "--role", "expert", env=env)
    run(db, "account", "set-password", EXPERT, "--password-stdin", env=env, stdin=PASSWORD + "\n")
    source = folder / f"rows-{size}.csv"
    if not source.exists():
        make_csv(source, size)
    for title in ("本地", "经服务器"):
        run(db, "--as", COORD, "consultation", "create", title, "--area", "片区", env=env)
    run(db, "--as", COORD, "round", "open", "1", env=env)
    run(db, "--as", COORD, "round", "open", "2", env=env)
    for consultation in ("1", "2"):
        run(db, "--as", EXPERT, "opinion", "import", str(source), "--consultation", consultation,
            "--channel", "online_survey", env=env)  # fmt: skip
    local_ids, remote_ids = f"1-{size}", f"{size + 1}-{2 * size}"
    local_s, local_mb = timed([*CLI, "--db", db, "--as", EXPERT, "opinion", "fire", local_ids, "screen"], env)

    port = _free_port()
    with (folder / f"serve-{name}-{size}.log").open("wb") as log:
        server = subprocess.Popen(
            [*CLI, "--db", db, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        subprocess.run(
            [*CLI, "login", base, "--name", EXPERT, "--password-stdin"],
            check=True, capture_output=True, env=env, input=PASSWORD + "\n", text=True,
        )  # fmt: skip
        remote_s, remote_mb = timed([*CLI, "opinion", "fire", remote_ids, "screen"], env)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {
        "backend": name,
        "n": size,
        "local_s": round(local_s, 3),
        "local_mb": round(local_mb),
        "remote_s": round(remote_s, 3),
        "remote_mb": round(remote_mb),
        "ratio": round(remote_s / local_s, 2),
    }


def main() -> None:
    """Run the sizes on SQLite (and PostgreSQL with --pg); print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--pg", help="PostgreSQL URL; a fresh schema is made and dropped")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in sizes:
            rows.append(bench("SQLite", f"sqlite:///{folder / f'remote-{size}.sqlite'}", size, folder))
            if args.pg:
                schema = f"bench_{uuid.uuid4().hex[:10]}"
                admin = make_engine(args.pg)
                with admin.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                sep = "&" if "?" in args.pg else "?"
                try:
                    rows.append(bench("PostgreSQL", f"{args.pg}{sep}options=-csearch_path%3D{schema}", size, folder))
                finally:
                    with admin.begin() as conn:
                        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                    admin.dispose()
    print("| backend | N | local s | local MB | through the server s | client MB | ratio (target ≤ 1.5×) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['backend']} | {r['n']:,} | {r['local_s']} | {r['local_mb']} | {r['remote_s']} | "
            f"{r['remote_mb']} | {r['ratio']}× |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
