"""What people really type into the gift helper and the gift register: amounts ("5 พันบาท", "10k",
"3000.00", "ประมาณ 2,000 บาท"), dates ("15 พ.ย. 69", "เมื่อวาน", "Nov 15"), choices in words
("ผู้รับเหมา", "หัวหน้า", "ปีใหม่", "ใช่", "ไม่รู้"), and answers that name nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from conftest import new_user
from sqlalchemy import select

from bot.thaidate import parse_thai_date
from handlers.i18n import t
from handlers.integrity import TYPED_CHOICES, typed_choice, value_answer
from handlers.text import parse_amount, parse_baht
from integrity import gifts
from integrity.store import GIFT_ACTIONS
from models import GiftReport
from surveys import campaigns

TODAY = date(2026, 11, 22)  # a Sunday; the register refuses days after it


@pytest.fixture
def today(monkeypatch):
    monkeypatch.setattr(campaigns, "today_bangkok", lambda: TODAY)
    return TODAY


# -- the amount parser -----------------------------------------------------------------------------

@pytest.mark.parametrize("typed,baht", [
    ("2500", 2500), ("๕๐๐ บาท", 500), ("๑,๕๐๐", 1500), ("2,000", 2000), ("1,500.50", 1501), ("3000.00", 3000),
    ("3000.49", 3000), ("999,999,999", 999_999_999),
    ("ประมาณ 2,000 บาท", 2000), ("มูลค่าประมาณ 2,000 บาท", 2000), ("ราวๆ 500 บาท", 500), ("about 2000 baht", 2000),
    ("around 1500", 1500), ("~2000", 2000), ("฿2,000", 2000), ("THB 2000", 2000), ("2000thb", 2000),
    ("2,000.-", 2000), ("2000 บาทครับ", 2000), ("2000.", 2000),
    ("5 พันบาท", 5000), ("5พัน", 5000), ("สองพัน", 2000), ("หนึ่งหมื่น", 10_000), ("1.5 หมื่น", 15_000),
    ("ห้าร้อย", 500), ("สามพันห้าร้อย", 3500), ("ประมาณสองพันบาทค่ะ", 2000), ("ยี่สิบเอ็ด", 21),
    ("ร้อยยี่สิบ", 120), ("หนึ่งล้านห้าแสน", 1_500_000), ("3 พัน 500", 3500), ("พันนึง", 1000),
    ("สองพันห้า", 2500),  # as spoken: the next place down
    ("2k", 2000), ("10k", 10_000), ("2.5k", 2500), ("2.5K", 2500), ("2 thousand", 2000), ("0", 0),
])
def test_amounts_as_people_type_them(typed, baht):
    assert parse_baht(typed) == baht


@pytest.mark.parametrize("typed", [
    "", "บาท", "k", "abc", "กระเช้า 2000", "2000-3000", "2 3", "-500", "1.500", "2,00", "1,5000", "1e5",
    "ร้อยห้า",  # 105 or 150?
    "ห้าร้อยสองพัน", "สองพันกว่าบาท", "1000000000", "2kg", "สองสาม",
])
def test_what_is_not_plainly_one_amount_is_not_read(typed):
    assert parse_baht(typed) is None


def test_satang_are_kept_exactly_for_the_limit():
    assert parse_amount("3000.00") == 3000 and parse_amount("3,000.50") == Decimal("3000.50")
    assert gifts.value_of(parse_amount("3000.00")) == "small" and gifts.value_of(parse_amount("3,000.50")) == "large"


@pytest.mark.parametrize("typed,value", [
    ("5 พันบาท", "large"), ("10k", "large"), ("3000.00", "small"), ("3000", "small"), ("3001", "large"),
    ("ประมาณ 2,000 บาท", "small"), ("สองพัน", "small"), ("1.5 หมื่น", "large"), ("ห้าร้อย", "small"),
    ("สามพันห้าร้อย", "large"), ("2.5k", "small"), ("ไม่เกิน 2,000", "small"), ("ไม่เกิน 5000", "unsure"),
    ("เกิน 5 พัน", "large"), ("less than 1000", "small"), ("more than 3000", "large"), ("over 1000", "unsure"),
    ("สองพันกว่าบาท", "small"), ("สามพันกว่า", "large"), ("ไม่แน่ใจ", "unsure"), ("ไม่รู้", "unsure"),
    ("not sure", "unsure"), ("I don’t know", "unsure"), ("0", None), ("ของกิน", None),
])
def test_the_helper_reads_a_typed_value(typed, value):
    assert value_answer(typed) == value


# -- dates --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed,expected", [
    ("15 พ.ย. 69", date(2026, 11, 15)), ("15 พ.ย. 2569", date(2026, 11, 15)), ("15 พย 69", date(2026, 11, 15)),
    ("15 พ.ย 2569", date(2026, 11, 15)), ("15พ.ย.69", date(2026, 11, 15)), ("๑๕ พ.ย. ๒๕๖๙", date(2026, 11, 15)),
    ("15 พฤศจิกายน 2569", date(2026, 11, 15)), ("15 พฤศจิกายน พ.ศ. 2569", date(2026, 11, 15)),
    ("วันที่ 15 พ.ย. 2569", date(2026, 11, 15)), ("15 พฤศจิกา", date(2026, 11, 15)),
    ("15 Nov 2026", date(2026, 11, 15)), ("November 15, 2026", date(2026, 11, 15)), ("Nov 15", date(2026, 11, 15)),
    ("15th Nov", date(2026, 11, 15)), ("15/11", date(2026, 11, 15)), ("3 ม.ค. 2570", date(2027, 1, 3)),
    ("25 ธ.ค.", date(2025, 12, 25)),  # no year: the latest 25 December not after today
    ("29 ก.พ.", date(2024, 2, 29)),
    ("15/11/2569", date(2026, 11, 15)), ("2026-11-15", date(2026, 11, 15)), ("15/11/69", date(2026, 11, 15)),
])
def test_dates_with_month_names_and_no_year(typed, expected):
    assert parse_thai_date(typed, TODAY) == expected


@pytest.mark.parametrize("typed,days", [("วันนี้", 0), ("today", 0), ("เมื่อวาน", 1), ("วานนี้", 1), ("Yesterday", 1),
                                        ("เมื่อวานนี้ค่ะ", 1), ("เมื่อวานซืน", 2), ("3 วันก่อน", 3), ("2 days ago", 2),
                                        ("พรุ่งนี้", -1), ("tomorrow", -1)])
def test_relative_days_when_asked_for(typed, days):
    assert (TODAY - parse_thai_date(typed, TODAY, relative=True)).days == days
    assert parse_thai_date(typed, TODAY) is None  # a complaint keeps "เมื่อวาน" as the person's words


@pytest.mark.parametrize("typed", ["31 พ.ย. 2569", "15 foo", "15", "2569", "Nov", "15 พ.ย. 1500"])
def test_not_dates(typed):
    assert parse_thai_date(typed, TODAY) is None


# -- choices typed in words ------------------------------------------------------------------------

@pytest.mark.parametrize("prefix,typed,choice", [
    ("gift_giver", "ผู้รับเหมา", "contractor"), ("gift_giver", "ผรม.", "contractor"),
    ("gift_giver", "คู่สัญญา", "contractor"), ("gift_giver", "ผู้ยื่นประมูล", "contractor"),
    ("gift_giver", "ผู้รับเหมาค่ะ", "contractor"), ("gift_giver", "จากหัวหน้าครับ", "colleague"),
    ("gift_giver", "หัวหน้า", "colleague"), ("gift_giver", "ลูกน้อง", "colleague"),
    ("gift_giver", "ผู้ใต้บังคับบัญชา", "colleague"), ("gift_giver", "เพื่อนร่วมงาน", "colleague"),
    ("gift_giver", "my boss", "colleague"), ("gift_giver", "ญาติ", "relative"), ("gift_giver", "แม่", "relative"),
    ("gift_giver", "ลุง", "relative"), ("gift_giver", "ป้า", "relative"), ("gift_giver", "น้อง", "relative"),
    ("gift_giver", "a contractor", "contractor"), ("gift_giver", "ประชาชน", "served"),
    ("gift_giver", "ไม่รู้", None), ("gift_giver", "ไม่ใช่ญาติ", None),
    ("gift_giver", "รับกระเช้าจากผู้รับเหมาได้ไหม", None),
    ("gift_occ", "ปีใหม่", "festival"), ("gift_occ", "สงกรานต์", "festival"), ("gift_occ", "ตรุษจีน", "festival"),
    ("gift_occ", "Chinese New Year", "festival"), ("gift_occ", "วันเกิด", "personal"),
    ("gift_occ", "แต่งงาน", "personal"), ("gift_occ", "บวช", "personal"), ("gift_occ", "for my birthday", "personal"),
    ("gift_duty", "ใช่", "yes"), ("gift_duty", "ใช่ค่ะ", "yes"), ("gift_duty", "เกี่ยว", "yes"),
    ("gift_duty", "Yes", "yes"), ("gift_duty", "ไม่", "no"), ("gift_duty", "ไม่ใช่", "no"), ("gift_duty", "no", "no"),
    ("gift_duty", "ไม่แน่ใจ", "unsure"), ("gift_duty", "ไม่รู้", "unsure"), ("gift_duty", "not sure", "unsure"),
    ("gr_act", "คืนแล้ว", "returned"), ("gr_act", "ปฏิเสธ", "declined"), ("gr_act", "เก็บไว้", "kept_reported"),
    ("gr_act", "handed over", "handed_over"),
])
def test_a_typed_word_names_its_choice(prefix, typed, choice):
    options = {"gift_giver": gifts.GIVERS, "gift_occ": gifts.OCCASIONS, "gift_duty": gifts.DUTIES,
               "gr_act": GIFT_ACTIONS}[prefix]
    assert typed_choice(typed, prefix, options) == choice


def test_no_typed_word_names_two_choices():
    from handlers.integrity import _typed_words

    for prefix, choices in TYPED_CHOICES.items():
        options = {"gift_val": gifts.VALUES}.get(prefix, tuple(choices))
        for i, a in enumerate(options):
            for b in options[i + 1:]:
                assert not _typed_words(prefix, a) & _typed_words(prefix, b), (prefix, a, b)


# -- the gift helper on LINE -------------------------------------------------------------------------

def _labels(bot, user) -> list[str]:
    return [q["action"]["label"] for q in bot.fake.sent_to(user)[-1]["quickReply"]["items"]]


def _helper(bot, user, *answers: str) -> str:
    bot.text(user, "ได้รับของขวัญ")
    for a in answers:
        bot.text(user, a)
    return bot.last_text(user)


@pytest.mark.parametrize("value,headline", [
    ("5 พันบาท", "❌ เกิน 3,000 บาท"),  # was read as 5
    ("10k", "❌ เกิน 3,000 บาท"),  # was read as 10
    ("3000.00", "⚠️ กฎหมายอนุญาต"),  # was read as 300000
    ("ประมาณ 2,000 บาท", "⚠️ กฎหมายอนุญาต"),
    ("สามพันห้าร้อย", "❌ เกิน 3,000 บาท"),
    ("ห้าร้อย", "⚠️ กฎหมายอนุญาต"),
])
def test_a_typed_amount_gives_the_right_verdict(bot, value, headline):
    user = new_user()
    verdict = _helper(bot, user, "คนไม่รู้จัก", "ปีใหม่", value, "ไม่เกี่ยว")
    assert verdict.startswith(headline), verdict


def test_typed_words_walk_through_the_helper(bot):
    user = new_user()
    bot.text(user, "ได้รับของขวัญ")
    bot.text(user, "หัวหน้า")
    assert bot.last_text(user) == t("gift_q_occasion")
    bot.text(user, "ปีใหม่")
    assert bot.last_text(user) == t("gift_q_value")
    bot.text(user, "สองพัน")
    assert bot.last_text(user) == t("gift_q_duties")
    bot.text(user, "ไม่ใช่")
    assert bot.last_text(user).startswith(t("gift_v_colleague_small"))
    user = new_user()
    assert _helper(bot, user, "ผู้รับเหมา", "วันเกิด", "ห้าร้อย", "ไม่รู้").startswith(t("gift_v_contractor"))
    user = new_user()
    assert _helper(bot, user, "ญาติ", "บวช", "10k", "ไม่").startswith(t("gift_v_relative"))
    user = new_user()
    assert _helper(bot, user, "คนอื่น", "ปีใหม่", "1000", "ใช่").startswith(t("gift_v_duty"))


@pytest.mark.parametrize("step", range(4))
def test_an_answer_that_names_nothing_gets_the_buttons_with_a_word(bot, step):
    user = new_user()
    answers = ["ผู้รับเหมา", "ปีใหม่", "ห้าร้อย", "ใช่"]
    questions = ["gift_q_giver", "gift_q_occasion", "gift_q_value", "gift_q_duties"]
    _helper(bot, user, *answers[:step])
    bot.text(user, "รับกระเช้าจากผู้รับเหมาได้ไหมครับ")  # a real question mid-flow
    said = bot.last_text(user)
    why = "gift_bad_value" if step == 2 else "pick_a_button"
    assert said == f"{t(why)}\n\n{t(questions[step])}"
    assert "ยกเลิก" in _labels(bot, user) and len(_labels(bot, user)) >= 4
    bot.text(user, answers[step])  # and the flow goes on
    assert t(why) not in bot.last_text(user)


def test_unsure_at_a_step_without_an_unsure_choice(bot):
    user = new_user()
    assert _helper(bot, user, "ไม่รู้").startswith(t("pick_a_button"))


@pytest.mark.parametrize("giver,key", [("คนอื่น", "gift_v_other_unsure"), ("เพื่อนร่วมงาน", "gift_v_colleague_unsure")])
def test_an_unsure_value_says_it_depends_on_the_value(bot, giver, key):
    user = new_user()
    verdict = _helper(bot, user, giver, "ปีใหม่", "ไม่แน่ใจ", "ไม่เกี่ยว")
    assert verdict.startswith("⚠️ ขึ้นอยู่กับมูลค่า: ถ้าของนี้อาจมีมูลค่าเกิน 3,000 บาท")
    assert verdict.startswith(t(key)) and "❌ เกิน 3,000 บาท" not in verdict
    user = new_user()
    bot.text(user, "English")
    verdict = _helper(bot, user, giver.replace("คนอื่น", "someone else").replace("เพื่อนร่วมงาน", "colleague"),
                      "new year", "not sure", "no")
    assert verdict.startswith("⚠️ It depends on the value: if it may be worth more than 3,000 baht")
    assert "Over 3,000 baht" not in verdict


def _enrol(bot, services, user):
    with services.db.session() as s:
        code = campaigns.invite_staff(s, 1, "สมศรี ทดสอบ", "ฝ่ายปกครอง", date(2020, 1, 1))
    bot.text(user, code)


@pytest.mark.parametrize("lang,label", [("th", "รายงานของขวัญ"), ("en", "Report this gift")])
def test_the_report_button_has_a_whole_label(bot, services, lang, label):
    user = new_user()
    _enrol(bot, services, user)
    if lang == "en":
        bot.text(user, "English")
    _helper(bot, user, "3", "1", "5 พันบาท", "3")  # typed numbers still pick the n-th button: contractor
    assert bot.last_text(user).startswith(t("gift_v_contractor", lang))
    labels = _labels(bot, user)
    assert labels[0] == label and all(len(x) <= 20 for x in labels)
    bot.postback(user, "action=gift_report")
    assert bot.last_text(user) == t("gr_q_giver", lang)


# -- the gift register on LINE -------------------------------------------------------------------

def _register(bot, user, *, giver="ผู้รับเหมา", item="กระเช้าผลไม้", value="1500", when="15/11/2569",
              action="คืนแล้ว") -> str:
    bot.text(user, "รายงานของขวัญ")
    for answer in (giver, item, value, when, action):
        bot.text(user, answer)
    return bot.last_text(user)


@pytest.fixture
def staff(bot, services, today):
    user = new_user()
    _enrol(bot, services, user)
    return user


@pytest.mark.parametrize("typed,shown,stored", [
    ("ประมาณ 2,000 บาท", "2,000 บาท", 2000), ("2k", "2,000 บาท", 2000), ("สองพัน", "2,000 บาท", 2000),
    ("1,500.50", "1,501 บาท (ปัดเป็นบาทเต็ม)", 1501), ("5 พันบาท", "5,000 บาท", 5000), ("๑,๕๐๐", "1,500 บาท", 1500),
    ("ไม่ทราบ", "ไม่ทราบมูลค่า", None), ("ไม่แน่ใจ", "ไม่ทราบมูลค่า", None), ("ไม่รู้", "ไม่ทราบมูลค่า", None),
    ("i don't know", "ไม่ทราบมูลค่า", None), ("not sure", "ไม่ทราบมูลค่า", None),
    ("don't know", "ไม่ทราบมูลค่า", None),
])
def test_register_values(bot, services, staff, typed, shown, stored):
    done = _register(bot, staff, value=typed)
    assert done.startswith("บันทึกในทะเบียนของขวัญแล้ว") and f"· {shown} ·" in done, done
    with services.db.Session() as s:
        assert s.scalar(select(GiftReport.value_baht)) == stored


@pytest.mark.parametrize("typed", ["0", "๐", "0 บาท", "ของแพง", "2000-3000"])
def test_register_asks_again_for_a_value_it_cannot_take(bot, services, staff, typed):
    bot.text(staff, "รายงานของขวัญ")
    bot.text(staff, "ผู้รับเหมา")
    bot.text(staff, "กระเช้า")
    bot.text(staff, typed)
    assert bot.last_text(staff) == t("gr_bad_value")
    bot.text(staff, "1500")
    assert bot.last_text(staff) == t("gr_q_date")


@pytest.mark.parametrize("typed,shown", [
    ("15 พ.ย. 69", "15 พ.ย. 2569"), ("15 พ.ย. 2569", "15 พ.ย. 2569"), ("15 พฤศจิกายน 2569", "15 พ.ย. 2569"),
    ("15 พฤศจิกา", "15 พ.ย. 2569"), ("15 Nov 2026", "15 พ.ย. 2569"), ("Nov 15", "15 พ.ย. 2569"),
    ("เมื่อวาน", "21 พ.ย. 2569"), ("วานนี้", "21 พ.ย. 2569"), ("yesterday", "21 พ.ย. 2569"),
    ("เมื่อวานซืน", "20 พ.ย. 2569"), ("วันนี้", "22 พ.ย. 2569"), ("25 ธ.ค.", "25 ธ.ค. 2568"),
])
def test_register_dates(bot, services, staff, typed, shown):
    done = _register(bot, staff, when=typed)
    assert f"· {shown} ·" in done, done


def test_register_refuses_a_date_to_come_and_a_non_date(bot, staff):
    bot.text(staff, "รายงานของขวัญ")
    for answer in ("ผู้รับเหมา", "กระเช้า", "1500"):
        bot.text(staff, answer)
    bot.text(staff, "25 ธ.ค. 2569")
    assert bot.last_text(staff) == t("gr_future_date")
    bot.text(staff, "พรุ่งนี้ค่ะ")  # "not yet", not "not understood"
    assert bot.last_text(staff) == t("gr_future_date")
    bot.text(staff, "เร็ว ๆ นี้")
    assert bot.last_text(staff) == t("gr_bad_date")
    bot.text(staff, "15 พ.ย. 69")
    assert bot.last_text(staff) == t("gr_q_action")


def test_register_choices_in_words_and_answers_that_name_nothing(bot, services, staff):
    bot.text(staff, "รายงานของขวัญ")
    bot.text(staff, "ไม่รู้")
    assert bot.last_text(staff) == f"{t('pick_a_button')}\n\n{t('gr_q_giver')}"
    bot.text(staff, "หัวหน้า")
    assert bot.last_text(staff) == t("gr_q_item")
    for answer in ("แจกันดอกไม้", "2k", "เมื่อวาน"):
        bot.text(staff, answer)
    bot.text(staff, "เอาไปทำอะไรดี")
    assert bot.last_text(staff) == f"{t('pick_a_button')}\n\n{t('gr_q_action')}"
    bot.text(staff, "ส่งคืนแล้ว")
    done = bot.last_text(staff)
    assert "แจกันดอกไม้ · 2,000 บาท · 21 พ.ย. 2569 · ส่งคืนผู้ให้" in done
    with services.db.Session() as s:
        r = s.scalar(select(GiftReport))
        assert (r.giver_type, r.value_baht, r.received_on, r.action) == (
            "colleague", 2000, date(2026, 11, 21), "returned")


def test_every_new_text_has_thai_and_english_and_labels_fit():
    for key in ("pick_a_button", "gift_bad_value", "gift_report_label", "gr_future_date",
                "gift_v_other_unsure", "gift_v_colleague_unsure"):
        assert t(key, "th") and t(key, "en") and t(key, "th") != t(key, "en")
    assert len(t("gift_report_label", "th")) <= 20 and len(t("gift_report_label", "en")) <= 20


def test_the_register_in_english(bot, services, staff):
    bot.text(staff, "English")
    for answer in ("report a gift", "my boss", "a vase", "2k", "yesterday"):
        bot.text(staff, answer)
    bot.text(staff, "what now?")
    assert bot.last_text(staff) == f"{t('pick_a_button', 'en')}\n\n{t('gr_q_action', 'en')}"
    bot.text(staff, "gave it back")
    assert "a vase · 2,000 baht · 21 Nov 2569 BE · Returned" in bot.last_text(staff)


@pytest.mark.parametrize("typed", ["จาก" * 1666, "ให้" * 2500, "a " * 2500, "ประมาณ" * 800, "บาท" * 1666,
                                   "1 " + "พ." * 2500, "9" * 5000 + "กว่า", "สอง" * 1666])
def test_long_odd_messages_are_read_quickly(typed):
    import time

    start = time.perf_counter()
    typed_choice(typed, "gift_giver", gifts.GIVERS)
    value_answer(typed)
    parse_baht(typed)
    parse_thai_date(typed, TODAY, relative=True)
    assert time.perf_counter() - start < 0.5


def test_another_flow_s_keyword_typed_mid_flow_starts_it_but_is_an_answer_where_any_text_is(bot, services, staff):
    """"แจ้งเบาะแส" typed while the gift helper waits for a choice, or while the bot waits for a receipt code,
    starts a report as the button would; "ของขวัญ" typed as what the gift was is what the gift was."""
    user = new_user()
    _helper(bot, user, "ญาติ")
    assert bot.last_text(user) == t("gift_q_occasion", "th")
    bot.text(user, "แจ้งเบาะแส")
    assert bot.last_text(user).startswith("แจ้งเบาะแสการทุจริต")  # the report's first question
    bot.text(user, "ยกเลิก")
    bot.text(user, "ติดตามเรื่อง")
    bot.text(user, "ได้รับของขวัญ")  # not a receipt code: the gift helper, not "no case matches this code"
    assert bot.last_text(user) == t("gift_q_giver", "th")
    bot.text(staff, "รายงานของขวัญ")
    bot.text(staff, "ผู้รับเหมา")
    assert bot.last_text(staff) == t("gr_q_item", "th")
    bot.text(staff, "ของขวัญ")
    assert bot.last_text(staff) == t("gr_q_value", "th")  # taken as the item


def test_a_sticker_in_the_gift_register_gets_that_step_s_question_again(bot, services, staff):
    sticker = {"type": "sticker", "id": "9", "packageId": "1", "stickerId": "1", "stickerResourceType": "STATIC"}
    bot.text(staff, "รายงานของขวัญ")
    bot.text(staff, "ผู้รับเหมา")
    bot.send(staff, "message", message=sticker)
    said = bot.last_text(staff)
    assert said.startswith(t("gr_type_answer", "th")) and said.endswith(t("gr_q_item", "th"))
    assert "เลือกจาก" not in said  # no options to choose from at this step
    bot.text(staff, "กระเช้าผลไม้")
    bot.send(staff, "message", message=dict(sticker, id="10"))
    assert bot.texts(staff)[-2:] == [t("gr_type_answer", "th"), t("gr_q_value", "th")]
    bot.text(staff, "1500")  # and the report goes on from there
    assert bot.last_text(staff) == t("gr_q_date", "th")
