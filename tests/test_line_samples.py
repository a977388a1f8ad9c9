"""Tests for ``tests/line_samples.py``.

Handler tests trust those samples to be payloads LINE could really send.
These tests keep that trust honest: every sample validates against LINE's
spec, the samples cover every type the spec knows (read from the spec, so a
new LINE event type fails here first), and the validator demonstrably
rejects broken events instead of being a no-op.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import line_samples as ls
import pytest

SAMPLES = ls.sample_events()
BY_NAME = dict(SAMPLES)
ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
# LINE's own examples omit `source` for these; everything else carries one.
SOURCELESS_TYPES = {"module", "botSuspended", "botResumed"}


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Yield every (key, value) pair in a nested JSON structure."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _concrete_schema_parts(event_type: str) -> tuple[dict[str, Any], set[str]]:
    """Properties and required names declared by the concrete event schema."""
    schemas = ls.webhook_spec()["components"]["schemas"]
    schema = schemas[ls.discriminator_mapping("Event")[event_type]]
    props: dict[str, Any] = {}
    required: set[str] = set()
    for part in [schema, *schema.get("allOf", [])]:
        if "$ref" in part:
            continue
        props.update(part.get("properties", {}))
        required.update(part.get("required", []))
    return props, required


# --- the samples are valid ------------------------------------------------


@pytest.mark.parametrize("name", list(BY_NAME))
def test_sample_validates(name: str) -> None:
    ls.validate_event(BY_NAME[name])


def test_sample_names_are_unique_and_start_with_the_event_type() -> None:
    names = [name for name, _ in SAMPLES]
    assert len(names) == len(set(names))
    for name, event in SAMPLES:
        parts = name.split("/")
        assert parts[0] == event["type"], name
        if event["type"] == "message":
            assert parts[1] == event["message"]["type"], name


def test_samples_are_json_round_trippable() -> None:
    for name, event in SAMPLES:
        assert json.loads(json.dumps(event)) == event, name


def test_callback_body_is_valid() -> None:
    body = ls.callback_body([event for _, event in SAMPLES])
    ls.validate_callback(body)
    assert body["destination"] == ls.BOT_USER_ID
    assert len(body["events"]) == len(SAMPLES)
    # LINE's "Verify" button sends an empty event list.
    ls.validate_callback(ls.callback_body([]))


def test_callback_body_rejects_bad_destination() -> None:
    with pytest.raises(ls.ValidationError):
        ls.validate_callback(ls.callback_body([], destination="Ubot"))


# --- coverage is driven by the spec ---------------------------------------


def test_every_event_type_in_the_spec_has_a_sample() -> None:
    covered = {event["type"] for _, event in SAMPLES}
    missing = set(ls.discriminator_mapping("Event")) - covered
    assert not missing, f"spec has event types without a sample: {sorted(missing)}"


def test_every_message_content_type_in_the_spec_has_a_sample() -> None:
    covered = {e["message"]["type"] for _, e in SAMPLES if e["type"] == "message"}
    missing = set(ls.discriminator_mapping("MessageContent")) - covered
    assert not missing, f"spec has message types without a sample: {sorted(missing)}"


def test_text_messages_come_from_every_source_type() -> None:
    covered = {
        e["source"]["type"]
        for _, e in SAMPLES
        if e["type"] == "message" and e["message"]["type"] == "text"
    }
    assert covered >= set(ls.discriminator_mapping("Source"))


def test_every_discriminator_branch_in_the_spec_is_exercised() -> None:
    expected = {
        (base, key) for base in ls.discriminated_schemas() for key in ls.discriminator_mapping(base)
    }
    hit = ls.dispatched_mappings(event for _, event in SAMPLES)
    assert expected - hit == set()


# --- the samples look like LINE's --------------------------------------------


def test_common_fields_look_like_line() -> None:
    for name, event in SAMPLES:
        assert ULID_RE.match(event["webhookEventId"]), name
        assert event["deliveryContext"] == {"isRedelivery": False}, name
        assert event["mode"] in ("active", "standby"), name
        assert isinstance(event["timestamp"], int), name
        assert event["timestamp"] > 1_500_000_000_000, name  # milliseconds


def test_source_present_except_where_line_omits_it() -> None:
    # The spec does not require `source`; LINE leaves it out of module,
    # botSuspended and botResumed events, so handlers must cope.
    for name, event in SAMPLES:
        assert ("source" in event) == (event["type"] not in SOURCELESS_TYPES), name


def test_reply_tokens_exactly_where_the_spec_has_them() -> None:
    for name, event in SAMPLES:
        props, required = _concrete_schema_parts(event["type"])
        if "replyToken" in required:
            assert "replyToken" in event, name
        elif "replyToken" not in props:
            assert "replyToken" not in event, name
        elif name != "accountLink/failed":  # LINE omits it when linking fails
            assert "replyToken" in event, name
    assert "replyToken" not in BY_NAME["accountLink/failed"]


def test_ids_match_line_formats() -> None:
    patterns = {
        "userId": ls.USER_ID_RE,
        "botId": ls.USER_ID_RE,
        "groupId": ls.GROUP_ID_RE,
        "roomId": ls.ROOM_ID_RE,
    }
    for name, event in SAMPLES:
        for key, value in _walk(event):
            if key in patterns:
                assert patterns[key].match(value), f"{name}: {key}={value!r}"


def test_user_id_can_be_pinned() -> None:
    user_id = "U" + "ab" * 16
    samples = ls.sample_events(user_id=user_id)
    for name, event in samples:
        if "userId" in event.get("source", {}):
            assert event["source"]["userId"] == user_id, name
    joined = dict(samples)["memberJoined/group"]["joined"]["members"]
    assert {"type": "user", "userId": user_id} in joined


def test_default_ids_differ_per_call() -> None:
    first = ls.sample_event("message/text/user")["source"]["userId"]
    second = ls.sample_event("message/text/user")["source"]["userId"]
    assert first != second


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_id": "u" + "0" * 32},
        {"user_id": "U" + "0" * 31},
        {"user_id": "U" + "G" * 32},
        {"group_id": "G" + "0" * 32},
        {"room_id": "C" + "0" * 32},
    ],
)
def test_malformed_ids_are_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        ls.sample_events(**kwargs)


def test_webhook_event_ids_are_fresh_on_every_call() -> None:
    first = [event["webhookEventId"] for _, event in ls.sample_events()]
    second = [event["webhookEventId"] for _, event in ls.sample_events()]
    assert len(set(first)) == len(first)
    assert not set(first) & set(second)


def test_sample_event_by_name() -> None:
    assert ls.sample_event("postback/datetime")["postback"]["params"] == {
        "datetime": "2025-09-03T10:00"
    }
    with pytest.raises(KeyError):
        ls.sample_event("no/such/sample")


# --- the validator is not a no-op ---------------------------------------


def _drop(*path: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        node: Any = event
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]

    return mutate


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        node: Any = event
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return mutate


BROKEN = [
    # (sample, mutation, expected message fragment)
    # Nested discriminators: these fail only if dispatch really happens.
    ("message/text/user", _drop("message", "text"), "'text' is a required"),
    ("message/image/user", _drop("message", "contentProvider"), "'contentProvider'"),
    ("message/text/group", _drop("source", "groupId"), "'groupId' is a required"),
    ("message/text/room", _drop("source", "roomId"), "'roomId' is a required"),
    ("message/text/user", _set("txt", "message", "type"), "not a known MessageContent"),
    ("message/text/user", _set("bot", "source", "type"), "not a known Source"),
    (
        "message/text/mention",
        _drop("message", "mention", "mentionees", 0, "index"),
        "'index' is a required",
    ),
    ("membership/joined", _set("3189", "membership", "membershipId"), "not of type"),
    ("module/attached", _drop("module", "scopes"), "'scopes' is a required"),
    ("module/detached", _set("other", "module", "reason"), "is not one of"),
    # Event discriminator and concrete event schemas.
    ("follow", _set("followed", "type"), "not a known Event"),
    ("follow", _drop("follow"), "'follow' is a required"),
    ("follow", _drop("replyToken"), "'replyToken' is a required"),
    ("join/group", _drop("replyToken"), "'replyToken' is a required"),
    ("message/text/user", _drop("message"), "'message' is a required"),
    ("message/sticker/user", _set("GIF", "message", "stickerResourceType"), "is not one of"),
    ("message/location/user", _set("35.6", "message", "latitude"), "not of type"),
    ("postback/datetime", _set(20250903, "postback", "params", "datetime"), "not of type"),
    ("beacon", _set("exit", "beacon", "type"), "is not one of"),
    ("accountLink", _set("maybe", "link", "result"), "is not one of"),
    # Common fields.
    ("unsend", _drop("webhookEventId"), "'webhookEventId' is a required"),
    ("unsend", _drop("deliveryContext", "isRedelivery"), "'isRedelivery' is a required"),
    ("delivery", _set("paused", "mode"), "is not one of"),
    ("delivery", _set("now", "timestamp"), "not of type"),
    ("botSuspended", _drop("type"), "'type' is a required"),
]


@pytest.mark.parametrize(
    ("name", "mutate", "fragment"),
    BROKEN,
    ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(BROKEN)],
)
def test_broken_event_is_rejected(
    name: str, mutate: Callable[[dict[str, Any]], None], fragment: str
) -> None:
    event = copy.deepcopy(BY_NAME[name])
    mutate(event)
    with pytest.raises(ls.ValidationError):
        ls.validate_event(event)
    assert any(fragment in error for error in ls.event_errors(event)), ls.event_errors(event)


def test_non_object_event_is_rejected() -> None:
    with pytest.raises(ls.ValidationError):
        ls.validate_event(["not", "an", "event"])


# --- spec location ------------------------------------------------------


def test_spec_path_defaults_to_shared_beside_the_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ls.SPEC_DIR_ENV, raising=False)
    repo_root = Path(ls.__file__).resolve().parents[1]
    expected = repo_root.parent / "shared" / "line-openapi" / "webhook.yml"
    assert ls.spec_path() == expected


def test_spec_path_honours_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ls.SPEC_DIR_ENV, str(tmp_path))
    assert ls.spec_path() == tmp_path / "webhook.yml"


def test_webhook_spec_is_loaded_once() -> None:
    assert ls.webhook_spec() is ls.webhook_spec()
