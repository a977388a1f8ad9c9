"""A web process killed between storing an event and processing it: once it is back, the event
is processed — exactly one reply.

The web app runs for real (``itabot serve``: gunicorn, embedded mode on SQLite, with its processing
process, ``bot.processing``). How the fault is injected, without any hook in the code: one delivery
carries a follow and two messages; a follow needs the person's profile from LINE before its handling
transaction (``handlers.dispatcher.PREPARE``), and the fake LINE holds that request. So when the webhook
has answered 200 and the profile request is waiting at the fake, all three events are stored and
none is processed (the single processing thread is busy with the follow, the messages queue
behind it) — then SIGKILL:

* ``gunicorn-worker``: only the gunicorn worker that stored them (and started the processing process)
  is killed; gunicorn's master starts a new one by itself. The orphaned processing process stops
  within a second, finishing what it holds (the follow, once the fake lets the profile through);
  the new worker starts the next one, which waits for the old one to be gone;
* ``whole-server``: the whole process group, processing process included, then ``itabot serve`` is
  started again.

Whatever is still pending is processed once, by the next processing process (its first read of the
inbox, or its sweeper).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3

import pytest
from conftest import new_user

from .conftest import LineClient, free_port, logs, process_env, wait_until

MENU = "เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"


def _rows(db_path) -> list[tuple[str, str]]:
    with sqlite3.connect(db_path) as c:
        return c.execute("select webhook_event_id, status from webhook_events order by id").fetchall()


@pytest.mark.parametrize("killed", ["gunicorn-worker", "whole-server"])
def test_web_process_killed_after_storing_processes_each_event_once_after_restart(
        killed, fake, procs, tmp_path, _sqlite_template):
    db_path = tmp_path / "itabot.sqlite3"
    shutil.copy(_sqlite_template, db_path)  # migrated already: `itabot serve` starts faster
    port = free_port()
    env = process_env(tmp_path, f"sqlite:///{db_path}", fake.url, WEB_CONCURRENCY="1")
    serve = ["serve", "--port", str(port)]
    line = LineClient(f"http://127.0.0.1:{port}", fake)
    web = procs("web-1", serve, env)
    wait_until(line.healthy, 60, "the web process to start", diagnostics=lambda: logs(procs))

    follower, a, b = new_user(), new_user(), new_user()
    events = [line.event(follower, "follow", follow={"isUnblocked": False}), line.text(a, "เมนู"),
              line.text(b, "เมนู")]
    fake.hold_at = ("/v2/bot/profile/", 1)  # the follow's profile request waits at LINE
    assert line.post(events) == 200
    assert fake.held.wait(20), "processing never started\n" + logs(procs)
    assert fake.calls("/v2/bot/message/", ok_only=False) == []  # nothing processed yet...
    assert [st for _, st in _rows(db_path)] == ["pending"] * 3  # ...and all of it stored

    if killed == "gunicorn-worker":
        (child,) = web.children()
        os.kill(child, signal.SIGKILL)
    else:
        web.kill()
        assert web.popen.returncode == -9
        procs("web-2", serve, env)
    fake.release.set()  # the dead process's request: answered to nobody

    tokens = [ev["replyToken"] for ev in events]

    def replied() -> bool:
        return all(any(d.reply_token == t for d in fake.delivered) for t in tokens)

    wait_until(replied, 60, "the restarted web process to process the stored events", interval=0.2,
               diagnostics=lambda: logs(procs) + f"\nrows: {_rows(db_path)}")
    wait_until(lambda: [st for _, st in _rows(db_path)] == ["done"] * 3, 10, "the events to be marked done")
    replies = [d for d in fake.delivered if d.reply_token in tokens]
    assert sorted(d.reply_token for d in replies) == sorted(tokens)  # one reply each, no more
    assert fake.delivered_by("/push") == []
    assert fake.delivered_to(a) == [MENU] and fake.delivered_to(b) == [MENU]
    assert len(fake.delivered_to(follower)) >= 1  # the greeting (a reply of one or more messages)

    def outbox_rows() -> int:
        with sqlite3.connect(db_path) as c:
            return c.execute("select count(*) from outbox").fetchone()[0]

    # Every send is recorded (its outbox row deleted), a moment after LINE took it: with no event to carry the
    # recording, the processing thread waits up to RECORD_WAIT for one first.
    wait_until(lambda: outbox_rows() == 0, 10, "the sends to be recorded")
    with sqlite3.connect(db_path) as c:
        assert c.execute("select following from line_users where line_user_id = ?", (follower,)).fetchone() == (1,)
