"""Offices: every row in the database belongs to one.

A district office (or any agency) has its own LINE channel and webhook path
``/callback/<slug>``. The office configured from the environment is the default one and its
credentials stay in the environment; others keep theirs here, encrypted with ITABOT_DATA_KEY.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Office(Base):
    __tablename__ = "offices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    channel_secret_enc: Mapped[str | None] = mapped_column(Text)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    richmenu_public_id: Mapped[str | None] = mapped_column(String(100))
    richmenu_staff_id: Mapped[str | None] = mapped_column(String(100))
    # Reminders go out only between these minutes of the day, Asia/Bangkok (default 08:00–20:00).
    send_from: Mapped[int] = mapped_column(Integer, default=8 * 60, server_default="480")
    send_until: Mapped[int] = mapped_column(Integer, default=20 * 60, server_default="1200")
    # When a reminder would go over the LINE quota: "partial" (the most important part of the
    # audience gets it, the rest are skipped) or "wait" (nothing is sent until the quota allows).
    over_quota: Mapped[str] = mapped_column(String(8), default="partial", server_default="partial")
    # No Gift festival reminders (surveys/festivals.py): None = the defaults (New Year, Songkran);
    # once changed, the office's whole list: key, names, day and send date (MM-DD), audience, on/off.
    festivals: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
