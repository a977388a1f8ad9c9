"""The simulator's API: same pipeline as LINE, clear errors for bad input, off with a real channel."""

from __future__ import annotations

import shutil

import pytest
from conftest import new_user


@pytest.fixture
def sim(tmp_path, _sqlite_template):
    from bot.app import create_app
    from bot.config import load_settings

    db = tmp_path / "s.sqlite3"
    shutil.copy(_sqlite_template, db)
    app = create_app(load_settings({"ITABOT_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{db}"}),
                     start_worker=False)
    yield app
    app.extensions["itabot"].close()


def _out(client, user):
    msgs = client.get(f"/simulator/api/default/messages?user={user}").json["messages"]
    return [m["message"] for m in msgs if m["direction"] == "out"]


def test_events_go_through_the_signed_webhook_and_replies_come_back(sim):
    c = sim.test_client()
    user = new_user()
    r = c.post("/simulator/api/default/events", json={"user": user, "type": "text", "text": "เมนู"})
    assert r.json == {"webhook_status": 200, "event_type": "message"}
    sim.extensions["itabot"].processor.drain()
    assert _out(c, user)[0]["text"] == "เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"
    assert c.get("/simulator").status_code == 200


@pytest.mark.parametrize("body,status", [
    ({"user": "nobody", "type": "text", "text": "x"}, 400),
    ({"user": "U" + "0" * 32, "type": "text", "text": "   "}, 400),
    ({"user": "U" + "0" * 32, "type": "text", "text": "ก" * 5001}, 400),
    ({"user": "U" + "0" * 32, "type": "text", "text": "🍎" * 2501}, 400),  # 5,002 UTF-16 units, as LINE counts
    ({"user": "U" + "0" * 32, "type": "teleport"}, 400),
    ({"user": "U" + "0" * 32, "type": "location", "latitude": "north"}, 400),
    ({"user": "U" + "0" * 32, "type": "unsend"}, 400),
])
def test_bad_input_is_a_clear_400(sim, body, status):
    assert sim.test_client().post("/simulator/api/default/events", json=body).status_code == status


def test_simulated_line_keeps_reply_tokens_single_use_and_retry_keys_idempotent(sim):
    services = sim.extensions["itabot"]
    gw = services.gateway(1)
    user = new_user()
    c = sim.test_client()
    c.post("/simulator/api/default/events", json={"user": user, "type": "follow"})
    services.processor.drain()
    with services.db.Session() as s:
        from sqlalchemy import select

        from models import SimReplyToken

        token = s.scalar(select(SimReplyToken.token))
    # The token was used by the greeting: a second reply falls back to push.
    result = gw.reply_or_push(token, user, [{"type": "text", "text": "อีกครั้ง"}], retry_key="k")
    assert result.kind == "push"
    again = gw.push(user, [{"type": "text", "text": "อีกครั้ง"}], retry_key="k")
    assert again.status == "duplicate"
    assert [m["text"] for m in _out(c, user)][-1] == "อีกครั้ง"
    assert sum(m.get("text") == "อีกครั้ง" for m in _out(c, user)) == 1


def test_simulator_is_off_with_a_real_channel(app):
    assert app.test_client().get("/simulator").status_code == 404
