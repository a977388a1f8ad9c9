"""Logs are structured, carry a request id, and never contain message text, user IDs or secrets."""

from __future__ import annotations

import io
import json
import logging

from conftest import CHANNEL_SECRET, new_user
from fakeline import Fault

from bot.logs import JsonFormatter


def test_a_whole_conversation_leaves_nothing_personal_in_the_logs(bot, fake_line):
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.DEBUG)
    try:
        user = new_user()
        fake_line.faults.append(Fault("/v2/bot/message/reply", 400))  # an error path logs too
        bot.follow(user)
        bot.text(user, "ข้อความลับเรื่องสินบน")
        bot.text(user, "English")
        resp = bot.deliver([bot.event(user, "follow")], secret="f" * 32)
        assert resp.status_code == 400
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    out = buf.getvalue()
    assert out
    for forbidden in (user, "ข้อความลับ", "สินบน", CHANNEL_SECRET, "test-token"):
        assert forbidden not in out
    records = [json.loads(line) for line in out.splitlines()]
    stored = [r for r in records if r["msg"] == "events stored"]
    assert stored and all(r.get("request_id") for r in stored)
    assert any(r["logger"] == "itabot.access" and r["status"] == 400 for r in records)


def test_formatter_drops_fields_that_could_carry_content():
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    rec.user_id = "U123"
    rec.text = "secret words"
    rec.events = 3
    out = json.loads(JsonFormatter().format(rec))
    assert out["events"] == 3 and "user_id" not in out and "text" not in out


def test_exceptions_are_logged_by_class_not_message():
    try:
        raise ValueError("U0123456789abcdef quoted in an error message")
    except ValueError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    out = JsonFormatter().format(rec)
    assert "ValueError" in out and "U0123456789abcdef" not in out
