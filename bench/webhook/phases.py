"""CPU per event of each phase, in one process: store (the webhook), process (batches), send, record.

    python bench/webhook/phases.py [--events N] [--users U] [--profile DIR]

No gunicorn, no threads, no contention: the same signed "hello" deliveries as run.py go through the Flask app
(test client), then ``Processor.process_batch`` in batches of 32 (one event per person at a time, as the runner
takes them), then the gateway sends the replies to the fake LINE (``fake_line.py``, started here) from one
asyncio loop, 32 in flight (as the processing process's ``AsyncSender``), then the sends are recorded, until
every event is answered. Prints CPU ms per event for each phase; ``--profile DIR`` writes a
cProfile file per phase there (slower: compare profiles with profiles, not with the plain run).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  (the bench's own helpers: ports, deliveries, environment)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR")
    args = ap.parse_args()

    port = bench.free_port()
    fake = subprocess.Popen([sys.executable, str(HERE / "fake_line.py"), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = Path(tempfile.mkdtemp(prefix="itabot-phases-"))
    try:
        secret = secrets.token_hex(16)
        env = bench.target_env(dict(os.environ), port, tmp, secret)
        os.environ.update(env)
        subprocess.run(["itabot", "db", "upgrade"], check=True, capture_output=True, env=env)
        bench.wait_for(lambda: bench.call(port, "GET", "/_ping")[0] == 200, 20, "the fake LINE")
        import logging

        from sqlalchemy import select

        from bot.app import create_app
        from models import WebhookEvent

        app = create_app(start_worker=False)
        logging.getLogger().setLevel(logging.WARNING)  # the access lines are not what is measured here
        services = app.extensions["itabot"]
        processor = services.processor
        deliveries = bench.Deliveries(secret, args.users)
        warm = 200
        bodies = [deliveries.build(i, secrets.token_hex(16)) for i in range(args.events + warm)]
        client = app.test_client()
        sends: list = []
        processor.submit_send = lambda send, done: sends.append(send)
        processor.on_sent = None

        def store(indices) -> None:
            for i in indices:
                body, headers = bodies[i]
                assert client.post("/callback", data=body, headers=headers).status_code == 200

        def process() -> None:
            with services.db.Session() as s:
                rows = s.execute(select(WebhookEvent.id, WebhookEvent.source_key)
                                 .where(WebhookEvent.status == "pending").order_by(WebhookEvent.id)).all()
            seen: set = set()
            ids = [i for i, key in rows if not (key in seen or seen.add(key))]  # one per person, as the runner
            for k in range(0, len(ids), 32):
                processor.process_batch(ids[k:k + 32])

        loop = asyncio.new_event_loop()

        def send() -> list:
            """As the processing process's AsyncSender: one event loop, 32 sends in flight."""
            out: list = []
            slots = asyncio.Semaphore(32)

            async def one(item) -> None:
                async with slots:
                    await processor.send_async(item, lambda oid, records: out.append((oid, records)))

            async def every() -> None:
                await asyncio.gather(*(one(item) for item in sends))

            loop.run_until_complete(every())
            sends.clear()
            return out

        def record(sent: list) -> None:
            for k in range(0, len(sent), 256):
                processor._forget(sent[k:k + 256])

        store(range(warm))  # warm-up: pools, caches, the matcher
        while True:
            process()
            if not sends:
                break
            record(send())

        cpu = dict.fromkeys(("store", "process", "send", "record"), 0.0)
        profiles = {k: cProfile.Profile() for k in cpu}

        def timed(name: str, fn, *a):
            prof = profiles[name] if args.profile else None
            t0 = time.process_time()
            if prof:
                prof.enable()
            result = fn(*a)
            if prof:
                prof.disable()
            cpu[name] += time.process_time() - t0
            return result

        timed("store", store, range(warm, warm + args.events))
        answered = 0
        while True:
            timed("process", process)
            if not sends:
                break
            answered += len(sends)
            timed("record", record, timed("send", send))
        assert answered == args.events, f"{answered} of {args.events} events answered"
        for name, seconds in cpu.items():
            print(f"{name:8s} {seconds / args.events * 1000:6.3f} ms CPU/event")
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name, prof in profiles.items():
                prof.dump_stats(args.profile / f"{name}.prof")
            print(f"profiles: {args.profile}/<phase>.prof")
        for gw in services.all_gateways():
            loop.run_until_complete(gw.aclose())
        loop.close()
        services.close()
    finally:
        fake.kill()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
