"""LINE's API answering 500 and 429 (with Retry-After) for a while: replies, pushes and a
multicast fan-out are all eventually delivered exactly once, every retry of a push or multicast
carries the retry key it started with, and Retry-After is honoured.

Scaled mode: the web app (in-process) stores and queues; one real ``itabot worker`` sends.
How the faults are injected (the fake LINE, per path, from the first request to that path; the
phases are laid out so that the gateway's jittered back-off cannot step over any of them):

* replies: 429 ``Retry-After: 2`` for 0.5 s, then 500 until 3.5 s — within the gateway's own retries;
* multicasts (a reminder to 1,200 followers: three chunks): the same, 429 for 0.5 s then 500 until 3.5 s;
* pushes (replies whose token had expired fall back to push): the very first push is *delivered*
  and answered 500 (LINE took it, the answer was lost), then 429 ``Retry-After: 2`` until 8 s —
  longer than the gateway's five attempts, so the send goes back to the outbox and the worker's
  sweeper sends it again later with the same key, which LINE answers 409: delivered once.
"""

from __future__ import annotations

import secrets
from collections import defaultdict

import pytest
from conftest import Bot, new_user
from sqlalchemy import func, select

from bot.app import create_app
from bot.config import load_settings
from models import OutboxMessage, Reminder, WebhookEvent
from models.event import PENDING

from .conftest import MULTICAST, due_reminder, logs, process_env, survey_multicasts, wait_until
from .faultline import Phase

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REPLY, PUSH = "/v2/bot/message/reply", "/v2/bot/message/push"
MENU = "เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"
RETRY_AFTER = 2.0


def _logical_key(record) -> str:
    """What identifies one message across its attempts: the retry key, or a reply's token."""
    return record.retry_key or (record.json or {}).get("replyToken")


def timeline(fake) -> str:
    """Every message request as seen at the fake LINE, for failure messages."""
    calls = [c for c in fake.calls("/v2/bot/message/", ok_only=False) if c.path in (REPLY, PUSH, MULTICAST)]
    t0 = calls[0].at if calls else 0
    return "\n".join(f"{c.at - t0:7.2f} {c.path.rsplit('/', 1)[1]:9} {c.status} "
                     f"{(_logical_key(c) or '')[:8]} {str((c.json or {}).get('to', ''))[:14]}" for c in calls)


def test_line_answering_500_and_429_for_a_while(pg_url, redis_url, fake, procs, tmp_path):
    env = process_env(tmp_path, pg_url, fake.url, REDIS_URL=redis_url)
    app = create_app(load_settings(env))  # the web process: stores, queues on Redis, answers 200
    services = app.extensions["itabot"]
    bot = Bot(app, fake)
    try:
        rid, followers = due_reminder(services, 1200)
        fake.outages = {
            REPLY: [Phase(0.5, 429, RETRY_AFTER), Phase(3.5, 500)],
            PUSH: [Phase(8.0, 429, RETRY_AFTER)],
            MULTICAST: [Phase(0.5, 429, RETRY_AFTER), Phase(3.5, 500)],
        }
        fake.deliver_then_fail = {PUSH: 1}
        repliers = [new_user() for _ in range(4)]
        pushed = [new_user() for _ in range(3)]
        for u in repliers:
            bot.text(u, "เมนู", drain=False)
        for u in pushed:  # processed late: LINE says the reply token is no longer valid
            ev = bot.event(u, "message", message={"type": "text", "id": str(secrets.randbelow(10**17)),
                                                  "text": "เมนู", "quoteToken": "q"})
            fake.expired_tokens.add(ev["replyToken"])
            assert bot.deliver([ev]).status_code == 200
        services.queue.enqueue("bot.jobs.send_reminder", rid, job_timeout=3600)  # as the scheduler does
        procs("worker", ["worker"], env)

        def finished() -> bool:
            if not all(fake.delivered_to(u) for u in repliers + pushed):
                return False
            with services.db.Session() as s:
                return (s.scalar(select(Reminder.status).where(Reminder.id == rid)) == "sent"
                        and s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
                        and s.scalar(select(func.count()).select_from(WebhookEvent)
                                     .where(WebhookEvent.status == PENDING)) == 0)

        wait_until(finished, 90, "every message to be delivered", interval=0.2, diagnostics=lambda: logs(procs))
    finally:
        services.close()

    # Delivered exactly once: what people saw.
    for u in repliers + pushed:
        assert [t for t in fake.delivered_to(u) if "/s/" not in t] == [MENU], u
    received = [u for d in fake.delivered_by(MULTICAST) if "/s/" in d.texts[0] for u in d.to]
    audience = set(followers) | set(repliers) | set(pushed)  # who wrote is a follower too by then
    assert len(received) == len(audience) and set(received) == audience

    # The faults were met on every path, and the push LINE took but answered 500 came back as a 409.
    for path in (REPLY, PUSH):
        statuses = {c.status for c in fake.calls(path, ok_only=False)}
        assert {500, 429} <= statuses, f"{path}: {statuses}\n{timeline(fake)}"
    assert {500, 429} <= {c.status for c in survey_multicasts(fake)}
    pushes = fake.calls(PUSH, ok_only=False)
    first = pushes[0]
    assert first.status == 500 and fake.delivered_by(PUSH)[0].retry_key == first.retry_key
    assert [c.status for c in pushes if c.retry_key == first.retry_key][-1] == 409

    # Every retry of a push or a multicast reused its key; different messages, different keys.
    keys_by_push = defaultdict(set)
    for c in pushes:
        keys_by_push[c.json["to"]].add(c.retry_key)
    assert set(keys_by_push) == set(pushed)
    assert all(len(keys) == 1 for keys in keys_by_push.values()), keys_by_push
    assert len(set().union(*keys_by_push.values())) == len(pushed)
    keys_by_chunk = defaultdict(set)
    for c in survey_multicasts(fake):
        keys_by_chunk[tuple(c.json["to"])].add(c.retry_key)
    assert len(keys_by_chunk) == 3 and all(len(keys) == 1 for keys in keys_by_chunk.values())
    assert len(set().union(*keys_by_chunk.values())) == 3
    assert any(len([c for c in pushes if c.retry_key == k]) > 5 for k in set().union(*keys_by_push.values())), \
        "no push outlived the gateway's own retries (the outbox path was not exercised)"

    # Retry-After honoured: after a 429 the same message comes back no sooner than it says.
    for path in (REPLY, PUSH, MULTICAST):
        calls = survey_multicasts(fake) if path == MULTICAST else fake.calls(path, ok_only=False)
        gaps = []
        for i, c in enumerate(calls):
            if c.status != 429:
                continue
            later = [n for n in calls[i + 1:] if _logical_key(n) == _logical_key(c)]
            if later:
                gaps.append(later[0].at - c.at)
        assert gaps, f"no retry after a 429 on {path}\n{timeline(fake)}"
        assert min(gaps) >= RETRY_AFTER - 0.1, f"{path}: {gaps}\n{timeline(fake)}"
        assert min(gaps) < RETRY_AFTER + 1.0, f"{path}: {gaps}\n{timeline(fake)}"  # the gateway's retry, promptly
