"""Survey campaigns (IIT for staff, EIT for the public), tracked links, staff enrolment.

The NACC hosts the questionnaires; a campaign holds the office's official link and dates.
Every link we hand out is a ``TrackedLink`` (one per campaign and source), counted per day
with no personal data. "ตอบแล้ว" is kept per person only to stop reminders to them.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow

KINDS = ("IIT", "EIT")


class SurveyCampaign(Base):
    __tablename__ = "survey_campaigns"
    __table_args__ = (Index("ix_survey_campaigns_office_kind", "office_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(3))
    fiscal_year: Mapped[int] = mapped_column(Integer)  # Buddhist Era, e.g. 2569
    url: Mapped[str] = mapped_column(Text)
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date)
    internal_deadline: Mapped[date | None] = mapped_column(Date)
    target: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrackedLink(Base):
    __tablename__ = "tracked_links"
    __table_args__ = (UniqueConstraint("campaign_id", "source", name="uq_tracked_links_campaign_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("survey_campaigns.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))  # line-chat, rich-menu, poster:<name>, facebook, group:<name>
    token: Mapped[str] = mapped_column(String(16), unique=True)


class LinkClicks(Base):
    """Clicks per link and day (Asia/Bangkok); a number, nothing about who clicked."""

    __tablename__ = "link_clicks"

    link_id: Mapped[int] = mapped_column(ForeignKey("tracked_links.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)


class SurveyAnswered(Base):
    """Someone said "ตอบแล้ว" (I have answered): used only to stop reminders to them."""

    __tablename__ = "survey_answered"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("survey_campaigns.id", ondelete="CASCADE"), primary_key=True)
    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffMember(Base):
    """A member of staff of an office, linked to a LINE account once they send their invite code."""

    __tablename__ = "staff_members"
    __table_args__ = (UniqueConstraint("office_id", "line_user_id", name="uq_staff_members_office_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    division: Mapped[str] = mapped_column(String(200))
    started_on: Mapped[date] = mapped_column(Date)
    line_user_id: Mapped[str | None] = mapped_column(String(64))
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffInviteCode(Base):
    __tablename__ = "staff_invite_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CodeAttempts(Base):
    """Wrong invite codes per person, to throttle guessing (not a record of anything else)."""

    __tablename__ = "code_attempts"

    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), primary_key=True)
    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
