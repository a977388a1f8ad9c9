"""Integrity questions on LINE: free text outside any flow is answered from the office's
knowledge base (with its source), or — when the matcher is not confident — the three closest
entries and "ask an officer"; the gift decision helper; staff's gift register.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import cache

from bot.thaidate import be_date, parse_thai_date
from complaints import receipts
from handlers.context import Context, text_message
from handlers.conversation import STAY, AnyText, Conversation, Engine, Keyword, Postback, postback_data
from handlers.i18n import t as catalog_text
from handlers.text import normalize, parse_amount, parse_baht
from integrity import gifts, store
from surveys import campaigns

MENU_ITEM = ("menu_menu", "action=menu")


def show_answer(ctx: Context, answer: store.Answer, by_id: dict[str, store.Answer]) -> None:
    lines = [answer.answer(ctx.lang).strip()]
    sources = [s.get(ctx.lang) or s.get("th") for s in answer.sources if isinstance(s, dict)]
    if sources:
        lines.append(ctx.t("qa_sources", sources="; ".join(x for x in sources if x)))
    if answer.read_more:
        lines.append(ctx.t("qa_read_more", url=answer.read_more))
    if answer.needs_legal_review:
        lines.append(ctx.t("qa_legal_note"))
    quick = [ctx.quick_postback(by_id[r].title(ctx.lang), f"action=qa&id={r}&lang={ctx.lang}")
             for r in answer.related if r in by_id][:4]
    quick.append(ctx.quick_postback(ctx.t("menu_menu"), "action=menu"))
    ctx.reply(text_message("\n\n".join(lines), quick))
    if answer.id in SURVEY_ENTRIES:  # someone asking about the survey wants its link: the card comes too
        from handlers.surveys import show_survey

        show_survey(ctx)
        ctx.quick_replies_last()


#: Entries whose answer is followed by the survey card (or why there is none open).
SURVEY_ENTRIES = frozenset({"survey.eit", "survey.iit", "survey.deadline"})


_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def question_language(text: str) -> str | None:
    """"th" for a question with Thai in it, "en" for one of two or more Latin-script words, else None (one
    string of letters may be Thai typed on the English keyboard layout)."""
    if any("\u0e00" <= ch <= "\u0e7f" for ch in text):
        return "th"
    return "en" if len(_LATIN_WORD.findall(text)) >= 2 else None


def answer_free_text(ctx: Context) -> str | None:
    """The engine's default: anything typed outside a flow is a question."""
    text = (ctx.text or "").strip()
    if not text:  # blank or invisible characters only: say what can be asked
        qa_intro(ctx)
        return None
    # A question is answered in the language it was asked in (the setting stays as it is).
    ctx.reply_lang = question_language(text)
    if receipts.find_code(text) is not None:
        # A complaint's receipt code is the key to the case: it never goes to the Q&A or its officers' queue.
        ctx.say("qa_receipt_code", quick=[ctx.quick_postback(ctx.t("menu_menu"), "action=menu")])
        return None
    matcher, by_id = store.MATCHERS.get(ctx.session, ctx.office_id)
    result = matcher.match(text)
    if result.small_talk is not None:
        ctx.reply(text_message(ctx.t(f"small_{result.small_talk}"), [
            ctx.quick_postback(ctx.t("menu_menu"), "action=menu"),
            ctx.quick_postback(ctx.t("menu_gift_helper"), "action=gift_helper")]))
        return None
    if not any(ch.isalpha() for ch in text):  # "...", "12345": not a question to guess at or send an officer
        qa_intro(ctx)
        return None
    if result.id is not None and result.id in by_id:
        show_answer(ctx, by_id[result.id], by_id)
        return None
    quick = [ctx.quick_postback(by_id[c].title(ctx.lang), f"action=qa&id={c}&lang={ctx.lang}")
             for c, _ in result.candidates[:3] if c in by_id]
    quick.append(ctx.quick_postback(ctx.t("qa_ask_officer"), "action=qa_ask"))
    # A report typed as a question belongs in the complaint channel, not the questions queue.
    quick.append(ctx.quick_postback(ctx.t("menu_complaint"), "action=complaint"))
    quick.append(ctx.quick_postback(ctx.t("menu_menu"), "action=menu"))
    ctx.reply(text_message(ctx.t("qa_not_sure"), quick))
    # Kept under the message's id, so that an unsend erases it before anyone can tap "ask an officer".
    ctx.data = {"lang": ctx.lang}
    if isinstance(ctx.message.get("id"), str):
        ctx.remember_message(text[: store.QUESTION_MAX])
    else:
        ctx.data["q"] = text[: store.QUESTION_MAX]
    return "offered"


def entry_tapped(ctx: Context) -> str | None:
    if postback_data(ctx).get("lang") in ("th", "en"):  # the language the question was asked in
        ctx.reply_lang = postback_data(ctx)["lang"]
    key = postback_data(ctx).get("id", "")
    _, by_id = store.MATCHERS.get(ctx.session, ctx.office_id)
    if key in by_id:
        show_answer(ctx, by_id[key], by_id)
    else:
        ctx.say("postback_unknown")
    return None


def ask_officer(ctx: Context) -> str | None:
    data = ctx.data or {}
    if data.get("lang") in ("th", "en"):
        ctx.reply_lang = data["lang"]
    message_id, question = next(iter((data.get("_messages") or {}).items()), (None, data.get("q")))
    if not question:  # nothing asked yet, or the question was unsent
        ctx.say("qa_nothing_to_ask")
        return None
    store.ask_officer(ctx.session, ctx.office_id, question, ctx.user_id, ctx.lang, ctx.cipher, message_id)
    ctx.say("qa_asked")
    return None


def on_unsend(ctx: Context, message_id: str) -> None:
    """The person unsent a question they had sent to an officer: it leaves the queue."""
    store.forget_message(ctx.session, ctx.office_id, store.message_key(ctx.cipher, ctx.office_id, message_id))


def qa_intro(ctx: Context) -> None:
    ctx.reply(text_message(ctx.t("qa_intro"), [
        ctx.quick_postback(ctx.t("menu_gift_helper"), "action=gift_helper"),
        ctx.quick_postback(ctx.t("menu_menu"), "action=menu")]))


QA = Conversation(
    name="qa",
    # "Ask about gifts" says "type your question": the next text must reach the Q&A, so the tap is an entry point
    # (it leaves a flow in progress, as other flows' buttons do, or is reminded of a report's draft) and not a
    # button that leaves the flow waiting for that text.
    entry_points=[(Postback("qa_intro"), qa_intro)],
    # Anything else typed while "ask an officer" is on offer is handled afresh (a keyword, or a
    # new question).
    states={"offered": [(Postback("qa_ask"), ask_officer), (Postback("qa"), entry_tapped)]},
    timeout=timedelta(minutes=30),
    release_unmatched=True,
)


# -- the gift decision helper --------------------------------------------------------------

# Don't-know answers, in either language (compared after ``normalize``).
UNSURE_WORDS = ("ไม่แน่ใจ", "ไม่รู้", "ไม่ทราบ", "ไม่รู้สิ", "ไม่รู้เหมือนกัน", "ไม่แน่ใจเหมือนกัน", "บอกไม่ได้",
                "ตอบไม่ได้", "จำไม่ได้", "not sure", "unsure", "i'm not sure", "im not sure", "don't know",
                "dont know", "i don't know", "i dont know", "no idea", "unknown")
# What people type for a choice instead of tapping it, by the choice's label prefix: beside the labels
# themselves (Thai and English) and the choices' numbers. Whole answers only, so "ไม่ใช่ญาติ" is not
# "relative"; an answer that names nothing gets the buttons again with a word on why.
TYPED_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "gift_giver": {
        "relative": ("ญาติ", "ญาติพี่น้อง", "พี่น้อง", "ครอบครัว", "คนในครอบครัว", "พ่อ", "แม่", "พ่อแม่", "พี่", "น้อง", "พี่ชาย",
                     "พี่สาว", "น้องชาย", "น้องสาว", "ลุง", "ป้า", "น้า", "อา", "ปู่", "ย่า", "ตา", "ยาย", "ลูก",
                     "หลาน", "สามี", "ภรรยา", "แฟน", "relative", "family", "my family", "a family member",
                     "mother", "father", "mom", "mum", "dad", "parents", "brother", "sister", "aunt", "uncle",
                     "cousin", "grandmother", "grandfather", "wife", "husband"),
        "served": ("ผู้มารับบริการ", "ผู้รับบริการ", "ผู้ใช้บริการ", "ผู้มาติดต่อ", "ผู้มาติดต่อราชการ", "คนมาติดต่อ",
                   "คนที่มาติดต่อ", "คนที่มาติดต่องาน", "ประชาชน", "ชาวบ้าน", "someone i served",
                   "a person i served", "citizen", "a citizen", "member of the public", "the public", "resident",
                   "a resident", "service user", "client", "customer"),
        "contractor": ("ผู้รับเหมา", "ผรม", "ผรม.", "ผ.ร.ม.", "คู่สัญญา", "บริษัทคู่สัญญา", "ผู้ยื่นประมูล",
                       "ผู้ประมูล", "ผู้เสนอราคา", "ผู้ยื่นข้อเสนอ", "ผู้รับจ้าง", "บริษัทรับเหมา", "contractor",
                       "a contractor", "bidder", "a bidder", "supplier", "a supplier", "vendor", "a vendor"),
        "colleague": ("เพื่อนร่วมงาน", "หัวหน้า", "หัวหน้างาน", "ผู้บังคับบัญชา", "ผู้บังคับบัญชา", "เจ้านาย", "ผอ.",
                      "ผอ", "ผู้อำนวยการ", "ผู้อำนวยการเขต", "ลูกน้อง", "ผู้ใต้บังคับบัญชา", "ผู้ใต้บังคับบัญชา",
                      "เพื่อนที่ทำงาน", "colleague", "a colleague", "coworker", "co-worker", "a coworker", "boss",
                      "my boss", "superior", "my superior", "manager", "my manager", "subordinate",
                      "a subordinate", "my subordinate"),
        "other": ("บุคคลอื่น", "คนอื่น", "อื่นๆ", "อื่น ๆ", "อื่น", "เพื่อน", "คนรู้จัก", "คนไม่รู้จัก", "someone else",
                  "other", "others", "somebody else", "a friend", "friend", "stranger", "a stranger"),
    },
    "gift_occ": {
        "festival": ("เทศกาล", "ปีใหม่", "วันปีใหม่", "ส่งท้ายปีเก่า", "สงกรานต์", "ตรุษจีน", "คริสต์มาส", "คริสมาส",
                     "วันหยุด", "ไหว้พระจันทร์", "สารทจีน", "ฮารีรายอ", "festival", "a festival", "new year",
                     "new year's", "christmas", "songkran", "chinese new year", "lunar new year", "holiday",
                     "the holidays", "eid"),
        "personal": ("โอกาสส่วนตัว", "ส่วนตัว", "วันเกิด", "แต่งงาน", "งานแต่ง", "งานแต่งงาน", "บวช", "งานบวช",
                     "ขึ้นบ้านใหม่", "เกษียณ", "งานเกษียณ", "เลื่อนตำแหน่ง", "ย้ายงาน", "คลอดลูก", "รับขวัญ",
                     "เยี่ยมไข้", "personal", "personal occasion", "a personal occasion", "birthday",
                     "my birthday", "wedding", "my wedding", "ordination", "housewarming", "retirement",
                     "promotion", "new baby", "farewell"),
        "after_service": ("หลังให้บริการ", "หลังบริการ", "หลังทำงาน", "หลังทำงานให้", "หลังจากให้บริการ",
                          "ขอบคุณที่ช่วย", "ขอบคุณที่ช่วยเหลือ", "ตอบแทน", "สินน้ำใจ", "after a service",
                          "after service", "after the service", "after the work", "as thanks", "to thank me",
                          "a thank-you gift", "a thank you gift"),
    },
    "gift_val": {"unsure": UNSURE_WORDS},
    "gift_duty": {
        "yes": ("ใช่", "เกี่ยว", "เกี่ยวข้อง", "เกี่ยวกับงาน", "เกี่ยวข้องกับงาน", "เกี่ยวกับงานในหน้าที่", "เคย",
                "เคยมาติดต่อ", "จะมาติดต่อ", "มีติดต่องาน", "yes", "y", "yeah", "yep", "yup", "related",
                "connected", "it is", "yes it is"),
        "no": ("ไม่", "ไม่ใช่", "ไม่เกี่ยว", "ไม่เกี่ยวข้อง", "ไม่เกี่ยวกับงาน", "ไม่เกี่ยวข้องกับงาน", "ไม่เคย",
               "ไม่มี", "no", "n", "nope", "not related", "unrelated", "not connected", "no it isn't",
               "it isn't", "it is not"),
        "unsure": (*UNSURE_WORDS, "อาจจะ", "อาจจะเกี่ยว", "maybe", "perhaps"),
    },
    "gr_act": {
        "declined": ("ปฏิเสธ", "ปฏิเสธแล้ว", "ไม่รับ", "ไม่ได้รับไว้", "declined", "i declined", "refused",
                     "i refused", "said no"),
        "returned": ("คืน", "คืนแล้ว", "ส่งคืน", "ส่งคืนแล้ว", "คืนผู้ให้", "returned", "returned it",
                     "i returned it", "gave it back", "sent it back"),
        "handed_over": ("ส่งมอบ", "ส่งมอบแล้ว", "ส่งมอบให้หน่วยงาน", "มอบให้หน่วยงาน", "ส่งหน่วยงาน",
                        "ให้หน่วยงาน", "handed over", "handed it over", "gave it to the office", "to the office"),
        "kept_reported": ("เก็บไว้", "เก็บไว้แล้ว", "รับไว้", "รับไว้แล้ว", "เก็บไว้และรายงาน", "kept",
                          "kept it", "i kept it", "kept and reported"),
    },
}
# Words around an answer: "จากหัวหน้า", "เป็นญาติ", "ผู้รับเหมาให้มา", "from my boss", "it's a wedding".
_BEFORE = ("ได้รับจาก", "ได้จาก", "จาก", "เป็น", "คือ", "it's", "it is", "it was", "from", "by", "my", "a", "an",
           "the", "for")
_AFTER = ("เอามาให้", "ส่งมาให้", "ให้มา", "ให้", "gave it to me", "gave it", "gave me")  # longest first


def _bare(text: str) -> str:
    """A typed answer without what surrounds it, normalised (particles, case, Thai digits). A few words
    at most: a long message is no choice, and "จากจากจาก…" must not cost a pass per word."""
    t = normalize(text.replace("’", "'")).strip(" .!?")
    if len(t) > 80:
        return t
    for _ in range(4):
        before = t
        for w in _BEFORE:
            ascii_word = w.isascii()
            if t.startswith(w + " " if ascii_word else w) and len(t) > len(w):
                t = normalize(t[len(w):])
        for w in _AFTER:
            if t.endswith(" " + w if w.isascii() else w) and len(t) > len(w):
                t = normalize(t[: -len(w)])
        if t == before:
            break
    return t


@cache
def _typed_words(prefix: str, option: str) -> frozenset[str]:
    labels = (catalog_text(f"{prefix}_{option}", "th"), catalog_text(f"{prefix}_{option}", "en"))
    return frozenset(_bare(w) for w in (*labels, *TYPED_CHOICES.get(prefix, {}).get(option, ())))


def typed_choice(text: str, prefix: str, options: tuple[str, ...]) -> str | None:
    """The choice a typed answer plainly names ("ผู้รับเหมาค่ะ", "from my boss", "ปีใหม่"), else None."""
    typed = _bare(text)
    found = [o for o in options if typed in _typed_words(prefix, o)]
    return found[0] if len(found) == 1 else None


@cache
def _unsure_words() -> frozenset[str]:
    return frozenset(_bare(w) for w in UNSURE_WORDS)


def is_unsure(text: str | None) -> bool:
    return text is not None and _bare(text) in _unsure_words()


def _choices(ctx: Context, prefix: str, action: str, options: tuple[str, ...]) -> list[dict]:
    return [ctx.quick_postback(ctx.t(f"{prefix}_{o}"), f"action={action}&v={o}") for o in options] + [
        ctx.quick_postback("ยกเลิก" if ctx.lang == "th" else "Cancel", "action=cancel")]


def _picked(ctx: Context, action: str, prefix: str, options: tuple[str, ...]) -> str | None:
    data = postback_data(ctx)
    if data.get("action") == action and data.get("v") in options:
        return data["v"]
    if ctx.text is not None:
        number = normalize(ctx.text)
        if number.isdecimal() and len(number) <= 3 and 1 <= int(number) <= len(options):
            return options[int(number) - 1]
        return typed_choice(ctx.text, prefix, options)
    return None


# The helper's questions, by conversation state: (question, label prefix, postback action, options).
_QUESTIONS = {
    "giver": ("gift_q_giver", "gift_giver", "g_giver", gifts.GIVERS),
    "occasion": ("gift_q_occasion", "gift_occ", "g_occ", gifts.OCCASIONS),
    "value": ("gift_q_value", "gift_val", "g_val", gifts.VALUES),
    "duties": ("gift_q_duties", "gift_duty", "g_duty", gifts.DUTIES),
}


def _ask(ctx: Context, state: str, why: str | None = None) -> str:
    """The question of ``state`` with its buttons; after ``why`` (a catalog key) when the last answer named
    no choice."""
    question, prefix, action, options = _QUESTIONS[state]
    text = ctx.t(question) if why is None else f"{ctx.t(why)}\n\n{ctx.t(question)}"
    ctx.reply(text_message(text, _choices(ctx, prefix, action, options)))
    return state


def _answer(ctx: Context, state: str) -> str | None:
    _, prefix, action, options = _QUESTIONS[state]
    return _picked(ctx, action, prefix, options)


# A bound instead of an amount: "ไม่เกิน 2,000", "เกิน 5 พัน", "less than 1000"; and "สองพันกว่าบาท".
_AT_MOST = re.compile(r"(?:ไม่เกิน|up to|at most|≤|<=)\s*(.+)")
_BELOW = re.compile(r"(?:ไม่ถึง|น้อยกว่า|ต่ำกว่า|under|below|less than|<)\s*(.+)")
_ABOVE = re.compile(r"(?:เกิน|มากกว่า|สูงกว่า|over|more than|above|>)\s*(.+)")
_AT_LEAST = re.compile(r"(?:อย่างน้อย|at least|≥|>=)\s*(.+)")
_ODD = re.compile(r"(.+?)\s*(?:กว่า ?ๆ|กว่า|\+)\s*(?:บาท|baht)?")


def value_answer(text: str) -> str | None:
    """The value question's answer in a typed reply: an amount ("5 พันบาท", "3000.00", "2k"), a bound
    ("ไม่เกิน 2,000", "more than 5000"), "about 2,000-odd" (สองพันกว่า) or don't-know; None if none of those.
    A bound that straddles the limit is "unsure"."""
    if is_unsure(text):
        return "unsure"
    t = _bare(text)
    limit = gifts.LIMIT_BAHT
    if (amount := parse_amount(t)) is not None:
        return gifts.value_of(amount) if amount > 0 else None
    for pattern, small, large in ((_AT_MOST, lambda x: x <= limit, lambda x: False),
                                  (_BELOW, lambda x: x <= limit, lambda x: False),
                                  (_ABOVE, lambda x: False, lambda x: x >= limit),
                                  (_AT_LEAST, lambda x: False, lambda x: x > limit)):
        if (m := pattern.fullmatch(t)) and (bound := parse_amount(m.group(1))):
            return "small" if small(bound) else "large" if large(bound) else "unsure"
    if (m := _ODD.fullmatch(t)) and (base := parse_amount(m.group(1))) and base == int(base):
        # 2,000-odd is under 3,000; 500-odd under 600; 3,000-odd over
        step = 10 ** (len(str(int(base))) - len(str(int(base)).rstrip("0")))
        return "large" if base >= limit else "small" if base + step <= limit else "unsure"
    return None


def gift_start(ctx: Context) -> str:
    ctx.data = {}
    return _ask(ctx, "giver")


def gift_giver(ctx: Context) -> str:
    v = _answer(ctx, "giver")
    if v is None:
        return _ask(ctx, "giver", "pick_a_button") and STAY
    ctx.data["giver"] = v
    return _ask(ctx, "occasion")


def gift_occasion(ctx: Context) -> str:
    v = _answer(ctx, "occasion")
    if v is None:
        return _ask(ctx, "occasion", "pick_a_button") and STAY
    ctx.data["occasion"] = v
    return _ask(ctx, "value")


def gift_value(ctx: Context) -> str:
    v = _answer(ctx, "value")
    if v is None and ctx.text is not None:  # typed: "2500", "๕ พันบาท", "ประมาณ 2,000", "ไม่เกิน 2000"
        v = value_answer(ctx.text)
    if v is None:
        return _ask(ctx, "value", "gift_bad_value") and STAY
    ctx.data["value"] = v
    return _ask(ctx, "duties")


def gift_duties(ctx: Context) -> str | None:
    v = _answer(ctx, "duties")
    if v is None:
        return _ask(ctx, "duties", "pick_a_button") and STAY
    verdict = gifts.decide(ctx.data["giver"], ctx.data["occasion"], ctx.data["value"], v)
    lines = [ctx.t(f"gift_v_{verdict.key}"), "", ctx.t("gift_what_now") + ":"]
    lines += [f"• {ctx.t(f'gift_do_{a}')}" for a in verdict.actions]
    lines += ["", ctx.t("qa_sources", sources="; ".join(ctx.t(f"gift_src_{s}") for s in verdict.sources)),
              ctx.t("qa_legal_note")]
    _, by_id = store.MATCHERS.get(ctx.session, ctx.office_id)
    quick = [ctx.quick_postback(by_id[r].title(ctx.lang), f"action=qa&id={r}&lang={ctx.lang}")
             for r in verdict.related if r in by_id]
    if "report" in verdict.actions and ctx.user is not None and \
            campaigns.staff_member(ctx.session, ctx.office_id, ctx.user.line_user_id) is not None:
        quick.insert(0, ctx.quick_postback(ctx.t("gift_report_label"), "action=gift_report"))
    quick.append(ctx.quick_postback(ctx.t("menu_menu"), "action=menu"))
    ctx.reply(text_message("\n".join(lines), quick))
    return None


def gift_reprompt(ctx: Context) -> None:
    """The helper's question again (after a sticker, or a change of language), the first not yet answered."""
    _ask(ctx, next(s for s in ("giver", "occasion", "value", "duties") if s not in ctx.data))


GIFT_WORDS = Keyword("ได้รับของขวัญ", "มีคนให้ของขวัญ", "รับของขวัญได้ไหม", "ของขวัญ", "i received a gift",
                     "i got a gift", "gift helper", "received a gift")

GIFT_HELPER = Conversation(
    name="gift_helper",
    entry_points=[(GIFT_WORDS, gift_start), (Postback("gift_helper"), gift_start)],
    states={
        "giver": [(Postback("g_giver"), gift_giver), (AnyText(), gift_giver)],
        "occasion": [(Postback("g_occ"), gift_occasion), (AnyText(), gift_occasion)],
        "value": [(Postback("g_val"), gift_value), (AnyText(), gift_value)],
        "duties": [(Postback("g_duty"), gift_duties), (AnyText(), gift_duties)],
    },
    timeout=timedelta(hours=1),
    reprompt=gift_reprompt,
)


# -- the gift register (enrolled staff) --------------------------------------------------------

REGISTER_GIVERS = store.GIVER_TYPES
REGISTER_ACTIONS = store.GIFT_ACTIONS
_VALUE_UNKNOWN = ("ไม่ทราบมูลค่า", "ไม่ทราบราคา", "ไม่รู้ราคา", "ไม่รู้มูลค่า", "value unknown")


def _ask_register(ctx: Context, question: str, prefix: str, action: str, options: tuple[str, ...],
                  why: str | None = None) -> None:
    text = ctx.t(question) if why is None else f"{ctx.t(why)}\n\n{ctx.t(question)}"
    ctx.reply(text_message(text, _choices(ctx, prefix, action, options)))


def report_start(ctx: Context) -> str | None:
    member = campaigns.staff_member(ctx.session, ctx.office_id, ctx.user_id or "") if ctx.user_id else None
    if member is None:  # not a dead end: how gifts are reported, the helper, the menu
        ctx.say("gr_not_staff", quick=[ctx.quick_postback(ctx.t("gr_how_to_report"), "action=qa&id=gift.report"),
                                       ctx.quick_postback(ctx.t("menu_gift_helper"), "action=gift_helper"),
                                       ctx.quick_postback(ctx.t("menu_menu"), "action=menu")])
        return None
    ctx.data = {"member": member.id}
    _ask_register(ctx, "gr_q_giver", "gift_giver", "r_giver", REGISTER_GIVERS)
    return "giver"


def report_giver(ctx: Context) -> str:
    v = _picked(ctx, "r_giver", "gift_giver", REGISTER_GIVERS)
    if v is None:
        _ask_register(ctx, "gr_q_giver", "gift_giver", "r_giver", REGISTER_GIVERS, "pick_a_button")
        return STAY
    ctx.data["giver"] = v
    ctx.say("gr_q_item")
    return "item"


def _ask_value(ctx: Context, key: str) -> None:
    ctx.reply(text_message(ctx.t(key), [ctx.quick_postback(ctx.t("c_unknown"), "action=r_value&v=unknown")]))


def report_item(ctx: Context) -> str:
    item = (ctx.text or "").strip()
    if not item:
        ctx.say("gr_q_item")
        return STAY
    ctx.data["item"] = item[:300]
    _ask_value(ctx, "gr_q_value")
    return "value"


def _ask_date(ctx: Context, key: str) -> None:
    today = campaigns.today_bangkok().isoformat()
    picker = {"type": "action", "action": {"type": "datetimepicker", "label": ctx.t("c_pick_date")[:20],
                                           "data": "action=r_date", "mode": "date", "max": today}}
    ctx.reply(text_message(ctx.t(key), [picker, ctx.quick_postback(ctx.t("gr_today"), "action=r_today")]))


def report_value(ctx: Context) -> str:
    data = postback_data(ctx)
    typed = ctx.text or ""
    if data.get("action") == "r_value" or is_unsure(typed) or \
            _bare(typed) in {_bare(w) for w in (ctx.t("c_unknown"), *_VALUE_UNKNOWN)}:
        ctx.data["value"] = None
    else:
        value = parse_baht(typed)
        if value is None or value <= 0:  # a gift worth nothing is a typo: ask again
            _ask_value(ctx, "gr_bad_value")
            return STAY
        ctx.data["value"] = value
        ctx.data["rounded"] = parse_amount(typed) != value  # the register keeps whole baht: the receipt says so
    _ask_date(ctx, "gr_q_date")
    return "date"


def report_date(ctx: Context) -> str:
    data = postback_data(ctx)
    today = campaigns.today_bangkok()
    d: date | None = None
    if data.get("action") == "r_today":
        d = today
    elif data.get("action") == "r_date":
        params = ctx.postback.get("params") if isinstance(ctx.postback.get("params"), dict) else {}
        try:
            d = date.fromisoformat(params.get("date", ""))
        except ValueError:
            d = None
    elif ctx.text:
        d = parse_thai_date(ctx.text, today, relative=True)  # "15 พ.ย. 69", "เมื่อวาน", "Nov 15"
    if d is None or d > today:
        _ask_date(ctx, "gr_bad_date" if d is None else "gr_future_date")
        return STAY
    ctx.data["date"] = d.isoformat()
    _ask_register(ctx, "gr_q_action", "gr_act", "r_act", REGISTER_ACTIONS)
    return "action"


def report_action(ctx: Context) -> str | None:
    v = _picked(ctx, "r_act", "gr_act", REGISTER_ACTIONS)
    if v is None:
        _ask_register(ctx, "gr_q_action", "gr_act", "r_act", REGISTER_ACTIONS, "pick_a_button")
        return STAY
    d = date.fromisoformat(ctx.data["date"])
    report = store.report_gift(ctx.session, ctx.office_id, ctx.data.get("member"), giver_type=ctx.data["giver"],
                               item=ctx.data["item"], value_baht=ctx.data.get("value"), received_on=d, action=v)
    value = f"{report.value_baht:,} บาท" if report.value_baht is not None and ctx.lang == "th" else \
        f"{report.value_baht:,} baht" if report.value_baht is not None else ctx.t("gr_value_unknown")
    if ctx.data.get("rounded") and report.value_baht is not None:
        value += " " + ctx.t("gr_value_rounded")
    ctx.reply(text_message(ctx.t("gr_done", reference=report.reference, item=report.item, value=value,
                                 date=be_date(d, ctx.lang), action=ctx.t(f"gr_act_{v}")),
                           [ctx.quick_postback(ctx.t("menu_menu"), "action=menu")]))
    return None


def report_reprompt(ctx: Context) -> None:
    """A sticker, photo or location where an answer was asked for: that step's question again (a generic "choose
    one of the options" would not fit "what was it?", which has none)."""
    d = ctx.data
    if "giver" not in d:
        _ask_register(ctx, "gr_q_giver", "gift_giver", "r_giver", REGISTER_GIVERS, "pick_a_button")
    elif "item" not in d:
        ctx.reply(text_message(f"{ctx.t('gr_type_answer')}\n\n{ctx.t('gr_q_item')}"))
    elif "value" not in d:
        ctx.say("gr_type_answer")
        _ask_value(ctx, "gr_q_value")
    elif "date" not in d:
        ctx.say("gr_type_answer")
        _ask_date(ctx, "gr_q_date")
    else:
        _ask_register(ctx, "gr_q_action", "gr_act", "r_act", REGISTER_ACTIONS, "pick_a_button")


GIFT_REGISTER = Conversation(
    name="gift_register",
    entry_points=[(Keyword("รายงานของขวัญ", "แจ้งรับของขวัญ", "ลงทะเบียนของขวัญ", "report a gift", "gift report"),
                   report_start), (Postback("gift_report"), report_start)],
    states={
        "giver": [(Postback("r_giver"), report_giver), (AnyText(), report_giver)],
        "item": [(AnyText(), report_item)],
        "value": [(Postback("r_value"), report_value), (AnyText(), report_value)],
        "date": [(Postback("r_date"), report_date), (Postback("r_today"), report_date), (AnyText(), report_date)],
        "action": [(Postback("r_act"), report_action), (AnyText(), report_action)],
    },
    timeout=timedelta(hours=1),
    reprompt=report_reprompt,
    free_text=frozenset({"item"}),  # "ของขวัญ" typed as what it was is the answer
)


def register(engine: Engine) -> None:
    from handlers.dispatcher import UNSEND_HOOKS

    if on_unsend not in UNSEND_HOOKS:
        UNSEND_HOOKS.append(on_unsend)
    # Free text that no flow or keyword wanted is a question for the knowledge base.
    engine.default = lambda ctx: engine.start(ctx, QA, answer_free_text)
    engine.add(QA)
    engine.add(GIFT_HELPER)
    engine.add(GIFT_REGISTER)
    engine.routes.append((Postback("qa"), lambda c: entry_tapped(c) and None))
