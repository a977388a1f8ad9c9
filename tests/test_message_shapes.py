"""The texts and quick replies handlers build as plain JSON are exactly what line-bot-sdk's models give."""

from __future__ import annotations

from linebot.v3.messaging import MessageAction, PostbackAction, QuickReply, QuickReplyItem, TextMessage

from handlers.context import TEXT_LIMIT, Context, text_message


def ctx() -> Context:
    return Context(session=None, office_id=1, office_name="สำนักงานเขตทดสอบ", event={}, user=None)


def test_text_with_quick_replies_matches_the_sdk_models():
    c = ctx()
    quick = [c.quick_postback("เมนูหลักของสำนักงานเขต", "action=menu"),
             c.quick_postback("ตอบแล้ว", "action=answered", "ฉันตอบแล้ว"),
             c.quick_message("menu_menu")]
    ours = text_message("สวัสดีค่ะ 👋", quick)
    sdk = TextMessage(text="สวัสดีค่ะ 👋", quickReply=QuickReply(items=[
        QuickReplyItem(action=PostbackAction(label="เมนูหลักของสำนักงานเขต"[:20], data="action=menu",
                                             displayText="เมนูหลักของสำนักงานเขต")),
        QuickReplyItem(action=PostbackAction(label="ตอบแล้ว", data="action=answered", displayText="ฉันตอบแล้ว")),
        QuickReplyItem(action=MessageAction(label=c.t("menu_menu")[:20], text=c.t("menu_menu"))),
    ])).to_dict()
    assert ours == sdk
    assert len(ours["quickReply"]["items"][0]["action"]["label"]) == 20  # LINE's limit for a label


def test_plain_text_long_text_and_sdk_items_mixed_in():
    assert text_message("hello") == TextMessage(text="hello").to_dict()
    long = text_message("ก" * (TEXT_LIMIT + 10))
    assert len(long["text"]) == TEXT_LIMIT and long["text"].endswith("…")
    item = QuickReplyItem(action=MessageAction(label="Menu", text="menu"))
    assert text_message("x", [item])["quickReply"]["items"] == [item.to_dict()]
    assert len(text_message("x", [ctx().quick_postback(str(i), "d") for i in range(20)])["quickReply"]["items"]) == 13


def test_a_reminder_with_its_answered_button_matches_the_sdk_models():
    from surveys.reminders import message

    ours = message("อย่าลืมตอบแบบวัด EIT\nhttps://bot.example.go.th/s/x", "th", 7)
    sdk = TextMessage(text="อย่าลืมตอบแบบวัด EIT\nhttps://bot.example.go.th/s/x", quickReply=QuickReply(items=[
        QuickReplyItem(action=PostbackAction(label="ตอบแล้ว", data="action=survey_done&c=7", displayText="ตอบแล้ว")),
    ])).to_dict()
    assert ours == sdk
    assert message("festival", "en", None) == TextMessage(text="festival").to_dict()  # no survey, no button
    assert len(message("x", "en", 7)["quickReply"]["items"][0]["action"]["label"]) <= 20
