"""The complaint officers' daily digest: how many cases are open and how many are overdue.

Once per office per Bangkok day, from 08:30, the linked complaint officers and the groups
registered for complaint alerts get one line with the two counts (never a category, a reference
or any content) and are sent to the console. Offices with no open case get nothing.

Every worker's scheduler calls ``run_digest`` each minute; the day is claimed with a conditional
UPDATE of ``complaint_settings.digest_sent_on`` in the same transaction that queues the pushes, so
however many workers call it at once, each office's digest is queued exactly once. The pushes go
through the outbox (``bot.inbox.queue_push``) and the sweepers send them.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.inbox import queue_push
from bot.thaidate import BANGKOK
from complaints import cases, officers
from models import ComplaintSettings, Office, utcnow

log = logging.getLogger("itabot.complaints")

DIGEST_AT = time(8, 30)  # Asia/Bangkok


def digest_text(open_cases: int, overdue: int) -> str:
    return (f"เรื่องร้องเรียนที่ยังไม่ปิด {open_cases} เรื่อง เกินกำหนด {overdue} เรื่อง — ดูในคอนโซล\n"
            f"Open complaints: {open_cases}, overdue: {overdue} — see the console")


def digest_day(now: datetime) -> date | None:
    """The Bangkok day whose digest is due at ``now``, or None before 08:30 Bangkok."""
    local = now.astimezone(BANGKOK)
    return local.date() if local.time() >= DIGEST_AT else None


def run_digest(services, now: datetime | None = None) -> int:
    """Queue today's digest for every office that has not had it; returns how many offices' officers
    were sent one. ``services`` needs ``db`` and ``cipher``."""
    now = now or utcnow()
    today = digest_day(now)
    if today is None:
        return 0
    with services.db.Session() as s:  # a cheap read decides whether anything is to be done
        office_ids = list(s.scalars(select(Office.id).order_by(Office.id)))
        sent_on = dict(s.execute(select(ComplaintSettings.office_id, ComplaintSettings.digest_sent_on)).all())
    sent = 0
    for office_id in office_ids:
        done = sent_on.get(office_id)
        if done is not None and done >= today:
            continue
        if _digest_office(services, office_id, today, now, settings_missing=office_id not in sent_on):
            sent += 1
    return sent


def _digest_office(services, office_id: int, today: date, now: datetime, *, settings_missing: bool) -> bool:
    with services.db.session() as s:
        if settings_missing:  # the defaults apply; the row exists from now on to hold the claim
            insert = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
            s.execute(insert(ComplaintSettings)
                      .values(office_id=office_id, first_action_days=15, conclude_days=60, retention_days=365)
                      .on_conflict_do_nothing(index_elements=["office_id"]))
        claimed = s.execute(
            update(ComplaintSettings)
            .where(ComplaintSettings.office_id == office_id,
                   or_(ComplaintSettings.digest_sent_on.is_(None), ComplaintSettings.digest_sent_on < today))
            .values(digest_sent_on=today)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            return False  # another worker has it (or had it) today
        open_cases, overdue = cases.overdue_counts(s, office_id, now)
        if open_cases == 0:
            return False
        targets = officers.alert_targets(s, office_id, services.cipher)
        message = [{"type": "text", "text": digest_text(open_cases, overdue)}]
        for to in targets:
            queue_push(s, office_id, to, message)
    log.info("complaint digest queued",
             extra={"office_id": office_id, "open_cases": open_cases, "overdue": overdue, "recipients": len(targets)})
    return bool(targets)
