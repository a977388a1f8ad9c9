"""From a stored LINE event to the handler that owns it.

Every event type in LINE's webhook spec is accepted; those we have no use for are ignored
without error. Text and postbacks go through the conversation engine; follow, unfollow,
unsend, join and leave are handled here because they concern the person or group itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import bindparam, select

from bot.inbox import event_kind
from handlers import menu
from handlers.context import MISSING, Context, text_message
from handlers.conversation import Engine, MessageType, Postback
from handlers.i18n import both
from models import ConversationState, LineGroup, LineUser, Office, utcnow

log = logging.getLogger("itabot.dispatch")

# Features that keep a user's message content elsewhere register an eraser here, called
# with (context, message_id) when the user unsends that message.
UNSEND_HOOKS: list[Callable[[Context, str], None]] = []


# Built once: constructing the statement costs more than running it (this runs for every event).
_USER = select(LineUser).where(LineUser.office_id == bindparam("office"), LineUser.line_user_id == bindparam("uid"))


_USERS = select(LineUser).where(LineUser.office_id == bindparam("office"),
                                LineUser.line_user_id.in_(bindparam("uids", expanding=True)))
_STATES = select(ConversationState).where(ConversationState.office_id == bindparam("office"),
                                          ConversationState.line_user_id.in_(bindparam("uids", expanding=True)))


def prefetch(session, office_id: int, events: list[dict]) -> None:
    """Read the people and conversation states of a batch of events in two statements instead of two per
    event. Each is kept in ``session.info["prefetched"]`` until its event takes it (``Context.prefetched``): once
    only, so anything asked again later in the transaction is read afresh."""
    uids = sorted({src["userId"] for ev in events if isinstance(src := ev.get("source"), dict)
                   and isinstance(src.get("userId"), str)})
    if not uids:
        return
    found = session.info.setdefault("prefetched", {})
    users = {u.line_user_id: u for u in session.scalars(_USERS, {"office": office_id, "uids": uids})}
    states = {st.line_user_id: st for st in session.scalars(_STATES, {"office": office_id, "uids": uids})}
    for uid in uids:
        found[("user", office_id, uid)] = users.get(uid)
        found[("state", office_id, uid)] = states.get(uid)


def load_user(ctx: Context, create: bool = True) -> LineUser | None:
    uid = ctx.user_id
    if uid is None or ctx.source.get("type") not in (None, "user"):
        return None
    user = ctx.prefetched("user", uid)
    if user is MISSING:
        user = ctx.session.scalar(_USER, {"office": ctx.office_id, "uid": uid})
    if user is None and create:
        user = LineUser(office_id=ctx.office_id, line_user_id=uid, language="th", following=True)
        ctx.session.add(user)
        ctx.session.flush()
    return user


def _profile_language(line, user_id: str) -> str | None:
    try:
        profile = line.api.get_profile(user_id, _request_timeout=(2, 3))
    except Exception:  # the profile is a nicety; never fail a follow for it
        log.info("profile lookup failed")
        return None
    lang = (getattr(profile, "language", None) or "").lower()
    if not lang:
        return None
    return "th" if lang.startswith("th") else "en"


def prepare_follow(event: dict, office_id: int, line, session) -> dict:
    """Calls to LINE a follow needs, made before the handling transaction.

    The transaction holds the database's write turn (on SQLite, everyone's), so it must not
    wait on a network round trip: the profile language is read and the rich menu linked here,
    and ``on_follow`` only records the results.
    """
    src = event.get("source")
    uid = src.get("userId") if isinstance(src, dict) and src.get("type") == "user" else None
    if line is None or not isinstance(uid, str):
        return {}
    out: dict = {"profile_language": _profile_language(line, uid)}
    user = session.scalar(select(LineUser).where(LineUser.office_id == office_id, LineUser.line_user_id == uid))
    office = session.get(Office, office_id)
    kind = user.richmenu if user is not None and user.richmenu in ("public", "staff") else "public"
    menu_id = office.richmenu_staff_id if kind == "staff" else office.richmenu_public_id
    if menu_id:
        try:
            line.link_rich_menu(uid, menu_id)
            out["richmenu"] = kind
        except Exception:
            log.warning("rich menu link failed")
    return out


def on_follow(ctx: Context, engine: Engine) -> None:
    user = ctx.user
    if user is None:
        return
    user.following = True
    user.followed_at = utcnow()
    user.unfollowed_at = None
    if not user.language_chosen:
        user.language = ctx.prepared.get("profile_language") or user.language
    if ctx.prepared.get("richmenu"):
        user.richmenu = ctx.prepared["richmenu"]
    ctx.reply(text_message(both("greeting", office=ctx.office_name)))
    if ctx.prepared.get("profile_language") or user.language_chosen:
        ctx.say("privacy")  # in the language LINE's profile (or the person) gave
    else:  # no language known yet: like the greeting, both
        ctx.reply(text_message(both("privacy")))
    menu.show_menu(ctx)


def on_unfollow(ctx: Context, engine: Engine) -> None:
    user = ctx.user
    if user is None:
        return
    user.following = False
    user.unfollowed_at = utcnow()
    state = engine.state_of(ctx)
    engine.leave(ctx, state)  # a draft nobody can finish any more is erased


def on_unsend(ctx: Context, engine: Engine) -> None:
    unsend = ctx.event.get("unsend")
    mid = unsend.get("messageId") if isinstance(unsend, dict) else None
    if not isinstance(mid, str) or ctx.user_id is None:
        return
    state = ctx.session.scalar(
        select(ConversationState).where(
            ConversationState.office_id == ctx.office_id,
            ConversationState.line_user_id == ctx.user_id,
        )
    )
    if state is not None and mid in (state.data or {}).get("_messages", {}):
        data = dict(state.data)
        msgs = dict(data["_messages"])
        msgs.pop(mid, None)
        data["_messages"] = msgs
        state.data = data
    for hook in UNSEND_HOOKS:
        hook(ctx, mid)


def _group_id(ctx: Context) -> tuple[str, str] | None:
    src = ctx.source
    if src.get("type") == "group" and isinstance(src.get("groupId"), str):
        return src["groupId"], "group"
    if src.get("type") == "room" and isinstance(src.get("roomId"), str):
        return src["roomId"], "room"
    return None


def on_join(ctx: Context, engine: Engine) -> None:
    gid = _group_id(ctx)
    if gid is None:
        return
    group = ctx.session.scalar(
        select(LineGroup).where(LineGroup.office_id == ctx.office_id, LineGroup.group_id == gid[0])
    )
    if group is None:
        group = LineGroup(office_id=ctx.office_id, group_id=gid[0], kind=gid[1])
        ctx.session.add(group)
    group.active = True
    group.joined_at = utcnow()
    group.left_at = None
    ctx.reply(text_message(both("group_hello", office=ctx.office_name)))


def on_leave(ctx: Context, engine: Engine) -> None:
    gid = _group_id(ctx)
    if gid is None:
        return
    group = ctx.session.scalar(
        select(LineGroup).where(LineGroup.office_id == ctx.office_id, LineGroup.group_id == gid[0])
    )
    if group is not None:
        group.active = False
        group.left_at = utcnow()


def on_conversation(ctx: Context, engine: Engine) -> None:
    if _group_id(ctx) is not None:
        # The bot stays quiet in groups: it does not read people's conversations.
        return
    if not ctx.user_id:
        # LINE always names the person in a one-to-one chat; an event without one cannot hold a
        # conversation (its state is kept per person), so it is accepted and left alone.
        return
    engine.handle(ctx)


def build_engine() -> Engine:
    engine = Engine(show_menu=menu.show_menu)
    engine.routes.extend(
        [
            (Postback("about"), menu.about),
            (Postback("privacy"), menu.privacy),
            (MessageType("image", "video", "audio", "file"), lambda c: c.say("media_unexpected")),
            (MessageType("location"), lambda c: c.say("location_unexpected")),
            (MessageType("sticker"), lambda c: c.say("sticker")),
        ]
    )

    def unknown(ctx: Context) -> None:
        ctx.say("unknown")
        menu.show_menu(ctx)

    engine.default = unknown
    from handlers import complaints, integrity, surveys

    surveys.register(engine)
    complaints.register(engine)
    integrity.register(engine)
    return engine


HANDLERS: dict[str, Callable[[Context, Engine], None]] = {
    "follow": on_follow,
    "unfollow": on_unfollow,
    "message": on_conversation,
    "postback": on_conversation,
    "unsend": on_unsend,
    "join": on_join,
    "leave": on_leave,
}


# Work an event type needs done before its transaction (network calls): (event, office_id,
# gateway, read session) -> facts for the handler, as ``ctx.prepared``.
# Keys are ``bot.inbox.event_kind``: the event type, or "message.image" etc. for content messages.
PREPARE: dict[str, Callable[..., dict]] = {"follow": prepare_follow}



class Dispatcher:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or build_engine()

    def prepare(self, event: dict, office_id: int, line, session) -> dict:
        fn = PREPARE.get(event_kind(event))
        return fn(event, office_id, line, session) if fn is not None else {}

    def dispatch(self, ctx: Context) -> None:
        handler = HANDLERS.get(ctx.type)
        if handler is None:
            log.info("event ignored", extra={"event_type": ctx.type[:32]})
            return
        ctx.user = load_user(ctx)
        handler(ctx, self.engine)
