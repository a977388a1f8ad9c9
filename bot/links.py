"""``/s/<token>`` (tracked survey links) and ``/qr/<token>.png`` (their QR codes).

A click is counted per link and day, with nothing about who clicked; then the browser goes
to the NACC's official questionnaire. A HEAD request, or a chat app fetching the page to draw its
link preview (LINE's own among them), is redirected too but not counted: nobody clicked.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache

from flask import Blueprint, Response, abort, current_app, redirect, request
from sqlalchemy import select

from models import SurveyCampaign, TrackedLink
from surveys.campaigns import count_click

bp = Blueprint("links", __name__)

# Link-preview fetchers, by the names they give themselves: LINE's preview says "facebookexternalhit/1.1;
# line-poker/1.0" (or Line-Crawler), iMessage's "facebookexternalhit/1.1 Facebot Twitterbot/1.0". Matched
# narrowly: LINE's in-app browser says "Line/14.0.0" — a person who tapped the link, who must count.
PREVIEW_AGENTS = re.compile(
    r"facebookexternalhit|facebot|line-poker|line-crawler|twitterbot|slackbot|slack-imgproxy|discordbot|"
    r"telegrambot|whatsapp/|linkedinbot|skypeuripreview|microsoftpreview|embedly|pinterestbot|redditbot|"
    r"mastodon/", re.IGNORECASE)


def is_a_visit() -> bool:
    """Whether this request is someone following the link (not a HEAD, not a link preview)."""
    return request.method == "GET" and not PREVIEW_AGENTS.search(request.headers.get("User-Agent", ""))


def _services():
    return current_app.extensions["itabot"]


@bp.get("/s/<token>")
def follow(token: str):
    if not 4 <= len(token) <= 16:
        abort(404)
    services = _services()
    with services.db.session() as s:
        row = s.execute(
            select(TrackedLink.id, SurveyCampaign.url)
            .join(SurveyCampaign, SurveyCampaign.id == TrackedLink.campaign_id)
            .where(TrackedLink.token == token)
        ).first()
        if row is None:
            abort(404)
        if is_a_visit():
            count_click(s, row.id)
    resp = redirect(row.url, code=302)
    resp.headers["Cache-Control"] = "no-store"  # every visit is counted
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@lru_cache(maxsize=512)
def qr_png(data: str) -> bytes:
    """A QR code sized for LINE image messages (well under the 1 MB preview limit)."""
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=12, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    img = qr.make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@bp.get("/qr/<token>.png")
def qr(token: str):
    services = _services()
    with services.db.Session() as s:
        exists = s.scalar(select(TrackedLink.id).where(TrackedLink.token == token))
    if exists is None:
        abort(404)
    png = qr_png(f"{services.settings.public_base_url}/s/{token}")
    return Response(png, mimetype="image/png", headers={"Cache-Control": "public, max-age=86400"})
