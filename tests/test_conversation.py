"""The conversation engine: declared states, stored in the database, cancel and expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import new_user
from sqlalchemy import select, update

from bot.services import Services
from handlers.conversation import END, STAY, AnyText, Conversation, Keyword, MessageType, Postback
from handlers.i18n import t
from models import ConversationState, utcnow

MENU_TH = t("menu_title", "th")  # the main menu's text


def _ask_name(ctx):
    ctx.reply({"type": "text", "text": "ชื่ออะไรคะ"})
    return "name"


def _got_name(ctx):
    ctx.data["name"] = ctx.text
    ctx.remember_message(ctx.text)
    ctx.reply({"type": "text", "text": f"ส่งรูปได้ไหมคะ {ctx.text}"})
    return "photo"


def _got_photo(ctx):
    ctx.data.setdefault("photos", []).append(ctx.message["id"])
    ctx.reply({"type": "text", "text": f"ได้รับ {len(ctx.data['photos'])} รูป"})
    return STAY


def _done(ctx):
    ctx.reply({"type": "text", "text": f"เสร็จแล้ว {ctx.data['name']} {len(ctx.data.get('photos', []))}"})
    return END


def _reprompt(ctx):
    ctx.reply({"type": "text", "text": "ส่งรูป หรือพิมพ์ เสร็จ"})


exited: list[dict] = []


@pytest.fixture
def demo(services):
    conv = Conversation(
        name="demo",
        entry_points=[(Keyword("ทดสอบ", "demo"), _ask_name), (Postback("demo"), _ask_name)],
        states={
            "name": [(AnyText(), _got_name)],
            "photo": [(MessageType("image"), _got_photo), (Keyword("เสร็จ", "done"), _done)],
        },
        timeout=timedelta(minutes=10),
        reprompt=_reprompt,
        on_exit=lambda ctx: exited.append(dict(ctx.data)),
    )
    engine = services.processor.dispatcher.engine
    engine.add(conv)
    exited.clear()
    yield conv
    engine.conversations.remove(conv)


def _state(services, user):
    with services.db.Session() as s:
        return s.scalar(select(ConversationState).where(ConversationState.line_user_id == user))


def test_a_declared_conversation_runs_through_its_states(bot, demo, services):
    user = new_user()
    bot.text(user, "ทดสอบครับ")
    bot.text(user, "สมชาย")
    assert _state(services, user).state == "photo"
    bot.send(user, "message", message={"type": "image", "id": "p1", "contentProvider": {"type": "line"}})
    bot.send(user, "message", message={"type": "image", "id": "p2", "contentProvider": {"type": "line"}})
    bot.text(user, "อะไรนะ")  # fits no route: reprompt, keep the state
    assert bot.last_text(user) == "ส่งรูป หรือพิมพ์ เสร็จ"
    bot.text(user, "เสร็จ")
    assert bot.texts(user) == ["ชื่ออะไรคะ", "ส่งรูปได้ไหมคะ สมชาย", "ได้รับ 1 รูป", "ได้รับ 2 รูป",
                               "ส่งรูป หรือพิมพ์ เสร็จ", "เสร็จแล้ว สมชาย 2"]
    assert _state(services, user) is None


def test_cancel_discards_the_draft(bot, demo, services):
    user = new_user()
    bot.postback(user, "action=demo")
    bot.text(user, "สมศรี")
    bot.text(user, "ยกเลิก")
    assert _state(services, user) is None
    assert exited and exited[0]["name"] == "สมศรี"
    assert "ยกเลิกแล้ว" in bot.texts(user)[-2]


def test_another_flow_s_button_does_not_throw_a_draft_away(bot, demo, services):
    user = new_user()
    bot.text(user, "demo")
    bot.text(user, "สมชาย")
    bot.send(user, "message", message={"type": "image", "id": "p1", "contentProvider": {"type": "line"}})
    bot.postback(user, "action=gift_helper")  # the rich menu's "I received a gift" in the middle of the draft
    assert bot.last_text(user) == "ส่งรูป หรือพิมพ์ เสร็จ"  # finish or cancel first, the reprompt says
    bot.postback(user, "action=demo")  # the draft's own button again does not restart it either
    assert not exited
    bot.text(user, "เสร็จ")
    assert bot.last_text(user) == "เสร็จแล้ว สมชาย 1"


def test_another_flow_s_button_starts_it_when_nothing_would_be_lost(bot, services):
    user = new_user()
    bot.text(user, "ได้รับของขวัญ")  # the gift helper keeps no draft
    bot.postback(user, "action=complaint")  # the rich menu's "report corruption"
    assert "ทุจริต" in bot.last_text(user)
    assert _state(services, user).conversation == "complaint"


def test_menu_does_not_end_the_conversation(bot, demo, services):
    user = new_user()
    bot.text(user, "demo")
    bot.text(user, "เมนู")
    assert _state(services, user).state == "name"
    bot.text(user, "ก้อง")
    assert bot.last_text(user) == "ส่งรูปได้ไหมคะ ก้อง"


def test_expired_conversation_says_so_politely_and_forgets(bot, demo, services):
    user = new_user()
    bot.text(user, "ทดสอบ")
    bot.text(user, "ดารา")
    with services.db.session() as s:
        s.execute(update(ConversationState).values(expires_at=utcnow() - timedelta(seconds=1)))
    bot.text(user, "เสร็จ")  # the answer to the step it was at: it answers nothing now
    assert "หมดเวลา" in bot.texts(user)[-2] and bot.last_text(user) == MENU_TH  # not the Q&A's reading of "เสร็จ"
    state = _state(services, user)  # the demo's draft is gone
    assert state is None or state.conversation != demo.name
    assert exited and exited[-1]["name"] == "ดารา"
    bot.text(user, "ทดสอบ")
    bot.text(user, "ดารา")
    with services.db.session() as s:
        s.execute(update(ConversationState).values(expires_at=utcnow() - timedelta(seconds=1)))
    bot.text(user, "รับของขวัญจากญาติได้ไหม")  # a new question after a timeout is still answered
    assert "หมดเวลา" in " ".join(bot.texts(user)[-3:]) and bot.last_text(user) != MENU_TH


def test_any_worker_continues_any_conversation(bot, demo, services):
    user = new_user()
    bot.text(user, "ทดสอบ")
    other = Services(services.settings)
    other.processor.dispatcher.engine.add(demo)
    try:
        bot.text(user, "วิไล", drain=False)
        other.processor.drain()  # a different process picks the next step up from the database
    finally:
        other.close()
    assert bot.last_text(user) == "ส่งรูปได้ไหมคะ วิไล"


def test_unsend_erases_what_the_draft_remembered(bot, demo, services):
    user = new_user()
    bot.text(user, "ทดสอบ")
    ev = bot.text(user, "ชื่อจริงของฉัน")
    assert ev["message"]["id"] in _state(services, user).data["_messages"]
    bot.send(user, "unsend", unsend={"messageId": ev["message"]["id"]})
    assert _state(services, user).data["_messages"] == {}


def test_every_catalog_text_has_thai_and_english():
    from handlers.i18n import catalog

    for key, entry in catalog().items():
        assert entry.get("th") and entry.get("en"), key
