"""Whatever a signed delivery contains, the webhook answers 200 or 400, never 5xx, and the
workers survive processing it (property-based, Hypothesis)."""

from __future__ import annotations

import json

import pytest
from conftest import sign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SPECIALS = ["\u200b", "\u202e", "\u0e49", "\u0e35\u0e49", "🙏🏽", "๑๒๓", "ร้องเรียน", "เมนู", "English", "ยกเลิก",
            "action=menu", "action=", "\x00", "a" * 6000]
ODD_TEXT = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.lists(st.sampled_from(SPECIALS), max_size=4).map("".join),
)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | ODD_TEXT
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(ODD_TEXT, inner, max_size=4), max_leaves=12)

EVENT_TYPES = st.sampled_from(["message", "postback", "follow", "unfollow", "unsend", "join", "leave",
                               "memberJoined", "beacon", "somethingNew", ""])
SOURCES = st.one_of(
    st.fixed_dictionaries({"type": st.just("user"), "userId": st.sampled_from(["U" + "a" * 32, "U" + "b" * 32])}),
    st.fixed_dictionaries({"type": st.just("group"), "groupId": st.just("C" + "c" * 32)}),
    ANY_JSON,
)
EVENTS = st.fixed_dictionaries(
    {"type": EVENT_TYPES, "source": SOURCES},
    optional={
        "webhookEventId": ODD_TEXT,
        "timestamp": st.integers(-5, 2**62) | ODD_TEXT,
        "replyToken": ODD_TEXT,
        "message": st.fixed_dictionaries({"type": st.sampled_from(["text", "image", "sticker", "file", "x"])},
                                         optional={"text": ODD_TEXT, "id": ODD_TEXT}) | ANY_JSON,
        "postback": st.fixed_dictionaries({"data": ODD_TEXT}) | ANY_JSON,
        "unsend": ANY_JSON,
        "extra": ANY_JSON,
    },
)
BODIES = st.fixed_dictionaries({"events": st.lists(EVENTS, max_size=4)}) | ANY_JSON


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_signed_arbitrary_json_is_answered_and_survived(bot, body):
    raw = json.dumps(body, ensure_ascii=False).encode()
    resp = bot.client.post("/callback", data=raw, headers={"X-Line-Signature": sign(raw)})
    assert resp.status_code in (200, 400), resp.get_data(as_text=True)
    bot.drain()  # handlers must not crash the worker on odd events
    assert bot.client.get("/healthz").status_code == 200


# -- what the coverage-guided run (bench/fuzz) found ---------------------------------------------------


def _failed_events(bot) -> int:
    from sqlalchemy import func, select

    from models import WebhookEvent

    with bot.services.db.Session() as s:
        return s.scalar(select(func.count(WebhookEvent.id)).where(WebhookEvent.status == "failed"))


def _post(bot, raw: bytes):
    return bot.client.post("/callback", data=raw, headers={"X-Line-Signature": sign(raw)})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_nesting_deeper_than_the_parser_is_a_400_not_a_500(bot):
    raw = b"[" * 5000 + b"]" * 5000
    assert _post(bot, raw).status_code == 400


def test_a_lone_surrogate_is_stored_as_a_replacement_character_and_answered(bot):
    from conftest import new_user

    user = new_user()
    ev = bot.event(user, "message", message={"type": "text", "id": "1", "text": "PLACEHOLDER"})
    raw = json.dumps({"destination": "x", "events": [ev]}).replace("PLACEHOLDER", "\\ud800 เมนู").encode()
    assert _post(bot, raw).status_code == 200  # stored (LINE would otherwise redeliver it for ever)
    bot.drain()
    assert bot.texts(user) and _failed_events(bot) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_events_without_a_user_or_with_a_non_text_type_are_accepted_and_left_alone(bot):
    events = [
        {"type": "message", "webhookEventId": "01NOUSER", "timestamp": 1, "mode": "active", "replyToken": "t1",
         "source": {"type": "user"}, "message": {"type": "text", "id": "6", "text": "ของขวัญ"},
         "deliveryContext": {"isRedelivery": False}},
        {"type": "message", "webhookEventId": "01ODDTYPE", "timestamp": 1, "mode": "active", "replyToken": "t2",
         "source": {"type": "user", "userId": "U" + "d" * 32}, "message": {"type": {}, "id": "7"},
         "deliveryContext": {"isRedelivery": False}},
    ]
    raw = json.dumps({"destination": "x", "events": events}).encode()
    assert _post(bot, raw).status_code == 200
    bot.drain()
    assert _failed_events(bot) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("typed", ["①", "²", "5⁰⁰", "9" * 4301])
def test_odd_digits_typed_in_a_flow_get_the_question_again(bot, typed):
    from conftest import new_user

    for start in ("ได้รับของขวัญ", "แจ้งเบาะแส"):
        user = new_user()
        bot.text(user, start)
        before = len(bot.texts(user))
        bot.text(user, typed)
        assert len(bot.texts(user)) > before and _failed_events(bot) == 0  # an answer, not a parked event


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_long_run_of_digits_is_a_question_like_any_other(bot):
    from conftest import new_user

    user = new_user()
    bot.text(user, "9" * 4301 + "ร้อย")
    assert "ไม่แน่ใจ" in bot.last_text(user) and _failed_events(bot) == 0
