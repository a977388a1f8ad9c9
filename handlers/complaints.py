"""Reporting corruption or misconduct on LINE, and following the case with a receipt code.

The report is a declared conversation: kind (corruption vs a general city problem) → category →
what happened (several messages) → when → where → evidence → identity → summary → submit.
Every step can be tapped or typed; "ยกเลิก" discards the draft and its evidence; the draft
expires after 24 hours. The draft lives in ``conversation_states`` (keyed by the person, as every
conversation is); its evidence hangs on a random draft token, never on the person. At submit an
anonymous case is written with nothing that points to the reporter, and the engine deletes the
draft in the same transaction.

Evidence is downloaded from LINE before the handling transaction (``prepare_evidence``), checked
and cleaned (``complaints.evidence``), and stored by the step.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from datetime import date, timedelta

from sqlalchemy import select

from bot.thaidate import BANGKOK, be_date, be_datetime, parse_thai_date
from complaints import cases, catalog, evidence, officers, receipts
from handlers.context import Context, text_message
from handlers.conversation import (
    STAY,
    AnyText,
    Anything,
    Conversation,
    Engine,
    Keyword,
    Matcher,
    MessageType,
    Postback,
    Step,
    postback_data,
)
from handlers.i18n import t as catalog_text
from handlers.text import normalize, thai_digits_to_arabic, without_politeness
from models import ConversationState, utcnow

log = logging.getLogger("itabot.complaints")

NAME = "complaint"
MEDIA = ("image", "video", "audio", "file")
START_WORDS = Keyword("ร้องเรียน", "แจ้งเบาะแส", "complaint", "report", "แจ้งทุจริต", "ร้องเรียนทุจริต",
                      "แจ้งเบาะแสทุจริต", "report corruption", "whistleblow")
# Reports a person may start per hour (held in memory only: a counter in the database would be
# a trace of who reported when).
STARTS_PER_HOUR = 5


# -- small helpers ------------------------------------------------------------------------


def _quick(ctx: Context, *items: tuple[str, str]) -> list[dict]:
    """Quick replies as postbacks: (catalog key of the label, postback data)."""
    return [ctx.quick_postback(ctx.t(key), data) for key, data in items]


def _cancel_item(ctx: Context) -> dict:
    return ctx.quick_postback("ยกเลิก" if ctx.lang == "th" else "Cancel", "action=cancel")


def _choice(ctx: Context, action: str) -> str | None:
    data = postback_data(ctx)
    return data.get("v") if data.get("action") == action else None


def _set(ctx: Context, **answers: object) -> None:
    """Keep answers in the draft. A typed one is remembered under its message's id ("_answers"), so
    that unsending the message erases it (``on_unsend``); an answer given again replaces the old one
    and the old message's link to it."""
    _unlink(ctx, *answers)
    ctx.data.update(answers)
    mid = ctx.message.get("id")
    if ctx.text is not None and isinstance(mid, str):
        ctx.data.setdefault("_answers", {})[mid] = list(answers)


def _drop(ctx: Context, *fields: str) -> None:
    _unlink(ctx, *fields)
    for f in fields:
        ctx.data.pop(f, None)


def _unlink(ctx: Context, *fields: str) -> None:
    answers = ctx.data.get("_answers") or {}
    for mid, held in list(answers.items()):
        rest = [f for f in held if f not in fields]
        if rest:
            answers[mid] = rest
        else:
            del answers[mid]


def _s(n: int) -> str:
    """The English plural ending for a count (Thai texts do without)."""
    return "" if n == 1 else "s"


def _number(ctx: Context) -> int | None:
    if ctx.text is None:
        return None
    t = thai_digits_to_arabic(ctx.text).strip().rstrip(".")
    return int(t) if t.isdecimal() and len(t) <= 2 else None


class _Flood:
    """Per-person start limit, in this process's memory, keyed by a hash that expires in an hour."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, list[float]] = {}

    def allow(self, key: str, limit: int = STARTS_PER_HOUR, window: float = 3600.0) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - window}
            times = [x for x in self._seen.get(key, []) if x > now - window]
            if len(times) >= limit:
                self._seen[key] = times
                return False
            times.append(now)
            self._seen[key] = times
            return True

    def free_in(self, key: str, window: float = 3600.0) -> float:
        """Seconds until ``key`` may start again (its oldest start leaves the window)."""
        now = time.monotonic()
        with self._lock:
            times = [x for x in self._seen.get(key, []) if x > now - window]
        return max(0.0, times[0] + window - now) if times else 0.0


FLOOD = _Flood()


# -- steps ---------------------------------------------------------------------------------


def start(ctx: Context) -> str | None:
    if ctx.user is None:
        ctx.say("c_group_only_private")
        return None
    key = ctx.cipher.keyed_hash("flood", f"{ctx.office_id}:{ctx.user_id}")
    if not FLOOD.allow(key):
        at = utcnow() + timedelta(seconds=FLOOD.free_in(key) + 60)
        ctx.say("c_flood", time=be_datetime(at, ctx.lang).split(" ")[-1])
        return None
    ctx.data = {"draft_token": secrets.token_hex(16), "_at": "kind"}
    ask_kind(ctx)
    return "kind"


def ask_kind(ctx: Context) -> None:
    ctx.reply(text_message(ctx.t("c_kind_question"), [
        *_quick(ctx, ("c_kind_corruption", "action=c_kind&v=corruption"),
                ("c_kind_general", "action=c_kind&v=general")),
        _cancel_item(ctx)]))


GENERAL_WORDS = Keyword("2", "ปัญหาทั่วไป", "ทั่วไป", "general", "general problem", "ถนน", "ขยะ", "ไฟฟ้า", "น้ำท่วม")
CORRUPTION_WORDS = Keyword("1", "ทุจริต", "ประพฤติมิชอบ", "ทุจริต/ประพฤติมิชอบ", "corruption", "misconduct")


def on_kind(ctx: Context) -> str | None:
    choice = _choice(ctx, "c_kind")
    if choice == "general" or (choice is None and GENERAL_WORDS(ctx)):
        settings = cases.settings_for(ctx.session, ctx.office_id)
        custom = settings.general_text_th if ctx.lang == "th" else settings.general_text_en
        ctx.reply(text_message(custom or ctx.t("c_general")))
        cases.discard_draft(ctx.session, ctx.data.get("draft_token"))
        return None  # nothing stored
    if choice == "corruption" or CORRUPTION_WORDS(ctx):
        return next_step(ctx, "category")
    ask_kind(ctx)
    return STAY


def ask_category(ctx: Context) -> None:
    cats = cases.categories_for(ctx.session, ctx.office_id)
    lines = "\n".join(f"{i}. {c[1] if ctx.lang == 'th' else c[2]}" for i, c in enumerate(cats, 1))
    quick = [ctx.quick_postback(ctx.t(f"c_cat_{c[0]}"), f"action=c_cat&v={c[0]}") for c in cats]
    ctx.reply(text_message(ctx.t("c_category_question", choices=lines), [*quick, _cancel_item(ctx)]))


def _typed_category(typed: str, cats: list) -> str | None:
    """The category a typed answer names: a whole label (as listed, or a button's, in Thai or English), else a
    word of one — "สินบน", "bribe", "ลัดคิว" — found in a single category's labels (a word of two is not guessed)."""
    def labels(c) -> list[str]:
        return [normalize(x) for x in (c[1], c[2], catalog_text(f"c_cat_{c[0]}", "th"),
                                       catalog_text(f"c_cat_{c[0]}", "en"))]

    whole = [c[0] for c in cats if typed in labels(c)]
    if whole:
        return whole[0]
    if len(typed) < 4:  # "ที่", "การ": parts of words, not words
        return None
    found = [c[0] for c in cats if any(typed in label for label in labels(c))]
    return found[0] if len(found) == 1 else None


def on_category(ctx: Context) -> str | None:
    cats = cases.categories_for(ctx.session, ctx.office_id)
    ids = [c[0] for c in cats]
    chosen = _choice(ctx, "c_cat")
    n = _number(ctx)
    if chosen is None and n is not None and 1 <= n <= len(cats):
        chosen = ids[n - 1]
    if chosen is None and ctx.text is not None:
        chosen = _typed_category(normalize(ctx.text), cats)
    if chosen not in ids:
        ask_category(ctx)
        return STAY
    _set(ctx, category=chosen)
    return next_step(ctx, "description")


def ask_description(ctx: Context) -> None:
    ctx.reply(text_message(ctx.t("c_describe"), [*_quick(ctx, ("c_done", "action=c_next")), _cancel_item(ctx)]))


DONE_WORDS = Keyword("เสร็จ", "เสร็จแล้ว", "done", "next", "ถัดไป", "ต่อไป", "ครบแล้ว", "พอแล้ว", "ไม่มี", "none",
                     "ไม่มี/เสร็จแล้ว", "none / done", "ไม่มีหลักฐาน")


def _texts(ctx: Context) -> list[str]:
    return cases.description_parts(ctx.data)


def on_description_text(ctx: Context) -> str | None:
    return _text_step(ctx, ask_description, "c_done", "c_got_text")


def on_evidence_text(ctx: Context) -> str | None:
    """Words typed at the evidence step ("อีกอย่างคือ…") go to the description, and the reporter is told so:
    nothing they typed is dropped."""
    return _text_step(ctx, ask_evidence, "c_no_more_evidence", "c_text_added_at_evidence")


def _text_step(ctx: Context, ask: Step, done: str, said: str) -> str | None:
    """A message typed at a step that keeps text for the description: blank asks the step's question again;
    otherwise the text is kept (``_add_text``) and the reply counts the messages, with the step's way on."""
    text = ctx.text or ""
    if not normalize(text, particles=False):  # blank: nothing described
        ask(ctx)
    elif _add_text(ctx, text, done):
        n = len(_texts(ctx))
        ctx.reply(text_message(ctx.t(said, count=n, s=_s(n)),
                               [*_quick(ctx, (done, "action=c_next")), _cancel_item(ctx)]))
    return STAY


def _add_text(ctx: Context, text: str, done: str) -> bool:
    """Keep one more message of the description (remembered under its message id, so that an unsend erases it);
    False, having said why, when it is too long or the description is full."""
    if len(text) > cases.TEXT_MAX:
        ctx.say("c_text_too_long", max=f"{cases.TEXT_MAX:,}")
        return False
    # Counted as cases.submit joins them, separators and all, so that nothing is cut there.
    texts = _texts(ctx)
    used = len(cases.DESCRIPTION_SEPARATOR.join(texts))
    sep = len(cases.DESCRIPTION_SEPARATOR) if texts else 0
    if used + sep + len(text) > cases.DESCRIPTION_MAX:
        ctx.say("c_text_full", max=f"{cases.DESCRIPTION_MAX:,}", length=f"{len(text):,}",
                left=f"{max(0, cases.DESCRIPTION_MAX - used - sep):,}",
                quick=[*_quick(ctx, (done, "action=c_next")), _cancel_item(ctx)])
        return False
    if isinstance(ctx.message.get("id"), str):
        ctx.remember_message({"text": text})
    else:  # (LINE always sends an id; the fallback keeps the text anyway)
        ctx.data.setdefault("_messages", {})[f"x{len(ctx.data.get('_messages', {}))}"] = {"text": text}
    return True


def on_description_done(ctx: Context) -> str | None:
    if not cases.has_description(ctx.data):
        ctx.say("c_need_text")
        return STAY
    return next_step(ctx, "when")


def _today() -> date:
    """Today where the reporters are (the date picker and typed dates are Bangkok days)."""
    return utcnow().astimezone(BANGKOK).date()


def _when_quick(ctx: Context) -> list[dict]:
    picker = {"type": "action", "action": {"type": "datetimepicker", "label": ctx.t("c_pick_date")[:20],
                                           "data": "action=c_when&v=date", "mode": "date",
                                           "max": _today().isoformat()}}
    return [picker, *_quick(ctx, ("c_unsure", "action=c_when&v=unsure")), _cancel_item(ctx)]


def ask_when(ctx: Context) -> None:
    ctx.reply(text_message(ctx.t("c_when_question"), _when_quick(ctx)))


UNSURE_WORDS = Keyword("ไม่แน่ใจ", "ไม่ทราบ", "ไม่รู้", "จำไม่ได้", "unsure", "not sure", "don't know", "dont know")


def on_when(ctx: Context) -> str | None:
    choice = _choice(ctx, "c_when")
    if choice == "date":
        picked = ctx.postback.get("params", {}).get("date") if isinstance(ctx.postback.get("params"), dict) else None
        try:
            d = date.fromisoformat(picked) if isinstance(picked, str) else None
        except ValueError:
            d = None
        if d is None:
            ask_when(ctx)
            return STAY
        if d > _today():  # the picker's max is today, but a stale or forged postback is not bound by it
            ctx.reply(text_message(ctx.t("c_when_future"), _when_quick(ctx)))
            return STAY
        _set(ctx, occurred_on=d.isoformat(), occurred_text=None)
    elif choice == "unsure" or UNSURE_WORDS(ctx):
        _set(ctx, occurred_on=None, occurred_text="unsure")
    elif ctx.text is not None and ctx.text.strip():
        d = parse_thai_date(ctx.text)
        if d is not None and d > _today():
            ctx.reply(text_message(ctx.t("c_when_future"), _when_quick(ctx)))
            return STAY
        if d is not None:
            _set(ctx, occurred_on=d.isoformat(), occurred_text=None)
        else:
            _set(ctx, occurred_on=None, occurred_text=ctx.text.strip()[:200])
    else:
        ask_when(ctx)
        return STAY
    return next_step(ctx, "where")


def ask_where(ctx: Context) -> None:
    quick = [ctx.quick_postback((p[0] if ctx.lang == "th" else p[1]).removeprefix("ฝ่าย"), f"action=c_place&v={i}")
             for i, p in enumerate(catalog.PLACES)]
    quick.append(ctx.quick_postback(ctx.t("c_unknown"), "action=c_place&v=unknown"))
    ctx.reply(text_message(ctx.t("c_where_question"), [*quick, _cancel_item(ctx)]))


def on_where(ctx: Context) -> str | None:
    choice = _choice(ctx, "c_place")
    if choice == "unknown" or (choice is None and UNSURE_WORDS(ctx)):
        _set(ctx, place=None)
    elif choice is not None and choice.isdecimal() and int(choice) < len(catalog.PLACES):
        _set(ctx, place=catalog.PLACES[int(choice)][0])
    elif ctx.text is not None and ctx.text.strip():
        typed = normalize(ctx.text)
        known = next((p[0] for p in catalog.PLACES if typed in (normalize(p[0]), normalize(p[1]),
                                                                normalize(p[0].removeprefix("ฝ่าย")))), None)
        _set(ctx, place=known or ctx.text.strip()[:200])
    else:
        ask_where(ctx)
        return STAY
    return next_step(ctx, "evidence")


def ask_evidence(ctx: Context) -> None:
    ctx.reply(text_message(ctx.t("c_evidence_question", files=evidence.MAX_FILES, mb=evidence.MAX_BYTES // 2**20),
                           [*_quick(ctx, ("c_no_more_evidence", "action=c_next")), _cancel_item(ctx)]))


def on_evidence_done(ctx: Context) -> str | None:
    return next_step(ctx, "identity")


def _media_answer(ctx: Context, text: str) -> str | None:
    """Answer a photo, file or location: with the step's own way on. Only the description and
    evidence steps have a "done" button; any other step asks its question again."""
    at = ctx.data.get("_at") or "kind"
    if at in ("description", "evidence"):
        done = "c_no_more_evidence" if at == "evidence" else "c_done"
        ctx.reply(text_message(text, [*_quick(ctx, (done, "action=c_next")), _cancel_item(ctx)]))
        return STAY
    ctx.reply(text_message(text))
    if at == "summary":
        return to_summary(ctx)  # with the new count
    ASKS[at](ctx)
    return STAY


def on_media(ctx: Context) -> str | None:
    """A photo, video, audio, file or location at any step of the report: kept as evidence."""
    token = ctx.data.get("draft_token")
    if not token:
        reprompt(ctx)
        return STAY
    count = len(cases.draft_evidence(ctx.session, token))
    if count >= evidence.MAX_FILES:
        return _media_answer(ctx, ctx.t("c_evidence_full", files=evidence.MAX_FILES))
    mid = ctx.message.get("id")
    key = cases.message_key(ctx.cipher, ctx.office_id, mid) if isinstance(mid, str) else None
    mtype = ctx.message.get("type")
    if mtype == "location":
        lat, lng = ctx.message.get("latitude"), ctx.message.get("longitude")
        if not isinstance(lat, int | float) or not isinstance(lng, int | float):
            return _media_answer(ctx, ctx.t("c_evidence_broken"))
        address = ctx.message.get("address") if isinstance(ctx.message.get("address"), str) else None
        cases.add_draft_evidence(ctx.session, ctx.office_id, token, key, kind="location",
                                 latitude=float(lat), longitude=float(lng), address=address)
    else:
        got = ctx.prepared.get("evidence")
        if got is None:
            reason = ctx.prepared.get("evidence_error", "broken")
            return _media_answer(ctx, ctx.t(f"c_evidence_{reason}", mb=evidence.MAX_BYTES // 2**20))
        cases.add_draft_evidence(ctx.session, ctx.office_id, token, key, kind=got.kind,
                                 content_type=got.content_type, data=got.data, sha256=got.sha256,
                                 filename=got.filename)
    key = {"evidence": "c_evidence_ok", "description": "c_evidence_ok_describe"}.get(ctx.data.get("_at") or "",
                                                                                  "c_evidence_ok_early")
    return _media_answer(ctx, ctx.t(key, count=count + 1, s=_s(count + 1)))


def ask_identity(ctx: Context) -> None:
    ctx.reply(text_message(ctx.t("c_identity_question"), [
        *_quick(ctx, ("c_id_anonymous", "action=c_id&v=anonymous"), ("c_id_confidential", "action=c_id&v=confidential"),
                ("c_id_named", "action=c_id&v=named")), _cancel_item(ctx)]))


# The identity choices in words. At the name and contact steps these are a change of mind, never
# a name or a contact (the numbers of the identity question count only at that question).
IDENTITY_NAMES = {
    "anonymous": Keyword("ไม่เปิดเผยตัวตน", "ไม่ระบุตัวตน", "ไม่เปิดเผย", "ไม่เปิดเผยชื่อ", "ไม่ระบุชื่อ",
                         "ไม่ประสงค์ออกนาม", "anonymous", "anon", "anonymously", "stay anonymous"),
    "confidential": Keyword("ปกปิด", "ปกปิดตัวตน", "ปกปิดชื่อ", "ปกปิด (เฉพาะเจ้าหน้าที่)", "เปิดเผยเฉพาะเจ้าหน้าที่",
                            "เปิดเผยเฉพาะเจ้าหน้าที่ (ปกปิด)", "confidential"),
    "named": Keyword("เปิดเผยชื่อ", "เปิดเผย", "เปิดเผยตัวตน", "ระบุชื่อ", "ระบุตัวตน", "named"),
}
IDENTITY_NUMBERS = {"anonymous": Keyword("1"), "confidential": Keyword("2"), "named": Keyword("3")}


def _identity_choice(ctx: Context, numbers: bool) -> str | None:
    """The identity tapped (c_id) or typed; None if the message is not one."""
    choice = _choice(ctx, "c_id")
    if choice in IDENTITY_NAMES:
        return choice
    tables = (IDENTITY_NAMES, IDENTITY_NUMBERS) if numbers else (IDENTITY_NAMES,)
    return next((k for table in tables for k, words in table.items() if words(ctx)), None)


def on_identity(ctx: Context) -> str | None:
    choice = _identity_choice(ctx, numbers=True)
    if choice is None:
        ask_identity(ctx)
        return STAY
    return _set_identity(ctx, choice)


def _set_identity(ctx: Context, choice: str) -> str:
    _set(ctx, identity=choice)
    if choice == "anonymous":  # nothing that points to the person: no name, no contact (nor, at submit, LINE ID)
        _drop(ctx, "name", "contact")
        return to_summary(ctx)
    return next_step(ctx, "name")


def on_identity_changed(ctx: Context) -> str | None:
    """At the name or contact step: an identity tapped or typed instead is a change of mind."""
    choice = _identity_choice(ctx, numbers=False)
    if choice is None:
        reprompt(ctx)
        return STAY
    ctx.say("c_id_switched", identity=catalog.label(catalog.IDENTITIES, choice, ctx.lang))
    return _set_identity(ctx, choice)


def ask_name(ctx: Context) -> None:
    ctx.say("c_name_question", quick=[*_quick(ctx, ("c_id_anonymous", "action=c_id&v=anonymous")), _cancel_item(ctx)])


def on_name(ctx: Context) -> str | None:
    if _identity_choice(ctx, numbers=False):
        return on_identity_changed(ctx)
    name = (ctx.text or "").strip()
    if not name:
        ask_name(ctx)
        return STAY
    _set(ctx, name=name[:200])
    return next_step(ctx, "contact")


def ask_contact(ctx: Context) -> None:
    ctx.say("c_contact_question", quick=[*_quick(ctx, ("c_skip", "action=c_skip")), _cancel_item(ctx)])


SKIP_WORDS = Keyword("ข้าม", "skip", "ไม่ระบุ", "-")


def on_contact(ctx: Context) -> str | None:
    if _identity_choice(ctx, numbers=False):
        return on_identity_changed(ctx)
    if postback_data(ctx).get("action") == "c_skip" or SKIP_WORDS(ctx):
        _set(ctx, contact="")
    elif ctx.text and ctx.text.strip():
        _set(ctx, contact=ctx.text.strip()[:200])
    else:
        ask_contact(ctx)
        return STAY
    return to_summary(ctx)


def _when_text(ctx: Context) -> str:
    if ctx.data.get("occurred_on"):
        return be_date(date.fromisoformat(ctx.data["occurred_on"]), ctx.lang)
    if ctx.data.get("occurred_text") in (None, "unsure"):
        return ctx.t("c_unsure")
    return str(ctx.data["occurred_text"])


def _missing(data: dict) -> str | None:
    """The first part of the draft without an answer: one the person unsent (or one a submit would
    refuse). "Not sure", "don't know" and "skip" are answers; an unsent answer is none."""
    if not data.get("category"):
        return "category"
    if not cases.has_description(data):
        return "description"
    if "occurred_on" not in data and "occurred_text" not in data:
        return "when"
    if "place" not in data:
        return "where"
    identity = data.get("identity")
    if identity not in catalog.IDENTITIES:
        return "identity"
    if identity != "anonymous" and not data.get("name"):
        return "name"
    if identity != "anonymous" and "contact" not in data:
        return "contact"
    return None


def _ask_again(ctx: Context, part: str) -> str:
    """Say what went missing and ask for it; answered, it leads back to the summary."""
    ctx.say(f"c_removed_{part}")
    ctx.data["_editing"] = part
    ctx.data["_at"] = part
    ASKS[part](ctx)
    return part


def to_summary(ctx: Context) -> str:
    ctx.data.pop("_editing", None)
    missing = _missing(ctx.data)
    if missing is not None:
        return _ask_again(ctx, missing)
    ctx.reply(_summary_message(ctx))
    ctx.data["_at"] = "summary"
    return "summary"


def _summary_message(ctx: Context) -> dict:
    texts = _texts(ctx)
    description = "\n".join(texts)
    if len(description) > 600:
        description = description[:600] + "…"
    n_evidence = len(cases.draft_evidence(ctx.session, ctx.data.get("draft_token") or "-"))
    ident = catalog.label(catalog.IDENTITIES, ctx.data.get("identity"), ctx.lang)
    if ctx.data.get("identity") != "anonymous" and ctx.data.get("name"):
        ident += f" — {ctx.data['name']}" + (f" ({ctx.data['contact']})" if ctx.data.get("contact") else "")
    place = ctx.data.get("place")
    summary = ctx.t("c_summary", category=catalog.category_label(ctx.data.get("category", "other"), ctx.lang),
                    description=description, when=_when_text(ctx),
                    where=catalog.place_label(place, ctx.lang) if place else ctx.t("c_unknown"),
                    evidence=n_evidence, evidence_s=_s(n_evidence), identity=ident)
    return text_message(summary, [*_quick(ctx, ("c_confirm", "action=c_submit"), ("c_edit", "action=c_edit")),
                                  _cancel_item(ctx)])


# Every state but the summary, with its question (asked again, buttons and all, by ``reprompt``).
ASKS = {"kind": ask_kind, "category": ask_category, "description": ask_description, "when": ask_when,
        "where": ask_where, "evidence": ask_evidence, "identity": ask_identity, "name": ask_name,
        "contact": ask_contact}
# Steps that belong to another one when it is edited from the summary: the name and contact
# are part of the identity.
PART_OF = {"name": "identity", "contact": "identity"}


def next_step(ctx: Context, state: str) -> str:
    """Go to ``state`` — or, when the person is editing one part from the summary, back to it."""
    editing = ctx.data.get("_editing")
    if editing and state != editing and PART_OF.get(state) != editing:
        return to_summary(ctx)
    ctx.data["_at"] = state
    ASKS[state](ctx)
    return state


EDIT_PARTS = ("category", "description", "when", "where", "evidence", "identity")


def on_edit(ctx: Context) -> str | None:
    ctx.reply(text_message(ctx.t("c_edit_question"), [
        *[ctx.quick_postback(ctx.t(f"c_edit_{p}"), f"action=c_editpart&v={p}") for p in EDIT_PARTS],
        _cancel_item(ctx)]))
    return STAY


# The parts to change in words, beside the buttons' labels (Thai and English); "แก้เวลา", "edit where" too.
EDIT_WORDS = {"category": ("หมวดหมู่", "ประเภท", "ลักษณะ"), "description": ("รายละเอียด", "เล่าใหม่", "description"),
              "when": ("วันที่", "วันเวลา", "เมื่อ", "date", "time"), "where": ("สถานที่", "ฝ่าย", "place"),
              "evidence": ("รูป", "ไฟล์", "photos", "files"), "identity": ("ตัวตน", "ชื่อ", "name")}
_EDIT_PREFIXES = ("ขอแก้ไข", "ขอแก้", "แก้ไข", "แก้", "เปลี่ยน", "edit", "change")


def _typed_edit_part(text: str | None) -> str | None:
    if text is None:
        return None
    typed = without_politeness(text)
    for prefix in _EDIT_PREFIXES:
        if typed.startswith(prefix) and typed != prefix:
            typed = typed[len(prefix):].strip()
            break
    return next((p for p in EDIT_PARTS if typed in {normalize(w) for w in (
        catalog_text(f"c_edit_{p}", "th"), catalog_text(f"c_edit_{p}", "en"), *EDIT_WORDS[p])}), None)


class EditPartTyped(Matcher):
    """At the summary: the part to change, typed."""

    def __call__(self, ctx: Context) -> bool:
        return _typed_edit_part(ctx.text) is not None


def on_edit_part(ctx: Context) -> str | None:
    part = _choice(ctx, "c_editpart") or _typed_edit_part(ctx.text)
    if part not in EDIT_PARTS and part not in PART_OF:  # (name and contact: "answer again" after an unsend)
        return on_edit(ctx)
    if part == "description":  # rewritten from scratch
        ctx.data["_messages"] = {}
    ctx.data["_editing"] = part
    ctx.data["_at"] = part
    ASKS[part](ctx)
    return part


def on_submit(ctx: Context) -> str | None:
    draft = ctx.data
    missing = _missing(draft)
    if missing is not None:  # e.g. the description was unsent after the summary was shown
        return _ask_again(ctx, missing)
    identity = draft.get("identity")
    # (a draft written before the limit counted the separators may be a little over it)
    cut = len(cases.DESCRIPTION_SEPARATOR.join(cases.description_parts(draft))) - cases.DESCRIPTION_MAX
    try:
        done = cases.submit(ctx.session, ctx.office_id, draft, ctx.cipher,
                            ctx.user_id if identity in ("confidential", "named") else None)
    except cases.CaseError as exc:  # (``_missing`` should have caught it): an answer, never a failed event
        log.warning("draft refused at submit", extra={"reason": str(exc)})
        return to_summary(ctx)
    category = done.complaint.category
    for target in officers.alert_targets(ctx.session, ctx.office_id, ctx.cipher):
        ctx.push(target, text_message(officers.new_case_text(category)))
    if cut > 0:
        ctx.say("c_text_cut", max=f"{cases.DESCRIPTION_MAX:,}", cut=f"{cut:,}")
    ctx.reply(text_message(ctx.t("c_receipt", code=done.code)))
    ctx.reply(text_message(ctx.t("c_receipt_anonymous" if identity == "anonymous" else "c_receipt_named")))
    ctx.reply(text_message(ctx.t("c_protection"), [
        ctx.quick_postback(ctx.t("menu_follow_case"), f"action=c_status&code={done.code}",
                           display=("สถานะ " if ctx.lang == "th" else "status ") + done.code),
        ctx.quick_postback(ctx.t("menu_menu"), "action=menu")]))
    return None  # the engine deletes the draft (and with it the last link to the person)


def reprompt(ctx: Context) -> None:
    """A message no route of the current step wanted: the step's question again, with its buttons."""
    at = ctx.data.get("_at") or "kind"  # (a draft started before "_at" was set at the first step)
    missing = _missing(ctx.data) if at == "summary" else None
    if missing is not None:  # something was unsent at the summary: a reprompt cannot change step, a button can
        ctx.reply(text_message(ctx.t(f"c_removed_{missing}") + "\n" + ctx.t("c_answer_again_hint"), [
            ctx.quick_postback(ctx.t("c_answer_again"), f"action=c_editpart&v={missing}"), _cancel_item(ctx)]))
        return
    ctx.say("c_reprompt")
    if at in ASKS:
        ASKS[at](ctx)
    elif at == "summary":
        ctx.reply(_summary_message(ctx))


def on_exit(ctx: Context) -> None:
    """Cancel, timeout or unfollow: the draft's evidence goes with it."""
    cases.discard_draft(ctx.session, (ctx.data or {}).get("draft_token"))


# -- following a case ---------------------------------------------------------------------

STATUS_PREFIXES = ("สถานะ", "ติดตาม", "ติดตามเรื่อง", "status", "track", "follow")
REPLY_PREFIXES = ("ตอบ", "ตอบกลับ", "reply", "answer")


_ASKING = re.compile(r"^(?:please|pls|plz|ขอ(?!บ))\s*", re.IGNORECASE)  # "ขอติดตามเรื่อง <code>", "please status …"


def _strip_prefix(text: str, prefixes: tuple[str, ...]) -> str | None:
    t = thai_digits_to_arabic(text).strip()
    if not any(t.lower().startswith(p) for p in prefixes):
        t = _ASKING.sub("", t)
    low = t.lower()
    for p in sorted(prefixes, key=len, reverse=True):
        if low.startswith(p):
            return t[len(p):].strip(" :")
    return None


class StatusRequest(Matcher):
    """"สถานะ <code>" / "ติดตาม <code>" / "status <code>"."""

    def __call__(self, ctx: Context) -> bool:
        if ctx.text is None:
            return False
        rest = _strip_prefix(ctx.text, STATUS_PREFIXES)
        if rest is None:
            return False
        code, after = receipts.split_code(rest)  # politeness may follow, not a message: "ติดตาม <code> ค่ะ"
        return code is not None and not without_politeness(after)


class ReplyRequest(Matcher):
    def __call__(self, ctx: Context) -> bool:
        if ctx.text is None:
            return False
        rest = _strip_prefix(ctx.text, REPLY_PREFIXES)
        return rest is not None and receipts.split_code(rest)[0] is not None


def _code_alone(text: str | None) -> str | None:
    """The receipt code of a message that is just the code, politeness after it allowed ("<code> ครับ 🙏")."""
    if text is None:
        return None
    code, after = receipts.split_code(text)
    return code if code is not None and not without_politeness(after) else None


class BareCode(Matcher):
    """A message that is just a receipt code."""

    def __call__(self, ctx: Context) -> bool:
        return _code_alone(ctx.text) is not None


def _lookup(ctx: Context, code_text: str):
    found = cases.lookup(ctx.session, ctx.office_id, code_text, ctx.cipher, ctx.user_id)
    if found.result == "locked":
        when = found.locked_until
        ctx.say("c_code_locked", time=be_datetime(when, ctx.lang).split(" ")[-1] if when else "")
        return None
    if found.result != "ok":
        ctx.say("c_code_wrong", quick=[ctx.quick_postback(ctx.t("menu_menu"), "action=menu")])
        return None
    return found.complaint


def show_status(ctx: Context, code_text: str) -> None:
    complaint = _lookup(ctx, code_text)
    if complaint is None:
        return
    code = receipts.pretty(receipts.normalize(code_text) or "")
    latest = cases.latest_for_reporter(ctx.session, complaint)
    lines = [ctx.t("c_status", reference=complaint.reference,
                   category=catalog.category_label(complaint.category, ctx.lang),
                   received=be_date(complaint.created_at, ctx.lang),
                   status=catalog.label(catalog.STATUSES, complaint.status, ctx.lang),
                   updated=be_date(latest.at if latest else complaint.created_at, ctx.lang))]
    if complaint.status == "concluded" and complaint.outcome:
        lines.append(ctx.t("c_status_outcome", outcome=catalog.label(catalog.OUTCOMES, complaint.outcome, ctx.lang)))
    if complaint.status == "referred" and complaint.referred_to:
        lines.append(ctx.t("c_status_referred", body=catalog.label(catalog.REFERRALS, complaint.referred_to, ctx.lang)))
    question = cases.open_question(ctx.session, complaint)
    if question is not None:
        lines.append(ctx.t("c_status_question", text=question.body or "", code=code))
    ctx.reply(text_message("\n".join(lines), [ctx.quick_postback(ctx.t("menu_menu"), "action=menu")]))


def status_typed(ctx: Context) -> None:
    code, _ = receipts.split_code(_strip_prefix(ctx.text or "", STATUS_PREFIXES) or "")
    show_status(ctx, code or "")


def status_code_only(ctx: Context) -> None:
    show_status(ctx, _code_alone(ctx.text) or "")


def status_button(ctx: Context) -> str | None:
    code = postback_data(ctx).get("code")
    if code:
        show_status(ctx, code)
        return None
    ctx.say("c_follow_question", quick=[_cancel_item(ctx)])
    return "code"


def on_follow_code(ctx: Context) -> str | None:
    code = _code_alone(ctx.text)
    if code is None:
        if ctx.text is not None and _strip_prefix(ctx.text, STATUS_PREFIXES):
            status_typed(ctx)
            return None
        ctx.say("c_code_wrong")
        return STAY if ctx.text is None else None
    show_status(ctx, code)
    return None


def reporter_reply(ctx: Context) -> None:
    rest = _strip_prefix(ctx.text or "", REPLY_PREFIXES) or ""
    code, message = receipts.split_code(rest)
    if code is None:
        ctx.say("c_reply_empty")
        return
    complaint = _lookup(ctx, code)
    if complaint is None:
        return
    if not message.strip():
        ctx.say("c_reply_empty")
        return
    if complaint.status in cases.CLOSED_STATUSES:
        ctx.say("c_reply_closed")
        return
    if len(message) > cases.REPLY_MAX:
        ctx.say("c_text_too_long", max=f"{cases.REPLY_MAX:,}")
        return
    cases.reporter_says(ctx.session, complaint, message)
    ctx.say("c_reply_thanks")


# -- officers linking their LINE account --------------------------------------------------


class LinkRequest(Matcher):
    def __call__(self, ctx: Context) -> bool:
        return ctx.text is not None and officers.looks_like_link(ctx.text) is not None


def link_officer(ctx: Context) -> None:
    if ctx.user_id is None or ctx.text is None:
        return
    outcome = officers.redeem_link(ctx.session, ctx.office_id, ctx.user_id, officers.looks_like_link(ctx.text) or "",
                                   ctx.cipher)
    if outcome.result == "linked":
        ctx.say("officer_linked", email=outcome.staff.email)
    elif outcome.result == "expired":
        ctx.say("officer_link_expired")
    else:
        ctx.say("officer_link_wrong")


# -- unsend and evidence download ---------------------------------------------------------


def on_unsend(ctx: Context, message_id: str) -> None:
    """The person unsent a message of a draft: a photo or file is deleted, a typed answer (date,
    place, name, contact, a typed choice) is erased from the draft and asked for again before the
    report can be sent. (Description texts are erased by the dispatcher, from "_messages".)"""
    cases.forget_message(ctx.session, ctx.office_id, cases.message_key(ctx.cipher, ctx.office_id, message_id))
    if ctx.user_id is None:
        return
    state = ctx.session.scalar(select(ConversationState).where(ConversationState.office_id == ctx.office_id,
                                                               ConversationState.line_user_id == ctx.user_id))
    answers = ((state.data or {}).get("_answers") or {}) if state is not None and state.conversation == NAME else {}
    if message_id not in answers:
        return
    data = dict(state.data)
    data["_answers"] = {mid: fields for mid, fields in answers.items() if mid != message_id}
    for field in answers[message_id]:
        data.pop(field, None)
    state.data = data


def prepare_evidence(event: dict, office_id: int, line, session) -> dict:
    """Fetch a photo/video/audio/file from LINE before the handling transaction — only when the
    person is in the middle of a report — and check and clean it (``complaints.evidence``)."""
    src = event.get("source")
    message = event.get("message") if isinstance(event.get("message"), dict) else {}
    uid = src.get("userId") if isinstance(src, dict) and src.get("type") == "user" else None
    mid = message.get("id")
    if line is None or not isinstance(uid, str) or not isinstance(mid, str):
        return {}
    state = session.scalar(select(ConversationState).where(ConversationState.office_id == office_id,
                                                           ConversationState.line_user_id == uid))
    if state is None or state.conversation != NAME or state.expires_at <= utcnow():
        return {}
    size = message.get("fileSize")
    if isinstance(size, int) and size > evidence.MAX_BYTES:
        return {"evidence_error": "too_large"}
    provider = message.get("contentProvider")
    if isinstance(provider, dict) and provider.get("type") == "external":
        return {"evidence_error": "broken"}
    from bot.gateway import ContentTooLarge

    try:
        data, _ = line.get_content(mid, evidence.MAX_BYTES)
    except ContentTooLarge:
        return {"evidence_error": "too_large"}
    except Exception:
        log.warning("evidence download failed")
        return {"evidence_error": "broken"}
    try:
        name = message.get("fileName") if isinstance(message.get("fileName"), str) else None
        return {"evidence": evidence.clean(data, str(message.get("type")), name)}
    except evidence.EvidenceRefused as exc:
        return {"evidence_error": exc.reason}


# -- registration -------------------------------------------------------------------------

def _routes(state: str) -> list:
    media = [(MessageType(*MEDIA, "location"), on_media)]
    table = {
        "kind": [(Postback("c_kind"), on_kind), (AnyText(), on_kind)],
        "category": [(Postback("c_cat"), on_category), (AnyText(), on_category)],
        "description": [(Postback("c_next"), on_description_done), (DONE_WORDS, on_description_done),
                        (AnyText(), on_description_text)],
        "when": [(Postback("c_when"), on_when), (AnyText(), on_when)],
        "where": [(Postback("c_place"), on_where), (AnyText(), on_where)],
        "evidence": [(Postback("c_next"), on_evidence_done), (DONE_WORDS, on_evidence_done),
                     (AnyText(), on_evidence_text)],
        "identity": [(Postback("c_id"), on_identity), (AnyText(), on_identity)],
        "name": [(Postback("c_id"), on_identity_changed), (AnyText(), on_name)],
        "contact": [(Postback("c_skip"), on_contact), (Postback("c_id"), on_identity_changed), (AnyText(), on_contact)],
        "summary": [(Postback("c_submit"), on_submit), (Keyword("ยืนยัน", "ยืนยันส่ง", "ส่ง", "send", "confirm", "submit"),
                                                        on_submit),
                    (Postback("c_edit"), on_edit), (Keyword("แก้ไข", "edit", "แก้"), on_edit),
                    (Postback("c_editpart"), on_edit_part), (EditPartTyped(), on_edit_part)],
    }
    return [*table[state], *media]


REPORT = Conversation(
    name=NAME,
    entry_points=[(START_WORDS, start), (Postback("complaint"), start)],
    states={s: _routes(s) for s in ("kind", "category", "description", "when", "where", "evidence", "identity",
                                    "name", "contact", "summary")},
    timeout=cases.DRAFT_TTL,
    reprompt=reprompt,
    on_exit=on_exit,
)

FOLLOW = Conversation(
    name="complaint_follow",
    entry_points=[(Postback("c_status"), status_button),
                  (Keyword("ติดตามเรื่อง", "ติดตาม", "สถานะ", "สถานะเรื่อง", "follow a case", "status", "track"),
                   status_button)],
    states={"code": [(AnyText(), on_follow_code), (Anything(), on_follow_code)]},
    timeout=timedelta(minutes=30),
)


def register(engine: Engine) -> None:
    from handlers.dispatcher import PREPARE, UNSEND_HOOKS

    for mtype in MEDIA:  # evidence is fetched before the handling transaction
        PREPARE[f"message.{mtype}"] = prepare_evidence
    if on_unsend not in UNSEND_HOOKS:
        UNSEND_HOOKS.append(on_unsend)
    engine.add(REPORT)
    engine.add(FOLLOW)
    engine.routes[:0] = [
        (StatusRequest(), status_typed),
        (ReplyRequest(), reporter_reply),
        (LinkRequest(), link_officer),
        (BareCode(), status_code_only),
    ]

