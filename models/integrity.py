"""Integrity Q&A: the office's copy of the knowledge base (with revisions), questions the bot
could not answer, and the gift register."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class KbEntry(Base):
    """One answer, per office: loaded from ``integrity/kb/*.toml``, then editable in the console."""

    __tablename__ = "kb_entries"
    __table_args__ = (UniqueConstraint("office_id", "key", name="uq_kb_entries_office_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))  # e.g. "gift.limit"
    content: Mapped[dict] = mapped_column(JSON)  # the entry's fields, as in the TOML file
    revision: Mapped[int] = mapped_column(Integer, default=1)
    edited: Mapped[bool] = mapped_column(Boolean, default=False)  # changed in the console: files don't overwrite it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KbRevision(Base):
    """Every version of an entry, kept: who changed what, when."""

    __tablename__ = "kb_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("kb_entries.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict] = mapped_column(JSON)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16), default="file")  # file | console
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UnansweredQuestion(Base):
    """A question the bot was not sure about and the person asked an officer to answer."""

    __tablename__ = "unanswered_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    # Who to send the answer to (encrypted); erased once answered or dismissed.
    asker_enc: Mapped[str | None] = mapped_column(Text)
    asker_lang: Mapped[str] = mapped_column(String(2), default="th")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | answered | dismissed
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    added_to: Mapped[str | None] = mapped_column(String(64))  # kb key it became an example of
    # Keyed hash of the LINE message it came from: an unsend deletes the question (never the id itself).
    message_key: Mapped[str | None] = mapped_column(String(64), index=True)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GiftReport(Base):
    """A gift an enrolled member of staff reported: the register for the 6- and 12-month reports."""

    __tablename__ = "gift_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    staff_member_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id", ondelete="SET NULL"))
    giver_type: Mapped[str] = mapped_column(String(16))  # relative | served | contractor | colleague | other
    item: Mapped[str] = mapped_column(String(300))
    value_baht: Mapped[int | None] = mapped_column(Integer)
    received_on: Mapped[date | None] = mapped_column(Date)
    action: Mapped[str] = mapped_column(String(16))  # declined | returned | handed_over | kept_reported
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
