"""The LINE gateway: reply first, push when the token is spent, retry safely, record every send."""

from __future__ import annotations

import pytest
from conftest import new_user
from fakeline import Fault
from linebot.v3.messaging import TextMessage
from sqlalchemy import select

from bot.gateway import ContentTooLarge, LineError
from models import Delivery


@pytest.fixture
def gw(services):
    gateway = services.gateway(1)
    gateway.waits = []
    gateway.sleep = gateway.waits.append
    return gateway


def _deliveries(services):
    with services.db.Session() as s:
        return s.scalars(select(Delivery).order_by(Delivery.id)).all()


def test_reply_is_used_when_the_token_is_fresh(gw, fake_line, services):
    gw.reply_or_push("tok-1", new_user(), [TextMessage(text="สวัสดี")])
    assert [r.path for r in fake_line.calls("/v2/bot/message")] == ["/v2/bot/message/reply"]
    assert [(d.kind, d.recipients, d.status) for d in _deliveries(services)] == [("reply", 1, "sent")]


def test_spent_reply_token_falls_back_to_push(gw, fake_line, services):
    user = new_user()
    fake_line.expired_tokens.add("old")
    gw.reply_or_push("old", user, [TextMessage(text="สวัสดี")])
    push = fake_line.calls("/v2/bot/message/push")
    assert len(push) == 1 and push[0].json["to"] == user
    assert push[0].retry_key  # every push carries a retry key
    assert [d.kind for d in _deliveries(services)] == ["push"]


def test_5xx_is_retried_with_the_same_retry_key(gw, fake_line):
    fake_line.faults.append(Fault("/v2/bot/message/push", 500, times=2))
    result = gw.push(new_user(), [{"type": "text", "text": "x"}])
    attempts = fake_line.calls("/v2/bot/message/push", ok_only=False)
    assert [a.status for a in attempts] == [500, 500, 200]
    assert len({a.retry_key for a in attempts}) == 1
    assert result.status == "sent"
    assert len(gw.waits) == 2 and gw.waits[1] > 0


def test_429_honours_retry_after(gw, fake_line):
    fake_line.faults.append(Fault("/v2/bot/message/multicast", 429, {"Retry-After": "7"}))
    gw.multicast([new_user(), new_user()], [{"type": "text", "text": "x"}], retry_key="k-1")
    assert gw.waits == [7.0]
    assert len(fake_line.calls("/v2/bot/message/multicast")) == 1


def test_409_on_a_retry_key_counts_as_delivered(gw, fake_line, services):
    user = new_user()
    first = gw.push(user, [{"type": "text", "text": "x"}], retry_key="11111111-1111-4111-8111-111111111111")
    again = gw.push(user, [{"type": "text", "text": "x"}], retry_key="11111111-1111-4111-8111-111111111111")
    assert (first.status, again.status) == ("sent", "duplicate")
    assert len(fake_line.calls("/v2/bot/message/push")) == 1
    assert [d.status for d in _deliveries(services)] == ["sent", "duplicate"]


def test_4xx_is_not_retried(gw, fake_line):
    fake_line.faults.append(Fault("/v2/bot/message/push", 400))
    with pytest.raises(LineError) as err:
        gw.push(new_user(), [{"type": "text", "text": "x"}])
    assert err.value.status == 400
    assert len(fake_line.calls("/v2/bot/message/push", ok_only=False)) == 1


def test_retries_give_up_after_max_attempts(gw, fake_line):
    fake_line.faults.append(Fault("/v2/bot/message/push", 503, times=99))
    with pytest.raises(LineError):
        gw.push(new_user(), [{"type": "text", "text": "x"}])
    assert len(fake_line.calls("/v2/bot/message/push", ok_only=False)) == gw.max_attempts


def test_multicast_refuses_more_than_500(gw):
    with pytest.raises(ValueError):
        gw.multicast([new_user() for _ in range(501)], [{"type": "text", "text": "x"}])
    with pytest.raises(ValueError):
        gw.push(new_user(), [{"type": "text", "text": str(i)} for i in range(6)])


def test_multicast_records_recipients(gw, services):
    gw.multicast([new_user() for _ in range(3)], [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}])
    d = _deliveries(services)[-1]
    assert (d.kind, d.recipients, d.messages) == ("multicast", 3, 2)


def test_content_download_and_size_limit(gw, fake_line):
    fake_line.contents["m1"] = (b"\x89PNG" + b"0" * 100, "image/png")
    data, ctype = gw.get_content("m1", max_bytes=1000)
    assert data.startswith(b"\x89PNG") and ctype == "image/png"
    with pytest.raises(ContentTooLarge):
        gw.get_content("m1", max_bytes=10)


def test_loading_animation(gw, fake_line):
    gw.show_loading(new_user(), 7)
    (call,) = fake_line.calls("/v2/bot/chat/loading/start")
    assert call.json["loadingSeconds"] == 5


def test_quota(gw, fake_line):
    fake_line.used = 120
    assert gw.quota() == {"type": "limited", "limit": 500, "used": 120}


def test_outbox_keeps_a_message_until_line_takes_it(bot, services, fake_line):
    """LINE down for a while: the reply waits in the outbox and goes out (as a push) later."""
    from datetime import timedelta

    from sqlalchemy import update

    from models import OutboxMessage, utcnow

    fake_line.faults.append(Fault("/v2/bot/message/reply", 503, times=99))
    user = new_user()
    bot.text(user, "เมนู")
    with services.db.Session() as s:
        assert len(s.scalars(select(OutboxMessage)).all()) == 1
    fake_line.faults.clear()
    with services.db.session() as s:
        s.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    services.processor.sweep()
    assert fake_line.sent_to(user)  # delivered by push: the reply token is long gone
    assert fake_line.calls("/v2/bot/message/push")
    with services.db.Session() as s:
        assert s.scalars(select(OutboxMessage)).all() == []


def test_sixteen_senders_at_once_keep_their_connections(services, fake_line, caplog):
    """Every sender thread keeps its kept-alive connection to LINE: none is thrown away (over
    TLS to LINE each would cost a new handshake)."""
    import logging
    import threading

    gateway = services.gateway(1)
    fake_line.send_delay = 0.2  # all sixteen requests are open at the same time
    barrier = threading.Barrier(16)

    def send(i: int) -> None:
        barrier.wait()
        gateway.push(f"U{i:032x}", [{"type": "text", "text": "hi"}])

    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(fake_line.calls("/v2/bot/message/push")) == 16
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


# -- the same sends from an event loop (embedded mode's sender, ``AsyncSender``) -------------------------------


def _loop_send(gw, *args, **kwargs):
    """``reply_or_push_async`` on a loop of its own, as the sender thread runs it; its connections closed after."""
    import asyncio

    async def go():
        try:
            return await gw.reply_or_push_async(*args, **kwargs)
        finally:
            await gw.aclose()

    return asyncio.run(go())


def test_loop_replies_and_falls_back_to_push_like_the_blocking_path(gw, fake_line, services):
    user = new_user()
    fake_line.expired_tokens.add("old")
    assert _loop_send(gw, "tok-loop", user, [TextMessage(text="สวัสดี")]).kind == "reply"
    pushed = _loop_send(gw, "old", user, [{"type": "text", "text": "อีกครั้ง"}])
    assert pushed.kind == "push" and pushed.retry_key
    (push,) = fake_line.calls("/v2/bot/message/push")
    assert push.json["to"] == user and push.retry_key == pushed.retry_key
    assert fake_line.texts_to(user) == ["อีกครั้ง"]  # the reply went by token; the push is what names the user
    assert [(d.kind, d.status) for d in _deliveries(services)] == [("reply", "sent"), ("push", "sent")]


def test_loop_retries_with_one_retry_key_and_honours_retry_after(gw, fake_line):
    fake_line.faults += [Fault("/v2/bot/message/push", 500), Fault("/v2/bot/message/push", 429, {"Retry-After": "7"})]
    result = _loop_send(gw, None, new_user(), [{"type": "text", "text": "x"}])
    attempts = fake_line.calls("/v2/bot/message/push", ok_only=False)
    assert [a.status for a in attempts] == [500, 429, 200]
    assert len({a.retry_key for a in attempts}) == 1
    assert result.status == "sent" and len(gw.waits) == 2 and gw.waits[1] == 7.0


def test_loop_409_on_a_retry_key_counts_as_delivered(gw, fake_line):
    user, key = new_user(), "22222222-2222-4222-8222-222222222222"
    first = _loop_send(gw, None, user, [{"type": "text", "text": "x"}], retry_key=key)
    again = _loop_send(gw, None, user, [{"type": "text", "text": "x"}], retry_key=key)
    assert (first.status, again.status) == ("sent", "duplicate")
    assert len(fake_line.calls("/v2/bot/message/push")) == 1


def test_loop_gives_up_on_what_retrying_cannot_fix(gw, fake_line):
    from bot.gateway import InvalidReplyToken

    fake_line.faults.append(Fault("/v2/bot/message/push", 400))
    with pytest.raises(LineError) as err:
        _loop_send(gw, None, new_user(), [{"type": "text", "text": "x"}])
    assert err.value.status == 400 and len(fake_line.calls("/v2/bot/message/push", ok_only=False)) == 1
    fake_line.expired_tokens.add("gone")
    with pytest.raises(InvalidReplyToken):  # a spent token and nobody to push to (a group's reply)
        _loop_send(gw, "gone", None, [{"type": "text", "text": "x"}])
    with pytest.raises(LineError):
        _loop_send(gw, None, None, [{"type": "text", "text": "x"}])
    assert gw.waits == []


def test_loop_sends_ignore_proxy_settings_of_the_environment(gw, fake_line, monkeypatch):
    """As the blocking path (urllib3) does: a proxy is configured in the SDK's Configuration, not picked up
    from HTTP_PROXY — a stale variable on a server must not stop the replies."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    user = new_user()
    _loop_send(gw, None, user, [{"type": "text", "text": "ถึงไหม"}])
    gw.push(user, [{"type": "text", "text": "ถึงเหมือนกัน"}])
    assert fake_line.texts_to(user) == ["ถึงไหม", "ถึงเหมือนกัน"]
    assert gw.waits == []
