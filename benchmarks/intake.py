"""Bulk intake and duplicate search, each beside its raw limit measured in the same run.

    python benchmarks/intake.py [--rows 100000] [--layout plain|wjx] [--pg postgresql://user@host/db]

Makes a questionnaire-like CSV of N rows (Chinese, 10% reworded copies; with `--layout wjx`, a
问卷星 export: numbered questions, submission times, 来源 and IP columns, (空) and landline contacts,
categories as people shorten them), then on SQLite (and on
PostgreSQL when --pg is given, in a fresh schema):
- `consultflow opinion import` of the file, beside a raw load of the same rows into the same
  `opinion` table (executemany on SQLite, COPY on PostgreSQL), as a ratio;
- `consultflow opinion duplicates` over the imported opinions at 10% of N and at N.
Each command runs in its own process; peak memory is that process's maximum resident set. Not
part of the tests: machines are noisy, so read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

# 500 common characters: real Chinese text has a wide vocabulary, so most character pairs are rare.
CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"
    "行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些"
    "然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公"
    "无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将"
    "组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理世车村镇乡田园林茶果蔬菜猪牛羊鸡鸭鱼塘渠桥井泵"
)
CATEGORIES = ("产业发展", "公共服务配套", "环境卫生与农村路网")
BASES = (
    "建议硬化三组至五组的通组道路方便群众出行",
    "希望增设村卫生室方便老人就近看病买药",
    "建议扩大生猪种业园区配套用地带动就业",
    "发展研学基地带动乡村旅游增加集体收入",
)
RAW_SQLITE = """
import csv, sqlite3, sys
from datetime import datetime, timezone
db, path, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = datetime.now(timezone.utc).isoformat()
con = sqlite3.connect(db)
with open(path, encoding="utf-8-sig", newline="") as f:
    rows = csv.reader(f); next(rows)
    batch = []
    for r in rows:
        batch.append((2, 1, 1, 2, "industry", "online_survey", r[at], "submitted", now, 1, 0, 1, now, 1, "raw:" + r[0]))
        if len(batch) == 1000:
            con.executemany("INSERT INTO opinion (consultation_id, workflow_id, participant_id, recorded_by_id, category, "
                "channel, text, state, state_entered_at, current_round, rounds_count, last_seq, submitted_at, version, "
                "intake_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch); batch = []
    if batch:
        con.executemany("INSERT INTO opinion (consultation_id, workflow_id, participant_id, recorded_by_id, category, "
            "channel, text, state, state_entered_at, current_round, rounds_count, last_seq, submitted_at, version, "
            "intake_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
con.commit()
"""
RAW_POSTGRES = """
import csv, sys
from datetime import datetime, timezone
import psycopg
url, schema, path, at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
now = datetime.now(timezone.utc)
with psycopg.connect(url, options=f"-csearch_path={schema}") as con, con.cursor() as cur:
    with open(path, encoding="utf-8-sig", newline="") as f, cur.copy(
        "COPY opinion (consultation_id, workflow_id, participant_id, recorded_by_id, category, channel, text, state, "
        "state_entered_at, current_round, rounds_count, last_seq, submitted_at, version, intake_key) FROM STDIN"
    ) as copy:
        rows = csv.reader(f); next(rows)
        for r in rows:
            copy.write_row((2, 1, 1, 2, "industry", "online_survey", r[at], "submitted", now, 1, 0, 1, now, 1, "raw:" + r[0]))
"""


WJX_HEADERS = [
    "序号", "提交答卷时间", "所用时间", "来源", "来自IP", "1、您的姓名：", "2、您所在的村：",
    "3、您的意见属于哪一类？", "4、您对规划的意见和建议：", "5、联系电话：",
]  # fmt: skip
TEXT_AT = {"plain": 5, "wjx": 8}


def make_csv(path: Path, rows: int, seed: int = 2023, layout: str = "plain") -> None:
    """A questionnaire export: serial, name, village, category, text; every tenth row a reworded copy."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(WJX_HEADERS if layout == "wjx" else ["序号", "姓名", "村", "电话", "类别", "意见内容"])
        for i in range(1, rows + 1):
            if i % 10 == 0:
                text = rng.choice(BASES) + rng.choice(("", "。", "！", "，谢谢"))
            else:
                text = "".join(rng.choice(CHARS) for _ in range(rng.randint(12, 60)))
            name = rng.choice("王李张刘陈杨赵黄周吴") + rng.choice(("秀英", "建国", "明", "华", "桂兰", "国强"))
            village = rng.choice(("青龙村", "白马村", "石桥村", "梨园村"))
            if layout == "wjx":
                when = f"2023/3/{1 + i % 28} {i % 24}:{i % 60:02d}:{i % 59:02d}"
                phone = rng.choice(("(空)", "(空)", "028-87765767", f"139{i:08d}"))
                kind = rng.choice(("产业", "公共服务", "农村路网"))
                writer.writerow(
                    [
                        i,
                        when,
                        f"{60 + i % 300}秒",
                        "微信",
                        f"10.0.{i % 250}.{i % 200}",
                        name,
                        village,
                        kind,
                        text,
                        phone,
                    ]
                )
            else:
                writer.writerow([i, name, village, "", rng.choice(CATEGORIES), text])


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        assert proc.stderr is not None
        raise SystemExit(f"{' '.join(cmd[:6])} failed: {proc.stderr.read().decode()[-500:]}")
    return elapsed, usage.ru_maxrss / 1024


def prepare(cli: list[str], db: str) -> None:
    """A migrated database with a coordinator, a consultation and its open round."""
    for args in (
        ["db", "upgrade"],
        ["actor", "add", "李协调", "--role", "coordinator"],
        ["--as", "李协调", "consultation", "create", "基准", "--area", "片区"],
        ["--as", "李协调", "round", "open", "1"],
    ):
        subprocess.run([*cli, "--db", db, "-q", *args], check=True, capture_output=True)


def bench_backend(
    name: str, db: str, raw: list[str], path: Path, small: Path, env: dict[str, str], layout: str = "plain"
) -> list[dict[str, object]]:
    """Import beside the raw load, then duplicate search at both sizes."""
    cli = [sys.executable, "-m", "consultflow"]
    results: list[dict[str, object]] = []
    prepare(cli, db)
    # a second consultation receives the raw rows, so both loads meet an equally empty table
    subprocess.run(
        [*cli, "--db", db, "-q", "--as", "李协调", "consultation", "create", "原始", "--area", "片区"], check=True
    )
    # the first tenth goes in first (and registers the participants the raw rows point at)
    timed(
        [
            *cli,
            "--db",
            db,
            "-q",
            "--as",
            "李协调",
            "opinion",
            "import",
            str(small),
            "--consultation",
            "1",
            "--channel",
            "online_survey",
        ],
        env,
    )
    raw_s, raw_mb = timed(raw, env)
    dup_small = timed([*cli, "--db", db, "-q", "opinion", "duplicates", "--consultation", "1", "--json"], env)
    import_s, import_mb = timed(
        [
            *cli,
            "--db",
            db,
            "-q",
            "--as",
            "李协调",
            "opinion",
            "import",
            str(path),
            "--consultation",
            "1",
            "--channel",
            "online_survey",
        ],
        env,
    )
    dup_full = timed([*cli, "--db", db, "-q", "opinion", "duplicates", "--consultation", "1", "--json"], env)
    rows = sum(1 for _ in path.open(encoding="utf-8-sig")) - 1
    fresh = rows - (sum(1 for _ in small.open(encoding="utf-8-sig")) - 1)
    results.append(
        {
            "backend": name,
            "work": f"opinion import, {fresh} new rows" + (" (问卷星 layout)" if layout == "wjx" else ""),
            "s": import_s,
            "mb": import_mb,
            "raw": "executemany" if name == "sqlite" else "COPY",
            "raw_s": raw_s * fresh / rows,
            "raw_mb": raw_mb,
        }
    )
    results.append(
        {"backend": name, "work": f"opinion duplicates, {rows // 10} opinions", "s": dup_small[0], "mb": dup_small[1]}
    )
    results.append(
        {"backend": name, "work": f"opinion duplicates, {rows} opinions", "s": dup_full[0], "mb": dup_full[1]}
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--layout", choices=("plain", "wjx"), default="plain", help="The file's layout.")
    parser.add_argument("--pg", help="PostgreSQL URL to measure too (a fresh schema is made and dropped).")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path, small = Path(tmp) / "rows.csv", Path(tmp) / "first-tenth.csv"
        make_csv(path, args.rows, layout=args.layout)
        make_csv(small, args.rows // 10, layout=args.layout)  # the same first rows: the big import then adds the rest
        at = str(TEXT_AT[args.layout])
        env = dict(os.environ)
        db = str(Path(tmp) / "bench.sqlite")
        raw_lite = [sys.executable, "-c", RAW_SQLITE, db, str(path), at]
        results += bench_backend("sqlite", db, raw_lite, path, small, env, args.layout)
        if args.pg:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            subprocess.run(["psql", args.pg, "-qc", f"CREATE SCHEMA {schema}"], check=True)
            try:
                url = f"{args.pg}{'&' if '?' in args.pg else '?'}options=-csearch_path%3D{schema}"
                raw = [sys.executable, "-c", RAW_POSTGRES, args.pg, schema, str(path), at]
                results += bench_backend("postgresql", url, raw, path, small, env, args.layout)
            finally:
                subprocess.run(["psql", args.pg, "-qc", f"DROP SCHEMA {schema} CASCADE"], check=True)
    print("| backend | work | seconds | peak MB | raw limit | seconds | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        if "raw" in r:
            ratio = float(r["s"]) / float(r["raw_s"])  # type: ignore[arg-type]
            print(
                f"| {r['backend']} | {r['work']} | {r['s']:.1f} | {r['mb']:.0f} | {r['raw']} of the same rows | {r['raw_s']:.1f} | {ratio:.1f}× |"
            )
        else:
            print(f"| {r['backend']} | {r['work']} | {r['s']:.1f} | {r['mb']:.0f} | | | |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
