"""Writing the audit trail: sign-ins and failures, role and settings changes, every view of a
complaint, every identity reveal, every export and download."""

from __future__ import annotations

from flask import g, has_request_context, request

from models import AuditEntry


def record(session, action: str, *, target: str | None = None, office_id: int | None = None,
           detail: dict | None = None, actor=None) -> None:
    """Add an audit row to ``session`` (it commits with the action it records)."""
    actor = actor if actor is not None else g.get("staff") if has_request_context() else None
    session.add(
        AuditEntry(
            actor_id=getattr(actor, "id", None),
            actor_email=getattr(actor, "email", None),
            office_id=office_id,
            action=action,
            target=target,
            detail=detail or {},
            ip=request.remote_addr if has_request_context() else None,
        )
    )
