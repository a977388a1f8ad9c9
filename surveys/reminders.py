"""Deadline reminders: schedules from a campaign's dates, audiences, quiet hours, quota, fan-out.

No Gift festival reminders (``surveys/festivals.py``) are reminders without a campaign and go
through the same dispatch: their rows are made by ``festivals.ensure`` at the start of ``run_due``.

Quiet hours are per office (``Office.send_from``/``send_until``, default 08:00–20:00 Bangkok).
Over quota an office chooses: send to the most important part of the audience ("partial") or
send nothing until the quota allows ("wait", looked at again every hour).

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
from handlers.context import text_message
from handlers.i18n import t
from handlers.text import thai_digits_to_arabic
from models import (
    LineGroup,
    LineUser,
    Office,
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
DEFAULT_WINDOW = (8 * 60, 20 * 60)  # minutes of the day, Bangkok: sent from 08:00, nothing from 20:00
SEND_TIME = dtime(10, 0)
CHUNK = 500
CHUNK_LEASE = timedelta(minutes=5)
PACE_SECONDS = 0.01  # well under LINE's ~200 multicast requests/s
WAIT_RECHECK = timedelta(hours=1)  # "wait for quota": how often the quota is read again
GROUP_MAX = 500  # a LINE group holds at most 500 people: the cost assumed when LINE won't say
STOP_TH = "พิมพ์ \"หยุดเตือน\" หากไม่ต้องการรับการแจ้งเตือน"
STOP_EN = "Type \"stop reminders\" to stop these."
LINK = "{link}"  # in a survey reminder's texts: where its tracked survey link goes when it is sent


# -- sending windows (quiet hours) ----------------------------------------------------------------


def window_of(office: Office | None) -> tuple[int, int]:
    return (office.send_from, office.send_until) if office is not None else DEFAULT_WINDOW


def parse_clock(text: str | None) -> int | None:
    """"08:00", "8.30", "๐๘:๐๐" or "24:00" → minutes of the day; None if it is not a time."""
    raw = thai_digits_to_arabic((text or "").strip()).replace(".", ":")
    hh, _, mm = raw.partition(":")
    if not (hh.isdecimal() and (mm.isdecimal() or mm == "") and len(hh) <= 2 and len(mm) <= 2):
        return None
    minutes = int(hh) * 60 + int(mm or 0)
    return minutes if int(mm or 0) < 60 and 0 <= minutes <= 24 * 60 else None


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def in_window(when: datetime, window: tuple[int, int] = DEFAULT_WINDOW) -> bool:
    local = when.astimezone(BANGKOK)
    return window[0] <= local.hour * 60 + local.minute < window[1]


def out_of_quiet_hours(when: datetime, window: tuple[int, int] = DEFAULT_WINDOW) -> datetime:
    """The same moment if the office sends then (default 08:00–20:00 Bangkok), else the next opening."""
    if in_window(when, window):
        return when
    local = when.astimezone(BANGKOK)
    day = local.date() if local.hour * 60 + local.minute < window[0] else local.date() + timedelta(days=1)
    return datetime.combine(day, dtime(window[0] // 60, window[0] % 60), tzinfo=BANGKOK)


# -- notes the console and the CLI show (stored as a code and numbers, shown in either language) -----

NOTES = {
    "quota_partial": ("โควตาพอสำหรับ {0} จาก {1} คน คนที่เหลือไม่ได้รับข้อความนี้",
                      "The quota allowed {0} of {1} recipients; the rest were skipped"),
    "quota_wait": ("รอโควตา: ต้องใช้ {0} ข้อความ เหลือ {1} — ระบบตรวจอีกครั้งทุกชั่วโมง",
                   "Waiting for quota: needs {0} messages, {1} left — checked again every hour"),
    "refused": ("LINE ปฏิเสธ {0} ชุด ดูรายละเอียดในบันทึกระบบ", "LINE refused {0} chunk(s); see the logs"),
    "closed": ("แบบสำรวจปิดก่อนถึงเวลาส่ง จึงไม่ได้ส่ง", "The survey closed before this could be sent"),
    "festival_off": ("ปิดการแจ้งเตือนของเทศกาลนี้แล้ว จึงไม่ส่ง", "This festival's reminders were turned off"),
    "superseded": ("ไม่ได้ส่ง: ถึงเวลาพร้อมกับการเตือนที่ใหม่กว่า (รายการที่ {0}) จึงส่งเฉพาะรายการนั้น ไม่ให้ใครได้รับซ้ำหลายข้อความ",
                   "Not sent: it fell due together with a newer reminder ({0}), which went out instead, so nobody "
                   "got a burst of reminders"),
    "festival_passed": ("ถึงวันเทศกาลก่อนส่งได้ จึงไม่ได้ส่ง", "The festival came before this could be sent"),
}


def note_text(note: str | None, lang: str = "th") -> str:
    if not note:
        return ""
    code, *args = note.split(":")
    if code not in NOTES:
        return note
    return NOTES[code][0 if lang == "th" else 1].format(*args)


# -- schedules -------------------------------------------------------------------------------------


def _at(d: date, at: dtime = SEND_TIME) -> datetime:
    return datetime.combine(d, at, tzinfo=BANGKOK)


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
    """The reminder's Thai and English texts (``handlers/messages.toml``), ``{link}`` standing for its link.
    A reminder after the opening one asks people to tap "ตอบแล้ว": 1:1 reminders carry that button as a
    quick reply (:func:`message`); a group's copy leaves the line out (:func:`group_texts`)."""
    deadline = campaign.internal_deadline if label.startswith("internal") else campaign.closes_on
    out = []
    for lang, stop in (("th", STOP_TH), ("en", STOP_EN)):
        if label == "open":
            lines = [t(f"reminder_open_{campaign.kind}", lang, date=be_date(deadline, lang))]
        else:
            lines = [t(f"reminder_nudge_{campaign.kind}", lang, date=be_date(deadline, lang)),
                     t("reminder_answered", lang)]
        out.append("\n".join([*lines, LINK, stop]))
    return out[0], out[1]


# What reminders scheduled before the "answered" line had its own line said, in their first line.
_LEGACY_ANSWERED = (' ถ้าตอบแล้ว กด "ตอบแล้ว" เพื่อไม่ให้เตือนอีก', ' Answered? Tap "I have answered".')


def group_texts(reminder: Reminder) -> tuple[str, str]:
    """A LINE group's Thai and English texts, sent as two messages of one push (one message of quota per member,
    and neither cut short: each may be 4,000 characters, one message holds 5,000). Left out: the "stop
    reminders" line (in a group it would stop one person's own reminders, not the group's) and the "tap
    ตอบแล้ว" line (the bot does not act on a tap in a group, and colleagues would see who said they answered);
    a survey reminder says instead that nobody needs to tell the group."""
    skip = {STOP_TH, STOP_EN, t("reminder_answered", "th"), t("reminder_answered", "en")}

    def strip(text: str, lang: str) -> str:
        for legacy in _LEGACY_ANSWERED:
            text = text.replace(legacy, "")
        lines = [line for line in text.splitlines() if line.strip() not in skip]
        if reminder.campaign_id is not None:
            lines.append(t("reminder_group_note", lang))
        return "\n".join(lines).strip()
    return strip(reminder.text_th, "th"), strip(reminder.text_en, "en")


def message(body: str, lang: str, campaign_id: int | None) -> dict:
    """A reminder as LINE's text message; a survey reminder to a person carries the "ตอบแล้ว" button (the
    same postback as the survey card's) as a quick reply."""
    if campaign_id is None:
        return text_message(body)
    label = t("survey_done_button", lang)
    return text_message(body, [{"type": "action", "action": {
        "type": "postback", "label": label[:20], "data": f"action=survey_done&c={campaign_id}", "displayText": label}}])


def schedule(s: Session, campaign: SurveyCampaign, include_groups: bool = False) -> list[Reminder]:
    """Create the campaign's reminders (idempotent: existing labels are kept as edited)."""
    existing = set(s.scalars(select(Reminder.label).where(Reminder.campaign_id == campaign.id)))
    made = [_add(s, campaign, label, planned_as, include_groups)
            for label, planned_as in planned(s, campaign).items() if label not in existing]
    s.flush()
    return made


def _add(s: Session, campaign: SurveyCampaign, label: str, planned_as: tuple[str, str, datetime],
         include_groups: bool) -> Reminder:
    """A reminder of the campaign as :func:`planned` says it, to its default audience."""
    th, en, send_at = planned_as
    r = Reminder(office_id=campaign.office_id, campaign_id=campaign.id, label=label,
                 audience=_default_audience(campaign), include_groups=include_groups, send_at=send_at,
                 text_th=th, text_en=en)
    s.add(r)
    return r


def _default_audience(campaign: SurveyCampaign) -> str:
    return "iit_staff" if campaign.kind == "IIT" else "eit_followers"


def planned(s: Session, campaign: SurveyCampaign) -> dict[str, tuple[str, str, datetime]]:
    """What each label of the campaign's plan would be as :func:`schedule` makes it: (Thai, English, send time).
    Taken before a campaign's dates change, it tells the reminders nobody edited from the ones somebody did."""
    window = window_of(s.get(Office, campaign.office_id))
    return {label: (*texts(campaign, label), out_of_quiet_hours(when, window).astimezone(ZoneInfo("UTC")))
            for label, when in plan(campaign)}


def replan(s: Session, campaign: SurveyCampaign, before: dict[str, tuple[str, str, datetime]],
           now: datetime | None = None) -> tuple[int, int]:
    """The campaign's dates changed (``before``: :func:`planned` under the old ones). Scheduled reminders still as
    they were planned go, and the new dates' plan is scheduled from now on; reminders sent, cancelled or edited by
    hand stay as they are. A deadline reminder whose label was used already (say "closes-7" was sent before the
    deadline moved) gets the new date in its label. Returns (scheduled anew, edited ones kept). Nothing is
    scheduled for a campaign whose reminders were never scheduled."""
    now = now or utcnow()
    rows = s.scalars(select(Reminder).where(Reminder.campaign_id == campaign.id)).all()
    if not rows:
        return 0, 0
    groups, kept = False, 0
    for r in rows:
        if r.status != "scheduled":
            continue
        auto = before.get(r.label.split("@")[0])  # a deadline reminder's label may carry its date
        if auto is not None and (r.text_th, r.text_en, r.send_at) == auto and r.audience == _default_audience(campaign):
            groups |= r.include_groups
            s.delete(r)
        else:
            kept += 1
    s.flush()
    taken = set(s.scalars(select(Reminder.label).where(Reminder.campaign_id == campaign.id)))
    made = 0
    for label, planned_as in planned(s, campaign).items():
        send_at = planned_as[2]
        if send_at <= now:
            continue
        if label in taken:
            if not label.startswith(("internal-", "closes-")):
                continue  # the opening or that day's reminder is there already
            label = f"{label}@{send_at.astimezone(BANGKOK).date().isoformat()}"
            if label in taken:
                continue
        _add(s, campaign, label, planned_as, groups)
        made += 1
    s.flush()
    return made, kept


# -- audiences ----------------------------------------------------------------------------------------


def audience(s: Session, reminder: Reminder, campaign: SurveyCampaign | None,
             today: date | None = None) -> list[tuple[str, str]]:
    """(LINE user ID, language) of everyone this reminder is for, most important first:
    staff, then people who asked for the link (most recent first), then other followers.
    Always excluded: who said "ตอบแล้ว", who said "หยุดเตือน", who unfollowed.
    A festival reminder (no campaign): enrolled staff, or every follower with staff first."""
    if campaign is None:
        staff = set(s.scalars(select(StaffMember.line_user_id).where(StaffMember.office_id == reminder.office_id,
                                                                      StaffMember.line_user_id.is_not(None))))
        rows = s.execute(select(LineUser.line_user_id, LineUser.language).where(
            LineUser.office_id == reminder.office_id, LineUser.following.is_(True),
            LineUser.reminders_off.is_(False))).all()
        if reminder.audience == "festival_staff":
            rows = [r for r in rows if r[0] in staff]
        return sorted(((uid, lang) for uid, lang in rows), key=lambda r: (r[0] not in staff, r[0]))
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
        eligible = {m.line_user_id for m in members if served_a_year(m.started_on, today)}  # on the sending day
        return [(uid, lang) for uid, lang in s.execute(base).all() if uid in eligible]
    asked = {uid: at for uid, at in s.execute(
        select(SurveyAsked.line_user_id, SurveyAsked.asked_at).where(SurveyAsked.campaign_id == campaign.id))}
    rows = s.execute(base.where(LineUser.line_user_id.not_in(staff_ids))).all()
    if reminder.audience == "eit_askers":
        rows = [r for r in rows if r[0] in asked]
    epoch = datetime.min.replace(tzinfo=ZoneInfo("UTC"))
    return sorted(rows, key=lambda r: (r[0] not in asked, -(asked.get(r[0], epoch).timestamp()), r[0]))


def groups(s: Session, office_id: int) -> list[LineGroup]:
    """The office's registered LINE groups: those the bot is still in."""
    return list(s.scalars(select(LineGroup).where(LineGroup.office_id == office_id, LineGroup.active.is_(True))
                          .order_by(LineGroup.id)))


def group_sizes(services, office_id: int, rows: list[tuple[str, str]]) -> dict[str, int]:
    """Members of each group (what a push to it costs); the largest possible group when LINE won't say."""
    gateway = services.gateway(office_id)
    sizes = {}
    for group_id, kind in rows:
        try:
            sizes[group_id] = gateway.member_count(group_id, kind)
        except Exception as exc:  # never under-estimate a cost: assume a full group
            log.warning("group member count unavailable", extra={"error": exc.__class__.__name__})
            sizes[group_id] = GROUP_MAX
    return sizes


# -- dispatch ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    reminder_id: int
    recipients: int
    skipped_for_quota: int
    chunks_sent: int


def _startable(now: datetime):
    """Scheduled, due, and not waiting for its next look at the quota."""
    return and_(Reminder.status == "scheduled", Reminder.send_at <= now,
                or_(Reminder.retry_at.is_(None), Reminder.retry_at <= now))


def due(s: Session, now: datetime) -> list[tuple[int, int]]:
    """(reminder, office) to start — not those waiting for quota until their next look — and
    reminders whose sending stopped half-way (to resume)."""
    return [tuple(row) for row in s.execute(select(Reminder.id, Reminder.office_id).where(
        or_(_startable(now), Reminder.status == "sending")).order_by(Reminder.send_at))]


def run_due(services, now: datetime | None = None, progress: Callable[[int, int], None] | None = None,
            enqueue: Callable[[int], None] | None = None) -> list[Outcome]:
    """Send everything due at ``now`` (default: the clock), within each office's sending hours and
    its quota. With ``enqueue`` (scaled mode) each due reminder is handed to the job queue instead."""
    now = now or utcnow()
    try:  # this year's (or next year's) festival reminders exist before anything is looked for
        from surveys import festivals

        festivals.ensure(services, now)
    except Exception:
        log.exception("festival reminders not scheduled")
    with services.db.Session() as s:
        rows = due(s, now)
        windows = {o.id: window_of(o) for o in s.scalars(select(Office))}
    outcomes = []
    for rid, office_id in rows:
        if not in_window(now, windows.get(office_id, DEFAULT_WINDOW)):
            continue  # quiet hours at this office: it goes out when the office's morning comes
        if enqueue is not None:
            enqueue(rid)
            continue
        outcome = dispatch(services, rid, now, progress)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def superseded_by(s: Session, reminder: Reminder, now: datetime) -> int | None:
    """A later reminder of the same campaign and audience that is also due (or already going out): when
    several fell due at once — scheduled after their dates, or missed while the bot was down — only the
    most recent is sent, so nobody gets the same reminder three times in one minute."""
    later = or_(Reminder.send_at > reminder.send_at, and_(Reminder.send_at == reminder.send_at,
                                                          Reminder.id > reminder.id))
    return s.scalar(select(Reminder.id).where(
        Reminder.campaign_id == reminder.campaign_id, Reminder.audience == reminder.audience,
        Reminder.id != reminder.id, Reminder.send_at <= now, later,
        Reminder.status.in_(("scheduled", "sending", "sent"))).order_by(Reminder.send_at.desc()).limit(1))


def _fit(people: list, sizes: dict[str, int], budget: int) -> tuple[list, dict[str, int]]:
    """The most important part of the audience that the quota allows: people first (staff, then
    recent askers), then whole groups that still fit."""
    people = people[:budget]
    budget -= len(people)
    kept = {}
    for group_id, n in sizes.items():
        if n <= budget:
            kept[group_id] = n
            budget -= n
    return people, kept


def _take(services, reminder_id: int, now: datetime) -> bool:
    """Choose the recipients and write the chunks — exactly one dispatcher gets to do this."""
    with services.db.Session() as s:
        r = s.scalar(select(Reminder).where(Reminder.id == reminder_id, _startable(now)))
        if r is None:
            return False
        office_id = r.office_id
        chats = [(g.group_id, g.kind) for g in groups(s, office_id)] if r.include_groups else []
    # Calls to LINE: never inside the write turn.
    remaining = services.quota_remaining(office_id)
    sizes = group_sizes(services, office_id, chats)
    with services.db.session() as s:
        got = s.execute(
            update(Reminder).where(Reminder.id == reminder_id, _startable(now)).values(status="sending")
            .execution_options(synchronize_session=False)
        ).rowcount
        if got != 1:
            return False
        reminder = s.get(Reminder, reminder_id)
        campaign = s.get(SurveyCampaign, reminder.campaign_id) if reminder.campaign_id is not None else None
        office = s.get(Office, reminder.office_id)
        if campaign is not None and now.astimezone(BANGKOK).date() > campaign.closes_on:
            reminder.status, reminder.note = "cancelled", "closed"
            return False
        if campaign is not None:
            newer = superseded_by(s, reminder, now)
            if newer is not None:  # due together with a later one (scheduled late, or after downtime): only
                reminder.status, reminder.note = "skipped", f"superseded:{newer}"  # that one goes out
                return False
        if reminder.festival is not None:
            from surveys import festivals

            why = festivals.stale(office, reminder, now.astimezone(BANGKOK).date())
            if why is not None:  # turned off since it was scheduled, or its day has come
                reminder.status, reminder.note = "cancelled", why
                return False
        people = audience(s, reminder, campaign, now.astimezone(BANGKOK).date())
        cost = len(people) + sum(sizes.values())
        reminder.retry_at, reminder.note, reminder.skipped_for_quota = None, None, 0
        if remaining is not None and cost > remaining:
            if office.over_quota == "wait":  # nothing goes out until the whole audience fits
                reminder.status, reminder.retry_at = "scheduled", now + WAIT_RECHECK
                reminder.note = f"quota_wait:{cost}:{remaining}"
                return False
            people, sizes = _fit(people, sizes, remaining)
            reached = len(people) + sum(sizes.values())
            reminder.skipped_for_quota = cost - reached
            reminder.note = f"quota_partial:{reached}:{cost}"
        reminder.recipients = len(people) + sum(sizes.values())
        seq = 0
        for lang in ("th", "en"):
            ids = [uid for uid, ul in people if (ul or "th") == lang]
            for i in range(0, len(ids), CHUNK):
                s.add(ReminderChunk(reminder_id=reminder.id, seq=seq, lang=lang, user_ids=ids[i:i + CHUNK],
                                    size=len(ids[i:i + CHUNK]), retry_key=str(uuid.uuid4())))
                seq += 1
        for group_id, n in sizes.items():
            s.add(ReminderChunk(reminder_id=reminder.id, seq=seq, lang="th", target="group", user_ids=[group_id],
                                size=n, retry_key=str(uuid.uuid4())))
            seq += 1
    return True


def dispatch(services, reminder_id: int, now: datetime | None = None,
             progress: Callable[[int, int], None] | None = None) -> Outcome | None:
    """Send one reminder's chunks (taking it first if nobody has); any number of dispatchers may
    run this at once for the same reminder: each chunk goes out once."""
    now = now or utcnow()
    _take(services, reminder_id, now)
    with services.db.Session() as s:
        reminder = s.get(Reminder, reminder_id)
        if reminder is None or reminder.status != "sending":
            return None
        campaign_id = reminder.campaign_id  # None: a festival reminder, no survey link
        chunks = s.execute(select(ReminderChunk.id, ReminderChunk.target)
                           .where(ReminderChunk.reminder_id == reminder_id)
                           .order_by(ReminderChunk.seq, ReminderChunk.id)).all()
    chunk_ids = [cid for cid, _ in chunks]
    urls = {}
    if campaign_id is not None:
        with services.db.session() as s:  # a tracked source per channel used, so reach is counted by channel
            c = s.get(SurveyCampaign, campaign_id)
            for target in {target for _, target in chunks}:
                source = "group-reminder" if target == "group" else "reminder"
                urls[target] = f"{services.settings.public_base_url}/s/{link_for(s, c, source).token}"
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
            users, key, lang, target = list(chunk.user_ids), chunk.retry_key, chunk.lang, chunk.target
        if got != 1:
            continue  # another dispatcher has it (or it is done)
        try:
            if target == "group":
                link = urls.get("group", LINK)
                bodies = [body for body in group_texts(reminder) if body] or [reminder.text_th]  # else: as typed
                gateway.push(users[0], [text_message(body.replace(LINK, link)) for body in bodies], retry_key=key)
            else:
                body = (reminder.text_th if lang == "th" else reminder.text_en).replace(LINK, urls.get("users", LINK))
                gateway.multicast(users, [message(body, lang, campaign_id)], retry_key=key)
        except LineError as exc:
            if 400 <= exc.status < 500 and exc.status != 429:  # refused, or the bot left the group: retrying won't help
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
                r.note = f"refused:{failed}"
        return Outcome(reminder_id, r.recipients, r.skipped_for_quota, sent)


def progress_of(s: Session, reminder_ids: list[int]) -> dict[int, dict]:
    """For the console: chunks and recipients done so far, per reminder that has chunks."""
    out: dict[int, dict] = {}
    rows = s.execute(select(ReminderChunk.reminder_id, ReminderChunk.status, func.count(), func.sum(ReminderChunk.size))
                     .where(ReminderChunk.reminder_id.in_(reminder_ids))
                     .group_by(ReminderChunk.reminder_id, ReminderChunk.status)).all()
    for rid, status, chunks, size in rows:
        p = out.setdefault(rid, {"chunks": 0, "sent_chunks": 0, "reached": 0})
        p["chunks"] += chunks
        if status == "sent":
            p["sent_chunks"] += chunks
            p["reached"] += int(size or 0)
    return out
