"""Events stored but not processed are picked up again; each is processed exactly once, in order."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from conftest import new_user
from sqlalchemy import select, update

from bot.services import Services
from handlers import dispatcher
from models import WebhookEvent, utcnow
from models.event import DONE, FAILED, PENDING


def _rows(services):
    with services.db.Session() as s:
        return s.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, nothing the transaction did commits."""


def test_event_of_a_worker_that_died_mid_handling_is_processed_again(bot, services, fake_line, monkeypatch):
    real = dispatcher.HANDLERS["message"]

    def dies(ctx, engine):
        real(ctx, engine)
        raise _Killed()

    monkeypatch.setitem(dispatcher.HANDLERS, "message", dies)
    user = new_user()
    bot.text(user, "เมนู", drain=False)
    (row,) = _rows(services)
    with pytest.raises(_Killed):
        services.processor.process(row.id)
    monkeypatch.undo()
    assert fake_line.calls("/reply") == []
    row = _rows(services)[0]
    assert row.status == PENDING and row.payload is not None  # nothing of the dead worker's stayed
    with services.db.session() as s:
        s.execute(update(WebhookEvent).values(received_at=utcnow() - timedelta(seconds=30)))
    services.processor.sweep()
    assert len(fake_line.calls("/reply")) == 1
    assert _rows(services)[0].status == DONE


def test_event_whose_notification_was_lost_is_swept(bot, services, fake_line):
    user = new_user()
    bot.text(user, "เมนู", drain=False)
    with services.db.session() as s:
        s.execute(update(WebhookEvent).values(received_at=utcnow() - timedelta(seconds=30)))
    services.processor.sweep()
    assert len(fake_line.calls("/reply")) == 1


def test_a_failing_handler_is_retried_then_parked(bot, services, fake_line, monkeypatch):
    calls = []

    def boom(ctx, engine):
        calls.append(1)
        raise RuntimeError("handler bug")

    monkeypatch.setitem(dispatcher.HANDLERS, "follow", boom)
    bot.follow(new_user())
    row = _rows(services)[0]
    assert row.status == PENDING and row.next_attempt_at is not None and row.payload is not None
    for _ in range(10):
        with services.db.session() as s:
            s.execute(update(WebhookEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        services.processor.sweep()
    row = _rows(services)[0]
    assert row.status == FAILED
    assert len(calls) == 6
    assert services.inbox.counts() == {FAILED: 1}


def test_a_transient_failure_then_success_processes_once(bot, services, fake_line, monkeypatch):
    real = dispatcher.HANDLERS["follow"]
    state = {"n": 0}

    def flaky(ctx, engine):
        state["n"] += 1
        ctx.user.language = "en"  # an effect that must not survive the failed attempt
        if state["n"] == 1:
            raise RuntimeError("transient")
        real(ctx, engine)

    monkeypatch.setitem(dispatcher.HANDLERS, "follow", flaky)
    bot.follow(new_user())
    with services.db.session() as s:
        s.execute(update(WebhookEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    services.processor.sweep()
    assert state["n"] == 2
    assert len(fake_line.calls("/reply")) == 1
    assert _rows(services)[0].status == DONE


def test_a_person_s_messages_are_handled_in_the_order_they_were_sent(bot, services, fake_line):
    user = new_user()
    first = bot.event(user, "message", message={"type": "text", "id": "1", "text": "English", "quoteToken": "q"})
    second = bot.event(user, "message", message={"type": "text", "id": "2", "text": "เมนู", "quoteToken": "q"})
    second["timestamp"] = first["timestamp"] + 1
    bot.deliver([second])  # LINE delivered the later one first
    bot.deliver([first])
    ids = [r.id for r in _rows(services)]
    # The later message cannot be taken while the earlier one waits.
    with services.db.session() as s:
        assert services.inbox.take(s, ids[0]) is None
    services.processor.process(ids[1])  # processing the first drains the second
    texts = bot.texts(user)
    assert texts[0].startswith("I will answer in English")
    assert texts[-1] == "What would you like to do? 👇"  # the menu, in English, after the switch


def test_two_processors_at_once_answer_each_event_exactly_once(bot, app, services, fake_line):
    other = Services(services.settings)  # a second worker process, same database
    try:
        users = [new_user() for _ in range(8)]
        for u in users:
            for word in ("เมนู", "English", "ภาษาไทย"):
                bot.text(u, word, drain=False)
        ids = [r.id for r in _rows(services)]
        barrier = threading.Barrier(2)

        def work(svc):
            barrier.wait()
            for _ in range(5):
                for i in ids:
                    svc.processor.process(i)

        threads = [threading.Thread(target=work, args=(s,)) for s in (services, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {r.status for r in _rows(services)} == {DONE}
        replies = fake_line.calls("/reply")
        assert len(replies) == len(ids)
        assert len({r.json["replyToken"] for r in replies}) == len(ids)
        for u in users:  # and in order: English, then Thai again
            texts = bot.texts(u)
            assert texts.index("I will answer in English from now on.") < texts.index("เปลี่ยนเป็นภาษาไทยแล้วค่ะ")
    finally:
        other.close()


def test_embedded_runner_answers_in_order_with_sends_off_the_processing_thread(bot, services, fake_line):
    """What `itabot serve` runs: one processing thread, a pool of senders, replies in order."""
    import time

    services.start_embedded_worker()
    try:
        assert services.runner.senders is not None
        users = [new_user() for _ in range(5)]
        words = ["English", "เมนู", "ภาษาไทย", "เมนู"]
        for word in words:
            for u in users:
                bot.text(u, word, drain=False)  # the webhook hands each event to the runner
        deadline = time.time() + 20
        while time.time() < deadline and len(fake_line.calls("/reply")) < len(users) * len(words):
            time.sleep(0.05)
        for u in users:
            assert bot.texts(u) == [
                "I will answer in English from now on.", "What would you like to do? 👇",
                "What would you like to do? 👇",
                "เปลี่ยนเป็นภาษาไทยแล้วค่ะ", "เลือกสิ่งที่ต้องการได้เลยค่ะ 👇",
                "เลือกสิ่งที่ต้องการได้เลยค่ะ 👇",
            ]
    finally:
        services.runner.stop()
        services.runner = None
    assert {r.status for r in _rows(services)} == {DONE}


def test_maintenance_erases_abandoned_drafts_and_old_parked_payloads(bot, services, monkeypatch):
    from models import ConversationState

    user = new_user()
    with services.db.session() as s:
        s.add(ConversationState(office_id=1, line_user_id=user, conversation="x", state="y",
                                data={"_messages": {"1": "ร่างที่ทิ้งไว้"}}, expires_at=utcnow() - timedelta(hours=2)))
    monkeypatch.setitem(dispatcher.HANDLERS, "follow", lambda ctx, engine: 1 / 0)
    bot.follow(user)
    with services.db.session() as s:
        s.execute(update(WebhookEvent).values(status=FAILED, received_at=utcnow() - timedelta(days=31)))
    services.processor.maintain()
    with services.db.Session() as s:
        assert s.scalars(select(ConversationState)).all() == []
        row = s.scalars(select(WebhookEvent)).one()
    assert row.payload is None and row.source_key is None
