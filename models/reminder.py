"""Reminders: scheduled messages about a survey campaign or a festival, and their fan-out in chunks.

A survey reminder belongs to a campaign (``campaign_id``); a No Gift festival reminder has no
campaign and names its festival instead (``festival``, e.g. "new_year"), with the festival's year
(CE) as its label — one row per office, festival and year, which the unique constraint keeps so.

A reminder is taken by one dispatcher (``scheduled`` → ``sending``) which writes its chunks —
at most 500 recipients each, each with its own ``X-Line-Retry-Key`` — in the same
transaction. Chunks are then sent one by one; a chunk's retry key never changes, so a chunk
sent again after a crash is answered 409 by LINE and reaches nobody twice. Recipient lists are
cleared once a chunk is sent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow

AUDIENCES = ("iit_staff", "eit_followers", "eit_askers", "festival_staff", "festival_followers")


class Reminder(Base):
    __tablename__ = "reminders"
    __table_args__ = (
        Index("ix_reminders_status_send_at", "status", "send_at"),
        UniqueConstraint("campaign_id", "label", name="uq_reminders_campaign_label"),
        # festival reminders: one per office, festival and year (survey rows have festival NULL)
        UniqueConstraint("office_id", "festival", "label", name="uq_reminders_office_festival_label"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("survey_campaigns.id", ondelete="CASCADE"))
    festival: Mapped[str | None] = mapped_column(String(40))  # "new_year", "songkran", an office's own key
    label: Mapped[str] = mapped_column(String(40))  # "open", "cadence-2026-01-16", "closes-7", …; festivals: "2027"
    audience: Mapped[str] = mapped_column(String(20))
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    text_th: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    # registered LINE groups of the office get it too (pushed to each group; no exclusions apply)
    include_groups: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled|sending|sent|cancelled
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # waiting for quota: look again then
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    skipped_for_quota: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReminderChunk(Base):
    __tablename__ = "reminder_chunks"
    __table_args__ = (Index("ix_reminder_chunks_reminder_status", "reminder_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reminder_id: Mapped[int] = mapped_column(ForeignKey("reminders.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    lang: Mapped[str] = mapped_column(String(2))
    target: Mapped[str] = mapped_column(String(8), default="users", server_default="users")  # users | group
    user_ids: Mapped[list] = mapped_column(JSON, default=list)  # cleared once sent
    size: Mapped[int] = mapped_column(Integer)  # recipients (for a group: its members when known)
    retry_key: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sending|sent|failed
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SurveyAsked(Base):
    """Someone was given the EIT link in chat: an office may remind only them, most recent first."""

    __tablename__ = "survey_asked"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("survey_campaigns.id", ondelete="CASCADE"), primary_key=True)
    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
