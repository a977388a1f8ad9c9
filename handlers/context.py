"""What a handler gets: the event, the person, a database session, and a way to answer.

Handlers never talk to LINE themselves. ``reply`` and ``push`` collect messages (SDK message
models, or for the three shapes every answer uses — a text, a quick reply that sends a keyword,
a quick-reply postback — the same JSON built directly: pydantic's validation and ``to_dict``
cost more than the rest of handling an event; a test checks the two agree, and the contract
test checks every request against LINE's spec);
the worker writes them to the outbox in the same transaction as the handler's own changes
and sends them through the gateway after commit. ``line`` is there for the few calls that
must happen during handling (fetching a user's file before LINE discards it).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from linebot.v3.messaging import Message, QuickReplyItem
from sqlalchemy.orm import Session

from handlers.i18n import t
from handlers.text import normalize, without_politeness
from models import LineUser

TEXT_LIMIT = 5000  # LINE counts a text's length in UTF-16 code units (an emoji such as 🍎 is two)
ALT_TEXT_LIMIT = 1500  # a flex message's altText, counted the same way
MISSING = object()  # Context.prefetched: nothing was read ahead
QUICK_REPLY_MAX = 13
# Action labels (20), a postback's displayText (300) and a message action's text LINE counts in grapheme
# clusters; cutting those by code points (Python's len) can only leave them shorter than LINE allows.


def utf16_len(text: str) -> int:
    """The length LINE counts for a text: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def fit_utf16(text: str, limit: int, end: str = "…") -> str:
    """``text`` as it is when LINE would take it, else cut to ``limit`` UTF-16 code units with ``end`` last.
    Never cuts inside a character: a character LINE counts as two units goes whole or not at all."""
    if len(text) * 2 <= limit or utf16_len(text) <= limit:
        return text
    units = text.encode("utf-16-le")[: 2 * (limit - utf16_len(end))]
    if units and 0xD800 <= int.from_bytes(units[-2:], "little") <= 0xDBFF:  # half of a surrogate pair
        units = units[:-2]
    return units.decode("utf-16-le") + end


@dataclass
class Outgoing:
    reply_token: str | None
    to: str | None
    messages: list[dict]


@dataclass
class Context:
    session: Session
    office_id: int
    office_name: str
    event: dict
    user: LineUser | None
    line: Any = None  # bot.gateway.LineGateway, for calls during handling
    cipher: Any = None  # bot.crypto.DataCipher: encryption at rest and keyed hashes
    public_base_url: str = "http://localhost:8000"  # where people reach us (links, QR images)
    outgoing: list[Outgoing] = field(default_factory=list)
    _pending: list[dict] = field(default_factory=list)
    # Calls to LINE to make once the transaction has committed (e.g. link a rich menu).
    after: list = field(default_factory=list)
    # Facts gathered before the transaction (see ``Dispatcher.prepare``).
    prepared: dict = field(default_factory=dict)
    # The current conversation's draft, persisted by the engine after each step.
    data: dict = field(default_factory=dict)
    conversation: str | None = None
    # This reply's language when it is not the person's setting (a question asked in the other language).
    reply_lang: str | None = None
    _typed: tuple[str, ...] | None = field(default=None, repr=False)

    # -- facts about the event ------------------------------------------------------------

    @property
    def type(self) -> str:
        return str(self.event.get("type", ""))

    @property
    def source(self) -> dict:
        src = self.event.get("source")
        return src if isinstance(src, dict) else {}

    @property
    def user_id(self) -> str | None:
        uid = self.source.get("userId")
        return uid if isinstance(uid, str) else None

    @property
    def chat_id(self) -> str | None:
        """Where a push for this conversation goes: the group or room, else the user."""
        for key in ("groupId", "roomId", "userId"):
            value = self.source.get(key)
            if isinstance(value, str):
                return value
        return None

    @property
    def reply_token(self) -> str | None:
        tok = self.event.get("replyToken")
        return tok if isinstance(tok, str) and tok else None

    @property
    def message(self) -> dict:
        msg = self.event.get("message")
        return msg if isinstance(msg, dict) else {}

    @property
    def text(self) -> str | None:
        if self.type == "message" and self.message.get("type") == "text":
            value = self.message.get("text")
            return value if isinstance(value, str) else None
        return None

    def prefetched(self, kind: str, uid: str):
        """The person ("user") or conversation state ("state") that ``handlers.dispatcher.prefetch`` read ahead
        for this batch (None: there is none), taken once; ``MISSING`` when nothing was read ahead."""
        found = self.session.info.get("prefetched")
        return found.pop((kind, self.office_id, uid), MISSING) if found else MISSING

    @property
    def typed(self) -> tuple[str, ...]:
        """The text as keywords are compared with it: ``normalize``d, and also without the politeness
        around it ("ยกเลิกนะคะ", "cancel please"); empty for anything but text. Worked out once per event:
        a message is held against a dozen keywords before it reaches its handler."""
        if self._typed is None:
            text = self.text
            self._typed = () if text is None else (normalize(text), normalize(without_politeness(text)))
        return self._typed

    @property
    def postback(self) -> dict:
        pb = self.event.get("postback")
        return pb if isinstance(pb, dict) else {}

    @property
    def lang(self) -> str:
        if self.reply_lang is not None:
            return self.reply_lang
        return self.user.language if self.user is not None else "th"

    def after_commit(self, call) -> None:
        """Run ``call(gateway)`` after this event's changes are committed (never while holding
        the database's write turn); failures are logged, the event stays done."""
        self.after.append(call)

    def remember_message(self, content: Any) -> None:
        """Keep what this message said in the draft, under its id, so an unsend can erase it."""
        mid = self.message.get("id")
        if isinstance(mid, str):
            self.data.setdefault("_messages", {})[mid] = content

    # -- answering -----------------------------------------------------------------------

    def t(self, key: str, **values: object) -> str:
        values.setdefault("office", self.office_name)
        return t(key, self.lang, **values)

    def reply(self, *messages: Message | dict) -> None:
        """Queue messages to this chat; sent as one reply (free) when LINE allows it."""
        for m in messages:
            self._pending.append(m if isinstance(m, dict) else m.to_dict())

    def quick_replies_last(self) -> None:
        """LINE shows only the last message's quick replies: when the buttons were put on an earlier
        message of this reply (an answer, then a card), move them to the last one."""
        if len(self._pending) > 1 and "quickReply" not in self._pending[-1]:
            with_buttons = next((m for m in reversed(self._pending) if "quickReply" in m), None)
            if with_buttons is not None:
                self._pending[-1]["quickReply"] = with_buttons.pop("quickReply")

    def say(self, key: str, quick: list[QuickItem] | None = None, **values: object) -> None:
        self.reply(text_message(self.t(key, **values), quick))

    def push(self, to: str, *messages: Message | dict) -> None:
        """Send to someone other than the person who wrote (costs message quota)."""
        self.outgoing.append(Outgoing(None, to, [m if isinstance(m, dict) else m.to_dict() for m in messages]))

    def flush(self) -> list[Outgoing]:
        """Everything to send, the reply first, split into LINE's 5-message requests."""
        out: list[Outgoing] = []
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), 5):
            chunk = pending[i : i + 5]
            token = self.reply_token if i == 0 else None
            out.append(Outgoing(token, self.chat_id, chunk))
        out.extend(self.outgoing)
        self.outgoing = []
        return out

    # -- building blocks ------------------------------------------------------------------

    def quick_message(self, label_key: str, text_key: str | None = None) -> dict:
        """A quick reply that sends a keyword, so tapping and typing do the same thing."""
        label = self.t(label_key)
        return {"type": "action", "action": {"type": "message", "label": fit_label(label),
                                             "text": self.t(text_key or label_key)}}

    def quick_postback(self, label: str, data: str, display: str | None = None) -> dict:
        return {"type": "action", "action": {"type": "postback", "label": fit_label(label), "data": data,
                                             "displayText": (display or label)[:300]}}


def fit_label(text: str, limit: int = 20) -> str:
    """A button's label within LINE's ``limit`` characters: cut, it ends in "…" — after a whole letter with its
    vowel and tone marks, and without a space before the "…"."""
    if len(text) <= limit:
        return text
    cut = limit - 1
    while cut > 0 and unicodedata.category(text[cut]) == "Mn":  # the first mark dropped takes its letter along
        cut -= 1
    return text[:cut].rstrip() + "…"


QuickItem = dict | QuickReplyItem  # what quick_message/quick_postback return, or an SDK item


def text_message(text: str, quick: list[QuickItem] | None = None) -> dict:
    """LINE's text message (as TextMessage(...).to_dict() would give it), with quick replies."""
    message: dict = {"type": "text", "text": fit_utf16(text, TEXT_LIMIT)}
    if quick:
        message["quickReply"] = {"items": [q if isinstance(q, dict) else q.to_dict() for q in quick[:QUICK_REPLY_MAX]]}
    return message
