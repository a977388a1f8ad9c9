"""PostgreSQL restarted while deliveries arrive: what the webhook could not store it answered
5xx (never 200 for an event it did not store); once LINE redelivers those, every message and
every complaint is processed exactly once, and the processes recovered by themselves.

Scaled mode, the way PostgreSQL is deployed: a real web process (``itabot serve``, gunicorn,
``REDIS_URL`` set, so it only stores and queues) and a real ``itabot worker``. (Embedded mode
keeps its database on SQLite; embedded on PostgreSQL is no documented configuration.)

How the fault is injected: while a stream of signed deliveries arrives — "เมนู" from several
people, and several people each walking through a whole anonymous complaint report (each step
typed once the bot has answered the previous one, as a person does) — the test restarts the
local cluster with ``pg_ctlcluster``, timed at the worst moment for the worker: the fake LINE
holds a reply, PostgreSQL is stopped (fast shutdown: every connection is cut), the reply is then
delivered while the database is down — so the worker cannot record that it was sent — and
PostgreSQL is started again. Then the test redelivers every event that got no 200, as LINE does
(same ``webhookEventId``, ``deliveryContext.isRedelivery`` true), and some that did get a 200
(LINE redelivers on its own timeouts too), lets the reports finish, and counts. (That held reply
used to come back as a second message, pushed once the outbox row's lease ran out: see
``Processor._forget`` in ``bot/worker.py``.)

It needs root and Debian's ``pg_ctlcluster`` for the cluster behind TEST_DATABASE_URL (CI has
both) and skips otherwise. The restart cuts every other client of that cluster too: run the
fault tests serially, not beside other PostgreSQL tests (CI runs everything serially).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections import Counter

import conftest as root
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from models import Complaint, OutboxMessage, WebhookEvent
from models.event import DONE

from .conftest import LineClient, free_port, logs, process_env, services_for, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

MENU = "เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"
REPLY = "/v2/bot/message/reply"
REPORT = ["แจ้งเบาะแส", "1", "1", "เจ้าหน้าที่เรียกเงิน 500 บาทเพื่อให้ได้คิวก่อน", "เสร็จแล้ว", "ไม่แน่ใจ", "ไม่ทราบ",
          "ไม่มี", "1", "ยืนยัน"]  # corruption, the first category, what happened, when, where, evidence, anonymous
CODE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b")
THINK = 0.25  # seconds a person takes to type the next step once the bot has answered


def _cluster(url: str) -> tuple[str, str] | None:
    """(version, name) of the local Debian cluster serving ``url``, if this test may restart it."""
    if os.geteuid() != 0 or not (shutil.which("pg_ctlcluster") and shutil.which("pg_lsclusters")):
        return None
    u = make_url(url)
    if (u.host or "localhost") not in ("127.0.0.1", "localhost", "::1"):
        return None
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        ver, name, port, status, *_ = line.split()
        if int(port) == (u.port or 5432) and status.startswith("online"):
            return ver, name
    return None


def _ctl(cluster: tuple[str, str], action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action], check=True,
                   capture_output=True, timeout=120)


@pytest.fixture
def cluster(pg_url):
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        pytest.skip("restarts PostgreSQL under every other test running in parallel: run it without -n")
    found = _cluster(pg_url)
    if found is None:
        pytest.skip("needs root and Debian's pg_ctlcluster for the local cluster of TEST_DATABASE_URL")
    yield found
    status = subprocess.run(["pg_lsclusters", "--no-header", *found], capture_output=True, text=True).stdout
    if "online" not in status:  # whatever happened, leave PostgreSQL running
        _ctl(found, "start")


class Restart(threading.Thread):
    """Stops PostgreSQL while the worker waits on LINE for a reply, lets that reply through while
    the database is down, then starts PostgreSQL again."""

    def __init__(self, cluster: tuple[str, str], fake) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.fake = fake
        self.began = self.ended = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        self.began = time.monotonic()
        try:
            self.fake.hold_at = (REPLY, 1)  # the next reply waits at LINE...
            if not self.fake.held.wait(20):
                raise AssertionError("no reply went out")
            _ctl(self.cluster, "stop")  # ...while PostgreSQL goes down (fast: connections cut)
            answered = len(self.fake.calls(REPLY, ok_only=False))
            self.fake.release.set()  # LINE delivers it; the worker must now record that, with no database
            wait_until(lambda: len(self.fake.calls(REPLY, ok_only=False)) > answered, 10, "the held reply")
            time.sleep(0.5)
            _ctl(self.cluster, "start")
        except BaseException as exc:  # reported by the test
            self.error = exc
        self.ended = time.monotonic()


def test_postgres_restarted_while_deliveries_arrive(cluster, pg_url, redis_url, fake, procs, tmp_path):
    port = free_port()
    env = process_env(tmp_path, pg_url, fake.url, REDIS_URL=redis_url, WEB_CONCURRENCY="1")
    procs("web", ["serve", "--port", str(port)], env)
    procs("worker", ["worker"], env)
    line = LineClient(f"http://127.0.0.1:{port}", fake)
    wait_until(line.healthy, 60, "the web process to start", diagnostics=lambda: logs(procs))
    services = services_for(env)

    posted: list[tuple[dict, int, float]] = []  # every delivery: (event, HTTP status, when)

    def post(ev: dict) -> int:
        status = line.post([ev])
        posted.append((ev, status, time.monotonic()))
        return status

    def replied(ev: dict) -> bool:
        return any(d.reply_token == ev["replyToken"] for d in fake.delivered)

    reporters = [root.new_user() for _ in range(4)]
    chatters = [root.new_user() for _ in range(6)]
    steps = {u: list(REPORT) for u in reporters}
    pending: dict[str, dict | None] = dict.fromkeys(reporters)  # a step the bot has not answered yet
    t0 = time.monotonic()
    ready_at = {u: t0 + i * 0.3 for i, u in enumerate(reporters)}

    def reporters_turn() -> None:
        """Each reporter types the next step a moment after the bot answered the previous one;
        a step that got no answer waits (for LINE's redelivery, in the end)."""
        now = time.monotonic()
        for u in reporters:
            if pending[u] is not None:
                if not replied(pending[u]):
                    continue
                pending[u], ready_at[u] = None, now + THINK
            if steps[u] and now >= ready_at[u]:
                pending[u] = line.text(u, steps[u].pop(0))
                post(pending[u])

    try:
        # Deliveries arrive, and PostgreSQL restarts in the middle of them.
        restart = Restart(cluster, fake)
        n = 0
        while not (restart.ended and time.monotonic() - restart.ended > 3.0):
            if restart.began == 0 and time.monotonic() - t0 > 1.0:
                restart.start()
                wait_until(lambda: restart.began, 5, "the restart to begin", interval=0.01)
            assert time.monotonic() - t0 < 90, "the restart took too long"
            reporters_turn()
            post(line.text(chatters[n % len(chatters)], "เมนู"))
            n += 1
            time.sleep(0.02)
        assert restart.error is None, restart.error

        # What was not stored was not acknowledged.
        with services.db.Session() as s:
            stored = set(s.scalars(select(WebhookEvent.webhook_event_id)))
        failed = [(ev, status) for ev, status, _ in posted if status != 200]
        assert failed, "no delivery met the restart: nothing was tested"
        assert all(500 <= status < 600 for _, status in failed), Counter(status for _, status in failed)
        acknowledged = [ev for ev, status, _ in posted if status == 200]
        assert not [ev for ev in acknowledged if ev["webhookEventId"] not in stored], "200 for an unstored event"
        # The web process recovered by itself: everything after the restart was stored.
        late = [status for _, status, at in posted if at > restart.ended + 1.0]
        assert late and set(late) == {200}, Counter(late)

        # LINE redelivers what got no 200 (had some of it been stored after all, it would be ignored
        # now), and — its own timeouts — some of what did get one, around the outage.
        for ev, _ in failed:
            assert line.redeliver([ev]) == 200
        first = next(i for i, (_, status, _) in enumerate(posted) if status != 200)
        last = max(i for i, (_, status, _) in enumerate(posted) if status != 200)
        again = [ev for ev, status, _ in posted[max(0, first - 5):first] + posted[last + 1:last + 6] if status == 200]
        assert again and line.redeliver(again) == 200
        wait_until(lambda: (reporters_turn(), all(not steps[u] and pending[u] is None for u in reporters))[1],
                   90, "the reports to be finished", interval=0.05, diagnostics=lambda: logs(procs))
        events = [ev for ev, _, _ in posted]

        def settled() -> bool:
            if not all(replied(ev) for ev in events):
                return False
            with services.db.Session() as s:
                return (s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
                        and set(s.scalars(select(WebhookEvent.status).distinct())) == {DONE})

        wait_until(settled, 90, "every event to be answered", interval=0.2, diagnostics=lambda: logs(procs))
        with services.db.Session() as s:
            assert s.scalar(select(func.count()).select_from(WebhookEvent)) == len({e["webhookEventId"]
                                                                                    for e in events})
            assert s.scalar(select(func.count()).select_from(Complaint)) == len(reporters)
    finally:
        services.close()

    # Exactly once: one reply per event, nothing pushed in its place, one receipt per report.
    replies = Counter(d.reply_token for d in fake.delivered if d.path.endswith("/reply"))
    assert sorted(replies.values()) == [1] * len(events) and set(replies) == {ev["replyToken"] for ev in events}
    assert fake.delivered_by("/push") == []
    for u in chatters:
        assert set(fake.delivered_to(u)) == {MENU}
    for u in reporters:
        codes = [c for t in fake.delivered_to(u) for c in CODE.findall(t)]
        assert len(set(codes)) == 1, codes
