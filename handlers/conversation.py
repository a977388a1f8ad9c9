"""Declared conversations, in the spirit of python-telegram-bot's ``ConversationHandler``.

A conversation names its entry points, its states (state → routes) and its fallbacks. A
route pairs a matcher with a step; a step is a small function that takes the context and
returns the next state, :data:`END`, or :data:`STAY`. Where a person is lives in the
database (``ConversationState``), so any worker continues any conversation, and it expires
after ``timeout`` of silence with a polite word.

Commands that work everywhere — cancel, menu, language — are handled by the engine before
any conversation sees the message.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qsl

from sqlalchemy import bindparam, delete, select

from handlers.context import MISSING, Context
from handlers.text import keywords
from models import ConversationState, utcnow

log = logging.getLogger("itabot.conversation")
_STATE = select(ConversationState).where(ConversationState.office_id == bindparam("office"),
                                         ConversationState.line_user_id == bindparam("uid"))

END: None = None
_ENGLISH_WORD = re.compile(r"[A-Za-z]{4,}")
STAY = "__stay__"

Step = Callable[[Context], str | None]


def postback_data(ctx: Context) -> dict[str, str]:
    data = ctx.postback.get("data")
    if not isinstance(data, str):
        return {}
    return dict(parse_qsl(data, keep_blank_values=True))


# -- matchers --------------------------------------------------------------------------------


class Matcher:
    def __call__(self, ctx: Context) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Keyword(Matcher):
    """The whole message is one of these words (Thai digits, particles, case ignored)."""

    words: frozenset[str]

    def __init__(self, *words: str) -> None:
        object.__setattr__(self, "words", keywords(*words))

    def __call__(self, ctx: Context) -> bool:
        return any(form in self.words for form in ctx.typed)


@dataclass(frozen=True)
class Postback(Matcher):
    """A postback whose ``action`` parameter is one of these."""

    actions: frozenset[str]

    def __init__(self, *actions: str) -> None:
        object.__setattr__(self, "actions", frozenset(actions))

    def __call__(self, ctx: Context) -> bool:
        return ctx.type == "postback" and postback_data(ctx).get("action") in self.actions


@dataclass(frozen=True)
class AnyText(Matcher):
    def __call__(self, ctx: Context) -> bool:
        return ctx.text is not None


@dataclass(frozen=True)
class MessageType(Matcher):
    """A message of these types: image, video, audio, file, location, sticker."""

    types: frozenset[str]

    def __init__(self, *types: str) -> None:
        object.__setattr__(self, "types", frozenset(types))

    def __call__(self, ctx: Context) -> bool:
        kind = ctx.message.get("type")
        return ctx.type == "message" and isinstance(kind, str) and kind in self.types


@dataclass(frozen=True)
class Anything(Matcher):
    def __call__(self, ctx: Context) -> bool:
        return True


def either(*matchers: Matcher) -> Matcher:
    class _Either(Matcher):
        def __call__(self, ctx: Context) -> bool:
            return any(m(ctx) for m in matchers)

    return _Either()


Route = tuple[Matcher, Step]


@dataclass
class Conversation:
    name: str
    entry_points: Sequence[Route]
    states: dict[str, Sequence[Route]]
    fallbacks: Sequence[Route] = ()
    timeout: timedelta = timedelta(minutes=30)
    # Said when a message fits no route of the current state; the state is kept.
    reprompt: Step | None = None
    # Called when the person leaves (cancel, timeout): discard whatever the draft holds.
    on_exit: Callable[[Context], None] | None = None
    # A message that fits no route ends the conversation and is handled as if there had been
    # none (for a state that only offers buttons, e.g. after a not-sure answer), not reprompted.
    release_unmatched: bool = False
    # States where any text is the answer ("what was the gift?"): a flow's keyword typed there is the answer,
    # not a command to start that flow.
    free_text: frozenset[str] = frozenset()


# -- the engine ------------------------------------------------------------------------------

CANCEL = Keyword("ยกเลิก", "cancel", "stop", "ออก", "เลิก")
MENU = Keyword("เมนู", "menu", "เมนูหลัก", "main menu", "help", "ช่วยเหลือ")
ENGLISH = Keyword("english", "eng", "ภาษาอังกฤษ", "en")
THAI = Keyword("ภาษาไทย", "thai", "ไทย", "th")


@dataclass
class Engine:
    conversations: list[Conversation] = field(default_factory=list)
    # Routes outside any conversation: menu items, keywords, one-shot answers.
    routes: list[Route] = field(default_factory=list)
    show_menu: Step | None = None
    # Free text no route wanted (later: the integrity Q&A).
    default: Step | None = None

    def add(self, conversation: Conversation) -> None:
        if any(c.name == conversation.name for c in self.conversations):
            raise ValueError(f"conversation {conversation.name!r} declared twice")
        self.conversations.append(conversation)

    def _conversation(self, name: str) -> Conversation | None:
        return next((c for c in self.conversations if c.name == name), None)

    def state_of(self, ctx: Context) -> ConversationState | None:
        if ctx.user_id is None:
            return None
        state = ctx.prefetched("state", ctx.user_id)
        if state is MISSING:
            state = ctx.session.scalar(_STATE, {"office": ctx.office_id, "uid": ctx.user_id})
        return state

    def leave(self, ctx: Context, state: ConversationState | None) -> None:
        """End a conversation and erase its draft."""
        if state is None:
            return
        conv = self._conversation(state.conversation)
        ctx.data = state.data or {}
        if conv is not None and conv.on_exit is not None:
            conv.on_exit(ctx)
        ctx.session.execute(delete(ConversationState).where(ConversationState.id == state.id))

    def _run(self, ctx: Context, conv: Conversation, step: Step, state: ConversationState | None) -> None:
        ctx.data = copy.deepcopy(state.data or {}) if state is not None else {}
        ctx.conversation = conv.name
        nxt = step(ctx)
        if nxt is END:
            if state is not None:
                ctx.session.execute(delete(ConversationState).where(ConversationState.id == state.id))
            return
        now = utcnow()
        if nxt == STAY:
            if state is None:
                return
            nxt = state.state
        if nxt not in conv.states:
            raise ValueError(f"conversation {conv.name!r} has no state {nxt!r}")
        if state is None:
            state = ConversationState(
                office_id=ctx.office_id, line_user_id=ctx.user_id, conversation=conv.name, state=nxt
            )
            ctx.session.add(state)
        state.conversation = conv.name
        state.state = nxt
        state.data = ctx.data
        state.updated_at = now
        state.expires_at = now + conv.timeout

    def start(self, ctx: Context, conversation: Conversation, step: Step) -> None:
        """Run ``step`` as the first step of ``conversation`` (e.g. from the default route)."""
        self._run(ctx, conversation, step, None)

    def handle(self, ctx: Context) -> None:
        state = self.state_of(ctx)
        if state is not None and state.expires_at <= utcnow():
            conv = self._conversation(state.conversation)
            # A word that answered the step it was at ("ยืนยัน" at a report's summary) answers nothing now: after
            # the notice, the menu, not the Q&A's reading of the word.
            answered_it = conv is not None and any(isinstance(matcher, Keyword) and matcher(ctx)
                                                   for matcher, _ in conv.states.get(state.state, ()))
            self.leave(ctx, state)
            state = None
            if conv is None or not conv.release_unmatched:  # buttons on offer were nothing in progress
                ctx.say("expired")
            if answered_it:
                if self.show_menu:
                    self.show_menu(ctx)
                return

        if CANCEL(ctx) or (ctx.type == "postback" and postback_data(ctx).get("action") == "cancel"):
            self._typed_language(ctx)
            if state is not None:
                self.leave(ctx, state)
                ctx.say("cancelled")
            else:
                ctx.say("nothing_to_cancel")
            if self.show_menu:
                self.show_menu(ctx)
            return
        if ENGLISH(ctx) or THAI(ctx) or (ctx.type == "postback" and postback_data(ctx).get("action") == "lang"):
            self._switch_language(ctx, state)
            return
        if MENU(ctx) or (ctx.type == "postback" and postback_data(ctx).get("action") == "menu"):
            self._typed_language(ctx)
            # The menu does not end a conversation in progress: the person may come back.
            if self.show_menu:
                self.show_menu(ctx)
            return

        if state is not None:
            conv = self._conversation(state.conversation)
            if conv is None or state.state not in conv.states:
                log.warning("dropping state of a conversation that no longer exists")
                self.leave(ctx, None)
                ctx.session.execute(delete(ConversationState).where(ConversationState.id == state.id))
                state = None
            else:
                # A flow's keyword typed mid-flow ("แจ้งเบาะแส" while the gift helper waits for a choice, or for a
                # receipt code) starts that flow, as its button would — when leaving loses nothing (no draft) and
                # the step is not one where any text is the answer.
                if conv.on_exit is None and state.state not in conv.free_text:
                    typed = next(((other, step) for other in self.conversations for matcher, step in other.entry_points
                                  if isinstance(matcher, Keyword) and matcher(ctx)), None)
                    if typed is not None:
                        self.leave(ctx, state)
                        self._typed_language(ctx)
                        self._run(ctx, typed[0], typed[1], None)
                        return
                for matcher, step in [*conv.states[state.state], *conv.fallbacks]:
                    if matcher(ctx):
                        self._run(ctx, conv, step, state)
                        return
                # Another conversation's entry point (e.g. a rich-menu tap) starts it anew, unless leaving would
                # throw away a draft (on_exit): that is finished or cancelled first (the reprompt says so).
                starts = next(((other, step) for other in self.conversations for matcher, step in other.entry_points
                               if matcher(ctx) and not isinstance(matcher, AnyText)), None)
                if starts is not None and conv.on_exit is None:
                    self.leave(ctx, state)
                    self._run(ctx, starts[0], starts[1], None)
                    return
                # Any other button (an answer's related topics, the rich menu's survey link ...) does what it
                # says; like the menu, it does not end the conversation: the person may come back to it.
                if ctx.type == "postback" and starts is None:
                    for matcher, step in self.routes:
                        if matcher(ctx):
                            step(ctx)
                            return
                if not conv.release_unmatched:
                    if conv.reprompt is not None:
                        ctx.data = copy.deepcopy(state.data or {})
                        conv.reprompt(ctx)
                    else:
                        ctx.say("not_understood_in_flow")
                    return
                self.leave(ctx, state)
                state = None

        for conv in self.conversations:
            for matcher, step in conv.entry_points:
                if matcher(ctx):
                    if isinstance(matcher, Keyword):
                        self._typed_language(ctx)
                    self._run(ctx, conv, step, None)
                    return
        for matcher, step in self.routes:
            if matcher(ctx):
                if isinstance(matcher, Keyword):
                    self._typed_language(ctx)
                step(ctx)
                return
        if ctx.type == "postback":
            ctx.say("postback_unknown")
            if self.show_menu:
                self.show_menu(ctx)
            return
        if self.default is not None:
            self.default(ctx)

    @staticmethod
    def _typed_language(ctx: Context) -> None:
        """A command typed in English ("I received a gift", "menu") by someone who has not chosen a language runs
        in English, and one typed in Thai in Thai: the language typed is the request, until "English"/"ภาษาไทย"
        chooses one for good. Call only once the text has matched a keyword (any text can be the answer to a step)."""
        user, text = ctx.user, ctx.text
        if user is None or text is None or user.language_chosen:
            return
        if any("\u0e00" <= ch <= "\u0e7f" for ch in text):
            user.language = "th"
        elif _ENGLISH_WORD.search(text):  # not "EIT" or "IIT" alone: Thai speakers type those too
            user.language = "en"

    def _switch_language(self, ctx: Context, state: ConversationState | None = None) -> None:
        if ctx.user is None:
            return
        data = postback_data(ctx) if ctx.type == "postback" else {}
        if data.get("lang") in ("th", "en"):
            lang = data["lang"]
        elif ctx.type == "postback":
            lang = "en" if ctx.user.language == "th" else "th"
        else:
            lang = "en" if ENGLISH(ctx) else "th"
        ctx.user.language = lang
        ctx.user.language_chosen = True
        ctx.say("language_set")
        conv = self._conversation(state.conversation) if state is not None else None
        if conv is not None and conv.reprompt is not None and state.state in conv.states:
            # In the middle of a flow: its question again, in the new language (the flow goes on).
            ctx.data = copy.deepcopy(state.data or {})
            conv.reprompt(ctx)
        elif self.show_menu:
            self.show_menu(ctx)
