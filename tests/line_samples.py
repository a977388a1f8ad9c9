"""Synthesised LINE webhook payloads, checked against LINE's own OpenAPI spec.

LINE's ``webhook.yml`` carries no literal examples, so tests would otherwise
hand-write JSON that drifts from what the platform really sends.  This module
builds one realistic event per concrete event type (and per message content
type, plus source and postback variants) and validates them against the spec,
so a handler test that passes here is exercising payloads LINE could send.

The spec models polymorphism the "inheritance" way: the base schema
(``Event``, ``Source``, ``MessageContent`` ...) carries a ``discriminator``
and each concrete schema is ``allOf: [base, {...}]``.  Neither ``jsonschema``
nor ``openapi-schema-validator`` dispatch on such a discriminator (the latter
only honours one that sits beside ``oneOf``/``anyOf``/``allOf``), so without
help ``{"type": "message", "message": {"type": "text", "id": "1"}}`` would
pass although ``text`` is required.  :func:`validate_event` therefore adds a
``discriminator`` keyword that descends into the mapped schema, after
rewriting each concrete schema's ``allOf`` back-reference to a
discriminator-free copy of its base (otherwise base -> concrete -> base
would recurse forever).

The spec is found at ``<repo_root>/../shared/line-openapi/webhook.yml`` (the
CI layout), or in the directory named by ``LINE_OPENAPI_DIR``.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import hashlib
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.validators import extend
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

__all__ = [
    "BOT_USER_ID",
    "ValidationError",
    "callback_body",
    "discriminator_mapping",
    "dispatched_mappings",
    "event_errors",
    "new_webhook_event_id",
    "sample_event",
    "sample_events",
    "spec_path",
    "validate_callback",
    "validate_event",
    "webhook_spec",
]

SPEC_DIR_ENV = "LINE_OPENAPI_DIR"
SPEC_FILENAME = "webhook.yml"
SCHEMA_PREFIX = "#/components/schemas/"

#: User id of "our" bot: the default ``destination`` and the mentioned bot.
BOT_USER_ID = "U" + "0" * 32

USER_ID_RE = re.compile(r"^U[0-9a-f]{32}$")
GROUP_ID_RE = re.compile(r"^C[0-9a-f]{32}$")
ROOM_ID_RE = re.compile(r"^R[0-9a-f]{32}$")

_SPEC_URI = "urn:line-openapi:webhook.yml"
_BASE_SUFFIX = "__base"
_NAME_KEY = "x-samples-schema-name"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# --------------------------------------------------------------------------
# Spec loading
# --------------------------------------------------------------------------


def spec_path() -> Path:
    """Return where ``webhook.yml`` is expected.

    ``LINE_OPENAPI_DIR`` wins so a developer can point at another checkout;
    otherwise the CI layout (``shared/`` cloned beside the repo) is assumed.
    """
    override = os.environ.get(SPEC_DIR_ENV)
    if override:
        return Path(override) / SPEC_FILENAME
    repo_root = Path(__file__).resolve().parents[1]
    return repo_root.parent / "shared" / "line-openapi" / SPEC_FILENAME


@functools.cache
def webhook_spec() -> dict[str, Any]:
    """Load and cache the webhook OpenAPI document.

    Cached because every validation needs it and the YAML is ~1000 lines.
    The returned dict is shared: treat it as read-only.
    """
    path = spec_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"LINE webhook spec not found at {path}; clone line-openapi into "
            f"<repo>/../shared/line-openapi or set {SPEC_DIR_ENV}"
        )
    with path.open(encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)
    if not isinstance(spec, dict) or "components" not in spec:
        raise ValueError(f"{path} does not look like an OpenAPI document")
    return spec


def _schemas() -> dict[str, Any]:
    return webhook_spec()["components"]["schemas"]


def _ref_name(ref: str) -> str:
    if not ref.startswith(SCHEMA_PREFIX):
        raise ValueError(f"only local component refs are supported, got {ref!r}")
    return ref[len(SCHEMA_PREFIX) :]


def discriminator_mapping(schema_name: str) -> dict[str, str]:
    """Return ``{discriminator value: concrete schema name}`` for a base schema.

    Tests read coverage targets from here rather than hard-coding them, so
    they fail as soon as LINE adds an event or message type we don't cover.
    """
    discriminator = _schemas()[schema_name].get("discriminator")
    if not discriminator:
        raise KeyError(f"schema {schema_name!r} has no discriminator")
    return {key: _ref_name(ref) for key, ref in discriminator["mapping"].items()}


def discriminated_schemas() -> list[str]:
    """Names of every schema in the spec that carries a discriminator."""
    return [name for name, s in _schemas().items() if "discriminator" in s]


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


@functools.cache
def _prepared_spec() -> dict[str, Any]:
    """Copy of the spec made safe for discriminator dispatch.

    For every base schema ``X`` with a discriminator, ``X__base`` is added
    (``X`` minus the discriminator) and each mapped schema's ``allOf`` entry
    pointing at ``X`` is redirected to ``X__base``.  ``X`` itself keeps the
    discriminator and is tagged with its name so dispatches can be recorded.
    """
    spec = copy.deepcopy(webhook_spec())
    schemas = spec["components"]["schemas"]
    for name in [n for n, s in schemas.items() if "discriminator" in s]:
        base = {k: v for k, v in schemas[name].items() if k != "discriminator"}
        schemas[name + _BASE_SUFFIX] = base
        schemas[name][_NAME_KEY] = name
        own_ref = SCHEMA_PREFIX + name
        for target_ref in schemas[name]["discriminator"].get("mapping", {}).values():
            target = schemas[_ref_name(target_ref)]
            for part in target.get("allOf", []):
                if part.get("$ref") == own_ref:
                    part["$ref"] = own_ref + _BASE_SUFFIX
    return spec


_dispatch_log: contextvars.ContextVar[set[tuple[str, str]] | None] = contextvars.ContextVar(
    "line_samples_dispatch_log", default=None
)


def _discriminator_keyword(
    validator: Any,
    discriminator: Mapping[str, Any],
    instance: Any,
    schema: Mapping[str, Any],
) -> Iterator[ValidationError]:
    """Dispatch to the concrete schema named by the discriminator property.

    Unknown values are errors: a sample with a misspelt ``type`` must not
    quietly validate against the base schema only.
    """
    if not validator.is_type(instance, "object"):
        return  # the schema's own "type: object" reports this
    prop = discriminator["propertyName"]
    mapping = discriminator.get("mapping", {})
    if prop not in instance:
        yield ValidationError(f"discriminator property {prop!r} is missing")
        return
    value = instance[prop]
    ref = mapping.get(value) if isinstance(value, str) else None
    if ref is None:
        yield ValidationError(
            f"{value!r} is not a known {schema.get(_NAME_KEY, '?')}.{prop}; "
            f"expected one of {sorted(mapping)}"
        )
        return
    log = _dispatch_log.get()
    if log is not None:
        log.add((schema.get(_NAME_KEY, "?"), value))
    yield from validator.descend(instance, {"$ref": ref})


_DiscriminatingValidator = extend(OAS30Validator, {"discriminator": _discriminator_keyword})


@functools.cache
def _validator(schema_name: str) -> Any:
    if schema_name not in _schemas():
        raise KeyError(f"no schema {schema_name!r} in {spec_path()}")
    registry: Registry[Any] = Registry().with_resource(
        _SPEC_URI, DRAFT4.create_resource(_prepared_spec())
    )
    return _DiscriminatingValidator(
        {"$ref": f"{_SPEC_URI}{SCHEMA_PREFIX}{schema_name}"},
        registry=registry,
        format_checker=OAS30Validator.FORMAT_CHECKER,
    )


def _errors(instance: Any, schema_name: str) -> list[ValidationError]:
    # A base schema is checked both directly and via its ``__base`` copy
    # inside the concrete schema, so identical errors come in pairs.
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for error in _validator(schema_name).iter_errors(instance):
        key = (error.json_path, str(error.validator), error.message)
        if key not in seen:
            seen.add(key)
            unique.append(error)
    return unique


def _raise_first(errors: list[ValidationError]) -> None:
    error = best_match(errors)
    if error is not None:
        if len(errors) > 1:
            error.message += f" (and {len(errors) - 1} more error(s))"
        raise error


def event_errors(event: Any) -> list[str]:
    """All problems with ``event`` as ``"<json path>: <message>"`` strings.

    Handy in assertions, where seeing every error beats seeing the first.
    """
    return [f"{e.json_path}: {e.message}" for e in _errors(event, "Event")]


def validate_event(event: Any) -> None:
    """Validate one webhook event against the spec's ``Event`` schema.

    Honours the discriminators on the event, its ``source``, ``message``,
    mentionees, ``membership`` and ``module``.  Raises
    :class:`jsonschema.ValidationError` on the most relevant error.
    """
    _raise_first(_errors(event, "Event"))


def validate_callback(body: Any) -> None:
    """Validate a whole webhook request body (``CallbackRequest``)."""
    _raise_first(_errors(body, "CallbackRequest"))


def dispatched_mappings(instances: Iterable[Any]) -> set[tuple[str, str]]:
    """Validate events and report which ``(base schema, key)`` pairs were hit.

    Lets a test prove that every branch of every discriminator in the spec
    (not just ``Event`` and ``MessageContent``) is exercised by a sample.
    """
    log: set[tuple[str, str]] = set()
    token = _dispatch_log.set(log)
    try:
        for instance in instances:
            validate_event(instance)
    finally:
        _dispatch_log.reset(token)
    return log


def callback_body(
    events: Iterable[Mapping[str, Any]], destination: str = BOT_USER_ID
) -> dict[str, Any]:
    """Wrap events in a ``CallbackRequest`` as LINE POSTs it to the webhook.

    ``events`` may be empty: LINE sends that to verify the webhook URL.
    """
    return {"destination": destination, "events": [dict(e) for e in events]}


# --------------------------------------------------------------------------
# Id generators
# --------------------------------------------------------------------------

_ulid_lock = threading.Lock()
_ulid_last = [0, 0]  # [milliseconds, 80-bit random part]


def new_webhook_event_id() -> str:
    """Return a fresh 26-char ULID, monotonic within this process.

    LINE's ``webhookEventId`` is a ULID and handlers may de-duplicate on it,
    so every generated event needs one that never repeats.
    """
    with _ulid_lock:
        ms = time.time_ns() // 1_000_000
        rand = secrets.randbits(80)
        if ms <= _ulid_last[0]:
            ms, rand = _ulid_last[0], _ulid_last[1] + 1
            if rand >= 1 << 80:
                ms, rand = ms + 1, 0
        _ulid_last[:] = [ms, rand]
    value = (ms << 80) | rand
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _new_user_id() -> str:
    return "U" + secrets.token_hex(16)


def _reply_token() -> str:
    return secrets.token_hex(16)


def _message_id() -> str:
    return str(secrets.randbelow(9 * 10**17) + 10**17)  # 18 digits like LINE's


def _quote_token() -> str:
    return secrets.token_urlsafe(72)


# --------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------


class _Builder:
    """Per-call state: one time stamp and one cast of user/group/room ids."""

    def __init__(self, user_id: str, group_id: str, room_id: str) -> None:
        self.user_id = user_id
        self.group_id = group_id
        self.room_id = room_id
        self.other_user_id = _new_user_id()
        self.now = time.time_ns() // 1_000_000

    def source(self, kind: str, *, with_user: bool = True) -> dict[str, Any]:
        src: dict[str, Any] = {"type": kind}
        if kind == "group":
            src["groupId"] = self.group_id
        elif kind == "room":
            src["roomId"] = self.room_id
        if with_user or kind == "user":
            src["userId"] = self.user_id
        return src

    def event(
        self,
        type_: str,
        source: dict[str, Any] | None,
        *,
        reply: bool,
        **fields: Any,
    ) -> dict[str, Any]:
        ev: dict[str, Any] = {}
        if reply:
            ev["replyToken"] = _reply_token()
        ev["type"] = type_
        ev["mode"] = "active"
        ev["timestamp"] = self.now
        if source is not None:
            ev["source"] = source
        ev["webhookEventId"] = new_webhook_event_id()
        ev["deliveryContext"] = {"isRedelivery": False}
        ev.update(fields)
        return ev

    def message(self, source_kind: str, content: dict[str, Any]) -> dict[str, Any]:
        return self.event(
            "message",
            self.source(source_kind),
            reply=True,
            message={"id": _message_id(), **content},
        )

    def postback(self, data: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        postback: dict[str, Any] = {"data": data}
        if params is not None:
            postback["params"] = params
        return self.event("postback", self.source("user"), reply=True, postback=postback)

    def build(self) -> list[tuple[str, dict[str, Any]]]:
        u = self.source  # short alias for readability below
        line_provider = {"type": "line"}
        samples: list[tuple[str, dict[str, Any]]] = [
            # --- message: text, in every kind of chat --------------------
            *(
                (
                    f"message/text/{kind}",
                    self.message(
                        kind,
                        {"type": "text", "quoteToken": _quote_token(), "text": "Hello, world"},
                    ),
                )
                for kind in ("user", "group", "room")
            ),
            (
                "message/text/mention",  # group message mentioning the bot and @All
                self.message(
                    "group",
                    {
                        "type": "text",
                        "quoteToken": _quote_token(),
                        "text": "@Bot @All who is free tonight?",
                        "mention": {
                            "mentionees": [
                                {
                                    "index": 0,
                                    "length": 4,
                                    "type": "user",
                                    "userId": BOT_USER_ID,
                                    "isSelf": True,
                                },
                                {"index": 5, "length": 4, "type": "all"},
                            ]
                        },
                    },
                ),
            ),
            (
                "message/text/emoji",
                self.message(
                    "user",
                    {
                        "type": "text",
                        "quoteToken": _quote_token(),
                        "text": "Good morning (love)",
                        "emojis": [
                            {
                                "index": 13,
                                "length": 6,
                                "productId": "5ac1bfd5040ab15980c9b435",
                                "emojiId": "001",
                            }
                        ],
                    },
                ),
            ),
            # --- message: other content types ----------------------------
            (
                "message/image/user",
                self.message(
                    "user",
                    {
                        "type": "image",
                        "quoteToken": _quote_token(),
                        "contentProvider": line_provider,
                    },
                ),
            ),
            (
                "message/video/user",
                self.message(
                    "user",
                    {
                        "type": "video",
                        "quoteToken": _quote_token(),
                        "duration": 60000,
                        "contentProvider": {
                            "type": "external",
                            "originalContentUrl": "https://example.com/original.mp4",
                            "previewImageUrl": "https://example.com/preview.jpg",
                        },
                    },
                ),
            ),
            (
                "message/audio/user",
                self.message(
                    "user",
                    {"type": "audio", "duration": 60000, "contentProvider": line_provider},
                ),
            ),
            (
                "message/file/user",
                self.message(
                    "user",
                    {"type": "file", "fileName": "file.txt", "fileSize": 2138},
                ),
            ),
            (
                "message/location/user",
                self.message(
                    "user",
                    {
                        "type": "location",
                        "title": "Shibuya Station",
                        "address": "2-chome Dogenzaka, Shibuya-ku, Tokyo 150-0043, Japan",
                        "latitude": 35.658034,
                        "longitude": 139.701636,
                    },
                ),
            ),
            (
                "message/sticker/user",
                self.message(
                    "user",
                    {
                        "type": "sticker",
                        "quoteToken": _quote_token(),
                        "packageId": "446",
                        "stickerId": "1988",
                        "stickerResourceType": "STATIC",
                        "keywords": ["Happy", "Smile", "Hello"],
                    },
                ),
            ),
            # --- other user-triggered events -----------------------------
            (
                "unsend",
                self.event("unsend", u("user"), reply=False, unsend={"messageId": _message_id()}),
            ),
            (
                "follow",
                self.event("follow", u("user"), reply=True, follow={"isUnblocked": False}),
            ),
            (
                "follow/unblocked",
                self.event("follow", u("user"), reply=True, follow={"isUnblocked": True}),
            ),
            ("unfollow", self.event("unfollow", u("user"), reply=False)),
            ("join/group", self.event("join", u("group", with_user=False), reply=True)),
            ("join/room", self.event("join", u("room", with_user=False), reply=True)),
            ("leave/group", self.event("leave", u("group", with_user=False), reply=False)),
            ("leave/room", self.event("leave", u("room", with_user=False), reply=False)),
            (
                "memberJoined/group",
                self.event(
                    "memberJoined",
                    u("group", with_user=False),
                    reply=True,
                    joined={
                        "members": [
                            {"type": "user", "userId": self.user_id},
                            {"type": "user", "userId": self.other_user_id},
                        ]
                    },
                ),
            ),
            (
                "memberLeft/group",
                self.event(
                    "memberLeft",
                    u("group", with_user=False),
                    reply=False,
                    left={"members": [{"type": "user", "userId": self.user_id}]},
                ),
            ),
            ("postback", self.postback("action=buy&itemid=111")),
            ("postback/date", self.postback("action=reserve", {"date": "2025-09-03"})),
            ("postback/time", self.postback("action=reserve", {"time": "10:00"})),
            (
                "postback/datetime",
                self.postback("action=reserve", {"datetime": "2025-09-03T10:00"}),
            ),
            (
                "postback/richmenu",
                self.postback(
                    "richmenu-changed-to-b",
                    {"newRichMenuAliasId": "richmenu-alias-b", "status": "SUCCESS"},
                ),
            ),
            (
                "videoPlayComplete",
                self.event(
                    "videoPlayComplete",
                    u("user"),
                    reply=True,
                    videoPlayComplete={"trackingId": "track-id"},
                ),
            ),
            (
                "beacon",
                self.event(
                    "beacon", u("user"), reply=True, beacon={"hwid": "d41d8cd98f", "type": "enter"}
                ),
            ),
            (
                "accountLink",
                self.event(
                    "accountLink",
                    u("user"),
                    reply=True,
                    link={"result": "ok", "nonce": secrets.token_urlsafe(24)},
                ),
            ),
            (
                "accountLink/failed",  # LINE omits replyToken when linking fails
                self.event(
                    "accountLink",
                    u("user"),
                    reply=False,
                    link={"result": "failed", "nonce": secrets.token_urlsafe(24)},
                ),
            ),
            *(
                (
                    f"membership/{kind}",
                    self.event(
                        "membership",
                        u("user"),
                        reply=True,
                        membership={"type": kind, "membershipId": 3189},
                    ),
                )
                for kind in ("joined", "left", "renewed")
            ),
            # --- module-channel / partner events -------------------------
            # LINE's own examples send module, botSuspended and botResumed
            # without a source; the spec makes source optional for this.
            (
                "module/attached",
                self.event(
                    "module",
                    None,
                    reply=False,
                    module={
                        "type": "attached",
                        "botId": BOT_USER_ID,
                        "scopes": ["message:send", "message:receive"],
                    },
                ),
            ),
            (
                "module/detached",
                self.event(
                    "module",
                    None,
                    reply=False,
                    module={"type": "detached", "botId": BOT_USER_ID, "reason": "bot_deleted"},
                ),
            ),
            (
                "activated",
                self.event(
                    "activated",
                    u("user"),
                    reply=False,
                    chatControl={"expireAt": self.now + 3_600_000},
                ),
            ),
            ("deactivated", self.event("deactivated", u("user"), reply=False)),
            ("botSuspended", self.event("botSuspended", None, reply=False)),
            ("botResumed", self.event("botResumed", None, reply=False)),
            (
                "delivery",
                self.event(
                    "delivery",
                    u("user"),
                    reply=False,
                    delivery={"data": hashlib.sha256(b"+818012345678").hexdigest()},
                ),
            ),
        ]
        return samples


def _checked(value: str | None, pattern: re.Pattern[str], what: str, prefix: str) -> str:
    if value is None:
        return prefix + secrets.token_hex(16)
    if not pattern.match(value):
        raise ValueError(f"{what} {value!r} does not match {pattern.pattern}")
    return value


def sample_events(
    user_id: str | None = None,
    *,
    group_id: str | None = None,
    room_id: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Return ``(name, event)`` pairs, one per event/message/source variant.

    Every call builds new dicts with fresh ``webhookEventId``s and reply
    tokens, so re-sending an event means re-sending the same dict, never
    calling again.  Ids default to new random ones per call (isolating
    per-user state between tests); pass ``user_id`` (and optionally
    ``group_id``/``room_id``) to pin them.  Names look like
    ``message/text/group``, ``follow``, ``postback/datetime``: the part before
    the first ``/`` is always the event ``type``.
    """
    builder = _Builder(
        user_id=_checked(user_id, USER_ID_RE, "user_id", "U"),
        group_id=_checked(group_id, GROUP_ID_RE, "group_id", "C"),
        room_id=_checked(room_id, ROOM_ID_RE, "room_id", "R"),
    )
    return builder.build()


def sample_event(name: str, user_id: str | None = None) -> dict[str, Any]:
    """Return one freshly built sample by name (see :func:`sample_events`)."""
    samples = dict(sample_events(user_id))
    try:
        return samples[name]
    except KeyError:
        raise KeyError(f"no sample {name!r}; known: {sorted(samples)}") from None
