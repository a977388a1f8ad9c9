"""Integrity questions on LINE: free text outside any flow is answered from the office's
knowledge base (with its source), or — when the matcher is not confident — the three closest
entries and "ask an officer"; the gift decision helper; staff's gift register.
"""

from __future__ import annotations

from datetime import date, timedelta

from bot.thaidate import be_date, parse_thai_date
from complaints import receipts
from handlers.context import Context, text_message
from handlers.conversation import STAY, AnyText, Conversation, Engine, Keyword, Postback, postback_data
from handlers.text import normalize, thai_digits_to_arabic
from integrity import gifts, store
from models import utcnow
from surveys import campaigns

MENU_ITEM = ("menu_menu", "action=menu")


def _label(text: str) -> str:
    return text if len(text) <= 20 else text[:19] + "…"


def show_answer(ctx: Context, answer: store.Answer, by_id: dict[str, store.Answer]) -> None:
    lines = [answer.answer(ctx.lang).strip()]
    sources = [s.get(ctx.lang) or s.get("th") for s in answer.sources if isinstance(s, dict)]
    if sources:
        lines.append(ctx.t("qa_sources", sources="; ".join(x for x in sources if x)))
    if answer.read_more:
        lines.append(ctx.t("qa_read_more", url=answer.read_more))
    if answer.needs_legal_review:
        lines.append(ctx.t("qa_legal_note"))
    quick = [ctx.quick_postback(_label(by_id[r].title(ctx.lang)), f"action=qa&id={r}")
             for r in answer.related if r in by_id][:4]
    quick.append(ctx.quick_postback(ctx.t("menu_menu"), "action=menu"))
    ctx.reply(text_message("\n\n".join(lines), quick))


def answer_free_text(ctx: Context) -> str | None:
    """The engine's default: anything typed outside a flow is a question."""
    text = (ctx.text or "").strip()
    if not text:  # blank or invisible characters only: say what can be asked
        qa_intro(ctx)
        return None
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
    quick = [ctx.quick_postback(_label(by_id[c].title(ctx.lang)), f"action=qa&id={c}")
             for c, _ in result.candidates[:3] if c in by_id]
    quick.append(ctx.quick_postback(ctx.t("qa_ask_officer"), "action=qa_ask"))
    quick.append(ctx.quick_postback(ctx.t("menu_menu"), "action=menu"))
    ctx.reply(text_message(ctx.t("qa_not_sure"), quick))
    # Kept under the message's id, so that an unsend erases it before anyone can tap "ask an officer".
    ctx.data = {}
    if isinstance(ctx.message.get("id"), str):
        ctx.remember_message(text[: store.QUESTION_MAX])
    else:
        ctx.data["q"] = text[: store.QUESTION_MAX]
    return "offered"


def entry_tapped(ctx: Context) -> str | None:
    key = postback_data(ctx).get("id", "")
    _, by_id = store.MATCHERS.get(ctx.session, ctx.office_id)
    if key in by_id:
        show_answer(ctx, by_id[key], by_id)
    else:
        ctx.say("postback_unknown")
    return None


def ask_officer(ctx: Context) -> str | None:
    data = ctx.data or {}
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
    entry_points=[],
    # Anything else typed while "ask an officer" is on offer is handled afresh (a keyword, or a
    # new question).
    states={"offered": [(Postback("qa_ask"), ask_officer), (Postback("qa"), entry_tapped)]},
    timeout=timedelta(minutes=30),
    release_unmatched=True,
)


# -- the gift decision helper --------------------------------------------------------------


def _choices(ctx: Context, prefix: str, action: str, options: tuple[str, ...]) -> list[dict]:
    return [ctx.quick_postback(ctx.t(f"{prefix}_{o}"), f"action={action}&v={o}") for o in options] + [
        ctx.quick_postback("ยกเลิก" if ctx.lang == "th" else "Cancel", "action=cancel")]


def _picked(ctx: Context, action: str, prefix: str, options: tuple[str, ...]) -> str | None:
    data = postback_data(ctx)
    if data.get("action") == action and data.get("v") in options:
        return data["v"]
    if ctx.text is not None:
        typed = normalize(ctx.text)
        number = thai_digits_to_arabic(typed)
        if number.isdecimal() and len(number) <= 3 and 1 <= int(number) <= len(options):
            return options[int(number) - 1]
        for o in options:
            if typed == normalize(ctx.t(f"{prefix}_{o}")):
                return o
    return None


# The helper's questions, by conversation state: (question, label prefix, postback action, options).
_QUESTIONS = {
    "giver": ("gift_q_giver", "gift_giver", "g_giver", gifts.GIVERS),
    "occasion": ("gift_q_occasion", "gift_occ", "g_occ", gifts.OCCASIONS),
    "value": ("gift_q_value", "gift_val", "g_val", gifts.VALUES),
    "duties": ("gift_q_duties", "gift_duty", "g_duty", gifts.DUTIES),
}


def _ask(ctx: Context, state: str) -> str:
    question, prefix, action, options = _QUESTIONS[state]
    ctx.reply(text_message(ctx.t(question), _choices(ctx, prefix, action, options)))
    return state


def _answer(ctx: Context, state: str) -> str | None:
    _, prefix, action, options = _QUESTIONS[state]
    return _picked(ctx, action, prefix, options)


def gift_start(ctx: Context) -> str:
    ctx.data = {}
    return _ask(ctx, "giver")


def gift_giver(ctx: Context) -> str:
    v = _answer(ctx, "giver")
    if v is None:
        return gift_start(ctx) and STAY
    ctx.data["giver"] = v
    return _ask(ctx, "occasion")


def gift_occasion(ctx: Context) -> str:
    v = _answer(ctx, "occasion")
    if v is None:
        return _ask(ctx, "occasion") and STAY
    ctx.data["occasion"] = v
    return _ask(ctx, "value")


def gift_value(ctx: Context) -> str:
    v = _answer(ctx, "value")
    if v is None and ctx.text is not None:  # a typed amount: "2500", "๕๐๐๐ บาท"
        raw = thai_digits_to_arabic(ctx.text)
        if any("0" <= ch <= "9" for ch in raw):
            digits = "".join(ch for ch in raw if "0" <= ch <= "9").lstrip("0")
            v = "small" if len(digits) <= 4 and int(digits or "0") <= 3000 else "large"
    if v is None:
        return _ask(ctx, "value") and STAY
    ctx.data["value"] = v
    return _ask(ctx, "duties")


def gift_duties(ctx: Context) -> str | None:
    v = _answer(ctx, "duties")
    if v is None:
        return _ask(ctx, "duties") and STAY
    verdict = gifts.decide(ctx.data["giver"], ctx.data["occasion"], ctx.data["value"], v)
    lines = [ctx.t(f"gift_v_{verdict.key}"), "", ctx.t("gift_what_now") + ":"]
    lines += [f"• {ctx.t(f'gift_do_{a}')}" for a in verdict.actions]
    lines += ["", ctx.t("qa_sources", sources="; ".join(ctx.t(f"gift_src_{s}") for s in verdict.sources)),
              ctx.t("qa_legal_note")]
    _, by_id = store.MATCHERS.get(ctx.session, ctx.office_id)
    quick = [ctx.quick_postback(_label(by_id[r].title(ctx.lang)), f"action=qa&id={r}")
             for r in verdict.related if r in by_id]
    if "report" in verdict.actions and ctx.user is not None and \
            campaigns.staff_member(ctx.session, ctx.office_id, ctx.user.line_user_id) is not None:
        quick.insert(0, ctx.quick_postback(ctx.t("gift_do_report").split(":")[0][:20], "action=gift_report"))
    quick.append(ctx.quick_postback(ctx.t("menu_menu"), "action=menu"))
    ctx.reply(text_message("\n".join(lines), quick))
    return None


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
)


# -- the gift register (enrolled staff) --------------------------------------------------------

REGISTER_GIVERS = store.GIVER_TYPES
REGISTER_ACTIONS = store.GIFT_ACTIONS


def report_start(ctx: Context) -> str | None:
    member = campaigns.staff_member(ctx.session, ctx.office_id, ctx.user_id or "") if ctx.user_id else None
    if member is None:
        ctx.say("gr_not_staff")
        return None
    ctx.data = {"member": member.id}
    ctx.reply(text_message(ctx.t("gr_q_giver"), _choices(ctx, "gift_giver", "r_giver", REGISTER_GIVERS)))
    return "giver"


def report_giver(ctx: Context) -> str:
    v = _picked(ctx, "r_giver", "gift_giver", REGISTER_GIVERS)
    if v is None:
        ctx.reply(text_message(ctx.t("gr_q_giver"), _choices(ctx, "gift_giver", "r_giver", REGISTER_GIVERS)))
        return STAY
    ctx.data["giver"] = v
    ctx.say("gr_q_item")
    return "item"


def report_item(ctx: Context) -> str:
    item = (ctx.text or "").strip()
    if not item:
        ctx.say("gr_q_item")
        return STAY
    ctx.data["item"] = item[:300]
    ctx.reply(text_message(ctx.t("gr_q_value"), [ctx.quick_postback(ctx.t("c_unknown"), "action=r_value&v=unknown")]))
    return "value"


def report_value(ctx: Context) -> str:
    data = postback_data(ctx)
    typed = normalize(ctx.text or "")
    if data.get("action") == "r_value" or typed in (normalize(ctx.t("c_unknown")), "ไม่ทราบ", "ไม่รู้", "unknown"):
        ctx.data["value"] = None
    else:
        digits = thai_digits_to_arabic(typed).replace(",", "").replace("บาท", "").replace("baht", "").strip()
        if not digits.isdecimal() or len(digits) > 9:
            ctx.say("gr_bad_value")
            return STAY
        ctx.data["value"] = int(digits)
    today = utcnow().date().isoformat()
    picker = {"type": "action", "action": {"type": "datetimepicker", "label": ctx.t("c_pick_date")[:20],
                                           "data": "action=r_date", "mode": "date", "max": today}}
    ctx.reply(text_message(ctx.t("gr_q_date"), [picker, ctx.quick_postback(ctx.t("gr_today"), "action=r_today")]))
    return "date"


def report_date(ctx: Context) -> str:
    data = postback_data(ctx)
    d: date | None = None
    if data.get("action") == "r_today" or normalize(ctx.text or "") in ("วันนี้", "today"):
        d = campaigns.today_bangkok()
    elif data.get("action") == "r_date":
        params = ctx.postback.get("params") if isinstance(ctx.postback.get("params"), dict) else {}
        try:
            d = date.fromisoformat(params.get("date", ""))
        except ValueError:
            d = None
    elif ctx.text:
        d = parse_thai_date(ctx.text)
    if d is None or d > campaigns.today_bangkok():
        ctx.say("gr_bad_date")
        return STAY
    ctx.data["date"] = d.isoformat()
    ctx.reply(text_message(ctx.t("gr_q_action"), _choices(ctx, "gr_act", "r_act", REGISTER_ACTIONS)))
    return "action"


def report_action(ctx: Context) -> str | None:
    v = _picked(ctx, "r_act", "gr_act", REGISTER_ACTIONS)
    if v is None:
        ctx.reply(text_message(ctx.t("gr_q_action"), _choices(ctx, "gr_act", "r_act", REGISTER_ACTIONS)))
        return STAY
    d = date.fromisoformat(ctx.data["date"])
    report = store.report_gift(ctx.session, ctx.office_id, ctx.data.get("member"), giver_type=ctx.data["giver"],
                               item=ctx.data["item"], value_baht=ctx.data.get("value"), received_on=d, action=v)
    value = f"{report.value_baht:,} บาท" if report.value_baht is not None and ctx.lang == "th" else \
        f"{report.value_baht:,} baht" if report.value_baht is not None else ctx.t("gr_value_unknown")
    ctx.reply(text_message(ctx.t("gr_done", reference=report.reference, item=report.item, value=value,
                                 date=be_date(d, ctx.lang), action=ctx.t(f"gr_act_{v}")),
                           [ctx.quick_postback(ctx.t("menu_menu"), "action=menu")]))
    return None


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
    engine.routes.extend([(Postback("qa"), lambda c: entry_tapped(c) and None),
                          (Postback("qa_intro"), qa_intro)])
