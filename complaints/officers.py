"""Complaint officers on LINE: linking an officer's own LINE account to the console with a
one-time code, and who is told that a new case arrived (category only, never content)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import codes
from bot.crypto import DataCipher
from complaints import catalog
from models import LineGroup, StaffOffice, StaffUser, utcnow

LINK_TTL = timedelta(minutes=15)
LINK_PREFIXES = ("เชื่อมบัญชี", "เชื่อมคอนโซล", "link console", "link")
ALERT_ROLES = ("complaint_officer",)


def new_link_code(s: Session, staff: StaffUser, office_id: int, cipher: DataCipher) -> str:
    """A code the officer sends to the office's LINE account within 15 minutes: "เชื่อมบัญชี ABCD-EFGH"."""
    raw = codes.random_code(8)
    staff.line_link_hash = cipher.keyed_hash("officer-link", raw)
    staff.line_link_expires_at = utcnow() + LINK_TTL
    staff.line_link_office_id = office_id
    return f"{raw[:4]}-{raw[4:]}"


def unlink(staff: StaffUser) -> None:
    staff.line_user_id_enc = None
    staff.line_link_hash = None
    staff.line_link_expires_at = None
    staff.line_link_office_id = None


def looks_like_link(text: str) -> str | None:
    """The code part of "เชื่อมบัญชี ABCD-EFGH" / "link ABCD EFGH", or None."""
    t = text.strip()
    low = t.lower()
    for prefix in LINK_PREFIXES:
        if low.startswith(prefix):
            rest = codes.code_letters(t[len(prefix):])
            return rest if len(rest) == 8 else None
    return None


@dataclass(frozen=True)
class Linked:
    result: str  # linked | wrong | expired
    staff: StaffUser | None = None


def redeem_link(s: Session, office_id: int, line_user_id: str, code: str, cipher: DataCipher) -> Linked:
    staff = s.scalar(select(StaffUser).where(StaffUser.line_link_hash == cipher.keyed_hash("officer-link", code)))
    if staff is None or staff.line_link_office_id != office_id or not staff.active:
        return Linked("wrong")
    if staff.line_link_expires_at is None or staff.line_link_expires_at < utcnow():
        return Linked("expired")
    staff.line_user_id_enc = cipher.encrypt(line_user_id)
    staff.line_link_hash = None
    staff.line_link_expires_at = None
    return Linked("linked", staff)


def alert_targets(s: Session, office_id: int, cipher: DataCipher) -> list[str]:
    """LINE chats to tell about a new case: linked complaint officers of the office, and groups
    registered for complaint alerts."""
    officers = s.scalars(select(StaffUser).join(StaffOffice, StaffOffice.user_id == StaffUser.id)
                         .where(StaffOffice.office_id == office_id, StaffUser.active.is_(True),
                                StaffUser.role.in_(ALERT_ROLES), StaffUser.line_user_id_enc.is_not(None))).all()
    targets = []
    for o in officers:
        try:
            targets.append(cipher.decrypt(o.line_user_id_enc))
        except ValueError:
            continue
    targets += list(s.scalars(select(LineGroup.group_id).where(LineGroup.office_id == office_id,
                                                              LineGroup.active.is_(True),
                                                              LineGroup.complaint_alerts.is_(True))))
    return list(dict.fromkeys(targets))


def new_case_text(category: str) -> str:
    """What officers are told about a new case: the category, and where to read it."""
    return (f"มีเรื่องร้องเรียนใหม่ (หมวด {catalog.category_label(category, 'th')}) — ดูในคอนโซล\n"
            f"New complaint ({catalog.category_label(category, 'en')}) — see the console")
