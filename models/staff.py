"""Officers who use the console, the offices they work for, invitations, and the audit log.

The audit log is append-only: the application has no code path that changes or deletes a
row, the ORM refuses to, and the database itself refuses (triggers in the migration).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow

ROLES = ("admin", "complaint_officer", "survey_coordinator", "viewer", "supervisor")


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255))  # Argon2id; None until set
    totp_secret_enc: Mapped[str | None] = mapped_column(Text)  # encrypted with ITABOT_DATA_KEY
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # a code works once
    recovery_codes: Mapped[list] = mapped_column(JSON, default=list)  # Argon2id hashes, used ones removed
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped on password, role or 2FA change: every older session of this user ends.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A complaint officer's own LINE account, for "new complaint" alerts (never the content).
    line_user_id_enc: Mapped[str | None] = mapped_column(Text)  # encrypted with ITABOT_DATA_KEY
    line_link_hash: Mapped[str | None] = mapped_column(String(64), unique=True)  # HMAC of a one-time code
    line_link_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    line_link_office_id: Mapped[int | None] = mapped_column(Integer)  # the office whose LINE account links


class StaffOffice(Base):
    """Which offices a user works for: one for most roles, several for a supervisor."""

    __tablename__ = "staff_offices"

    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), primary_key=True)


class StaffInvite(Base):
    """A one-time link to set a password (first admin from the CLI, others from the console)."""

    __tablename__ = "staff_invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the token
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_office_at", "office_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # no FK: the trail outlives accounts
    actor_email: Mapped[str | None] = mapped_column(String(254))
    office_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))


@event.listens_for(AuditEntry, "before_update")
def _no_update(*_args) -> None:
    raise PermissionError("the audit log is append-only")


@event.listens_for(AuditEntry, "before_delete")
def _no_delete(*_args) -> None:
    raise PermissionError("the audit log is append-only")
