"""The simulator: try the bot with no LINE channel, through exactly the same pipeline.

``GET /simulator`` is a chat page. What a simulated person types or taps becomes a LINE
webhook event, signed with the office's (simulated) channel secret and posted to the real
webhook. The bot answers through the real gateway and the official SDK; for an office
without a LINE channel the gateway's HTTP goes, in-process, to a small stand-in of LINE's
Messaging API mounted at ``/simulator/line/<office>/…``, which keeps what LINE would have
shown the person so the page can render it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

import urllib3
from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from sqlalchemy import func, select

from handlers.context import TEXT_LIMIT, utf16_len
from models import Delivery, LineUser, Office, SimMessage, SimReplyToken, utcnow

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

SIM_HOST = "http://simulator.invalid"
USER_ID_CHARS = set("0123456789abcdef")
REPLY_TOKEN_TTL = timedelta(minutes=1)
SIM_QUOTA = 500  # a free plan's monthly messages, so quota screens have something to show


def simulator_base(slug: str) -> str:
    return f"{SIM_HOST}/simulator/line/{slug}"


class WsgiPoolManager:
    """Stands in for urllib3's PoolManager inside the SDK: requests go into this app, not out."""

    def __init__(self, app) -> None:
        self.app = app

    def request(self, method, url, body=None, fields=None, headers=None, preload_content=True, timeout=None, **_kw):
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        client = self.app.test_client()
        resp = client.open(path, method=method, data=body, headers=dict(headers or {}))
        return urllib3.HTTPResponse(
            body=resp.get_data(),
            headers=dict(resp.headers),
            status=resp.status_code,
            reason=resp.status,
            preload_content=True,
        )

    def clear(self) -> None:
        pass


def _services():
    return current_app.extensions["itabot"]


def _sim_office(slug: str | None):
    services = _services()
    office = services.offices.by_slug(slug)
    if office is None or not office.simulated:
        abort(404)
    return office


def _valid_user(uid: object) -> str:
    if not (isinstance(uid, str) and len(uid) == 33 and uid[0] == "U" and set(uid[1:]) <= USER_ID_CHARS):
        abort(400, "user must look like a LINE user ID: U followed by 32 hex digits")
    return uid


# -- the page and its API ---------------------------------------------------------------------


@bp.get("")
def page():
    services = _services()
    with services.db.Session() as s:
        rows = [(o.id, o.slug, o.name) for o in s.scalars(select(Office).order_by(Office.id))]
    # Looked up after the session is closed: on SQLite every transaction takes the write lock,
    # so a second session opened inside this one would wait on it (and fail after 30 s).
    offices = [{"slug": slug, "name": name} for oid, slug, name in rows if services.offices.by_id(oid).simulated]
    return render_template("simulator.html", offices=offices)


@bp.post("/api/<slug>/events")
def send_event(slug: str):
    """Turn what a simulated person did into a signed webhook delivery."""
    office = _sim_office(slug)
    body = request.get_json(silent=True) or {}
    user = _valid_user(body.get("user"))
    kind = body.get("type", "text")
    now_ms = int(time.time() * 1000)
    event: dict = {
        "webhookEventId": _event_id(),
        "deliveryContext": {"isRedelivery": False},
        "timestamp": now_ms,
        "source": {"type": "user", "userId": user},
        "mode": "active",
    }
    shown: dict
    if kind == "text":
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            abort(400, "text is empty")
        if utf16_len(text) > TEXT_LIMIT:  # counted as LINE counts (and as the page's maxlength does)
            abort(400, "LINE messages are at most 5000 characters (UTF-16 code units: an emoji counts 2)")
        event.update(
            type="message",
            message={"type": "text", "id": _message_id(), "text": text, "quoteToken": secrets.token_urlsafe(16)},
        )
        shown = {"type": "text", "text": text}
    elif kind == "postback":
        data = body.get("data")
        if not isinstance(data, str) or len(data) > 300:
            abort(400, "postback data must be a string of at most 300 characters")
        postback: dict = {"data": data}
        if isinstance(body.get("params"), dict):
            postback["params"] = {k: str(v) for k, v in body["params"].items()}
        event.update(type="postback", postback=postback)
        shown = {"type": "postback", "displayText": body.get("displayText") or ""}
    elif kind in ("image", "video", "audio", "file"):
        message = {"type": kind, "id": _message_id(), "contentProvider": {"type": "line"}}
        if kind == "file":
            message.update(fileName=str(body.get("fileName") or "document.pdf")[:100], fileSize=1024)
        if kind in ("video", "audio"):
            message["duration"] = 1000
        event.update(type="message", message=message)
        shown = {"type": kind}
    elif kind == "location":
        try:
            lat, lon = float(body.get("latitude", 13.7563)), float(body.get("longitude", 100.5018))
        except (TypeError, ValueError):
            abort(400, "latitude and longitude must be numbers")
        event.update(
            type="message",
            message={
                "type": "location",
                "id": _message_id(),
                "title": "ตำแหน่งที่ส่ง",
                "address": str(body.get("address") or "กรุงเทพมหานคร")[:100],
                "latitude": lat,
                "longitude": lon,
            },
        )
        shown = {"type": "location", "address": event["message"]["address"]}
    elif kind == "sticker":
        event.update(
            type="message",
            message={
                "type": "sticker",
                "id": _message_id(),
                "packageId": "446",
                "stickerId": "1988",
                "stickerResourceType": "STATIC",
            },
        )
        shown = {"type": "sticker"}
    elif kind in ("follow", "unfollow"):
        event["type"] = kind
        if kind == "follow":
            event["follow"] = {"isUnblocked": False}
        shown = {"type": kind}
    elif kind == "unsend":
        mid = body.get("messageId")
        if not isinstance(mid, str):
            abort(400, "messageId is required")
        event.update(type="unsend", unsend={"messageId": mid})
        shown = {"type": "unsend", "messageId": mid}
    else:
        abort(400, f"unknown event type {kind!r}")

    services = _services()
    with services.db.session() as s:
        if event["type"] in ("message", "postback", "follow"):
            token = secrets.token_hex(16)
            event["replyToken"] = token
            s.add(SimReplyToken(token=token, office_id=office.id, user_id=user))
        if event["type"] == "message":
            shown["messageId"] = event["message"]["id"]
        s.add(
            SimMessage(
                office_id=office.id,
                user_id=user,
                direction="in",
                kind="user",
                body=json.dumps(shown, ensure_ascii=False),
            )
        )

    raw = json.dumps({"destination": "U" + "0" * 32, "events": [event]}, ensure_ascii=False).encode()
    sig = base64.b64encode(hmac.new(office.channel_secret.encode(), raw, hashlib.sha256).digest()).decode()
    path = "/callback" if office.is_default else f"/callback/{office.slug}"
    resp = current_app.test_client().post(
        path, data=raw, headers={"X-Line-Signature": sig, "Content-Type": "application/json"}
    )
    return jsonify({"webhook_status": resp.status_code, "event_type": event["type"]})


@bp.get("/api/<slug>/messages")
def messages(slug: str):
    office = _sim_office(slug)
    user = _valid_user(request.args.get("user"))
    after = request.args.get("after", "0")
    after_id = int(after) if after.isdecimal() else 0
    with _services().db.Session() as s:
        rows = s.scalars(
            select(SimMessage)
            .where(SimMessage.office_id == office.id, SimMessage.user_id == user, SimMessage.id > after_id)
            .order_by(SimMessage.id)
            .limit(200)
        ).all()
        lang = s.scalar(select(LineUser.language).where(LineUser.office_id == office.id, LineUser.line_user_id == user))
    return jsonify(
        {
            "messages": [
                {
                    "id": r.id,
                    "direction": r.direction,
                    "kind": r.kind,
                    "message": json.loads(r.body),
                    "at": r.created_at.isoformat(),
                }
                for r in rows
            ],
            "language": lang or "th",
        }
    )


@bp.get("/api/<slug>/richmenu")
def richmenu(slug: str):
    """The rich menu this person would see, built from the same definition `itabot richmenu deploy` uses."""
    office = _sim_office(slug)
    from bot.richmenu import rich_menu_definition

    user = request.args.get("user")
    kind, lang = "public", "th"
    if user:
        with _services().db.Session() as s:
            row = s.scalar(
                select(LineUser).where(LineUser.office_id == office.id, LineUser.line_user_id == _valid_user(user))
            )
            if row is not None:
                kind = row.richmenu if row.richmenu in ("public", "staff") else "public"
                lang = row.language
    menu = rich_menu_definition(kind)
    return jsonify(
        {
            "kind": kind,
            "image": f"/simulator/richmenu/{kind}.png",
            "lang": lang,
            "size": menu["size"],
            "areas": menu["areas"],
        }
    )


@bp.get("/richmenu/<kind>.png")
def richmenu_image(kind: str):
    from bot.richmenu import render_menu_image

    if kind not in ("public", "staff"):
        abort(404)
    return Response(render_menu_image(kind), mimetype="image/png", headers={"Cache-Control": "public, max-age=300"})


@bp.get("/font/<weight>.ttf")
def font(weight: str):
    """Sarabun for browsers without a Thai font, from the same package the images use."""
    from flask import send_file

    from bot.richmenu_image import sarabun_path

    if weight not in ("Regular", "Bold"):
        abort(404)
    return send_file(sarabun_path(weight), mimetype="font/ttf", max_age=86400)


# -- the stand-in for LINE's Messaging API ------------------------------------------------------


def _line_error(status: int, message: str) -> Response:
    resp = jsonify({"message": message})
    resp.status_code = status
    return resp


def _auth(office) -> None:
    if request.headers.get("Authorization") != f"Bearer {office.access_token}":
        abort(_line_error(401, "Authentication failed"))


def _record_out(s, office_id: int, users: list[str], kind: str, messages: list[dict], retry_key: str | None):
    for uid in users:
        for m in messages:
            s.add(
                SimMessage(
                    office_id=office_id, user_id=uid, direction="out", kind=kind, body=json.dumps(m, ensure_ascii=False)
                )
            )
    if retry_key:
        s.add(SimMessage(office_id=office_id, user_id="-", direction="key", kind=kind, body=retry_key))


def _seen_key(s, office_id: int, key: str | None) -> bool:
    if not key:
        return False
    return (
        s.scalar(
            select(SimMessage.id)
            .where(SimMessage.office_id == office_id, SimMessage.direction == "key", SimMessage.body == key)
            .limit(1)
        )
        is not None
    )


def _check_messages(body: dict) -> list[dict]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not 1 <= len(msgs) <= 5:
        abort(_line_error(400, "The request body has 1 error(s)"))
    return msgs


@bp.post("/line/<slug>/v2/bot/message/reply")
def line_reply(slug: str):
    office = _sim_office(slug)
    _auth(office)
    body = request.get_json(silent=True) or {}
    msgs = _check_messages(body)
    with _services().db.session() as s:
        tok = s.get(SimReplyToken, str(body.get("replyToken", "")))
        if tok is None or tok.used or tok.office_id != office.id or tok.created_at < utcnow() - REPLY_TOKEN_TTL:
            return _line_error(400, "Invalid reply token")
        tok.used = 1
        _record_out(s, office.id, [tok.user_id], "reply", msgs, None)
    return jsonify({"sentMessages": [{"id": _message_id()} for _ in msgs]})


@bp.post("/line/<slug>/v2/bot/message/<kind>")
def line_send(slug: str, kind: str):
    office = _sim_office(slug)
    _auth(office)
    if kind not in ("push", "multicast", "broadcast", "narrowcast"):
        return _line_error(404, "Not found")
    body = request.get_json(silent=True) or {}
    msgs = _check_messages(body)
    key = request.headers.get("X-Line-Retry-Key")
    with _services().db.session() as s:
        if _seen_key(s, office.id, key):
            return _line_error(409, "The retry key is already accepted")
        if kind == "push":
            users = [body.get("to")] if isinstance(body.get("to"), str) else []
        elif kind == "multicast":
            users = [u for u in body.get("to", []) if isinstance(u, str)][:500]
        else:
            users = list(
                s.scalars(
                    select(LineUser.line_user_id).where(LineUser.office_id == office.id, LineUser.following.is_(True))
                )
            )
        _record_out(s, office.id, users, kind, msgs, key)
    if kind == "push":
        return jsonify({"sentMessages": [{"id": _message_id()} for _ in msgs]})
    return jsonify({})


@bp.get("/line/<slug>/v2/bot/profile/<user_id>")
def line_profile(slug: str, user_id: str):
    office = _sim_office(slug)
    _auth(office)
    return jsonify({"userId": user_id, "displayName": f"ผู้ใช้จำลอง {user_id[-4:]}", "language": "th"})


@bp.get("/line/<slug>/v2/bot/message/<message_id>/content")
def line_content(slug: str, message_id: str):
    """A small generated picture stands in for whatever a simulated person 'sent'."""
    office = _sim_office(slug)
    _auth(office)
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 240), "#d9e6f2")
    ImageDraw.Draw(img).text((20, 110), f"simulated content {message_id[-6:]}", fill="#123")
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    return Response(buf.getvalue(), mimetype="image/jpeg")


@bp.post("/line/<slug>/v2/bot/chat/loading/start")
def line_loading(slug: str):
    _auth(_sim_office(slug))
    return jsonify({}), 202


@bp.get("/line/<slug>/v2/bot/message/quota")
def line_quota(slug: str):
    _auth(_sim_office(slug))
    return jsonify({"type": "limited", "value": SIM_QUOTA})


@bp.get("/line/<slug>/v2/bot/message/quota/consumption")
def line_quota_used(slug: str):
    office = _sim_office(slug)
    _auth(office)
    start = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with _services().db.Session() as s:  # LINE counts recipients, not message bubbles
        used = s.scalar(
            select(func.coalesce(func.sum(Delivery.recipients), 0)).where(
                Delivery.office_id == office.id,
                Delivery.kind != "reply",
                Delivery.status == "sent",
                Delivery.sent_at >= start,
            )
        )
    return jsonify({"totalUsage": int(used or 0)})


@bp.get("/line/<slug>/v2/bot/<any(group, room):kind>/<chat_id>/members/count")
def line_member_count(slug: str, kind: str, chat_id: str):
    _auth(_sim_office(slug))
    return jsonify({"count": 3})  # a simulated group: a few people


@bp.route("/line/<slug>/v2/bot/<path:rest>", methods=["GET", "POST", "DELETE"])
def line_other(slug: str, rest: str):
    """Rich menus and the rest: accepted, so deploying against the simulator works end to end."""
    _auth(_sim_office(slug))
    if rest == "richmenu" and request.method == "POST":
        return jsonify({"richMenuId": "richmenu-" + secrets.token_hex(16)})
    return jsonify({})


def _event_id() -> str:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(26))


def _message_id() -> str:
    return str(secrets.randbelow(10**17) + 10**17)
