"""People and groups who talk to an office's LINE account.

Deliberately no last-seen time or message counter: such a field would let someone line up an
anonymous report with the person who sent it by timing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class LineUser(Base):
    __tablename__ = "line_users"
    __table_args__ = (UniqueConstraint("office_id", "line_user_id", name="uq_line_users_office_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    line_user_id: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2), default="th")
    language_chosen: Mapped[bool] = mapped_column(Boolean, default=False)
    following: Mapped[bool] = mapped_column(Boolean, default=True)
    followed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unfollowed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    richmenu: Mapped[str | None] = mapped_column(String(16))  # "public" | "staff"
    reminders_off: Mapped[bool] = mapped_column(Boolean, default=False)  # said "หยุดเตือน"


class LineGroup(Base):
    __tablename__ = "line_groups"
    __table_args__ = (UniqueConstraint("office_id", "group_id", name="uq_line_groups_office_group"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    group_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8), default="group")  # group | room
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    division: Mapped[str | None] = mapped_column(String(200))  # set by a survey coordinator
    # Complaint officers' group: told "a new complaint arrived" (category only, never content).
    complaint_alerts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
