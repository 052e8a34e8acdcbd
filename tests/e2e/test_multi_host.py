"""Several servers on several hosts, one database and its replica (docs/operators/several-servers.md).

Hosts are network namespaces on this machine, joined by a bridge: `db1` (the primary PostgreSQL),
`db2` (a streaming replica made with pg_basebackup -R), `app1` and `app2` (each `consultflow
serve` on :8000 with one shared web secret, pointed at both database hosts with
target_session_attrs=read-write) and `lb` (nginx on :8080 in front of both). Portal submissions
come through nginx from several threads, each with an Idempotency-Key and retried with it; a staff
member signs in through nginx with the CLI. app1 is killed with SIGKILL mid-load, then the primary
is stopped and the replica promoted. Every submission that got a receipt is then in the database
exactly once, the audit chain verifies on the new primary, and a receipt-code limit counted on app1
and a portal session issued by app1 hold on app2.

It needs root, `ip netns`, nginx and PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup);
it is skipped, saying which is missing, without them. The machine's own PostgreSQL is not touched.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WORKFLOWS
from tests.web.portal import hidden, shown_code
from tests.web.test_browser import COORD

pytestmark = [pytest.mark.slow, pytest.mark.long]

SUBNET = "10.77.0"
HOSTS = {
    "db1": f"{SUBNET}.11",
    "db2": f"{SUBNET}.12",
    "app1": f"{SUBNET}.21",
    "app2": f"{SUBNET}.22",
    "lb": f"{SUBNET}.1",
}
BRIDGE_ADDRESS = f"{SUBNET}.254"  # the root namespace: the clients, the administrator's migration
LB = f"http://{HOSTS['lb']}:8080"
SECRET = "m" * 40  # one web secret for every server host
CODE_LIMIT = 6  # lookups per receipt code per hour
LIMITS = f"submits=1000000/60,lookups=1000000/60,code={CODE_LIMIT}/3600"
PASSWORD = "korrekt-Pferd-Batterie-9"
RETRY_SECONDS = 90.0  # how long a client goes on retrying one submission (failover included)


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup"))
    return found[-1].parent if found else None


def _unprivileged() -> str | None:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    return None


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, a bridge, nginx)"
    for tool in ("ip", "nginx", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: iproute2, nginx-light, util-linux)"
    pg = _pg_bin()
    if pg is None or not all((pg / t).exists() for t in ("initdb", "pg_ctl", "postgres")):
        return "PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup) are not installed"
    if _unprivileged() is None:
        return "no unprivileged user (postgres or nobody) to run PostgreSQL as"
    probe = f"cfprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _sh(*args: str, ok: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=180)
    assert ok or done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
    return done


class Network:
    """A bridge in the root namespace and one namespace per host, each on a veth pair."""

    def __init__(self) -> None:
        self.tag = f"cf{os.getpid() % 100000}"
        self.bridge = f"{self.tag}br"
        self.spaces: dict[str, str] = {}

    def up(self) -> None:
        _sh("ip", "link", "add", self.bridge, "type", "bridge")
        _sh("ip", "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", self.bridge)
        _sh("ip", "link", "set", self.bridge, "up")
        for name, address in HOSTS.items():
            space = f"{self.tag}-{name}"
            _sh("ip", "netns", "add", space)
            self.spaces[name] = space
            veth = f"{self.tag}{name}"
            _sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", space)
            _sh("ip", "link", "set", veth, "master", self.bridge)
            _sh("ip", "link", "set", veth, "up")
            _sh(*self.inside(name, "ip", "addr", "add", f"{address}/24", "dev", "eth0"))
            _sh(*self.inside(name, "ip", "link", "set", "eth0", "up"))
            _sh(*self.inside(name, "ip", "link", "set", "lo", "up"))

    def inside(self, host: str, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.spaces[host], *command]

    def down(self) -> None:
        for space in self.spaces.values():
            _sh("ip", "netns", "del", space, ok=True)
        _sh("ip", "link", "del", self.bridge, ok=True)


class Postgres:
    """A primary in db1 and its streaming replica in db2, run by an unprivileged user in a temp dir."""

    def __init__(self, net: Network, base: Path, user: str) -> None:
        self.net, self.base, self.user = net, base, user
        found = _pg_bin()
        assert found is not None
        self.bin: Path = found
        self.started: list[tuple[str, Path]] = []

    def _as_user(self, host: str | None, tool: str, *args: str) -> list[str]:
        command = ["runuser", "-u", self.user, "--", str(self.bin / tool), *args]
        return self.net.inside(host, *command) if host else command

    def _start(self, host: str, data: Path) -> None:
        options = f"-c listen_addresses={HOSTS[host]} -c port=5432 -k {data.parent}"
        _sh(
            *self._as_user(
                host, "pg_ctl", "-D", str(data), "-l", str(data.parent / f"{host}.log"), "-o", options, "-w", "start"
            )
        )
        self.started.append((host, data))

    def primary(self) -> None:
        data = self.base / "db1" / "data"
        initdb = ["-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C"]
        _sh(*self._as_user(None, "initdb", *initdb))
        with (data / "pg_hba.conf").open("a", encoding="utf-8") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\nhost replication all {SUBNET}.0/24 trust\n")
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nmax_connections = 60\n")
            conf.write("fsync = off\n")  # the test stops PostgreSQL cleanly; the machine never crashes under it
        self._start("db1", data)
        _sh(*self._as_user("db1", "createdb", "-h", HOSTS["db1"], "-U", "postgres", "county"))

    def replica(self) -> None:
        data = self.base / "db2" / "data"
        _sh(
            *self._as_user(
                "db2", "pg_basebackup", "-h", HOSTS["db1"], "-U", "postgres", "-D", str(data), "-R", "-X", "stream",
                "--checkpoint=fast",  # a spread checkpoint first: the primary's next one, 90 s away on an idle primary
            )
        )  # fmt: skip
        self._start("db2", data)

    def stop(self, host: str) -> None:
        data = self.base / host / "data"
        _sh(*self._as_user(host, "pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"))
        self.started = [(h, d) for h, d in self.started if h != host]

    def promote(self, host: str) -> None:
        _sh(*self._as_user(host, "pg_ctl", "-D", str(self.base / host / "data"), "-w", "promote"))

    def stop_all(self) -> None:
        for host, data in self.started:
            _sh(*self._as_user(host, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"), ok=True)
        self.started = []


def _url(*hosts: str, database: str = "county") -> str:
    found = ",".join(HOSTS[h] for h in hosts)
    return f"postgresql://postgres@{found}/{database}?connect_timeout=3&target_session_attrs=read-write"


class Cli:
    """The CLI in a subprocess of the root namespace: on a database (`--db`) or signed in to a server."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**env, "CONSULTFLOW_WORKFLOWS": str(WORKFLOWS), "PYTHONIOENCODING": "utf-8"}

    def run(self, *args: str, stdin: str | None = None, actor: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **({"CONSULTFLOW_ACTOR": actor} if actor else {})}
        return subprocess.run(
            [sys.executable, "-m", "consultflow", "-q", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def __call__(self, *args: str, stdin: str | None = None, actor: str | None = None) -> str:
        done = self.run(*args, stdin=stdin, actor=actor)
        assert done.returncode == 0, f"{args}: {done.stderr}"
        return done.stdout

    def until_ok(self, *args: str, seconds: float = RETRY_SECONDS) -> str:
        """A staff command retried while the servers fail over (a 503 or a cut connection), as a person would."""
        deadline = time.monotonic() + seconds
        while True:
            done = self.run(*args)
            if done.returncode == 0 or time.monotonic() > deadline:
                assert done.returncode == 0, f"{args}: {done.stderr}"
                return done.stdout
            time.sleep(1)


class Submitters:
    """Client threads posting portal submissions through nginx, each with its own Idempotency-Key.

    A cut connection, a 502, 503 or 504 is retried with the same key for up to RETRY_SECONDS;
    anything else that is not a receipt is a failure.
    """

    def __init__(self, threads: int) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted: dict[str, tuple[int, str]] = {}
        self.failures: list[str] = []
        self.retried: collections.Counter[str] = collections.Counter()  # why submissions were retried
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def _run(self, n: int) -> None:
        import httpx2 as httpx

        with httpx.Client(base_url=LB, timeout=30) as web:
            i = 0
            while not self.stop.is_set():
                key = f"h{n}-{i}"
                body = {"category": "industry", "text": f"多台服务器时的意见 {key}", "village": "青龙村"}
                deadline = time.monotonic() + RETRY_SECONDS
                outcome = "never answered"
                while time.monotonic() < deadline:
                    try:
                        answer = web.post(
                            "/api/v1/consultations/1/opinions", json=body, headers={"Idempotency-Key": key}
                        )
                    except httpx.TransportError as exc:
                        outcome = f"transport: {exc!r}"
                        why = type(exc).__name__
                    else:
                        got = _receipt(answer) if answer.status_code in (200, 201) else None
                        if got is not None:
                            with self.lock:
                                self.accepted[key] = got
                            outcome = ""
                            break
                        outcome = f"{answer.status_code} {answer.text[:200]}"
                        why = str(answer.status_code) if answer.status_code not in (200, 201) else "cut off"
                        if answer.status_code not in (200, 201, 502, 503, 504):
                            break
                    with self.lock:
                        self.retried[why] += 1
                    time.sleep(0.2)
                if outcome:
                    with self.lock:
                        self.failures.append(f"{key}: {outcome}")
                i += 1

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=RETRY_SECONDS + 60)

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def wait_for(self, count: int, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while self.count() < count and not self.failures and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not self.failures, self.failures[:5]
        assert self.count() >= count, f"only {self.count()} of {count} submissions accepted in {seconds} s"


def _receipt(answer: Any) -> tuple[int, str] | None:
    """The opinion id and receipt code of a success, or None when its body was cut off.

    A server host killed mid-reply can leave the load balancer passing on its status with no body:
    the villager has no receipt yet and sends the same form again (the same idempotency key), and
    the retry answers with the receipt of the opinion the first attempt stored.
    """
    try:
        got = answer.json()
        return int(got["opinion_id"]), str(got["receipt_code"])
    except (ValueError, KeyError, TypeError):
        return None


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx2 as httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")[-3000:]
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer: {log.read_text(encoding='utf-8', errors='replace')[-3000:]}")


NGINX = """
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream consultflow {{
        server {app1}:8000 max_fails=1 fail_timeout=10s;
        server {app2}:8000 max_fails=1 fail_timeout=10s;
    }}
    server {{
        listen {lb}:8080;
        location / {{
            proxy_pass http://consultflow;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 2;
            proxy_next_upstream_timeout 10s;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


@contextlib.contextmanager
def _cluster(base: Path) -> Iterator[tuple[Network, Postgres, dict[str, subprocess.Popen[bytes]]]]:
    """The hosts, the databases and the servers, torn down whatever happens."""
    user = _unprivileged()
    assert user is not None
    net = Network()
    pg = Postgres(net, base, user)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        net.up()
        yield net, pg, processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=20)
        pg.stop_all()
        net.down()


def _serve(net: Network, host: str, base: Path, processes: dict[str, subprocess.Popen[bytes]]) -> None:
    log = base / f"{host}.log"
    env = {
        **os.environ,
        "CONSULTFLOW_DB": _url("db1", "db2"),
        "CONSULTFLOW_WORKFLOWS": str(WORKFLOWS),
        "CONSULTFLOW_WEB_SECRET": SECRET,
        "CONSULTFLOW_WEB_LIMITS": LIMITS,
        "CONSULTFLOW_SERVER_JOBS": "0",
        "CONSULTFLOW_ERROR_LOG": str(base / f"{host}-errors.log"),
    }
    command = [sys.executable, "-m", "consultflow", "serve", "--host", "0.0.0.0", "--port", "8000"]
    with log.open("wb") as out:
        processes[host] = subprocess.Popen(
            net.inside(host, *command, "--forwarded-allow-ips", HOSTS["lb"]),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_http(f"http://{HOSTS[host]}:8000/healthz", processes[host], log)


def _cross_host_checks() -> None:
    """A receipt-code limit counted on app1 holds on app2; a portal session from app1 works on app2."""
    import httpx2 as httpx

    app1, app2 = (f"http://{HOSTS[h]}:8000" for h in ("app1", "app2"))
    with httpx.Client(base_url=app1, timeout=30, follow_redirects=False) as web:
        page = web.get("/c/1/submit")
        assert page.status_code == 200, page.text
        form = {
            "csrf": hidden(page.text, "csrf"),
            "form_key": hidden(page.text, "form_key"),
            "category": "industry",
            "text": "跨服务器的表单会话",
            "village": "青龙村",
        }
        session = dict(web.cookies)  # the session app1 issued, with its signed token, goes to app2
    with httpx.Client(base_url=app2, timeout=30, follow_redirects=False, cookies=session) as other:
        posted = other.post("/c/1/submit", data=form)
        assert posted.status_code == 303, posted.text
        mine = other.get("/my")
        assert mine.status_code == 200, mine.text
        code = shown_code(mine.text)
    timeline = f"{app1}/api/v1/receipts/timeline"
    statuses = [httpx.post(timeline, json={"code": code}, timeout=30).status_code for _ in range(CODE_LIMIT)]
    assert statuses.count(200) >= CODE_LIMIT // 2 and statuses[-1] == 429, statuses  # most of the 6 counted on app1
    refused = httpx.post(f"{app2}/api/v1/receipts/timeline", json={"code": code}, timeout=30)
    assert refused.status_code == 429, refused.text  # counted in the database, so app2 knows


def test_several_servers_on_several_hosts_survive_a_killed_host_and_a_failover(tmp_path: Path) -> None:
    """With a host killed and the database failed over, each receipted submission is kept once; the chain verifies."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="cf-multihost-"))
    base.chmod(0o755)
    user = _unprivileged()
    assert user is not None
    for host in ("db1", "db2"):
        (base / host).mkdir()
        shutil.chown(base / host, user=user)
    try:
        _scenario(base, tmp_path)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _scenario(base: Path, tmp_path: Path) -> None:
    with _cluster(base) as (net, pg, processes):
        pg.primary()
        pg.replica()

        admin = Cli({**os.environ, "CONSULTFLOW_DB": _url("db1")})  # the administrator, from the root namespace
        admin("db", "upgrade")
        admin("actor", "add", COORD, "--role", "coordinator")
        admin("account", "set-password", COORD, "--password-stdin", stdin=f"{PASSWORD}\n")
        admin("consultation", "create", "多主机测试", "--area", "测试片区", actor=COORD)
        admin("round", "open", "1", actor=COORD)

        for host in ("app1", "app2"):
            _serve(net, host, base, processes)
        nginx_dir = base / "lb"
        nginx_dir.mkdir()
        conf = nginx_dir / "nginx.conf"
        conf.write_text(NGINX.format(dir=nginx_dir, lb=HOSTS["lb"], app1=HOSTS["app1"], app2=HOSTS["app2"]))
        with (nginx_dir / "nginx.out").open("wb") as out:
            processes["lb"] = subprocess.Popen(
                net.inside("lb", "nginx", "-p", str(nginx_dir), "-c", str(conf), "-g", "daemon off;"),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_http(f"{LB}/healthz", processes["lb"], nginx_dir / "nginx-error.log")

        _cross_host_checks()
        before = {o["id"] for o in json.loads(admin("--json", "opinion", "list", "--consultation", "1"))}

        direct = ("CONSULTFLOW_DB", "CONSULTFLOW_SERVER", "CONSULTFLOW_TOKEN")  # staff hold no database URL
        env = {k: v for k, v in os.environ.items() if k not in direct}
        staff = Cli({**env, "CONSULTFLOW_CREDENTIALS": str(tmp_path / "credentials.json")})
        staff("login", LB, "--name", COORD, "--password-stdin", stdin=f"{PASSWORD}\n")
        assert COORD in staff("whoami")

        load = Submitters(threads=4)
        load.start()
        try:
            load.wait_for(20)
            processes["app1"].send_signal(signal.SIGKILL)  # a server host dies mid-load
            processes["app1"].wait(timeout=30)
            killed_at = load.count()
            load.wait_for(killed_at + 20)  # app2 takes every submission
            staff.until_ok("actor", "add", "王规划", "--role", "planner")

            pg.stop("db1")  # the primary goes away; the replica becomes the primary
            pg.promote("db2")
            failed_over_at = load.count()
            load.wait_for(failed_over_at + 20, seconds=RETRY_SECONDS + 60)  # app2 reconnected to db2
            staff.until_ok("actor", "add", "张审计", "--role", "auditor")
            assert "王规划" in staff.until_ok("actor", "list")
        finally:
            load.finish()
        assert not load.failures, load.failures[:5]
        print(f"{len(load.accepted)} submissions; retried: {dict(load.retried)}")  # noqa: T201 - shown with -s

        after = Cli({**os.environ, "CONSULTFLOW_DB": _url("db2")})  # the new primary, directly
        listed = json.loads(after("--json", "opinion", "list", "--consultation", "1"))
        new = [o for o in listed if o["id"] not in before]
        ids = [opinion_id for opinion_id, _code in load.accepted.values()]
        assert len(set(ids)) == len(ids)  # one opinion per submission
        assert sorted(o["id"] for o in new) == sorted(ids)  # each that got a receipt exactly once, none lost
        assert len({o["text"] for o in listed}) == len(listed)  # no opinion twice
        assert len({code for _id, code in load.accepted.values()}) == len(ids)
        verified = after("audit", "verify", "1")
        assert "chain intact" in verified, verified
        people = after("actor", "list")
        assert "王规划" in people and "张审计" in people  # staff writes through nginx, before and after failover
        logs = "".join((base / f"{h}.log").read_text(encoding="utf-8", errors="replace") for h in ("app1", "app2"))
        assert "Traceback" not in logs, logs[-3000:]
