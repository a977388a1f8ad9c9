"""``/s/<token>`` (tracked survey links) and ``/qr/<token>.png`` (their QR codes).

A click is counted per link and day, with nothing about who clicked; then the browser goes
to the NACC's official questionnaire.
"""

from __future__ import annotations

import io
from functools import lru_cache

from flask import Blueprint, Response, abort, current_app, redirect
from sqlalchemy import select

from models import SurveyCampaign, TrackedLink
from surveys.campaigns import count_click

bp = Blueprint("links", __name__)


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
