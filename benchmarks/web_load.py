"""A bounded load run of the web portal on loopback: concurrent submitters and readers for a fixed time.

    python benchmarks/web_load.py [--seconds 20] [--submitters 8] [--readers 8] [--workers 2] [--pg URL]

Starts `consultflow web` on a fresh database (SQLite, or a fresh schema of the PostgreSQL database
given), then for `--seconds` runs submitters (each POSTs opinions through the JSON API with its own
Idempotency-Key, retrying a 503 with the same key, as a kiosk would) and readers (the consultation
page, and timelines by receipt code). It reports latency percentiles per kind of request and then
proves that no submission was lost or doubled: every opinion the server answered 201 for is in the
database once, nothing else is, each receipt code finds its own opinion, and the audit chain verifies.

Loopback only (127.0.0.1); not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ("建议硬化通组道路", "希望增设村卫生室", "建议扩大种业园区配套用地", "发展研学基地带动乡村旅游")


def _cli(env: dict[str, str], *args: str, actor: str | None = None) -> str:
    run_env = {**env, **({"CONSULTFLOW_ACTOR": actor} if actor else {})}
    proc = subprocess.run(
        [sys.executable, "-m", "consultflow", "-q", *args], env=run_env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"consultflow {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_schema(url: str) -> str:
    """A fresh schema on the given database, as a URL whose connections use it."""
    import sqlalchemy as sa

    name = f"bench_web_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as con:
        con.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{name}"


class Tally:
    """Latencies per kind of request, and what the server said it recorded."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {}
        self.status: dict[str, dict[int, int]] = {}
        self.recorded: dict[str, int] = {}  # idempotency key -> opinion id (201, or 200 for a retried key)
        self.codes: list[str] = []
        self.retries = 0

    def note(self, kind: str, seconds: float, status: int) -> None:
        self.latency.setdefault(kind, []).append(seconds)
        counts = self.status.setdefault(kind, {})
        counts[status] = counts.get(status, 0) + 1


async def _submitter(client: httpx.AsyncClient, tally: Tally, until: float, n: int) -> None:
    i = 0
    while time.monotonic() < until:
        key = f"load-{n}-{i}"
        body = {"category": "industry", "text": f"{TEXTS[i % len(TEXTS)]}（{n}-{i}）", "village": "青龙村"}
        for _attempt in range(10):
            started = time.perf_counter()
            answer = await client.post("/api/v1/consultations/1/opinions", json=body, headers={"Idempotency-Key": key})
            tally.note("submit", time.perf_counter() - started, answer.status_code)
            if answer.status_code in (200, 201):
                made = answer.json()
                if key in tally.recorded and tally.recorded[key] != made["opinion_id"]:
                    raise SystemExit(f"key {key} answered with two opinions")
                tally.recorded[key] = made["opinion_id"]
                if made["receipt_code"]:
                    tally.codes.append(made["receipt_code"])
                break
            if answer.status_code != 503:
                raise SystemExit(f"submit refused: {answer.status_code} {answer.text}")
            tally.retries += 1
            await asyncio.sleep(0.05)
        i += 1


async def _reader(client: httpx.AsyncClient, tally: Tally, until: float, n: int) -> None:
    i = 0
    while time.monotonic() < until:
        started = time.perf_counter()
        if i % 2 == 0 or not tally.codes:
            answer = await client.get("/c/1")
            tally.note("consultation page", time.perf_counter() - started, answer.status_code)
        else:
            code = tally.codes[(n + i) % len(tally.codes)]
            answer = await client.post("/api/v1/receipts/timeline", json={"code": code})
            tally.note("timeline by code", time.perf_counter() - started, answer.status_code)
        i += 1


async def _load(base: str, seconds: float, submitters: int, readers: int) -> Tally:
    tally = Tally()
    limits = httpx.Limits(max_connections=submitters + readers)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(_submitter(client, tally, until, n) for n in range(submitters)),
            *(_reader(client, tally, until, n) for n in range(readers)),
        )
    return tally


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--submitters", type=int, default=8)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg", help="a PostgreSQL URL (a fresh schema is made in it)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="cf-web-load-"))
    db = _pg_schema(args.pg) if args.pg else str(folder / "load.sqlite")
    env = {**os.environ, "CONSULTFLOW_DB": db, "PYTHONIOENCODING": "utf-8"}
    _cli(env, "db", "upgrade")
    _cli(env, "actor", "add", "李协调", "--role", "coordinator")
    _cli(env, "consultation", "create", "负载测试片区规划", "--area", "测试片区", actor="李协调")
    _cli(env, "round", "open", "1", actor="李协调")
    port = _free_port()
    server_env = {**env, "CONSULTFLOW_WEB_LIMITS": "submits=1000000/60,lookups=1000000/60,code=1000000/60"}
    log = (folder / "web.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "consultflow", "-q", "web", "--port", str(port), "--workers", str(args.workers)],
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        tally = asyncio.run(_load(base, args.seconds, args.submitters, args.readers))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    listed = json.loads(_cli(env, "--json", "opinion", "list", "--consultation", "1"))
    in_db = sorted(o["id"] for o in listed)
    answered = sorted(tally.recorded.values())
    lost = sorted(set(answered) - set(in_db))
    extra = sorted(set(in_db) - set(answered))
    doubled = len(answered) - len(set(answered))
    verified = "intact" in _cli(env, "audit", "verify", "1")

    rows = []
    for kind, values in tally.latency.items():
        rows.append(
            {
                "kind": kind,
                "requests": len(values),
                "per_second": round(len(values) / args.seconds, 1),
                "p50_ms": round(1000 * statistics.median(values), 1),
                "p95_ms": round(1000 * _percentile(values, 0.95), 1),
                "p99_ms": round(1000 * _percentile(values, 0.99), 1),
                "statuses": tally.status[kind],
            }
        )
    result = {
        "backend": "postgresql" if args.pg else "sqlite",
        "seconds": args.seconds,
        "submitters": args.submitters,
        "readers": args.readers,
        "workers": args.workers,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "requests": rows,
        "recorded": len(answered),
        "in_database": len(in_db),
        "lost": lost,
        "not_answered_but_stored": extra,
        "doubled": doubled,
        "retried_503": tally.retries,
        "chain_verifies": verified,
    }
    print(
        f"## Web load: {result['backend']}, {args.workers} worker(s), {args.submitters} submitters + "
        f"{args.readers} readers for {args.seconds:g} s ({result['machine']})\n"
    )
    print("| request | count | per s | p50 ms | p95 ms | p99 ms | statuses |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['kind']} | {r['requests']} | {r['per_second']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['statuses']} |"
        )
    print(
        f"\nrecorded {len(answered)}, in the database {len(in_db)}, lost {len(lost)}, doubled {doubled}, "
        f"stored without an answer {len(extra)}, retried after 503: {tally.retries}, chain verifies: {verified}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    if lost or extra or doubled or not verified:
        raise SystemExit("the load run lost or doubled submissions")


if __name__ == "__main__":
    main()
