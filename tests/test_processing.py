"""Events stored but not processed are picked up again; each is processed exactly once, in order."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from conftest import new_user
from sqlalchemy import func, select, update

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
    assert services.inbox.backlog() == ({FAILED: 1}, None)


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


def test_stopping_the_runner_finishes_the_sends_in_flight(bot, services, fake_line):
    """A stop (a deploy, SIGTERM) waits for a reply that is between its retries, and records it."""
    from fakeline import Fault

    from models import Delivery, OutboxMessage

    fake_line.faults.append(Fault("/v2/bot/message/reply", 503))  # the first try fails; the next, after a backoff
    gateway = services.gateway(1)
    gateway.sleep, gateway.backoff_base = time.sleep, 1.0  # a real wait, of 0.5 to 1 s
    services.start_embedded_worker()
    user = new_user()
    try:
        bot.text(user, "เมนู", drain=False)
        deadline = time.time() + 10
        while time.time() < deadline and not fake_line.calls("/reply", ok_only=False):
            time.sleep(0.01)
        assert not fake_line.calls("/reply")  # only the failed try so far
    finally:
        services.runner.stop()
        services.runner = None
    assert bot.texts(user) == ["เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"]
    with services.db.Session() as s:
        assert s.scalars(select(OutboxMessage)).all() == []  # recorded as sent, not left to be sent twice
    with services.db.Session() as s:
        assert [d.kind for d in s.scalars(select(Delivery))] == ["reply"]


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


# -- batches: many events to one transaction (what the embedded runner does under load) -------------

MENU_TH = "เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"


def _menu_events(bot, users):
    for u in users:
        bot.text(u, "เมนู", drain=False)
    return [r.id for r in _rows(bot.services)]


def _break_the_handler_for(user: str, monkeypatch) -> None:
    """Messages of ``user`` make the handler raise (a bug); everyone else's are handled."""
    real = dispatcher.HANDLERS["message"]

    def breaks_for_one(ctx, engine):
        if ctx.user_id == user:
            raise RuntimeError("a handler bug")
        real(ctx, engine)

    monkeypatch.setitem(dispatcher.HANDLERS, "message", breaks_for_one)


def test_a_batch_answers_everyone_and_a_failing_event_costs_the_others_nothing(bot, services, fake_line, monkeypatch):
    users = [new_user() for _ in range(6)]
    ids = _menu_events(bot, users)
    _break_the_handler_for(users[2], monkeypatch)
    assert services.processor.process_batch(ids) == []
    for i, u in enumerate(users):
        assert bot.texts(u) == ([] if i == 2 else [MENU_TH])
    rows = {r.id: r for r in _rows(services)}
    broken = rows[ids[2]]
    assert broken.status == PENDING and broken.attempts == 1  # counted against itself only, retried later
    assert all(rows[i].status == DONE and rows[i].attempts == 0 for i in ids if i != ids[2])


def _replies_taken_not_recorded(bot, services, monkeypatch, users) -> list:
    """A batch answers ``users``; LINE takes the replies, and the sender hands them over to be recorded, as in the
    runner: (outbox id, send records) of each, their outbox rows still there."""
    handed: list = []
    monkeypatch.setattr(services.processor, "submit_send", lambda send, done: handed.append(send))
    assert services.processor.process_batch(_menu_events(bot, users)) == []
    taken: list = []
    for send in handed:
        assert services.processor._send(send, sent=lambda oid, records: taken.append((oid, records)))
    monkeypatch.setattr(services.processor, "submit_send", None)
    return taken


@pytest.mark.parametrize("batch_fails", [False, True])
def test_sends_are_recorded_by_the_next_batch_even_one_that_is_rolled_back(bot, services, fake_line, monkeypatch,
                                                                            batch_fails):
    """The processing thread records what LINE took (outbox rows deleted, send records kept) in its next batch's
    transaction. If that batch is rolled back, they are still recorded: a row left behind would be sent again
    once its lease runs out, and the person would get the reply twice."""
    from models import Delivery, OutboxMessage

    first = [new_user() for _ in range(2)]
    taken = _replies_taken_not_recorded(bot, services, monkeypatch, first)
    assert len(taken) == 2 and all(bot.texts(u) == [MENU_TH] for u in first)

    others = [new_user() for _ in range(3)]
    for u in others:
        bot.text(u, "เมนู", drain=False)
    ids = [r.id for r in _rows(services) if r.status == PENDING]
    if batch_fails:
        _break_the_handler_for(others[1], monkeypatch)
    replies = select(func.count()).select_from(Delivery).where(Delivery.kind == "reply")
    with services.db.Session() as s:
        before = s.scalar(replies)
    assert services.processor.process_batch(ids, taken) == []
    with services.db.Session() as s:
        assert s.scalars(select(OutboxMessage.id).where(OutboxMessage.id.in_([o for o, _ in taken]))).all() == []
        assert s.scalar(replies) == before + len(taken) + 3 - batch_fails  # the first two, and the new replies
    for i, u in enumerate(others):
        assert bot.texts(u) == ([] if batch_fails and i == 1 else [MENU_TH])
    services.processor.sweep()  # nothing of the first two is sent again
    assert all(bot.texts(u) == [MENU_TH] for u in first)


def test_sends_are_recorded_before_a_batch_s_calls_to_line(bot, services, fake_line, monkeypatch):
    """A follow needs the person's profile from LINE before its transaction, which may take seconds. The sends LINE
    took are recorded first: a sent row still in the outbox when its lease runs out would be sent again."""
    from models import OutboxMessage

    taken = _replies_taken_not_recorded(bot, services, monkeypatch, [new_user()])
    assert len(taken) == 1
    seen_in_outbox: list = []
    real = dispatcher.PREPARE["follow"]

    def prepare_follow(*args, **kwargs):
        with services.db.Session() as s:
            seen_in_outbox.append(s.get(OutboxMessage, taken[0][0]) is not None)
        return real(*args, **kwargs)

    monkeypatch.setitem(dispatcher.PREPARE, "follow", prepare_follow)
    newcomer = new_user()
    bot.deliver([bot.event(newcomer, "follow")])
    bot.text(new_user(), "เมนู", drain=False)
    bot.text(new_user(), "เมนู", drain=False)
    ids = [r.id for r in _rows(services) if r.status == PENDING]
    assert services.processor.process_batch(ids, taken) == []
    assert seen_in_outbox == [False]
    assert bot.texts(newcomer)  # greeted


def _write_turns_of_processing_thread(services, monkeypatch) -> list[str]:
    """Names of the write transactions the runner's processing thread opens from now on."""
    turns: list[str] = []
    db = services.db
    for name in ("session", "write"):
        real = getattr(db, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            if threading.current_thread().name.startswith("itabot-worker"):
                turns.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(db, name, counted)
    return turns


def test_one_event_carries_the_recording_of_the_sends_before_it_in_its_own_transaction(bot, services, fake_line,
                                                                                        monkeypatch):
    """At an office's usual rate events come one at a time. The sends LINE took before one are recorded in that
    event's transaction, not in a second write turn of their own."""
    from models import Delivery, OutboxMessage

    taken = _replies_taken_not_recorded(bot, services, monkeypatch, [new_user()])
    recorded_alone: list[int] = []  # outbox ids recorded in a transaction of their own
    real_forget = services.processor._forget

    def forget(sent):
        recorded_alone.extend(oid for oid, _ in sent)
        real_forget(sent)

    monkeypatch.setattr(services.processor, "_forget", forget)
    handed: list = []  # the new reply goes to the sender, as in the runner
    monkeypatch.setattr(services.processor, "submit_send", lambda send, done: handed.append(send))
    u = new_user()
    bot.text(u, "เมนู", drain=False)
    ids = [r.id for r in _rows(services) if r.status == PENDING]
    assert len(ids) == 1
    assert services.processor.process_batch(ids, taken) == []
    assert recorded_alone == []
    assert len(handed) == 1 and services.processor._send(handed[0])
    assert bot.texts(u) == [MENU_TH]
    with services.db.Session() as s:
        assert s.get(OutboxMessage, taken[0][0]) is None
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.kind == "reply")) == 2


def test_the_runner_waits_a_moment_for_an_event_to_record_the_sends_with(bot, services, fake_line, monkeypatch):
    """Woken only because LINE took a reply, the processing thread waits up to RECORD_WAIT for an event whose
    transaction records it: two messages one after the other cost two write turns, not three."""
    from bot import worker
    from models import OutboxMessage

    monkeypatch.setattr(worker, "RECORD_WAIT", 5.0)  # longer than this test needs: no race with the second message
    turns = _write_turns_of_processing_thread(services, monkeypatch)
    services.start_embedded_worker()
    try:
        first, second = new_user(), new_user()
        bot.text(first, "เมนู", drain=False)
        deadline = time.time() + 10
        while time.time() < deadline and not fake_line.calls("/reply"):
            time.sleep(0.01)
        time.sleep(0.1)  # the reply is taken; the thread waits for company to record it
        with services.db.Session() as s:
            assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1  # not recorded yet
        bot.text(second, "เมนู", drain=False)
        while time.time() < deadline and len(fake_line.calls("/reply")) < 2:
            time.sleep(0.01)
        time.sleep(0.1)
        assert bot.texts(first) == bot.texts(second) == [MENU_TH]
        assert len(turns) == 2  # the first event; the second with the first reply's recording
    finally:
        services.runner.stop()  # records the second reply
        services.runner = None
    with services.db.Session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_batch_holds_a_person_s_second_message_until_the_first_reply_is_out(bot, services, fake_line):
    a, b = new_user(), new_user()
    first = bot.event(a, "message", message={"type": "text", "id": "1", "text": "English", "quoteToken": "q"})
    second = bot.event(a, "message", message={"type": "text", "id": "2", "text": "เมนู", "quoteToken": "q"})
    second["timestamp"] = first["timestamp"] + 1
    bot.deliver([first, second])
    bot.text(b, "เมนู", drain=False)
    ids = [r.id for r in _rows(services)]
    services.processor.process_batch(ids)
    switched = bot.texts(a)
    assert switched[0] == "I will answer in English from now on."
    assert bot.texts(b) == [MENU_TH]
    assert _rows(services)[1].status == PENDING  # "เมนู" waits for the first answer to be out
    services.processor.process_batch(ids)
    assert bot.texts(a) == [*switched, "What would you like to do? 👇"]


def test_a_batch_knows_each_person_s_language_and_conversation_and_meets_new_people(bot, services, fake_line):
    """A batch reads its people and their conversations ahead, all at once: each event still gets its own."""
    english, mid_flow, newcomer, in_group = new_user(), new_user(), new_user(), new_user()
    bot.text(english, "English")
    bot.text(mid_flow, "ได้รับของขวัญ")  # the gift helper: a conversation waiting for the next answer
    before = {u: len(bot.texts(u)) for u in (english, mid_flow)}
    bot.text(english, "เมนู", drain=False)
    bot.text(mid_flow, "ยกเลิก", drain=False)
    bot.text(newcomer, "เมนู", drain=False)
    group = bot.event(in_group, "message", message={"type": "text", "id": "9", "text": "ยกเลิก", "quoteToken": "q"})
    # The same person in a group: kept in order with their own chat (waits for its reply to be out).
    group["source"] = {"type": "group", "groupId": "C" + "1" * 32, "userId": mid_flow}
    bot.deliver([group])
    ids = [r.id for r in _rows(services) if r.status == PENDING]
    assert len(ids) == 4
    assert services.processor.process_batch(ids) == []
    assert bot.texts(english)[before[english]:] == ["What would you like to do? 👇"]
    assert bot.texts(mid_flow)[before[mid_flow]:] == ["ยกเลิกแล้วค่ะ ไม่มีการบันทึกสิ่งที่กรอกไว้", MENU_TH]
    assert bot.texts(newcomer) == [MENU_TH]
    with services.db.Session() as s:
        from models import ConversationState, LineUser

        assert s.scalars(select(ConversationState)).all() == []  # the gift helper's state went with the cancel
        assert s.scalar(select(LineUser.language).where(LineUser.line_user_id == newcomer)) == "th"
    assert [r.status for r in _rows(services)][-4:] == [DONE, DONE, DONE, PENDING]
    assert services.processor.process_batch(ids) == []
    assert [r.status for r in _rows(services)][-4:] == [DONE] * 4


def test_a_batch_makes_way_for_a_waiting_webhook_and_hands_back_the_rest(bot, services, fake_line, monkeypatch):
    users = [new_user() for _ in range(3)]
    ids = _menu_events(bot, users)
    from bot import worker

    monkeypatch.setattr(services.db, "urgent_waiting", lambda: True)  # LINE is waiting for a store
    monkeypatch.setattr(worker, "YIELD_AFTER", 0.0)  # and the batch has held the turn long enough
    left = services.processor.process_batch(ids)
    assert left == ids[1:]  # one event, then the write turn is given up
    assert [bool(bot.texts(u)) for u in users] == [True, False, False]
    monkeypatch.undo()
    assert services.processor.process_batch(left) == []
    assert all(bot.texts(u) == [MENU_TH] for u in users)


def test_a_batch_s_replies_are_kept_each_under_its_own_outbox_row(bot, services, fake_line):
    """A batch writes its replies to the outbox in one statement; each send must still know its own row, or a
    failed reply would leave someone else's row behind (and its own be deleted unsent)."""
    from fakeline import Fault

    from models import OutboxMessage

    users = [new_user() for _ in range(4)]
    ids = _menu_events(bot, users)
    office_id = _rows(services)[0].office_id
    # The first reply of the batch fails, every attempt of it; the others go through.
    fake_line.faults.append(Fault("/v2/bot/message/reply", 503, times=services.gateway(office_id).max_attempts))
    assert services.processor.process_batch(ids) == []
    assert [bool(bot.texts(u)) for u in users] == [False, True, True, True]
    with services.db.Session() as s:
        (left,) = s.scalars(select(OutboxMessage)).all()
    assert left.to == users[0] and left.attempts == 1  # the failed one, and only it, waits for its retry
    with services.db.session() as s:
        s.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    services.processor.sweep()
    assert all(bot.texts(u) == [MENU_TH] for u in users)  # each person once, the first by push


def test_the_runner_records_every_send_and_leaves_the_outbox_empty(bot, services, fake_line):
    """What LINE took is recorded by the processing thread, many sends to a transaction, the last ones when the
    runner stops."""
    import time

    from models import Delivery, OutboxMessage

    services.start_embedded_worker()
    try:
        users = [new_user() for _ in range(12)]
        for u in users:
            bot.text(u, "เมนู", drain=False)
        deadline = time.time() + 20
        while time.time() < deadline and len(fake_line.calls("/reply")) < len(users):
            time.sleep(0.05)
    finally:
        services.runner.stop()  # records the sends taken after the last batch
        services.runner = None
    assert all(bot.texts(u) == [MENU_TH] for u in users)
    with services.db.Session() as s:
        assert s.scalars(select(OutboxMessage)).all() == []
        assert len(s.scalars(select(Delivery).where(Delivery.kind == "reply")).all()) == len(users)


def test_the_runner_answers_each_person_s_messages_in_turn_without_waiting_for_the_sweeper(bot, services, fake_line):
    """A person's next message is taken once their reply is out and recorded: the runner looks up the next events of
    the people whose sends one batch recorded in one read. Were it to find none, they would wait for the sweeper
    (seconds later)."""
    import time

    from bot.inbox import SWEEP_GRACE

    services.start_embedded_worker()
    try:
        users = [new_user() for _ in range(6)]
        for word in ("เมนู", "English", "menu"):
            for u in users:
                bot.text(u, word, drain=False)
        started = time.time()
        while time.time() - started < 20 and len(fake_line.calls("/reply")) < 3 * len(users):
            time.sleep(0.02)
        took = time.time() - started
    finally:
        services.runner.stop()
        services.runner = None
    for u in users:
        texts = bot.texts(u)
        assert texts[0] == MENU_TH and texts[1].startswith("I will answer in English")
        assert texts[2] == "What would you like to do? 👇"
    assert took < SWEEP_GRACE.total_seconds()


def test_healthz_fails_when_the_processing_thread_has_ended_and_shows_the_backlog(bot, services):
    """An embedded web process whose processing thread is gone still stores events, but leaves them to the
    sweeper (seconds late): /healthz must say so (503, so the platform restarts it), and show the waiting
    events and their age."""
    import time

    client = bot.app.test_client()
    services.start_embedded_worker()
    try:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json == {"status": "ok", "mode": "embedded", "database": "ok", "events": {},
                               "oldest_pending_s": None, "outbox": 0, "worker": "ok"}
        services.runner.queue.put(None)  # the processing thread ends, as if it had died
        services.runner._workers[0].join(timeout=5)
        bot.text(new_user(), "เมนู", drain=False)  # stored and acknowledged, but nobody processes it
        time.sleep(0.05)
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json["status"] == "error" and health.json["worker"] == "stopped: itabot-worker-0"
        assert health.json["events"] == {"pending": 1} and health.json["oldest_pending_s"] >= 0.05
        assert health.json["database"] == "ok"
    finally:
        services.runner.stop()
        services.runner = None


# -- the webhook's group commit ------------------------------------------------------------------------


def _text_event(bot, user):
    return bot.event(user, "message", message={"type": "text", "id": new_user()[:10], "text": "เมนู", "quoteToken": "q"})


@pytest.fixture
def write_turn_held(services):
    """Holds the database's write turn, so that webhook stores queue up behind it; yields a function
    that waits until ``n`` stores are queued, and one that releases the turn."""
    import contextlib
    import time

    from sqlalchemy import text

    group = services.inbox._group
    stack = contextlib.ExitStack()
    if services.db.is_sqlite:
        stack.enter_context(services.db.write())
    else:  # PostgreSQL: the first store's INSERT waits on the table; the rest queue behind it
        conn = stack.enter_context(services.db.engine.connect())
        stack.enter_context(conn.begin())
        conn.execute(text("LOCK TABLE webhook_events IN EXCLUSIVE MODE"))

    def queued(n):
        """Wait until ``n`` stores were made; start the first one alone."""
        deadline = time.time() + 10
        expected = n if services.db.is_sqlite else n - 1  # on PostgreSQL the leader has taken its own
        while time.time() < deadline and not (group._leading and len(group._waiting) == expected):
            time.sleep(0.01)
        assert group._leading and len(group._waiting) == expected
        time.sleep(0.05)

    with stack:
        yield queued, stack.close


def test_concurrent_deliveries_are_stored_together_and_each_gets_its_own_events(bot, services, write_turn_held):
    from sqlalchemy import event as sa_event

    queued, release = write_turn_held
    users = [new_user() for _ in range(6)]
    events = [_text_event(bot, u) for u in users]
    results: dict[int, list[int]] = {}
    inserts = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO WEBHOOK_EVENTS"):
            inserts.append(statement)

    def store(i, evs):
        results[i] = services.inbox.store(1, evs)

    sa_event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        # six deliveries at once, and the first one's event delivered a second time meanwhile
        threads = [threading.Thread(target=store, args=(i, [ev])) for i, ev in enumerate(events)]
        threads.append(threading.Thread(target=store, args=(6, [events[0]])))
        threads[0].start()
        queued(1)
        for t in threads[1:]:
            t.start()
        queued(len(threads))
        release()
        for t in threads:
            t.join(10)
    finally:
        sa_event.remove(services.db.engine, "before_cursor_execute", count)
    assert len(inserts) <= 2  # not one transaction per delivery
    rows = _rows(services)
    assert len(rows) == 6  # the repeated event stored once
    by_wid = {r.webhook_event_id: r.id for r in rows}
    stored_for = [results[i] for i in range(6)]
    # each request got the id of its own new event, and the repeat got it at most once in all
    for i in range(1, 6):
        assert stored_for[i] == [by_wid[events[i]["webhookEventId"]]]
    assert sorted(stored_for[0] + results[6]) == [by_wid[events[0]["webhookEventId"]]]


def test_a_failed_group_commit_answers_every_delivery_in_it_with_503_and_loses_nothing(
        app, bot, services, fake_line, write_turn_held):
    from conftest import sign
    from sqlalchemy import event as sa_event
    from sqlalchemy.exc import OperationalError

    queued, release = write_turn_held
    users = [new_user() for _ in range(3)]
    bodies = [json.dumps({"destination": "U" + "0" * 32, "events": [_text_event(bot, u)]}).encode() for u in users]
    statuses: dict[int, int] = {}

    def deliver(i):
        client = app.test_client()
        resp = client.post("/callback", data=bodies[i], headers={"X-Line-Signature": sign(bodies[i]),
                                                                  "Content-Type": "application/json"})
        statuses[i] = resp.status_code

    def disk_full(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO WEBHOOK_EVENTS"):
            raise OperationalError(statement, {}, Exception("database or disk is full"))

    sa_event.listen(services.db.engine, "after_cursor_execute", disk_full)  # after: on PostgreSQL it waits first
    try:
        threads = [threading.Thread(target=deliver, args=(i,)) for i in range(3)]
        threads[0].start()
        queued(1)
        for t in threads[1:]:
            t.start()
        queued(3)
        release()
        for t in threads:
            t.join(10)
    finally:
        sa_event.remove(services.db.engine, "after_cursor_execute", disk_full)
    assert statuses == {0: 503, 1: 503, 2: 503}  # none acknowledged unstored
    assert _rows(services) == []
    for i in range(3):  # LINE redelivers
        deliver(i)
    assert statuses == {0: 200, 1: 200, 2: 200}
    bot.drain()
    assert all(bot.texts(u) == [MENU_TH] for u in users)


def test_health_of_the_processing_process_says_starting_before_stopped(tmp_path, monkeypatch):
    """/healthz's ``worker`` in a web process: ok while a processing process holds its lock; while one is
    missing, "starting" for a minute (the web process's first seconds, or one being started again), then
    "stopped" — which answers 503 so the web process is restarted."""
    import os

    from bot import processing
    from bot.config import load_settings

    settings = load_settings({"ITABOT_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    host = processing.ProcessingHost(settings)  # not started: nothing is spawned here
    assert host.state() == "starting"
    monkeypatch.setattr(processing, "STARTING_FOR", 0.2)
    time.sleep(0.3)
    assert host.state() == "stopped"
    fd = processing._lock(host.work_lock, blocking=False)  # as the processing process holds it
    assert host.state() == "ok"
    os.close(fd)  # it ended
    assert host.state() == "starting"  # it was there just now: being started again
    time.sleep(0.3)
    assert host.state() == "stopped"


def test_the_processing_process_takes_the_ids_a_wake_up_carries_and_reads_the_inbox_for_lost_ones(tmp_path):
    """A wake-up carries the new rows' ids: they are taken without a read of the inbox. A read still comes at
    least every POLL (a wake-up lost when the socket's queue was full) and after a wake-up without ids (too
    many to carry), and takes only what no wake-up told of."""
    import socket

    from bot import processing
    from bot.config import load_settings

    intake = processing.Intake()
    assert intake.read_due(0.0)  # at start: whatever waits from before
    assert intake.read([3, 5], now=0.0) == [3, 5]
    assert not intake.read_due(0.1)
    # Wake-ups as a web process sends them, through a real socket.
    settings = load_settings({"ITABOT_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    host = processing.ProcessingHost(settings)  # not started: nothing is spawned here
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(host.address)
    sock.settimeout(1)
    try:
        host.wake([6, 7])
        host.wake([7, 8])  # 7 again: taken once
        assert intake.hear(sock.recv(65536)) == [6, 7]
        assert intake.hear(sock.recv(65536)) == [8]
        assert not intake.read_due(0.2)  # no read for what the wake-ups said
        # 9's wake-up is lost; 10's arrives. The read due at POLL finds 9 and leaves the ids already taken.
        host.wake([10])
        assert intake.hear(sock.recv(65536)) == [10]
        assert intake.until_read(0.2) == pytest.approx(processing.POLL - 0.2)
        assert intake.read_due(processing.POLL)
        assert intake.read([6, 7, 8, 9, 10], now=processing.POLL) == [9]
        assert intake.after == 10
        # PostgreSQL may commit 4 after 10 was read: its wake-up is still heard (a later read would not see it).
        host.wake([4])
        assert intake.hear(sock.recv(65536)) == [4]
        # More ids than one wake-up carries: it asks for a read instead.
        host.wake(list(range(11, 12 + processing.WAKE_IDS)))
        assert intake.hear(sock.recv(65536)) == [] and intake.read_due(processing.POLL + 0.01)
        assert intake.until_read(processing.POLL + 0.01) == 0.0
        assert len(intake.read(list(range(11, 12 + processing.WAKE_IDS)), now=processing.POLL + 0.01)) == 513
    finally:
        sock.close()
        host.stop()


def test_wake_ups_that_filled_the_socket_s_queue_make_the_processing_process_read_the_inbox(tmp_path):
    """The kernel keeps only a few wake-ups waiting (``net.unix.max_dgram_qlen``); under load a web process's
    next one is dropped, and its events waited for the next POLL (half a second: the replies' p99 in the bench).
    Taking a full queue's worth in one go now makes the next step a read of the inbox, which finds them."""
    import contextlib
    import socket

    from bot import processing
    from bot.config import load_settings

    settings = load_settings({"ITABOT_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    host = processing.ProcessingHost(settings)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(host.address)
    intake = processing.Intake()
    assert intake.queue_limit == processing._queue_limit() >= 1
    intake.read([], now=0.0)
    try:
        sent = list(range(1, intake.queue_limit + 6))
        for event_id in sent:  # one wake-up each, none taken meanwhile: the last ones are dropped
            host.wake([event_id])
        sock.setblocking(False)
        heard, wake_ups = [], 0
        with contextlib.suppress(BlockingIOError):
            while True:
                heard += intake.hear(sock.recv(65536))
                wake_ups += 1
        assert heard and heard != sent  # some were dropped
        assert not intake.read_due(0.1)
        intake.drained(wake_ups)
        assert intake.read_due(0.1) and intake.until_read(0.1) == 0.0
        assert heard + intake.read(sent, now=0.1) == sent  # the read finds exactly the dropped ones
        intake.drained(intake.queue_limit - 1)  # fewer than the queue holds: nothing can have been dropped
        assert not intake.read_due(0.2)
    finally:
        sock.close()
        host.stop()
