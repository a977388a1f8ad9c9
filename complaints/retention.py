"""Applying the retention policy: ``itabot complaints purge`` and the workers' hourly run.

``cases.purge`` removes the evidence and the reporter's identity of cases closed longer ago than
their office keeps them (``retention_days``, default 365); ``cases.purge_abandoned_drafts`` removes
evidence left behind by drafts that are gone. Both run in one transaction. What was removed is
logged as the case reference and counts — never content.

On PostgreSQL the run holds a transaction-scoped advisory lock, so when several workers reach their
hourly run together only one purges (the others find the lock taken and skip); on SQLite the
write lock already lets one writer in at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text

from complaints import cases
from models import utcnow

log = logging.getLogger("itabot.complaints")

_LOCK_KEY = 0x17AB07C0  # pg_try_advisory_xact_lock key: "the complaints purge is running"


@dataclass
class Purged:
    cases: list[dict] = field(default_factory=list)  # {"office_id", "reference", "evidence", "identity"}
    draft_files: int = 0
    skipped: bool = False  # another process was purging at the same moment


def run_purge(services, now: datetime | None = None) -> Purged:
    now = now or utcnow()
    result = Purged()
    with services.db.session() as s:
        if s.get_bind().dialect.name == "postgresql" and not s.scalar(
            text("SELECT pg_try_advisory_xact_lock(CAST(:k AS bigint))"), {"k": _LOCK_KEY}
        ):
            result.skipped = True
            return result
        result.cases = cases.purge(s, now)
        result.draft_files = cases.purge_abandoned_drafts(s, now)
    for c in result.cases:
        log.info("complaint evidence and identity removed", extra={
            "office_id": c["office_id"], "reference": c["reference"], "evidence": c["evidence"],
            "identity_removed": bool(c["identity"])})
    if result.draft_files:
        log.info("abandoned draft evidence removed", extra={"files": result.draft_files})
    return result
