"""A record of every send to LINE, for quota accounting. No user IDs, no content."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow

KINDS = ("reply", "push", "multicast", "broadcast", "narrowcast")


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_office_sent", "office_id", "sent_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    recipients: Mapped[int] = mapped_column(Integer, default=1)
    messages: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))  # sent | duplicate | failed
    http_status: Mapped[int | None] = mapped_column(Integer)
    retry_key: Mapped[str | None] = mapped_column(String(36))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
