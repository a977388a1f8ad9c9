"""``POST /callback`` and ``POST /callback/<office-slug>``: verify, store once, acknowledge.

Nothing slow happens here. The signature is checked on the raw bytes before anything is
parsed; the events are stored in one transaction keyed by (office, webhookEventId); only then
does LINE get its 200, and a worker is told. If storing fails, LINE gets a 5xx and redelivers.
"""

from __future__ import annotations

import json
import logging
import re

from flask import Blueprint, Response, current_app, request
from linebot.v3 import SignatureValidator
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("itabot.webhook")

bp = Blueprint("webhook", __name__)

# A JSON escape of a UTF-16 surrogate. Pairs are valid (an emoji written as escapes); a lone one parses
# into a string no database can store, so the event would never be stored and LINE would redeliver
# it for ever.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _without_lone_surrogates(payload):
    """The payload with each lone surrogate replaced by U+FFFD (the event is kept, not refused)."""
    dumped = json.dumps(payload, ensure_ascii=False)
    try:
        dumped.encode("utf-8")
        return payload
    except UnicodeEncodeError:
        return json.loads(dumped.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))

MAX_BODY = 1024 * 1024


def _plain(status: int, text: str) -> Response:
    return Response(text, status=status, mimetype="text/plain")


@bp.post("/callback", defaults={"slug": None})
@bp.post("/callback/<slug>")
def callback(slug: str | None) -> Response:
    services = current_app.extensions["itabot"]
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _plain(413, "body too large")
    try:
        office = services.offices.by_slug(slug)
    except SQLAlchemyError:
        log.exception("office lookup failed")
        return _plain(503, "storage unavailable")
    if office is None:
        return _plain(404, "unknown office")
    signature = request.headers.get("X-Line-Signature", "")
    if not signature:
        return _plain(400, "missing signature")
    # A body with a Content-Length over the limit was refused above. A chunked one has none: the stream is read up to
    # the limit and one byte more (the app's MAX_CONTENT_LENGTH would cut it at the limit without a word, and a cut
    # body fails the signature check: a 400 that blames the signature).
    request.max_content_length = MAX_BODY + 1
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _plain(413, "body too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _plain(400, "invalid signature")
    if not SignatureValidator(office.channel_secret).validate(text, signature):
        return _plain(400, "invalid signature")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        return _plain(400, "invalid JSON")
    if _SURROGATE_ESCAPE.search(text):
        payload = _without_lone_surrogates(payload)
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return _plain(400, "invalid webhook body")
    if not events:  # the console's "Verify" button
        return _plain(200, "OK")
    try:
        new_ids = services.inbox.store(office.id, events)
    except SQLAlchemyError:
        log.exception("could not store events", extra={"events": len(events)})
        return _plain(503, "storage unavailable")
    log.debug("events stored", extra={"events": len(events), "new": len(new_ids), "office": office.slug})
    services.notify(new_ids)
    return _plain(200, "OK")
