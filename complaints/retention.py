"""Applying the retention policy: ``itabot complaints purge`` and the workers' hourly run.

``cases.purge`` removes the evidence and the reporter's identity of cases closed longer ago than
their office keeps them (``retention_days``, default 365); ``cases.purge_abandoned_drafts`` removes
evidence left behind by drafts that are gone. Both run in one transaction. What was removed is
logged as the case reference and counts — never content.

Several workers may run it at once: ``cases.purge`` claims each case with a conditional UPDATE,
so each case is purged (and logged) once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from complaints import cases
from models import utcnow

log = logging.getLogger("itabot.complaints")


@dataclass
class Purged:
    cases: list[dict] = field(default_factory=list)  # {"office_id", "reference", "evidence", "identity"}
    draft_files: int = 0


def run_purge(services, now: datetime | None = None) -> Purged:
    now = now or utcnow()
    result = Purged()
    with services.db.session() as s:
        result.cases = cases.purge(s, now)
        result.draft_files = cases.purge_abandoned_drafts(s, now)
    for c in result.cases:
        log.info("complaint evidence and identity removed", extra={
            "office_id": c["office_id"], "reference": c["reference"], "evidence": c["evidence"],
            "identity_removed": bool(c["identity"])})
    if result.draft_files:
        log.info("abandoned draft evidence removed", extra={"files": result.draft_files})
    return result
