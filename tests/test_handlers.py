"""What people see: greeting, menu, language, groups, unsend, and every event LINE can send."""

from __future__ import annotations

import line_samples
import pytest
from conftest import new_user
from sqlalchemy import select

from handlers.text import normalize
from models import ConversationState, LineGroup, LineUser, WebhookEvent
from models.event import DONE


def _user(services, uid):
    with services.db.Session() as s:
        return s.scalar(select(LineUser).where(LineUser.line_user_id == uid))


def test_follow_greets_in_thai_with_english_privacy_and_menu(bot, fake_line, services):
    user = new_user()
    bot.follow(user)
    (reply,) = fake_line.calls("/v2/bot/message/reply")
    greeting, privacy, menu = reply.json["messages"]
    assert "สวัสดีค่ะ" in greeting["text"] and "Hello and welcome" in greeting["text"]
    assert "สำนักงานเขตทดสอบ" in greeting["text"]
    assert privacy["text"].startswith("ความเป็นส่วนตัว") and "Privacy:" not in privacy["text"]  # the profile: Thai
    labels = [i["action"]["label"] for i in menu["quickReply"]["items"]]
    assert "ITA คืออะไร" in labels and "English" in labels
    u = _user(services, user)
    assert u.following and u.followed_at is not None and u.language == "th"


def test_with_no_language_in_the_line_profile_the_privacy_notice_comes_in_both(bot, fake_line, services):
    # As in the simulator, which has no LINE profile to read (an exploratory tester found it in Thai only).
    user = new_user()
    fake_line.profiles[user] = {"displayName": "x"}
    bot.follow(user)
    privacy = fake_line.calls("/reply")[0].json["messages"][1]["text"]
    assert privacy.startswith("ความเป็นส่วนตัว") and "Privacy:" in privacy


def test_language_comes_from_the_line_profile(bot, fake_line, services):
    user = new_user()
    fake_line.profiles[user] = {"language": "en"}
    bot.follow(user)
    privacy = fake_line.calls("/reply")[0].json["messages"][1]["text"]
    assert privacy.startswith("Privacy:")
    assert _user(services, user).language == "en"


def test_typing_english_or_thai_switches_language_and_sticks(bot, services):
    user = new_user()
    bot.text(user, "English")
    assert bot.texts(user)[0] == "I will answer in English from now on."
    bot.text(user, "menu")
    assert bot.last_text(user) == "What would you like to do? 👇"
    bot.text(user, "ภาษาไทย")
    assert "ภาษาไทย" in bot.texts(user)[-2]
    assert _user(services, user).language == "th"


def test_thai_digits_particles_and_zero_width_are_understood():
    assert normalize("เมนูครับ") == "เมนู"
    assert normalize("  เมนู\u200b ค่ะ ") == "เมนู"
    assert normalize("สถานะ ๑๒๓๔") == "สถานะ 1234"
    assert normalize("MENU") == "menu"


def test_menu_keyword_with_particle_and_button_do_the_same(bot):
    a, b = new_user(), new_user()
    bot.text(a, "เมนูค่ะ")
    bot.postback(b, "action=menu")
    assert bot.texts(a) == bot.texts(b) == ["เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"]


def test_rich_menu_buttons_answer(bot):
    user = new_user()
    bot.postback(user, "action=about&src=richmenu")
    assert "ป.ป.ช." in bot.last_text(user)
    bot.postback(user, "action=privacy&src=richmenu")
    assert "พ.ร.บ.คุ้มครองข้อมูลส่วนบุคคล" in bot.last_text(user)


def test_unknown_text_and_stale_buttons_get_a_clear_answer(bot):
    user = new_user()
    bot.text(user, "asdfgh")  # free text is a question: not sure → the closest answers and an officer
    assert bot.texts(user)[0].startswith("ขอโทษค่ะ ไม่แน่ใจ")
    bot.postback(user, "action=does-not-exist")
    assert "ปุ่มนี้ใช้ไม่ได้แล้ว" in bot.texts(user)[1]


@pytest.mark.parametrize("kind,expected", [("image", "ไม่ได้รอรับไฟล์"), ("file", "ไม่ได้รอรับไฟล์"),
                                           ("location", "ไม่ได้รอรับตำแหน่ง"), ("sticker", "เมนู")])
def test_media_outside_a_flow_gets_a_friendly_answer(bot, kind, expected):
    user = new_user()
    msg = {"type": kind, "id": "123"}
    if kind == "location":
        msg.update(latitude=13.7, longitude=100.5, address="x")
    if kind == "sticker":
        msg.update(packageId="1", stickerId="1", stickerResourceType="STATIC")
    bot.send(user, "message", message=msg)
    assert expected in bot.last_text(user)


def test_unfollow_marks_inactive_and_erases_any_draft(bot, services):
    user = new_user()
    bot.follow(user)
    with services.db.session() as s:
        s.add(ConversationState(office_id=1, line_user_id=user, conversation="x", state="y", data={"a": 1},
                                expires_at=__import__("models").utcnow()))
    bot.send(user, "unfollow")
    u = _user(services, user)
    assert not u.following and u.unfollowed_at is not None
    with services.db.Session() as s:
        assert s.scalars(select(ConversationState)).all() == []


def test_group_join_and_leave_are_recorded_and_group_chatter_is_ignored(bot, fake_line, services):
    gid = "C" + "1" * 32
    src = {"type": "group", "groupId": gid}
    bot.send("-", "join", source=src)
    assert "เข้าร่วมกลุ่มแล้ว" in fake_line.calls("/reply")[0].json["messages"][0]["text"]
    bot.send("-", "message", source=dict(src, userId=new_user()),
             message={"type": "text", "id": "9", "text": "ประชุมกี่โมง", "quoteToken": "q"})
    assert len(fake_line.calls("/reply")) == 1  # nothing said to the group's conversation
    bot.send("-", "leave", source=src)
    with services.db.Session() as s:
        g = s.scalar(select(LineGroup))
        assert g.group_id == gid and not g.active and g.left_at is not None


def test_unsend_removes_the_message_from_a_draft(bot, services):
    from handlers.dispatcher import UNSEND_HOOKS

    user = new_user()
    with services.db.session() as s:
        s.add(ConversationState(office_id=1, line_user_id=user, conversation="x", state="y",
                                data={"_messages": {"m-1": "ข้อความที่ถอน", "m-2": "เก็บไว้"}},
                                expires_at=__import__("models").utcnow()))
    erased = []
    UNSEND_HOOKS.append(lambda ctx, mid: erased.append(mid))
    try:
        bot.send(user, "unsend", unsend={"messageId": "m-1"})
    finally:
        UNSEND_HOOKS.pop()
    with services.db.Session() as s:
        state = s.scalar(select(ConversationState))
    assert state.data["_messages"] == {"m-2": "เก็บไว้"}
    assert erased == ["m-1"]


def test_every_event_type_in_line_s_spec_is_accepted(bot, services, fake_line):
    samples = line_samples.sample_events()
    for _name, event in samples:
        line_samples.validate_event(event)
    resp = bot.deliver([e for _, e in samples])
    assert resp.status_code == 200
    bot.drain()
    with services.db.Session() as s:
        statuses = s.scalars(select(WebhookEvent.status)).all()
    assert len(statuses) == len(samples)
    assert set(statuses) == {DONE}


@pytest.mark.parametrize("text,label", [
    ("สิ่งแวดล้อมและสุขาภิบาล", "สิ่งแวดล้อมและสุขา…"),  # not "…สุขาภ…" without its vowel, nor cut without a sign
    ("Environment and Sanitation", "Environment and San…"),
    ("No Gift Policy ของ กทม. คืออะไร", "No Gift Policy ของ…"),  # no space before the "…"
    ("ได้รับของขวัญ", "ได้รับของขวัญ"),
])
def test_long_button_labels_are_cut_at_a_whole_letter_and_end_in_an_ellipsis(text, label):
    # An exploratory tester saw "สิ่งแวดล้อมและสุขาภิ" and "Community Developmen" cut with no sign.
    from handlers.context import fit_label

    assert fit_label(text) == label and len(fit_label(text)) <= 20
