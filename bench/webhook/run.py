"""Webhook bench: itabot against line-bot-sdk's echo bot, same gunicorn, same load.

    python bench/webhook/run.py [--events N] [--concurrency C] [--target itabot|echo|both]

For each target: start it under gunicorn (2 workers, gthread, 8 threads), wait until it
answers, warm it up, then send N signed webhook deliveries (one text "hello" event each,
unique webhookEventId and replyToken, ~200 distinct users) over C concurrent keep-alive
connections, and wait until the fake LINE API (``fake_line.py``) has received a reply for
every event. Reported per target:

* delivered/s  - events whose reply arrived / (last reply arrival - first send)
* ingest/s     - webhook deliveries answered / (last answer - first send)
* webhook p50/p99 - time to LINE's 200 for the delivery (ms)
* reply p50/p99   - send of the delivery -> its reply arriving at the fake (ms)
* non-200, missing replies

Everything runs on 127.0.0.1 and every process started here is killed at the end.
Results: bench/webhook/results/latest.json; server logs: bench/webhook/results/<target>.log.
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
    """A process and its children (gunicorn's master and workers)."""
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *map(int, kids)]


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
    tmp = tmp_root / name
    tmp.mkdir()
    secret = secrets.token_hex(16)
    env = target_env(os.environ, fake_port, tmp, secret)
    port = free_port()
    log = RESULTS / f"{name}.log"
    if name == "itabot":
        itabot = shutil.which("itabot") or "itabot"
        subprocess.run([itabot, "db", "upgrade"], env=env, cwd=tmp, check=True, capture_output=True)
        app = args.itabot_app
        if args.pythonpath:
            env["PYTHONPATH"] = args.pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    else:
        env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
        app = "echo_bot:app"
    # cwd is an empty directory so no gunicorn.conf.py is picked up by either target.
    proc = start(gunicorn_cmd(app, port, args), env=env, log=log, cwd=tmp)
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
        server_pids, fake_pids = tree(proc.pid), [fake_pid]
        per0 = {p: proc_cpu([p]) for p in server_pids}
        cpu0 = (proc_cpu(server_pids), proc_cpu(fake_pids), time.process_time())
        t_start = time.time()
        send_load(port, deliveries, load, args.concurrency, args.rate)
        t_sent = time.time()
        got = wait_replies(fake_port, set(load.tokens), args.reply_timeout)
        t_end = time.time()
        cpu1 = (proc_cpu(server_pids), proc_cpu(fake_pids), time.process_time())
        per_pid = [round((proc_cpu([p]) - per0[p]) / (t_end - t_start), 2) for p in server_pids]
        for p in profiler:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop(p)
        extra = {}
        if name == "itabot":
            try:
                extra["healthz"] = json.loads(call(port, "GET", "/healthz")[1])
            except Exception as exc:  # the numbers are still worth reporting
                extra["healthz"] = f"error: {exc}"
    finally:
        stop(proc)

    first_send = min(load.sent_at)
    arrivals = [got[t][0] for t in load.tokens if t in got]
    reply_ms = [(got[t][0] - s) * 1000 for t, s in zip(load.tokens, load.sent_at, strict=True) if t in got]
    last_reply = max(arrivals) if arrivals else float("nan")
    levels: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
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
        },
        "total_s": round((last_reply if arrivals else time.time()) - first_send, 2),
        "log_lines": levels,
        **extra,
    }


# -- profiling (optional) -------------------------------------------------------------------


def start_profiler(name: str, proc: subprocess.Popen, args) -> list[subprocess.Popen]:
    """py-spy record each gunicorn worker for --profile seconds (raw collapsed stacks)."""
    pyspy = shutil.which("py-spy")
    if not pyspy:
        print("  py-spy not installed (pip install py-spy); not profiling", file=sys.stderr)
        return []
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
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
    ("server CPU ms/event", "server_cpu_ms_per_event", "{:.2f}"),
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
    ap.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = ap.parse_args()
    args.profile_targets = args.profile_targets.split(",")

    RESULTS.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    targets = ["itabot", "echo"] if args.target == "both" else [args.target]
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
        for name in targets:
            print(f"running {name}: {args.events} events, concurrency {args.concurrency} ...", flush=True)
            rows.append(run_target(name, args, fake_port, fake.pid, tmp_root))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
        stop(fake)
    finally:
        stop_all()
        shutil.rmtree(tmp_root, ignore_errors=True)

    ratio = None
    by = {r["target"]: r for r in rows}
    if "itabot" in by and "echo" in by and by["echo"]["delivered_per_s"]:
        ratio = round(by["itabot"]["delivered_per_s"] / by["echo"]["delivered_per_s"], 2)
    result = {
        "bench": "webhook",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python", "bench/webhook/run.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform},
        "gunicorn": {"workers": args.workers, "worker_class": "gthread", "threads": args.threads},
        "fake_capacity_per_s": cap,
        "throughput_ratio_itabot_over_echo": ratio,
        "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(rows))
    if ratio is not None:
        print(f"\nthroughput itabot/echo: {ratio:.2f}x")
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
