"""Complaints of corruption and misconduct, their evidence and their timeline.

What identifies a reporter is never stored in the clear: an anonymous case has no link to
anyone (not the LINE user ID, not a hash of it); a confidential or named case keeps the name,
contact and LINE user ID encrypted with ITABOT_DATA_KEY (``reporter_enc``, ``reporter_line_enc``).
The receipt code is kept only as a keyed hash (``receipt_hash``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from models.base import Base, UTCDateTime, utcnow

STATUSES = ("received", "screening", "investigating", "concluded", "referred", "closed")
OPEN_STATUSES = ("received", "screening", "investigating")
OUTCOMES = ("substantiated", "unsubstantiated")
REFERRED_TO = ("bma_acc", "nacc", "police")
IDENTITIES = ("anonymous", "confidential", "named")


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_office_status", "office_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    # HMAC-SHA256 of the normalised receipt code: the code itself is known only to the reporter.
    receipt_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A short public reference for officers to talk about a case (not the receipt).
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="line")
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    occurred_on: Mapped[date | None] = mapped_column(Date)
    occurred_text: Mapped[str | None] = mapped_column(String(200))  # as typed, or "unsure"
    place: Mapped[str | None] = mapped_column(String(200))  # a division or service, or None = unknown
    identity: Mapped[str] = mapped_column(String(16))  # anonymous | confidential | named
    reporter_enc: Mapped[str | None] = mapped_column(Text)  # {"name", "contact"} encrypted
    reporter_line_enc: Mapped[str | None] = mapped_column(Text)  # LINE user ID encrypted, for status pushes
    status: Mapped[str] = mapped_column(String(16), default="received")
    outcome: Mapped[str | None] = mapped_column(String(16))
    referred_to: Mapped[str | None] = mapped_column(String(16))
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    spam: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # evidence and identity removed


class ComplaintEvidence(Base):
    """A photo, video, file or location. While the report is a draft it hangs on a random draft
    token (kept in the draft itself), never on the person; at submit it moves to the case."""

    __tablename__ = "complaint_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    draft_token: Mapped[str | None] = mapped_column(String(32), index=True)
    message_key: Mapped[str | None] = mapped_column(String(64))  # HMAC of LINE's message id, drafts only
    kind: Mapped[str] = mapped_column(String(16))  # image | video | audio | file | location
    content_type: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ComplaintEvent(Base):
    """The case's timeline: status changes, assignment, notes, messages both ways, reveals."""

    __tablename__ = "complaint_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # created | status | assigned | note | to_reporter | from_reporter | reveal | spam
    kind: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    status: Mapped[str | None] = mapped_column(String(16))
    body: Mapped[str | None] = mapped_column(Text)


class ReceiptAttempts(Base):
    """Wrong receipt codes per person (keyed by a keyed hash, not the LINE user ID), to throttle
    guessing. Holds no case and no successful lookup."""

    __tablename__ = "receipt_attempts"

    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), primary_key=True)
    who: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ComplaintSettings(Base):
    """An office's complaint rules; the defaults apply until an admin changes them."""

    __tablename__ = "complaint_settings"

    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), primary_key=True)
    first_action_days: Mapped[int] = mapped_column(Integer, default=15)
    conclude_days: Mapped[int] = mapped_column(Integer, default=60)
    # Evidence and identity are removed this many days after a case is closed/concluded/referred.
    retention_days: Mapped[int] = mapped_column(Integer, default=365)
    # Category ids offered (None = all defaults, in the default order).
    categories: Mapped[str | None] = mapped_column(Text)  # comma-separated ids
    general_text_th: Mapped[str | None] = mapped_column(Text)  # where general problems go, if changed
    general_text_en: Mapped[str | None] = mapped_column(Text)
    digest_sent_on: Mapped[date | None] = mapped_column(Date)  # claims the daily digest once
