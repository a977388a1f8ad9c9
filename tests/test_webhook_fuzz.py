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
