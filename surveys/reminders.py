"""Deadline reminders: schedules from a campaign's dates, audiences, quiet hours, quota, fan-out.

Exactly once, with any number of dispatchers: a reminder is taken by a conditional UPDATE
(``scheduled`` → ``sending``) in the transaction that writes its chunks, so only one
dispatcher ever chooses its recipients; each chunk is claimed the same way before it is sent,
and keeps its retry key for ever, so re-sending a chunk after a crash is a 409 at LINE, not a
second message. A chunk claimed by a dispatcher that died is re-sent after ``CHUNK_LEASE``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot.gateway import LineError
from bot.thaidate import be_date
from models import (
    LineUser,
    Reminder,
    ReminderChunk,
    StaffMember,
    SurveyAnswered,
    SurveyAsked,
    SurveyCampaign,
    utcnow,
)
from surveys.campaigns import link_for, served_a_year

log = logging.getLogger("itabot.reminders")

BANGKOK = ZoneInfo("Asia/Bangkok")
QUIET_START = dtime(20, 0)  # nothing is sent from 20:00…
QUIET_END = dtime(8, 0)  # …until 08:00 Asia/Bangkok
SEND_TIME = dtime(10, 0)
CHUNK = 500
CHUNK_LEASE = timedelta(minutes=5)
PACE_SECONDS = 0.01  # well under LINE's ~200 multicast requests/s


# -- schedules -------------------------------------------------------------------------------------


def _at(d: date, t: dtime = SEND_TIME) -> datetime:
    return datetime.combine(d, t, tzinfo=BANGKOK)


def out_of_quiet_hours(when: datetime) -> datetime:
    """The same moment if it is within 08:00–20:00 Bangkok time, else the next 08:00."""
    local = when.astimezone(BANGKOK)
    if QUIET_END <= local.time() < QUIET_START:
        return when
    day = local.date() if local.time() < QUIET_END else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_END, tzinfo=BANGKOK)


def plan(campaign: SurveyCampaign) -> list[tuple[str, datetime]]:
    """(label, send time): opening day, the 1st and 16th of each month while open (at least
    twice a month), and 7, 3 and 1 days before the internal deadline and before closing."""
    items: dict[date, str] = {campaign.opens_on: "open"}
    d = campaign.opens_on
    while d <= campaign.closes_on:
        if d.day in (1, 16) and d not in items:
            items[d] = f"cadence-{d.isoformat()}"
        d += timedelta(days=1)
    for name, deadline in (("internal", campaign.internal_deadline), ("closes", campaign.closes_on)):
        if deadline is None:
            continue
        for n in (7, 3, 1):
            day = deadline - timedelta(days=n)
            if campaign.opens_on <= day <= campaign.closes_on:
                items[day] = f"{name}-{n}"  # a deadline reminder replaces a cadence one that day
    return sorted(((label, _at(day)) for day, label in items.items()), key=lambda x: x[1])


def texts(campaign: SurveyCampaign, label: str) -> tuple[str, str]:
    deadline = campaign.internal_deadline if label.startswith("internal") else campaign.closes_on
    name_th = "แบบวัด IIT สำหรับบุคลากร" if campaign.kind == "IIT" else "แบบวัด EIT สำหรับผู้รับบริการ"
    name_en = "the IIT survey for staff" if campaign.kind == "IIT" else "the EIT survey for service users"
    if label == "open":
        th = f"เปิดให้ตอบ{name_th}แล้วค่ะ ใช้เวลาราว 5 นาที ตอบได้ถึง {be_date(deadline)}"
        en = f"{name_en[0].upper()}{name_en[1:]} is open: about 5 minutes, until {be_date(deadline, 'en')}."
    else:
        th = f"อย่าลืมตอบ{name_th} ภายใน {be_date(deadline)} ค่ะ ถ้าตอบแล้ว กด \"ตอบแล้ว\" เพื่อไม่ให้เตือนอีก"
        en = f"A reminder: please answer {name_en} by {be_date(deadline, 'en')}. Answered? Tap \"I have answered\"."
    stop_th, stop_en = "พิมพ์ \"หยุดเตือน\" หากไม่ต้องการรับการแจ้งเตือน", "Type \"stop reminders\" to stop these."
    return f"{th}\n{{link}}\n{stop_th}", f"{en}\n{{link}}\n{stop_en}"


def schedule(s: Session, campaign: SurveyCampaign) -> list[Reminder]:
    """Create the campaign's reminders (idempotent: existing labels are kept as edited)."""
    audience = "iit_staff" if campaign.kind == "IIT" else "eit_followers"
    existing = set(s.scalars(select(Reminder.label).where(Reminder.campaign_id == campaign.id)))
    made = []
    for label, when in plan(campaign):
        if label in existing:
            continue
        th, en = texts(campaign, label)
        r = Reminder(office_id=campaign.office_id, campaign_id=campaign.id, label=label, audience=audience,
                     send_at=out_of_quiet_hours(when).astimezone(ZoneInfo("UTC")), text_th=th, text_en=en)
        s.add(r)
        made.append(r)
    s.flush()
    return made


# -- audiences ----------------------------------------------------------------------------------------


def audience(s: Session, reminder: Reminder, campaign: SurveyCampaign) -> list[tuple[str, str]]:
    """(LINE user ID, language) of everyone this reminder is for, most important first:
    staff, then people who asked for the link (most recent first), then other followers.
    Always excluded: who said "ตอบแล้ว", who said "หยุดเตือน", who unfollowed."""
    answered = select(SurveyAnswered.line_user_id).where(SurveyAnswered.campaign_id == campaign.id)
    staff_ids = select(StaffMember.line_user_id).where(StaffMember.office_id == campaign.office_id,
                                                       StaffMember.line_user_id.is_not(None))
    base = select(LineUser.line_user_id, LineUser.language).where(
        LineUser.office_id == campaign.office_id,
        LineUser.following.is_(True),
        LineUser.reminders_off.is_(False),
        LineUser.line_user_id.not_in(answered),
    )
    if reminder.audience == "iit_staff":
        members = s.scalars(select(StaffMember).where(StaffMember.office_id == campaign.office_id,
                                                      StaffMember.line_user_id.is_not(None))).all()
        eligible = {m.line_user_id for m in members if served_a_year(m.started_on)}
        return [(uid, lang) for uid, lang in s.execute(base).all() if uid in eligible]
    asked = {uid: at for uid, at in s.execute(
        select(SurveyAsked.line_user_id, SurveyAsked.asked_at).where(SurveyAsked.campaign_id == campaign.id))}
    rows = s.execute(base.where(LineUser.line_user_id.not_in(staff_ids))).all()
    if reminder.audience == "eit_askers":
        rows = [r for r in rows if r[0] in asked]
    epoch = datetime.min.replace(tzinfo=ZoneInfo("UTC"))
    return sorted(rows, key=lambda r: (r[0] not in asked, -(asked.get(r[0], epoch).timestamp()), r[0]))


# -- dispatch ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    reminder_id: int
    recipients: int
    skipped_for_quota: int
    chunks_sent: int


def due(s: Session, now: datetime) -> list[int]:
    """Reminders to start, and reminders whose sending stopped half-way (to resume)."""
    return list(s.scalars(select(Reminder.id).where(
        or_(and_(Reminder.status == "scheduled", Reminder.send_at <= now), Reminder.status == "sending"))
        .order_by(Reminder.send_at)))


def run_due(services, now: datetime | None = None, progress: Callable[[int, int], None] | None = None) -> list[Outcome]:
    """Send everything due at ``now`` (default: the clock), within quiet hours and the quota."""
    now = now or utcnow()
    local = now.astimezone(BANGKOK).time()
    with services.db.Session() as s:
        ids = due(s, now)
    outcomes = []
    for rid in ids:
        if not (QUIET_END <= local < QUIET_START):
            log.info("quiet hours: reminders wait for the morning")
            break
        outcome = dispatch(services, rid, now, progress)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def _take(services, reminder_id: int, now: datetime) -> bool:
    """Choose the recipients and write the chunks — exactly one dispatcher gets to do this."""
    with services.db.Session() as s:
        r = s.get(Reminder, reminder_id)
        if r is None or r.status != "scheduled" or r.send_at > now:
            return False
        office_id = r.office_id
    remaining = services.quota_remaining(office_id)  # a call to LINE: never inside the write turn
    with services.db.session() as s:
        got = s.execute(
            update(Reminder).where(Reminder.id == reminder_id, Reminder.status == "scheduled",
                                   Reminder.send_at <= now)
            .values(status="sending").execution_options(synchronize_session=False)
        ).rowcount
        if got != 1:
            return False
        reminder = s.get(Reminder, reminder_id)
        campaign = s.get(SurveyCampaign, reminder.campaign_id)
        people = audience(s, reminder, campaign)
        if remaining is not None and len(people) > remaining:
            reminder.skipped_for_quota = len(people) - remaining
            reminder.note = f"quota: {remaining} of {len(people)} reached; the rest are skipped"
            people = people[:remaining]  # staff first, then the most recent askers
        reminder.recipients = len(people)
        for lang in ("th", "en"):
            ids = [uid for uid, ul in people if (ul or "th") == lang]
            for i in range(0, len(ids), CHUNK):
                s.add(ReminderChunk(reminder_id=reminder.id, seq=i // CHUNK, lang=lang, user_ids=ids[i:i + CHUNK],
                                    size=len(ids[i:i + CHUNK]), retry_key=str(uuid.uuid4())))
    return True


def dispatch(services, reminder_id: int, now: datetime | None = None,
             progress: Callable[[int, int], None] | None = None) -> Outcome | None:
    now = now or utcnow()
    _take(services, reminder_id, now)
    with services.db.Session() as s:
        reminder = s.get(Reminder, reminder_id)
        if reminder is None or reminder.status != "sending":
            return None
        campaign = s.get(SurveyCampaign, reminder.campaign_id)
        chunk_ids = list(s.scalars(select(ReminderChunk.id).where(ReminderChunk.reminder_id == reminder_id)
                                   .order_by(ReminderChunk.lang, ReminderChunk.seq)))
    with services.db.session() as s:
        link = link_for(s, s.get(SurveyCampaign, campaign.id), "reminder")
        url = f"{services.settings.public_base_url}/s/{link.token}"
    gateway = services.gateway(reminder.office_id)
    sent = 0
    for n, cid in enumerate(chunk_ids, start=1):
        cutoff = utcnow() - CHUNK_LEASE
        with services.db.session() as s:
            got = s.execute(
                update(ReminderChunk)
                .where(ReminderChunk.id == cid, or_(ReminderChunk.status == "pending",
                                                    and_(ReminderChunk.status == "sending",
                                                         ReminderChunk.claimed_at < cutoff)))
                .values(status="sending", claimed_at=utcnow(), attempts=ReminderChunk.attempts + 1)
                .execution_options(synchronize_session=False)).rowcount
            chunk = s.get(ReminderChunk, cid)
            users, key, lang = list(chunk.user_ids), chunk.retry_key, chunk.lang
        if got != 1:
            continue  # another dispatcher has it (or it is done)
        body = (reminder.text_th if lang == "th" else reminder.text_en).replace("{link}", url)
        try:
            gateway.multicast(users, [{"type": "text", "text": body}], retry_key=key)
        except LineError as exc:
            if 400 <= exc.status < 500 and exc.status != 429:  # LINE refuses it; retrying cannot help
                log.error("reminder chunk refused", extra={"status": exc.status})
                with services.db.session() as s:
                    s.execute(update(ReminderChunk).where(ReminderChunk.id == cid)
                              .values(status="failed", user_ids=[]))
                continue
            # Left "sending": a later run re-sends it with the same key once the lease is over.
            log.warning("reminder chunk failed", extra={"status": exc.status})
            return None
        with services.db.session() as s:
            s.execute(update(ReminderChunk).where(ReminderChunk.id == cid)
                      .values(status="sent", sent_at=utcnow(), user_ids=[]))
        sent += 1
        if progress:
            progress(n, len(chunk_ids))
        time.sleep(PACE_SECONDS)
    with services.db.session() as s:
        left = s.scalar(select(ReminderChunk.id).where(ReminderChunk.reminder_id == reminder_id,
                                                       ReminderChunk.status.not_in(("sent", "failed"))).limit(1))
        r = s.get(Reminder, reminder_id)
        if left is None and r.status == "sending":
            r.status = "sent"
            failed = s.scalar(select(func.count()).select_from(ReminderChunk).where(
                ReminderChunk.reminder_id == reminder_id, ReminderChunk.status == "failed"))
            if failed:
                r.note = f"LINE refused {failed} chunk(s); see the logs"
        return Outcome(reminder_id, r.recipients, r.skipped_for_quota, sent)
