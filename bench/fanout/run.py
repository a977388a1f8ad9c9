"""Fan-out bench: itabot's reminder dispatch (multicast, ≤500 IDs a call) vs a naive push loop.

    python bench/fanout/run.py [--recipients 100000] [--naive-recipients 5000]

Starts bench/fanout/fake_line.py on 127.0.0.1, builds a fresh SQLite database with N following
users and one EIT campaign, schedules its reminders and times ``reminders.run_due`` at the
opening reminder's send time (default PACE_SECONDS). A second fresh database repeats the run
under tracemalloc for the Python-heap peak (tracemalloc slows Python down, so it is not timed).
Then line-bot-sdk's ``MessagingApi.push_message`` is called once per recipient for
--naive-recipients users and its time is extrapolated linearly to N.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
import uuid
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from sqlalchemy import insert

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 1, 1, 10, 0, tzinfo=ZoneInfo("Asia/Bangkok"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, method: str = "GET") -> dict:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_services(tmp: Path, fake: str, n: int):
    import bot.config
    import bot.services
    from models import LineUser, SurveyCampaign
    from models.db import Database
    from surveys import reminders
    from surveys.campaigns import add_campaign

    env = {
        "ITABOT_INSTANCE_PATH": str(tmp / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp / 'x.sqlite3'}",
        "LINE_CHANNEL_SECRET": "0123456789abcdef0123456789abcdef",
        "LINE_CHANNEL_ACCESS_TOKEN": "bench",
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-for-itabot",
        "ITABOT_DATA_KEY": Fernet.generate_key().decode(),
        "LINE_API_BASE_URL": fake,
        "LINE_DATA_API_BASE_URL": fake,
        "PUBLIC_BASE_URL": "https://bench.example",
    }
    Database(env["DATABASE_URL"]).upgrade()
    services = bot.services.Services(bot.config.load_settings(env))
    services.ensure_default_office()
    with services.db.session() as s:
        cid = add_campaign(s, 1, "EIT", "https://itas.nacc.go.th/x", date(2026, 1, 1), date(2026, 6, 30),
                           today=date(2026, 1, 1)).id
    with services.db.session() as s:
        rows = [dict(office_id=1, line_user_id="U" + uuid.uuid4().hex, language="th", following=True,
                     language_chosen=False, reminders_off=False) for _ in range(n)]
        for i in range(0, n, 10_000):
            s.execute(insert(LineUser), rows[i:i + 10_000])
    with services.db.session() as s:
        reminders.schedule(s, s.get(SurveyCampaign, cid))
    return services


def itabot_run(fake: str, n: int, trace: bool) -> dict:
    from surveys import reminders

    with tempfile.TemporaryDirectory(prefix="fanout-") as d:
        services = make_services(Path(d), fake, n)
        get(fake + "/_reset", "POST")
        rss_before = maxrss_mb()
        if trace:
            tracemalloc.start()
        t0 = time.perf_counter()
        outcomes = reminders.run_due(services, NOW)
        wall = time.perf_counter() - t0
        peak = None
        if trace:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        stats = get(fake + "/_stats")
        services.close()
    return {"wall_s": wall, "stats": stats, "outcomes": [o.__dict__ for o in outcomes],
            "maxrss_before_mb": rss_before, "maxrss_after_mb": maxrss_mb(), "tracemalloc_peak_mb": peak}


def naive_run(fake: str, m: int) -> dict:
    from linebot.v3.messaging import ApiClient, Configuration, MessagingApi, PushMessageRequest, TextMessage

    ids = ["U" + uuid.uuid4().hex for _ in range(m)]
    get(fake + "/_reset", "POST")
    text = "เปิดให้ตอบแบบวัด EIT สำหรับผู้รับบริการแล้วค่ะ\nhttps://bench.example/s/x"
    t0 = time.perf_counter()
    with ApiClient(Configuration(host=fake, access_token="bench")) as client:
        api = MessagingApi(client)
        for uid in ids:
            api.push_message(PushMessageRequest(to=uid, messages=[TextMessage(text=text)]),
                             x_line_retry_key=str(uuid.uuid4()))
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "stats": get(fake + "/_stats")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument("--naive-recipients", type=int, default=5_000)
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip the second (tracemalloc) itabot run")
    args = ap.parse_args()
    n, m = args.recipients, args.naive_recipients

    from surveys import reminders

    port = free_port()
    fake = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_line.py"), "--port", str(port)])
    try:
        for _ in range(100):
            try:
                get(fake + "/_ping")
                break
            except OSError:
                time.sleep(0.1)
        t_all = time.perf_counter()
        ita = itabot_run(fake, n, trace=False)
        traced = None if args.no_tracemalloc else itabot_run(fake, n, trace=True)
        naive = naive_run(fake, m)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    st, ns = ita["stats"], naive["stats"]
    per_call = naive["wall_s"] / m
    res = {
        "recipients": n,
        "pace_seconds": reminders.PACE_SECONDS,
        "chunk": reminders.CHUNK,
        "itabot": {
            "api_calls": st["calls"].get("multicast", 0) + st["calls"].get("push", 0),
            "expected_calls": math.ceil(n / reminders.CHUNK),
            "wall_s": round(ita["wall_s"], 3),
            "pacing_s": round(math.ceil(n / reminders.CHUNK) * reminders.PACE_SECONDS, 3),
            "recipients_reached": st["distinct"],
            "duplicates": st["duplicates"],
            "repeated_retry_keys": st["repeated_retry_keys"],
            "calls_without_retry_key": st["calls_without_retry_key"],
            "maxrss_before_run_due_mb": round(ita["maxrss_before_mb"], 1),
            "maxrss_after_run_due_mb": round(ita["maxrss_after_mb"], 1),
            "tracemalloc_peak_run_due_mb": traced and round(traced["tracemalloc_peak_mb"], 1),
            "tracemalloc_run_ok": traced and (traced["stats"]["distinct"] == n and traced["stats"]["duplicates"] == 0),
            "outcomes": ita["outcomes"],
        },
        "naive": {
            "measured_recipients": m,
            "api_calls_measured": ns["calls"].get("push", 0),
            "wall_s_measured": round(naive["wall_s"], 3),
            "ms_per_call": round(per_call * 1000, 3),
            "api_calls_at_n": n,
            "wall_s_extrapolated_to_n": round(per_call * n, 1),
            "recipients_reached_measured": ns["distinct"],
            "duplicates_measured": ns["duplicates"],
        },
        "bench_wall_s": round(time.perf_counter() - t_all, 1),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "measured_at": datetime.now().isoformat(timespec="seconds"),
    }
    i, v = res["itabot"], res["naive"]
    print(f"\nfan-out to N={n:,} recipients (fake LINE on 127.0.0.1, PACE_SECONDS={reminders.PACE_SECONDS})\n")
    print("| | API calls | wall s | recipients reached | duplicates | maxrss MB (before → after run_due) | tracemalloc peak MB |")
    print("|---|---|---|---|---|---|---|")
    print(f"| itabot run_due (multicast ≤{reminders.CHUNK}) | {i['api_calls']:,} (⌈N/{reminders.CHUNK}⌉ = {i['expected_calls']:,}) "
          f"| {i['wall_s']:.2f} (of which pacing {i['pacing_s']:.2f}) | {i['recipients_reached']:,} | {i['duplicates']} "
          f"| {i['maxrss_before_run_due_mb']} → {i['maxrss_after_run_due_mb']} | {i['tracemalloc_peak_run_due_mb']} |")
    print(f"| naive push loop, measured on {m:,} | {v['api_calls_measured']:,} | {v['wall_s_measured']:.2f} "
          f"({v['ms_per_call']} ms/call) | {v['recipients_reached_measured']:,} | {v['duplicates_measured']} | – | – |")
    print(f"| naive push loop, **extrapolated** to {n:,} | {n:,} | ≈{v['wall_s_extrapolated_to_n']:.0f} (linear) | – | – | – | – |")
    ok = (i["api_calls"] == i["expected_calls"] and i["duplicates"] == 0 and i["recipients_reached"] == n)
    print(f"\nchecks (calls = ⌈N/500⌉, 0 duplicates, all reached): {'OK' if ok else 'FAILED'}; whole bench {res['bench_wall_s']} s")
    out = HERE / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out.relative_to(HERE.parent.parent)}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
