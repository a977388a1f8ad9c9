"""An ``itabot worker`` killed with SIGKILL in the middle of a reminder fan-out (scaled mode:
PostgreSQL + Redis/RQ); after a restart every recipient has received exactly one message.

How the fault is injected: the fake LINE holds the third multicast of the fan-out (2,600
followers: six chunks) until the test says; once it is in flight the worker's whole process
group gets SIGKILL. The held request is then either delivered (LINE had it before the
connection died) or lost (it never reached LINE). The chunk's lease (five minutes) is moved
into the past — the one stand-in for time passing — and a new worker, finding the half-sent
reminder through its own scheduler, sends the rest: the interrupted chunk again with the retry
key it already had (a 409 at LINE if it was delivered), the untouched ones once.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models import Reminder, ReminderChunk, utcnow
from surveys import reminders

from .conftest import MULTICAST, due_reminder, logs, process_env, services_for, survey_multicasts, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

def test_the_fake_line_dedupes_retry_keys_as_line_does(fake):
    """The premise of the fan-out test: a second request with an accepted key delivers nothing."""
    import json
    import urllib.request

    def multicast(key: str) -> int:
        req = urllib.request.Request(fake.url + MULTICAST, method="POST", data=json.dumps(
            {"to": ["U1", "U2"], "messages": [{"type": "text", "text": "x"}]}).encode(), headers={
            "Authorization": "Bearer test-token", "Content-Type": "application/json", "X-Line-Retry-Key": key})
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert [multicast("k-1"), multicast("k-1"), multicast("k-2")] == [200, 409, 200]
    assert [d.retry_key for d in fake.delivered] == ["k-1", "k-2"]


@pytest.mark.parametrize("in_flight", ["delivered", "lost"])
def test_worker_killed_mid_fan_out_every_recipient_gets_exactly_one(in_flight, pg_url, redis_url, fake, procs,
                                                                      tmp_path):
    import redis
    from rq import Queue

    env = process_env(tmp_path, pg_url, fake.url, REDIS_URL=redis_url)
    services = services_for(env)
    try:
        rid, everyone = due_reminder(services, 2600)  # chunks of 500, 500, 500, 500, 500, 100
        fake.hold_at = (MULTICAST, 3)
        fake.deliver_held = in_flight == "delivered"
        # What a worker's scheduler does each minute; queued now so the first worker starts at once.
        Queue("itabot", connection=redis.Redis.from_url(redis_url)).enqueue(
            "bot.jobs.send_reminder", rid, job_timeout=3600)
        first = procs("worker-1", ["worker"], env)
        assert fake.held.wait(60), "the third chunk never went out\n" + logs(procs)
        assert [c.status for c in survey_multicasts(fake)] == [200, 200]
        first.kill()  # SIGKILL to the worker and its RQ scheduler, the third chunk in flight
        assert first.popen.returncode == -9
        fake.release.set()
        wait_until(lambda: len(survey_multicasts(fake)) == 3, 10, "the held request to finish")

        with services.db.Session() as s:
            chunks = s.execute(select(ReminderChunk.seq, ReminderChunk.status).where(ReminderChunk.reminder_id == rid)
                               .order_by(ReminderChunk.seq)).all()
            assert [st for _, st in chunks] == ["sent", "sent", "sending", "pending", "pending", "pending"]
            assert s.scalar(select(Reminder.status).where(Reminder.id == rid)) == "sending"
        with services.db.session() as s:  # the dead worker's claim on the chunk runs out (5 minutes)
            s.execute(update(ReminderChunk).where(ReminderChunk.status == "sending")
                      .values(claimed_at=utcnow() - reminders.CHUNK_LEASE - timedelta(seconds=1)))

        procs("worker-2", ["worker"], env)  # finds the half-sent reminder by itself

        def status() -> str | None:
            with services.db.Session() as s:
                return s.scalar(select(Reminder.status).where(Reminder.id == rid))

        wait_until(lambda: status() == "sent", 60, "the restarted worker to finish the reminder",
                   interval=0.2, diagnostics=lambda: logs(procs))
        with services.db.Session() as s:
            assert set(s.scalars(select(ReminderChunk.status).where(ReminderChunk.reminder_id == rid))) == {"sent"}
    finally:
        services.close()

    calls = survey_multicasts(fake)
    held = calls[2]
    again = [c for c in calls[3:] if c.retry_key == held.retry_key]
    assert len(again) == 1, [(c.status, c.retry_key) for c in calls]  # the interrupted chunk, once more...
    assert again[0].json["to"] == held.json["to"]  # ...with the same recipients and the same key
    if in_flight == "delivered":
        assert (held.status, again[0].status) == (200, 409)  # LINE had it: the re-send delivered nothing
    else:
        assert (held.status, again[0].status) == (502, 200)
    keys = Counter(c.retry_key for c in calls)
    assert len(calls) == 7 and len(keys) == 6 and keys.most_common(1)[0] == (held.retry_key, 2)
    received = [u for d in fake.delivered_by(MULTICAST) if "/s/" in d.texts[0] for u in d.to]
    assert len(received) == len(everyone) and set(received) == set(everyone)  # each exactly once
