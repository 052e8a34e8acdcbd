"""A bulk change through the server beside the same change in local mode, in the same run.

    python benchmarks/remote.py [--sizes 10000,100000] [--pg postgresql://user@host/db] [--json FILE]

For each size, one database gets four consultations with the same N questionnaire rows. Then
`opinion fire <all of a consultation's ids> screen` runs in local mode (`--db`, `--as`) on the
first and the last, and through `consultflow serve` with a signed-in token on the second and the
third (local, remote, remote, local, so growing tables and the machine's load fall on both sides):
whole CLI processes with their output going to /dev/null (the remote one receives every result
line over HTTP and prints it as the local one does). The ratio of the means, remote / local, is the
figure; the target is at most 1.5×.
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
    # Four equal consultations, fired in the order local, remote, remote, local: whatever the growing
    # tables or the machine's load cost the later runs falls on both sides alike.
    for title in ("本地 1", "经服务器 1", "经服务器 2", "本地 2"):
        run(db, "--as", COORD, "consultation", "create", title, "--area", "片区", env=env)
    for consultation in ("1", "2", "3", "4"):
        run(db, "--as", COORD, "round", "open", consultation, env=env)
        run(db, "--as", EXPERT, "opinion", "import", str(source), "--consultation", consultation,
            "--channel", "online_survey", env=env)  # fmt: skip
    ids = [f"{k * size + 1}-{(k + 1) * size}" for k in range(4)]
    local_s, local_mb = timed([*CLI, "--db", db, "--as", EXPERT, "opinion", "fire", ids[0], "screen"], env)

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
        remote = [timed([*CLI, "opinion", "fire", ids[k], "screen"], env) for k in (1, 2)]
    finally:
        server.terminate()
        server.wait(timeout=60)
    second_s, second_mb = timed([*CLI, "--db", db, "--as", EXPERT, "opinion", "fire", ids[3], "screen"], env)
    local_s, local_mb = (local_s + second_s) / 2, max(local_mb, second_mb)
    remote_s, remote_mb = sum(r[0] for r in remote) / 2, max(r[1] for r in remote)
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
