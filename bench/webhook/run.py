"""Webhook bench: itabot against line-bot-sdk's echo bot, same gunicorn, same load.

    python bench/webhook/run.py [--events N] [--concurrency C] [--target itabot|echo|both]
                                [--mode embedded|scaled|both] [--rounds N]

For each target: start it under gunicorn (2 workers, gthread, 8 threads), wait until it
answers, warm it up, then send N signed webhook deliveries (one text "hello" event each,
unique webhookEventId and replyToken, ~200 distinct users) over C concurrent keep-alive
connections, and wait until the fake LINE API (``fake_line.py``) has received a reply for
every event.

``--mode`` chooses how itabot runs: ``embedded`` (default: SQLite, the in-process worker),
``scaled`` (the gunicorn web processes plus ``--worker-procs`` ``itabot worker`` processes on
PostgreSQL and Redis, as from the Procfile; target name ``itabot-scaled``) or ``both``. Scaled
mode uses a database of its own (``--pg-url``, default .../bench: created if missing and its
schema emptied before each run; its name must start with "bench") and a Redis database of its
own (``--redis-url``, default db 13: flushed before and after; never 0, 14 or 15, which others use).
Reported per target:

* delivered/s  - events whose reply arrived / (last reply arrival - first send)
* ingest/s     - webhook deliveries answered / (last answer - first send)
* webhook p50/p99 - time to LINE's 200 for the delivery (ms)
* reply p50/p99   - send of the delivery -> its reply arriving at the fake (ms)
* non-200, missing replies
* all replied s   - first send -> last reply (every event processed and answered);
  backlog s       - last webhook answer -> last reply (the queue left when the load stops)

``--rounds N`` runs the targets N times (every other round in the opposite order) and reports the median of
the rounds' throughput ratios, with each round's: on a shared machine single runs move by ±15 %.

Everything runs on 127.0.0.1 and every process started here is killed at the end.
Results: bench/webhook/results/latest.json (scaled or both: results/scaled.json); server logs:
bench/webhook/results/<target>.log (scaled workers: <target>-worker-<i>.log).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RESULTS = HERE / "results"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_procs: list[subprocess.Popen] = []


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], *, env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "wb") as fh:
        p = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _procs.append(p)
    return p


def stop(p: subprocess.Popen) -> None:
    """Stop one process we started, and its process group (gunicorn's workers)."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)  # stragglers in the group (workers of a dead master)
    if p.poll() is None:
        p.wait(timeout=5)
    if p in _procs:
        _procs.remove(p)


def stop_all() -> None:
    for p in list(reversed(_procs)):
        try:
            stop(p)
        except Exception as exc:  # keep stopping the others
            print(f"warning: could not stop pid {p.pid}: {exc}", file=sys.stderr)


def _on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


# -- HTTP helpers ---------------------------------------------------------------------------


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_for(fn, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"{what}: process exited with {proc.returncode}\n{tail}")
        try:
            if fn():
                return
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not ready after {timeout}s ({last})")


def fake_records(fake_port: int) -> dict:
    status, body = call(fake_port, "GET", "/_records", timeout=30)
    assert status == 200, status
    return json.loads(body)


def proc_cpu(pids: list[int]) -> float:
    """User+system CPU seconds used so far by these processes (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def tree(pid: int) -> list[int]:
    """A process and its descendants (gunicorn's master, its workers, and itabot's processing process)."""
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *(p for kid in kids for p in tree(int(kid)))]


# -- LINE webhook deliveries ----------------------------------------------------------------


def ulid() -> str:
    ms = int(time.time() * 1000)
    head = "".join(CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(10)))
    return head + "".join(random.choice(CROCKFORD) for _ in range(16))


class Deliveries:
    """Builds realistic, signed LINE webhook bodies (one text message event each)."""

    def __init__(self, secret: str, users: int, text: str = "hello") -> None:
        self.secret = secret.encode()
        self.users = ["U" + secrets.token_hex(16) for _ in range(users)]
        self.destination = "U" + secrets.token_hex(16)
        self.text = text
        self._mid = random.randrange(10**17, 10**18 - 10**9)

    def build(self, i: int, reply_token: str) -> tuple[bytes, dict]:
        event = {
            "type": "message",
            "message": {
                "type": "text",
                "id": str(self._mid + i),
                "quoteToken": "q" + secrets.token_urlsafe(40),
                "text": self.text,
            },
            "webhookEventId": ulid(),
            "deliveryContext": {"isRedelivery": False},
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": self.users[i % len(self.users)]},
            "replyToken": reply_token,
            "mode": "active",
        }
        body = json.dumps({"destination": self.destination, "events": [event]}, separators=(",", ":")).encode()
        return body, self.headers(body)

    def headers(self, body: bytes) -> dict:
        sig = base64.b64encode(hmac.new(self.secret, body, hashlib.sha256).digest()).decode()
        return {
            "Content-Type": "application/json; charset=utf-8",
            "X-Line-Signature": sig,
            "User-Agent": "LineBotWebhook/2.0",
        }


@dataclass
class Load:
    n: int
    tokens: list[str] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tokens = [secrets.token_hex(16) for _ in range(self.n)]
        self.sent_at = [0.0] * self.n
        self.answer_ms = [0.0] * self.n
        self.answered_at = [0.0] * self.n
        self.status = [0] * self.n


def send_load(port: int, deliveries: Deliveries, load: Load, concurrency: int, rate: float = 0) -> None:
    """C threads, each with one keep-alive connection, send until N deliveries are done.

    rate=0: closed loop, each connection sends its next delivery as soon as it is answered.
    rate>0: delivery i is sent at start + i/rate (open loop, at most C in flight).
    """
    lock = threading.Lock()
    counter = iter(range(load.n))
    begin = time.time() + 0.05

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            if rate:
                delay = begin + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            body, headers = deliveries.build(i, load.tokens[i])
            t0 = time.time()
            load.sent_at[i] = t0
            try:
                conn.request("POST", "/callback", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                load.status[i] = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                load.status[i] = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            t1 = time.time()
            load.answered_at[i] = t1
            load.answer_ms[i] = (t1 - t0) * 1000
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_replies(fake_port: int, tokens: set[str], timeout: float) -> dict[str, tuple[float, int]]:
    deadline = time.time() + timeout
    got: dict[str, tuple[float, int]] = {}
    while True:
        recs = fake_records(fake_port)["replies"]
        got = {tok: (t, n) for tok, t, n in recs if tok in tokens}
        if len(got) >= len(tokens) or time.time() > deadline:
            return got
        time.sleep(0.25)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


# -- targets --------------------------------------------------------------------------------


def target_env(base: dict, fake_port: int, tmp: Path, secret: str) -> dict:
    env = dict(base)
    env.update(
        LINE_CHANNEL_SECRET=secret,
        LINE_CHANNEL_ACCESS_TOKEN="bench",
        SECRET_KEY=secrets.token_urlsafe(48),
        ITABOT_DATA_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        LINE_API_BASE_URL=f"http://127.0.0.1:{fake_port}",
        LINE_DATA_API_BASE_URL=f"http://127.0.0.1:{fake_port}",
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        PUBLIC_BASE_URL="https://bench.example",
        ITABOT_INSTANCE_PATH=str(tmp),
        PYTHONUNBUFFERED="1",
    )
    for k in ("REDIS_URL", "ITABOT_SIMULATOR", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS"):
        env.pop(k, None)
    return env


# -- scaled mode: a PostgreSQL database and a Redis database of the bench's own ---------------

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
# Not 15 (the test suite empties it) and not 14 (tests/faults uses it): RQ has one queue name, "itabot",
# so two runs sharing a Redis database would take each other's jobs.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
RQ_WORKERS_KEY = "rq:workers:itabot"  # RQ's set of the workers listening on itabot's queue


def check_scaled_urls(pg_url: str, redis_url: str) -> None:
    """Refuse URLs that could point at someone else's data: both are emptied by the bench."""
    from urllib.parse import urlsplit

    from sqlalchemy.engine import make_url

    u = make_url(pg_url)
    if u.get_backend_name() != "postgresql":
        raise SystemExit(f"--pg-url must be a postgresql:// URL, got {pg_url!r}")
    if not (u.database or "").startswith("bench"):
        raise SystemExit(f"--pg-url: the database is emptied before each run, so its name must start with "
                         f"'bench' (never the tests' 'test'), got {u.database!r}")
    parts = urlsplit(redis_url)
    db = parts.path.lstrip("/") or "0"
    if parts.scheme not in ("redis", "rediss") or not db.isdigit() or int(db) in (0, 14, 15):
        raise SystemExit(f"--redis-url must name a Redis database of the bench's own (it is flushed; not 0, "
                         f"not 14 of tests/faults, not 15 of the tests), e.g. {DEFAULT_REDIS_URL}; got {redis_url!r}")


def _without_password(url: str) -> str:
    """For the results file: the URL as given, with any password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _pg_conninfo(pg_url: str) -> tuple[str, dict]:
    from sqlalchemy.engine import make_url

    u = make_url(pg_url)
    info = {"host": u.host or "127.0.0.1", "port": u.port or 5432, "user": u.username, "password": u.password}
    return u.database, {k: v for k, v in info.items() if v is not None}


def reset_postgres(pg_url: str) -> None:
    """Create the bench database if it is missing, and empty it (each run starts from nothing)."""
    import psycopg
    from psycopg import sql

    name, info = _pg_conninfo(pg_url)
    with psycopg.connect(dbname="postgres", autocommit=True, **info) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"  created PostgreSQL database {name}")
    with psycopg.connect(dbname=name, autocommit=True, **info) as conn:
        conn.execute("SET lock_timeout = '10s'")  # a leftover session of a killed run: fail, don't hang
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def pg_backends(pg_url: str) -> list[int]:
    """Process ids of the PostgreSQL backends serving the bench database (its CPU is server work)."""
    import psycopg

    name, info = _pg_conninfo(pg_url)
    with psycopg.connect(dbname=name, autocommit=True, **info) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (name,)).fetchall()
    return [r[0] for r in rows]


def pg_event_counts(pg_url: str) -> dict:
    """What the database says at the end: events by status, and outbox rows still unsent."""
    import psycopg

    name, info = _pg_conninfo(pg_url)
    with psycopg.connect(dbname=name, autocommit=True, **info) as conn:
        events = dict(conn.execute("SELECT status, count(*) FROM webhook_events GROUP BY status").fetchall())
        outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    return {"events": events, "outbox": outbox}


def redis_client(redis_url: str):
    from redis import Redis

    return Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)


def redis_cpu(redis_url: str) -> float:
    """CPU seconds of the whole Redis server so far (it may serve others too: an upper bound)."""
    info = redis_client(redis_url).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def gunicorn_cmd(app: str, port: int, args) -> list[str]:
    gunicorn = shutil.which("gunicorn") or "gunicorn"
    return [
        gunicorn,
        "-w", str(args.workers),
        "-k", "gthread",
        "--threads", str(args.threads),
        "-b", f"127.0.0.1:{port}",
        app,
    ]  # fmt: skip


def run_target(name: str, args, fake_port: int, fake_pid: int, tmp_root: Path) -> dict:
    """name: "itabot" (embedded mode), "itabot-scaled" (web + `itabot worker` on PostgreSQL/Redis) or "echo"."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp_root))  # a fresh database in every round
    secret = secrets.token_hex(16)
    env = target_env(os.environ, fake_port, tmp, secret)
    port = free_port()
    log = RESULTS / f"{name}.log"
    scaled = name == "itabot-scaled"
    workers: list[subprocess.Popen] = []
    worker_logs: list[Path] = []
    if name.startswith("itabot"):
        itabot = shutil.which("itabot") or "itabot"
        if scaled:
            env.update(DATABASE_URL=args.pg_url, REDIS_URL=args.redis_url)
            reset_postgres(args.pg_url)
            redis_client(args.redis_url).flushdb()
        subprocess.run([itabot, "db", "upgrade"], env=env, cwd=tmp, check=True, capture_output=True)
        app = args.itabot_app
        if args.pythonpath:
            env["PYTHONPATH"] = args.pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    else:
        env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
        app = "echo_bot:app"
    # cwd is an empty directory so no gunicorn.conf.py is picked up by either target.
    proc = start(gunicorn_cmd(app, port, args), env=env, log=log, cwd=tmp)
    if scaled:  # the Procfile's `worker`, --worker-procs times
        for i in range(args.worker_procs):
            worker_logs.append(RESULTS / f"{name}-worker-{i}.log")
            workers.append(start([itabot, "worker"], env=env, log=worker_logs[-1], cwd=tmp))
    deliveries = Deliveries(secret, args.users)
    try:
        probe = json.dumps({"destination": deliveries.destination, "events": []}).encode()
        wait_for(
            lambda: call(port, "POST", "/callback", probe, deliveries.headers(probe), timeout=2)[0] == 200,
            60,
            f"{name} on :{port}",
            proc,
            log,
        )
        for w, wlog in zip(workers, worker_logs, strict=True):
            wait_for(lambda: redis_client(args.redis_url).scard(RQ_WORKERS_KEY) >= len(workers), 60,
                     f"{name}: `itabot worker` registered with RQ", w, wlog)

        # Warm-up: both workers import, connect and fill their pools; not measured.
        if args.warmup:
            warm = Load(args.warmup)
            send_load(port, deliveries, warm, args.concurrency)
            got = wait_replies(fake_port, set(warm.tokens), 60)
            if len(got) < args.warmup:
                print(f"  {name}: warm-up got {len(got)}/{args.warmup} replies", file=sys.stderr)
        call(fake_port, "POST", "/_reset")

        profiler = start_profiler(name, proc, args) if args.profile and name in args.profile_targets else []

        load = Load(args.events)
        web_pids, fake_pids = tree(proc.pid), [fake_pid]
        worker_trees = [tree(w.pid) for w in workers]  # `itabot worker`, and RQ's scheduler child of one of them
        server_pids = web_pids + [p for t in worker_trees for p in t]
        per0 = {p: proc_cpu([p]) for p in server_pids}
        cpu0 = (proc_cpu(server_pids), proc_cpu(fake_pids), time.process_time())
        if scaled:  # PostgreSQL and Redis do work that SQLite does inside the web process
            pg0 = {p: proc_cpu([p]) for p in pg_backends(args.pg_url)}
            redis0 = redis_cpu(args.redis_url)
        t_start = time.time()
        send_load(port, deliveries, load, args.concurrency, args.rate)
        t_sent = time.time()
        got = wait_replies(fake_port, set(load.tokens), args.reply_timeout)
        t_end = time.time()
        cpu1 = (proc_cpu(server_pids), proc_cpu(fake_pids), time.process_time())
        def cores(pids: list[int]) -> list[float]:
            return [round((proc_cpu([p]) - per0[p]) / (t_end - t_start), 2) for p in pids]

        per_pid = cores(web_pids)
        per_worker = [cores(t) for t in worker_trees]
        backing = {}
        if scaled:
            pg_cpu = sum(proc_cpu([p]) - pg0.get(p, 0.0) for p in pg_backends(args.pg_url))
            redis_s = redis_cpu(args.redis_url) - redis0
            backing = {
                "postgres_cpu_ms_per_event": round(pg_cpu * 1000 / args.events, 2),
                "redis_cpu_ms_per_event": round(redis_s * 1000 / args.events, 2),
                "postgres_cores": round(pg_cpu / (t_end - t_start), 2),
                "redis_cores": round(redis_s / (t_end - t_start), 2),
                "backing_cpu_ms_per_event": round((pg_cpu + redis_s) * 1000 / args.events, 2),
            }
        for p in profiler:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop(p)
        extra = {}
        if name.startswith("itabot"):
            try:
                extra["healthz"] = json.loads(call(port, "GET", "/healthz")[1])
            except Exception as exc:  # the numbers are still worth reporting
                extra["healthz"] = f"error: {exc}"
        if scaled:
            extra["web_processes"] = args.workers
            extra["worker_processes"] = len(workers)
            extra["database_at_end"] = pg_event_counts(args.pg_url)
    finally:
        for w in workers:
            stop(w)
        stop(proc)
        if scaled:
            with contextlib.suppress(Exception):
                redis_client(args.redis_url).flushdb()

    first_send = min(load.sent_at)
    arrivals = [got[t][0] for t in load.tokens if t in got]
    reply_ms = [(got[t][0] - s) * 1000 for t, s in zip(load.tokens, load.sent_at, strict=True) if t in got]
    last_reply = max(arrivals) if arrivals else float("nan")
    levels: dict[str, int] = {}
    for path in (log, *worker_logs):
        for line in path.read_text(errors="replace").splitlines():
            try:
                lvl = json.loads(line).get("level", "?")
            except (ValueError, AttributeError):
                lvl = "non-json"
            levels[lvl] = levels.get(lvl, 0) + 1
    return {
        "target": name,
        "events": args.events,
        "concurrency": args.concurrency,
        "rate": args.rate or "closed loop",
        "delivered_per_s": round(len(arrivals) / (last_reply - first_send), 1) if arrivals else 0.0,
        "ingest_per_s": round(args.events / (max(load.answered_at) - first_send), 1),
        "webhook_p50_ms": round(pct(load.answer_ms, 50), 2),
        "webhook_p99_ms": round(pct(load.answer_ms, 99), 2),
        "webhook_max_ms": round(max(load.answer_ms), 2),
        "reply_p50_ms": round(pct(reply_ms, 50), 1) if reply_ms else None,
        "reply_p99_ms": round(pct(reply_ms, 99), 1) if reply_ms else None,
        "non_200": sum(1 for s in load.status if s != 200),
        "missing_replies": args.events - len(arrivals),
        "messages_per_reply": round(sum(got[t][1] for t in got) / len(got), 2) if got else 0,
        "send_phase_s": round(t_sent - t_start, 2),
        # CPU used from the first send to the last reply: per event (server) and in cores.
        "server_cpu_ms_per_event": round((cpu1[0] - cpu0[0]) * 1000 / args.events, 2),
        "cpu_cores_used": {
            "server": round((cpu1[0] - cpu0[0]) / (t_end - t_start), 2),
            "fake": round((cpu1[1] - cpu0[1]) / (t_end - t_start), 2),
            "loadgen": round((cpu1[2] - cpu0[2]) / (t_end - t_start), 2),
            "server_master_then_workers": per_pid,
            **({"itabot_worker_then_children": per_worker} if per_worker else {}),
        },
        "total_s": round((last_reply if arrivals else time.time()) - first_send, 2),
        # The queue left when the load stops: last webhook answer -> last reply.
        "backlog_s": round(max(0.0, last_reply - max(load.answered_at)), 2) if arrivals else None,
        **backing,
        "log_lines": levels,
        **extra,
    }


# -- profiling (optional) -------------------------------------------------------------------


def start_profiler(name: str, proc: subprocess.Popen, args) -> list[subprocess.Popen]:
    """py-spy record each gunicorn worker, and itabot's processing process, for --profile seconds (raw stacks)."""
    pyspy = shutil.which("py-spy")
    if not pyspy:
        print("  py-spy not installed (pip install py-spy); not profiling", file=sys.stderr)
        return []
    out = [str(pid) for pid in tree(proc.pid)[1:]]
    profs = []
    for pid in out:
        dest = RESULTS / f"profile-{name}-{pid}.txt"
        cmd = [pyspy, "record", "-p", pid, "-d", str(args.profile), "-r", str(args.profile_rate), "-f", "raw"]
        cmd += ["-o", str(dest)]
        cmd += args.profile_args.split()
        profs.append(start(cmd, env=dict(os.environ), log=RESULTS / f"profile-{name}-{pid}.log", cwd=RESULTS))
    time.sleep(0.5)
    return profs


# -- fake capacity --------------------------------------------------------------------------


def fake_capacity(fake_port: int, concurrency: int, seconds: float = 2.0) -> float:
    """Replies/s the fake takes from C keep-alive clients (a lower bound: the client is Python)."""
    stop_at = time.time() + seconds
    counts = [0] * concurrency

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", fake_port, timeout=10)
        body = json.dumps({"replyToken": "cap" + "0" * 29, "messages": [{"type": "text", "text": "x"}]}).encode()
        hdrs = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
        while time.time() < stop_at:
            conn.request("POST", "/v2/bot/message/reply", body=body, headers=hdrs)
            r = conn.getresponse()
            r.read()
            counts[k] += 1
        conn.close()

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = sum(counts) / (time.time() - t0)
    call(fake_port, "POST", "/_reset")
    return round(rate, 0)


# -- report ---------------------------------------------------------------------------------

COLUMNS = [
    ("target", "target", "{}"),
    ("delivered/s", "delivered_per_s", "{:.1f}"),
    ("ingest/s", "ingest_per_s", "{:.1f}"),
    ("webhook p50 ms", "webhook_p50_ms", "{:.1f}"),
    ("webhook p99 ms", "webhook_p99_ms", "{:.1f}"),
    ("reply p50 ms", "reply_p50_ms", "{:.0f}"),
    ("reply p99 ms", "reply_p99_ms", "{:.0f}"),
    ("non-200", "non_200", "{}"),
    ("missing", "missing_replies", "{}"),
    ("msgs/reply", "messages_per_reply", "{}"),
    ("all replied s", "total_s", "{:.1f}"),
    ("backlog s", "backlog_s", "{:.1f}"),
    ("server CPU ms/event", "server_cpu_ms_per_event", "{:.2f}"),
    ("PG+Redis CPU ms/event", "backing_cpu_ms_per_event", "{:.2f}"),
]


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(c[0] for c in COLUMNS) + " |"
    sep = "|" + "|".join("-" * (len(c[0]) + 2) for c in COLUMNS) + "|"
    lines = [head, sep]
    for r in rows:
        cells = []
        for _, key, fmt in COLUMNS:
            v = r.get(key)
            cells.append("-" if v is None else fmt.format(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=3000, help="webhook deliveries per target (default 3000)")
    ap.add_argument("--concurrency", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    ap.add_argument("--target", choices=["itabot", "echo", "both"], default="both")
    ap.add_argument("--mode", choices=["embedded", "scaled", "both"], default="embedded",
                    help="how itabot runs: embedded (SQLite, default), scaled (PostgreSQL + Redis + "
                    "`itabot worker` processes; target itabot-scaled) or both, side by side")
    ap.add_argument("--worker-procs", type=int, default=2, help="scaled mode: `itabot worker` processes (default 2)")
    ap.add_argument("--pg-url", default=DEFAULT_PG_URL,
                    help=f"scaled mode: the bench's own database, created if missing and emptied (default {DEFAULT_PG_URL})")
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                    help=f"scaled mode: the bench's own Redis database, flushed (default {DEFAULT_REDIS_URL})")
    ap.add_argument("--rate", type=float, default=0, help="open loop: deliveries/s in total (default 0: closed loop)")
    ap.add_argument("--users", type=int, default=200, help="distinct LINE users (default 200)")
    ap.add_argument("--warmup", type=int, default=200, help="unmeasured deliveries first (default 200)")
    ap.add_argument("--reply-timeout", type=float, default=60.0, help="seconds to wait for missing replies")
    ap.add_argument("--line-latency-ms", type=float, default=0.0,
                    help="the fake LINE API waits this long before answering a reply (default 0)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--itabot-app", default="bot.app:create_app()", help="gunicorn app for itabot (A/B experiments)")
    ap.add_argument("--pythonpath", default="", help="prepended to PYTHONPATH for itabot (with --itabot-app)")
    ap.add_argument("--profile", type=int, default=0, metavar="SECONDS", help="py-spy each worker this long")
    ap.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s (default 100)")
    ap.add_argument("--profile-targets", default="itabot", help="comma-separated targets to profile")
    ap.add_argument("--profile-args", default="", help='extra py-spy record flags, e.g. "--gil" or "--native"')
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the targets this many times, every other round in the opposite order; the ratio "
                         "reported is the median of the rounds' ratios (default 1)")
    ap.add_argument("--output", type=Path, default=None,
                    help="default results/latest.json; with --mode scaled or both, results/scaled.json")
    args = ap.parse_args()
    args.profile_targets = args.profile_targets.split(",")
    if args.output is None:
        args.output = RESULTS / ("latest.json" if args.mode == "embedded" else "scaled.json")
    itabots = {"embedded": ["itabot"], "scaled": ["itabot-scaled"], "both": ["itabot", "itabot-scaled"]}[args.mode]
    if args.mode != "embedded" and args.target != "echo":
        check_scaled_urls(args.pg_url, args.redis_url)

    RESULTS.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    targets = {"both": [*itabots, "echo"], "itabot": itabots, "echo": ["echo"]}[args.target]
    tmp_root = Path(tempfile.mkdtemp(prefix="itabot-bench-"))
    rows: list[dict] = []
    try:
        fake_port = free_port()
        fake_log = RESULTS / "fake_line.log"
        fake = start([sys.executable, str(HERE / "fake_line.py"), "--port", str(fake_port),
                      "--latency-ms", str(args.line_latency_ms)], env=dict(os.environ),
                     log=fake_log, cwd=tmp_root)  # fmt: skip
        wait_for(lambda: call(fake_port, "GET", "/_ping", timeout=2)[0] == 200, 30, "fake LINE API", fake, fake_log)
        cap = fake_capacity(fake_port, args.concurrency)
        print(f"fake LINE API on :{fake_port}: {cap:.0f} replies/s capacity (Python client-bound lower bound)")
        rounds: list[list[dict]] = []
        for r in range(args.rounds):
            # Every other round in the opposite order, so a machine that slows down or speeds up during the
            # bench favours neither target.
            this: list[dict] = []
            for name in targets if r % 2 == 0 else list(reversed(targets)):
                print(f"running {name}: {args.events} events, concurrency {args.concurrency}"
                      + (f", round {r + 1} of {args.rounds}" if args.rounds > 1 else "") + " ...", flush=True)
                this.append(run_target(name, args, fake_port, fake.pid, tmp_root))
                this[-1]["round"] = r + 1
                print(table(this[-1:]).splitlines()[-1], flush=True)
            rounds.append(this)
            rows.extend(this)
        stop(fake)
    finally:
        stop_all()
        shutil.rmtree(tmp_root, ignore_errors=True)

    def ratio_of(rnd: list[dict], a: str, b: str) -> float | None:
        by = {r["target"]: r for r in rnd}
        if a in by and b in by and by[b]["delivered_per_s"]:
            return round(by[a]["delivered_per_s"] / by[b]["delivered_per_s"], 2)
        return None

    pairs = {"itabot/echo": ("itabot", "echo"), "itabot-scaled/echo": ("itabot-scaled", "echo"),
             "itabot-scaled/itabot": ("itabot-scaled", "itabot")}
    per_round = {k: [x for rnd in rounds if (x := ratio_of(rnd, *ab)) is not None] for k, ab in pairs.items()}
    per_round = {k: v for k, v in per_round.items() if v}
    # One round: its ratio. Several: the median of the rounds' ratios (the machine's noise moves single runs).
    ratios = {k: round(statistics.median(v), 2) for k, v in per_round.items()}
    ratio = ratios.get("itabot/echo")
    result = {
        "bench": "webhook",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python", "bench/webhook/run.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform},
        "gunicorn": {"workers": args.workers, "worker_class": "gthread", "threads": args.threads},
        "mode": args.mode,
        **({"scaled": {"web_processes": args.workers, "worker_processes": args.worker_procs,
                       "database": _without_password(args.pg_url), "redis": _without_password(args.redis_url)}}
           if args.mode != "embedded" else {}),
        "fake_capacity_per_s": cap,
        "rounds": args.rounds,
        "throughput_ratio_itabot_over_echo": ratio,
        "throughput_ratios": ratios,
        **({"throughput_ratios_per_round": per_round} if args.rounds > 1 else {}),
        "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(rows))
    if ratios:
        print()
    for k, v in ratios.items():
        if args.rounds > 1:
            print(f"throughput {k}: median {v:.2f}x over {args.rounds} rounds "
                  f"({', '.join(f'{x:.2f}' for x in per_round[k])})")
        else:
            print(f"throughput {k}: {v:.2f}x")
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
