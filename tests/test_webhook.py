"""The webhook: verified before parsing, stored once, acknowledged, then processed once."""

from __future__ import annotations

import io
import json

from conftest import CHANNEL_SECRET, new_user, sign
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from models import WebhookEvent
from models.event import DONE


def _count(services) -> int:
    with services.db.Session() as s:
        return len(s.scalars(select(WebhookEvent.id)).all())


def test_missing_signature_is_rejected_before_anything_is_stored(bot, services):
    body = json.dumps({"destination": "U" + "0" * 32, "events": [bot.event(new_user(), "follow")]}).encode()
    resp = bot.client.post("/callback", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert _count(services) == 0


def test_wrong_signature_is_rejected(bot, services):
    body = json.dumps({"destination": "U" + "0" * 32, "events": [bot.event(new_user(), "follow")]}).encode()
    resp = bot.client.post("/callback", data=body, headers={"X-Line-Signature": sign(body, "f" * 32)})
    assert resp.status_code == 400
    # A signature of a different body does not pass either.
    resp = bot.client.post("/callback", data=body + b" ", headers={"X-Line-Signature": sign(body)})
    assert resp.status_code == 400
    assert _count(services) == 0


def test_signed_garbage_is_a_400_and_unsigned_garbage_too(bot):
    body = b"{not json"
    assert bot.client.post("/callback", data=body, headers={"X-Line-Signature": sign(body)}).status_code == 400
    body = b'{"events": "nope"}'
    assert bot.client.post("/callback", data=body, headers={"X-Line-Signature": sign(body)}).status_code == 400
    body = b"\xff\xfe"
    assert bot.client.post("/callback", data=body, headers={"X-Line-Signature": sign(body)}).status_code == 400


def test_body_over_one_megabyte_is_413(bot):
    body = json.dumps({"events": [], "pad": "x" * (1024 * 1024)}).encode()
    resp = bot.client.post("/callback", data=body, headers={"X-Line-Signature": sign(body)})
    assert resp.status_code == 413


def test_a_chunked_body_over_one_megabyte_is_413_too(bot, services):
    # No Content-Length to refuse it by. gunicorn reads chunked bodies itself and says so (wsgi.input_terminated).
    def post(body: bytes):
        return bot.client.post("/callback", input_stream=io.BytesIO(body),
                               headers={"X-Line-Signature": sign(body), "Transfer-Encoding": "chunked"},
                               environ_overrides={"wsgi.input_terminated": True})

    assert post(json.dumps({"events": [], "pad": "x" * (1024 * 1024)}).encode()).status_code == 413
    assert post(json.dumps({"events": [], "pad": "x" * (1024 * 1024 - 40)}).encode()).status_code == 200


def test_verify_button_gets_200(bot, services):
    body = json.dumps({"destination": "U" + "0" * 32, "events": []}).encode()
    resp = bot.client.post("/callback", data=body, headers={"X-Line-Signature": sign(body)})
    assert resp.status_code == 200
    assert _count(services) == 0


def test_unknown_office_is_404(bot):
    body = b'{"events": []}'
    assert bot.client.post("/callback/nowhere", data=body, headers={"X-Line-Signature": sign(body)}).status_code == 404


def test_redelivered_event_is_stored_and_answered_once(bot, fake_line, services):
    user = new_user()
    ev = bot.event(user, "message", message={"type": "text", "id": "1", "text": "เมนู", "quoteToken": "q"})
    assert bot.deliver([ev]).status_code == 200
    redelivery = dict(ev, deliveryContext={"isRedelivery": True})
    assert bot.deliver([redelivery]).status_code == 200
    assert bot.deliver([ev, ev]).status_code == 200  # and twice in one delivery
    bot.drain()
    assert _count(services) == 1
    assert len(fake_line.calls("/v2/bot/message/reply")) == 1


def test_processing_happens_after_the_answer(bot, fake_line, services):
    user = new_user()
    bot.send(user, "follow", drain=False, follow={"isUnblocked": False})
    assert fake_line.calls("/v2/bot/message") == []  # acknowledged, not yet processed
    bot.drain()
    assert fake_line.calls("/v2/bot/message/reply")


def test_storage_failure_answers_5xx_so_line_redelivers(bot, services, monkeypatch):
    def broken(*a, **k):
        raise OperationalError("INSERT", {}, Exception("database is down"))

    monkeypatch.setattr(services.inbox, "store", broken)
    ev = bot.event(new_user(), "follow")
    assert bot.deliver([ev]).status_code == 503
    monkeypatch.undo()
    assert bot.deliver([ev]).status_code == 200  # LINE's redelivery is then stored
    assert _count(services) == 1


def test_processed_event_keeps_no_text_and_no_user_id(bot, services):
    user = new_user()
    bot.text(user, "มีคนเรียกเงินใต้โต๊ะที่ฝ่ายโยธา")
    with services.db.Session() as s:
        row = s.scalars(select(WebhookEvent)).one()
        assert row.status == DONE
        assert row.payload is None and row.source_key is None
        dump = " ".join(str(v) for v in s.execute(text("select * from webhook_events")).one())
    assert user not in dump
    assert "เงินใต้โต๊ะ" not in dump


def test_each_office_has_its_own_secret_and_path(bot, services, fake_line):
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", "feedfacefeedfacefeedfacefeedface", "test-token")
    body = json.dumps({"events": [bot.event(new_user(), "follow")]}).encode()
    # The default office's secret does not open another office's webhook.
    assert bot.client.post("/callback/nongchok", data=body,
                           headers={"X-Line-Signature": sign(body, CHANNEL_SECRET)}).status_code == 400
    resp = bot.client.post("/callback/nongchok", data=body,
                           headers={"X-Line-Signature": sign(body, "feedfacefeedfacefeedfacefeedface")})
    assert resp.status_code == 200
    with services.db.Session() as s:
        office_ids = s.scalars(select(WebhookEvent.office_id)).all()
    assert office_ids == [services.offices.by_slug("nongchok").id]


def test_an_office_whose_secret_was_saved_under_another_data_key_answers_as_unknown_without_a_500(bot, services,
                                                                                                  caplog):
    from cryptography.fernet import Fernet

    from bot.crypto import DataCipher
    from models import Office

    secret = "feedfacefeedfacefeedfacefeedface"
    oid = services.offices.add("nongchok", "สำนักงานเขตหนองจอก", secret, "test-token")
    other = DataCipher(Fernet.generate_key().decode())  # as if ITABOT_DATA_KEY had been changed since
    with services.db.session() as s:
        office = s.get(Office, oid)
        office.channel_secret_enc, office.access_token_enc = other.encrypt(secret), other.encrypt("test-token")
    services.offices.invalidate()
    body = json.dumps({"events": [bot.event(new_user(), "follow")]}).encode()
    caplog.clear()
    for key in (secret, ""):  # the real secret cannot be checked; an empty one must not open it either
        resp = bot.client.post("/callback/nongchok", data=body, headers={"X-Line-Signature": sign(body, key)})
        assert resp.status_code == 404 and resp.get_data(as_text=True) == "unknown office"
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and all(f"office {oid}:" in r.getMessage() for r in errors)
    assert secret not in caplog.text and "test-token" not in caplog.text and "Traceback" not in caplog.text
    assert _count(services) == 0
    assert bot.client.post("/callback", data=b'{"events": []}',
                           headers={"X-Line-Signature": sign(b'{"events": []}')}).status_code == 200  # others work
    health = bot.client.get("/healthz")  # what a monitor sees: still up, but one office is deaf
    assert health.status_code == 200
    assert health.json["status"] == "degraded" and health.json["offices_unreadable"] == [oid]


def test_a_replayed_capture_older_than_line_redelivers_is_ignored(bot, services, fake_line):
    import time

    ev = bot.event(new_user(), "follow")
    ev["timestamp"] = int((time.time() - 8 * 86400) * 1000)
    assert bot.deliver([ev]).status_code == 200
    bot.drain()
    assert _count(services) == 0 and fake_line.calls("/reply") == []


def test_unknown_slugs_cost_nothing_and_are_not_remembered(bot, services):
    body = b'{"events": []}'
    for slug in ("no-such-office", "../etc", "x" * 200):
        resp = bot.client.post(f"/callback/{slug}", data=body, headers={"X-Line-Signature": sign(body)})
        assert resp.status_code == 404
    assert "no-such-office" not in services.offices._by_slug


def test_line_s_deliveries_open_no_cookie_session_and_the_console_s_requests_do(app):
    """The webhook never reads or writes the console's session cookie (Flask would otherwise open it for every
    delivery): it gets Flask's null session, which refuses writes; the console keeps its signed session."""
    from flask import session
    from flask.sessions import NullSession

    for path in ("/callback", "/callback/some-office"):
        with app.test_request_context(path, method="POST", headers={"Cookie": "itabot_session=forged"}):
            assert isinstance(session._get_current_object(), NullSession)
    with app.test_request_context("/console/login"):
        assert not isinstance(session._get_current_object(), NullSession)
        session["probe"] = 1  # a real session takes writes
