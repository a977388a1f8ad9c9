"""Roles, permissions and office scoping for the console.

Console queries are limited to the signed-in user's offices with ``scoped`` (lists) and
``get_scoped_or_404`` (one object), so an object of another office answers 404, whatever its
id. Feature pages (surveys, complaints, …) use the same two helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort, g
from sqlalchemy import Select

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"dashboard", "users", "audit", "settings", "gifts"}),
    "complaint_officer": frozenset({"dashboard", "complaints", "complaints.reveal"}),
    "survey_coordinator": frozenset({"dashboard", "surveys", "reminders", "staff", "qa", "gifts"}),
    "viewer": frozenset({"dashboard"}),
    # Several offices' aggregate figures; never complaint content.
    "supervisor": frozenset({"dashboard"}),
}
# Roles whose sessions must pass TOTP: those that see complaints, and those that grant roles.
NEEDS_2FA = frozenset({"admin", "complaint_officer"})
ROLE_LABELS = {
    "admin": ("ผู้ดูแลระบบ", "Administrator"),
    "complaint_officer": ("เจ้าหน้าที่รับเรื่องร้องเรียน", "Complaint officer"),
    "survey_coordinator": ("ผู้ประสานงานแบบประเมิน", "Survey coordinator"),
    "viewer": ("ผู้ดูข้อมูลสรุป", "Viewer"),
    "supervisor": ("ผู้กำกับดูแลหลายหน่วยงาน", "Supervisor (several offices)"),
}


def can(permission: str) -> bool:
    user = g.get("staff")
    return user is not None and permission in ROLE_PERMISSIONS.get(user.role, frozenset())


def requires(permission: str) -> Callable:
    """The signed-in user's role must grant ``permission`` (403 otherwise; sign-in is checked first)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            if g.get("staff") is None:
                abort(401)
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapper.permission = permission  # type: ignore[attr-defined]
        return wrapper

    return decorate


def office_ids() -> list[int]:
    return list(g.get("staff_offices") or [])


def scoped(stmt: Select, office_column) -> Select:
    """Limit a query to the signed-in user's offices."""
    return stmt.where(office_column.in_(office_ids()))


def get_scoped_or_404(session, model, object_id, office_attr: str = "office_id"):
    obj = session.get(model, object_id)
    if obj is None or getattr(obj, office_attr) not in office_ids():
        abort(404)
    return obj
