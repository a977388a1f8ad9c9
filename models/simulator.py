"""What the in-app simulator shows: messages sent to and from simulated users.

Only used when the simulator is on (no real LINE channel). Rows hold simulated users' chats,
never real people's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class SimMessage(Base):
    __tablename__ = "sim_messages"
    __table_args__ = (Index("ix_sim_messages_office_user", "office_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(4))  # "in" (user→bot) | "out" (bot→user)
    kind: Mapped[str] = mapped_column(String(16))  # reply | push | multicast | user
    body: Mapped[str] = mapped_column(Text)  # JSON: a LINE message object or a user action
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SimReplyToken(Base):
    __tablename__ = "sim_reply_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(64))
    used: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
