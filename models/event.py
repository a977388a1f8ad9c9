"""Webhook events and outgoing messages, both stored before anything is done with them.

``WebhookEvent`` is the inbox: one row per (office, webhookEventId), so a redelivered event
is stored once and processed once. Once processed, the payload and the source key are
erased: what stays is the id and office (enough to recognise a redelivery), the event's type
and status, and nothing that could become a second copy of someone's complaint next to their
LINE user ID. Processed rows are pruned after a week.

``OutboxMessage`` holds what a handler decided to send, written in the same transaction that
marks the event done, so a crash between deciding and sending loses nothing. Rows are deleted
as soon as LINE accepted them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow

# Event status values.
PENDING = "pending"
DONE = "done"
FAILED = "failed"


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("office_id", "webhook_event_id", name="uq_webhook_events_office_event"),
        Index("ix_webhook_events_status_received", "status", "received_at"),
        Index("ix_webhook_events_source", "office_id", "source_key", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    webhook_event_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    event_type: Mapped[str | None] = mapped_column(String(32))
    # Until processed: the raw event, and an opaque key of its source so one person's events
    # are handled in order. Both are set to NULL when the event is done.
    payload: Mapped[str | None] = mapped_column(Text)
    source_key: Mapped[str | None] = mapped_column(String(64))
    event_ts: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(200))


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_next_attempt", "next_attempt_at"),
        Index("ix_outbox_source", "office_id", "source_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    # The event's source key, so the next event of the same person waits until this is sent
    # and replies reach the person in the order they were written.
    source_key: Mapped[str | None] = mapped_column(String(64))
    reply_token: Mapped[str | None] = mapped_column(String(255))
    to: Mapped[str | None] = mapped_column(String(64))
    messages: Mapped[str] = mapped_column(Text)  # JSON list of LINE message objects
    retry_key: Mapped[str] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
