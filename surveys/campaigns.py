"""Survey campaigns, tracked links and staff enrolment: the rules, without Flask or LINE.

Dates people type are CE or BE (``bot.thaidate.parse_typed_date``: a year from 2400 is BE); dates people
read are BE (``bot.thaidate``). The NACC counts
IIT answers only from staff with at least a year of service; staff are never offered their
own office's EIT.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot import codes
from models import CodeAttempts, LinkClicks, StaffInviteCode, StaffMember, SurveyCampaign, TrackedLink, utcnow
from models.survey import KINDS

BANGKOK = ZoneInfo("Asia/Bangkok")
INVITE_TTL = timedelta(days=30)
CODE_ALPHABET = codes.ALPHABET  # no 0/O, 1/I/L: read aloud and typed on a phone
CODE_FAILURES_BEFORE_LOCK = 5
CODE_LOCK = timedelta(minutes=15)


class CampaignError(ValueError):
    """Bad campaign input; the message (English, for the CLI) says what to fix. ``code`` and ``values`` name
    the same text in the console's catalog (``bot/console/messages.toml``), Thai and English."""

    def __init__(self, message: str, code: str | None = None, **values: object) -> None:
        super().__init__(message)
        self.code, self.values = code, values


MAX_TARGET = 10_000_000  # respondents: far above any office, far below what the database holds
YEARS_BACK, YEARS_AHEAD = 2, 3  # a campaign's dates must fall this close to today: anything else is a typo


def today_bangkok() -> date:
    return datetime.now(BANGKOK).date()


def fiscal_year_be(d: date) -> int:
    """Thai fiscal year (1 Oct – 30 Sep) in the Buddhist Era: 1 Jan 2026 is in FY 2569."""
    return d.year + 543 + (1 if d.month >= 10 else 0)


def _shift_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def overlapping(s: Session, office_id: int, kind: str, opens: date, closes: date,
                besides: int | None = None) -> SurveyCampaign | None:
    """The office's campaign of this kind whose dates overlap ``opens``–``closes``, if there is one (other than
    campaign ``besides``)."""
    query = select(SurveyCampaign).where(
        SurveyCampaign.office_id == office_id, SurveyCampaign.kind == kind,
        SurveyCampaign.opens_on <= closes, SurveyCampaign.closes_on >= opens)
    if besides is not None:
        query = query.where(SurveyCampaign.id != besides)
    return s.scalar(query.order_by(SurveyCampaign.id).limit(1))


def add_campaign(s: Session, office_id: int, kind: str, url: str, opens: date, closes: date,
                 internal_deadline: date | None = None, target: int | None = None,
                 today: date | None = None) -> SurveyCampaign:
    kind = kind.upper()
    if kind not in KINDS:
        raise CampaignError("kind must be IIT or EIT", "survey_err_kind")
    _check(s, office_id, kind, url, opens, closes, internal_deadline, target, today)
    campaign = SurveyCampaign(office_id=office_id, kind=kind, url=url, opens_on=opens, closes_on=closes,
                              internal_deadline=internal_deadline, target=target, fiscal_year=fiscal_year_be(opens))
    s.add(campaign)
    s.flush()
    return campaign


def edit_campaign(s: Session, campaign: SurveyCampaign, url: str, opens: date, closes: date,
                  internal_deadline: date | None = None, target: int | None = None,
                  today: date | None = None) -> bool:
    """Change a campaign's link, dates or target (the NACC extends a deadline; a link was mistyped) under the
    rules a new one must meet. Returns whether its dates changed (then its reminders need planning again:
    ``surveys.reminders.replan``)."""
    _check(s, campaign.office_id, campaign.kind, url, opens, closes, internal_deadline, target, today,
           besides=campaign.id)
    dates_changed = (campaign.opens_on, campaign.closes_on, campaign.internal_deadline) != (
        opens, closes, internal_deadline)
    campaign.url, campaign.opens_on, campaign.closes_on = url, opens, closes
    campaign.internal_deadline, campaign.target = internal_deadline, target
    campaign.fiscal_year = fiscal_year_be(opens)
    s.flush()
    return dates_changed


def _check(s: Session, office_id: int, kind: str, url: str, opens: date, closes: date,
           internal_deadline: date | None, target: int | None, today: date | None,
           besides: int | None = None) -> None:
    """What a campaign must be, new or edited; raises ``CampaignError``."""
    from bot.thaidate import be_date

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise CampaignError("the official survey URL must start with https://", "survey_err_https")
    today = today or today_bangkok()
    earliest, latest = _shift_years(today, -YEARS_BACK), _shift_years(today, YEARS_AHEAD)
    for d in (opens, closes, internal_deadline):
        if d is not None and not earliest <= d <= latest:
            raise CampaignError(
                f"{d.isoformat()} ({be_date(d, 'en')}) is too far from today: a campaign's dates must fall "
                f"between {earliest.isoformat()} and {latest.isoformat()} (a Buddhist Era year such as 2569 "
                "is read as 2026)", "survey_err_far", date=d, earliest=earliest, latest=latest)
    if closes < opens:
        raise CampaignError("the closing date is before the opening date", "survey_err_order")
    if internal_deadline is not None and not opens <= internal_deadline <= closes:
        raise CampaignError("the internal deadline must fall between the opening and closing dates",
                            "survey_err_internal")
    if target is not None and not 1 <= target <= MAX_TARGET:
        raise CampaignError(f"the target must be a number of respondents from 1 to {MAX_TARGET:,}",
                            "survey_err_target", max=MAX_TARGET)
    clash = overlapping(s, office_id, kind, opens, closes, besides)
    if clash is not None:
        raise CampaignError(
            f"campaign {clash.id} ({clash.kind} FY {clash.fiscal_year}, {clash.opens_on.isoformat()} to "
            f"{clash.closes_on.isoformat()}) already covers these dates: an office runs one {kind} campaign at "
            "a time", "survey_err_overlap", id=clash.id, kind=clash.kind, fy=clash.fiscal_year,
            opens=clash.opens_on, closes=clash.closes_on)


@dataclass(frozen=True)
class Current:
    campaign: SurveyCampaign | None
    state: str  # "open" | "upcoming" | "closed" | "none"


def current_campaign(s: Session, office_id: int, kind: str, today: date | None = None) -> Current:
    """The campaign a person should hear about now: open, else the next one, else the last one."""
    today = today or today_bangkok()
    rows = s.scalars(
        select(SurveyCampaign).where(SurveyCampaign.office_id == office_id, SurveyCampaign.kind == kind)
    ).all()
    open_now = [c for c in rows if c.opens_on <= today <= c.closes_on]
    if open_now:
        return Current(max(open_now, key=lambda c: c.opens_on), "open")
    upcoming = [c for c in rows if c.opens_on > today]
    if upcoming:
        return Current(min(upcoming, key=lambda c: c.opens_on), "upcoming")
    if rows:
        return Current(max(rows, key=lambda c: c.closes_on), "closed")
    return Current(None, "none")


def shown_deadline(campaign: SurveyCampaign, today: date | None = None) -> date:
    """The date people are told to answer by: the office's own earlier deadline while it is ahead, then the
    NACC's closing date (the survey stays open until then)."""
    internal = campaign.internal_deadline
    return internal if internal is not None and internal >= (today or today_bangkok()) else campaign.closes_on


def link_for(s: Session, campaign: SurveyCampaign, source: str) -> TrackedLink:
    """The tracked link of a campaign for one source (made on first use)."""
    source = source.strip()[:64] or "line-chat"
    find = select(TrackedLink).where(TrackedLink.campaign_id == campaign.id, TrackedLink.source == source)
    link = s.scalar(find)
    if link is None:
        # Two workers may make the same link at once: the database keeps one, both use it.
        insert = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
        s.execute(
            insert(TrackedLink)
            .values(office_id=campaign.office_id, campaign_id=campaign.id, source=source,
                    token=secrets.token_urlsafe(6))
            .on_conflict_do_nothing(index_elements=["campaign_id", "source"])
        )
        link = s.scalar(find)
    return link


def poster_content(s: Session, campaign: SurveyCampaign, link: TrackedLink, public_base_url: str):
    """What a poster for this campaign and tracked link says (CLI and console print the same)."""
    from models import Office
    from surveys.poster import PosterContent

    return PosterContent(
        office_name=s.get(Office, campaign.office_id).name,
        kind=campaign.kind,
        link=f"{public_base_url}/s/{link.token}",
        deadline=shown_deadline(campaign),
        fiscal_year_be=campaign.fiscal_year,
    )


def count_click(s: Session, link_id: int, day: date | None = None) -> None:
    day = day or today_bangkok()
    insert = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = insert(LinkClicks).values(link_id=link_id, day=day, clicks=1)
    s.execute(stmt.on_conflict_do_update(index_elements=["link_id", "day"],
                                         set_={"clicks": LinkClicks.clicks + 1}))


# -- staff ---------------------------------------------------------------------------------------


def eligible_on(started_on: date) -> date:
    """The first day the NACC counts someone's IIT answer: a year after they started."""
    try:
        return started_on.replace(year=started_on.year + 1)
    except ValueError:  # 29 February
        return started_on.replace(year=started_on.year + 1, day=28)


def served_a_year(started_on: date, today: date | None = None) -> bool:
    return eligible_on(started_on) <= (today or today_bangkok())


def _code_hash(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def normalize_code(text: str) -> str:
    return codes.code_letters(text)


def parse_start_date(text: str | None) -> date | None:
    """A first day of service as offices type it, or None: ``YYYY-MM-DD`` or ``D/M/YYYY`` (Thai Excel's
    "1/3/2558"; ``.`` or ``-`` too), Thai digits, or a month's name ("1 มี.ค. 2558"). A year from 2400 is
    Buddhist Era (2558 → 2015), so a พ.ศ. year is never taken for a day in the far future."""
    import re

    from bot.thaidate import parse_thai_date
    from handlers.text import thai_digits_to_arabic

    t = thai_digits_to_arabic((text or "").strip())
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", t):
        year, month, day = (int(x) for x in m.groups())
    elif m := re.fullmatch(r"(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})", t):
        day, month, year = (int(x) for x in m.groups())
    elif re.search(r"[^\d\s/.,-]", t) and re.search(r"\d{2,4}$", t):  # a month's name and a year
        return parse_thai_date(t)
    else:
        return None
    if year >= 2400:
        year -= 543
    try:
        return date(year, month, day) if year >= 1900 else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Invited:
    """What registering one member of staff did. ``status``: "new" (a new member), "renewed" (already
    registered, no working code: a fresh one), "has_code" (already registered with a code that still
    works: none made, ``expires_at`` says until when), "enrolled" (already on LINE: no code needed)."""

    member: StaffMember
    status: str
    code: str | None = None
    expires_at: datetime | None = None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _issue_code(s: Session, member: StaffMember) -> str:
    raw = codes.random_code(8, with_digit=True)
    code = f"{raw[:4]}-{raw[4:]}"
    s.add(StaffInviteCode(office_id=member.office_id, staff_id=member.id, code_hash=_code_hash(code),
                          expires_at=utcnow() + INVITE_TTL))
    return code


def working_code_expiry(s: Session, member: StaffMember) -> datetime | None:
    """Until when the member's unused invite code works, or None if they have none that works."""
    return s.scalar(select(StaffInviteCode.expires_at).where(
        StaffInviteCode.staff_id == member.id, StaffInviteCode.used_at.is_(None),
        StaffInviteCode.expires_at > utcnow()).order_by(StaffInviteCode.expires_at.desc()).limit(1))


def register_staff(s: Session, office_id: int, name: str, division: str, started_on: date) -> Invited:
    """Register a member of staff, or update one already registered: the same name and division in the
    same office are the same person (a CSV imported again, someone invited twice), so the eligible
    count is not inflated and nobody holds two working codes. A new code is made only for someone not
    yet on LINE who has no code that still works (:func:`reissue_code` replaces a lost one)."""
    name, division = _one_line(name), _one_line(division)
    if not name or not division:
        raise CampaignError("name and division are required")
    if started_on > today_bangkok():
        raise CampaignError("the start date is in the future")
    member = s.scalar(select(StaffMember).where(StaffMember.office_id == office_id, StaffMember.name == name,
                                                StaffMember.division == division)
                      .order_by(StaffMember.line_user_id.is_(None), StaffMember.id).limit(1))
    if member is None:
        member = StaffMember(office_id=office_id, name=name, division=division, started_on=started_on)
        s.add(member)
        s.flush()
        return Invited(member, "new", _issue_code(s, member))
    member.started_on = started_on
    if member.line_user_id is not None:
        return Invited(member, "enrolled")
    expires_at = working_code_expiry(s, member)
    if expires_at is not None:
        return Invited(member, "has_code", expires_at=expires_at)
    return Invited(member, "renewed", _issue_code(s, member))


def invite_staff(s: Session, office_id: int, name: str, division: str, started_on: date) -> str:
    """Register a new member of staff and return their single-use invite code (e.g. "KX7P-R2MD");
    someone already registered is refused unless they need a new code (see :func:`register_staff`)."""
    invited = register_staff(s, office_id, name, division, started_on)
    if invited.code is None:
        raise CampaignError("already registered" + (" and enrolled on LINE" if invited.status == "enrolled"
                                                    else "; their code still works (reissue replaces a lost one)"))
    return invited.code


def reissue_code(s: Session, member: StaffMember) -> str:
    """A new invite code for a member not yet on LINE whose code was lost or expired; any earlier
    unused code stops working (it then answers "expired", which tells them to ask again)."""
    if member.line_user_id is not None:
        raise CampaignError("already enrolled on LINE")
    now = utcnow()
    for invite in s.scalars(select(StaffInviteCode).where(StaffInviteCode.staff_id == member.id,
                                                          StaffInviteCode.used_at.is_(None),
                                                          StaffInviteCode.expires_at > now)):
        invite.expires_at = now
    return _issue_code(s, member)


def looks_like_code(text: str) -> bool:
    """A message that is only an invite code: "G6ER-27V9", "g6er 27v9", "รหัส: G๖ER๒๗V๙" (Thai digits).

    Plain words are not codes: eight letters without a digit or a dash ("feedback", "take care") go to
    the ordinary text handling and never count towards the wrong-code lock. Codes issued since have
    at least one digit; an older all-letter code still works typed as printed (with its dash) or
    after "รหัส"/"code"."""
    t = text.translate(codes.THAI_DIGITS).strip().upper()
    prefixed = False
    for prefix in ("รหัส", "CODE"):
        if t.startswith(prefix):
            t, prefixed = t.removeprefix(prefix).strip(" :"), True
    if not (len(t) in (8, 9) and len(normalize_code(t)) == 8 and all(ch in CODE_ALPHABET + "- " for ch in t)):
        return False
    return prefixed or "-" in t or any(ch.isdigit() for ch in t)


@dataclass(frozen=True)
class Redeemed:
    result: str  # "enrolled" | "already" | "wrong" | "expired" | "locked"
    member: StaffMember | None = None
    locked_until: datetime | None = None


def redeem_code(s: Session, office_id: int, line_user_id: str, text: str) -> Redeemed:
    now = utcnow()
    attempts = s.get(CodeAttempts, (office_id, line_user_id))
    if attempts is not None and attempts.locked_until is not None and attempts.locked_until > now:
        return Redeemed("locked", locked_until=attempts.locked_until)
    existing = s.scalar(select(StaffMember).where(StaffMember.office_id == office_id,
                                                  StaffMember.line_user_id == line_user_id))
    invite = s.scalar(select(StaffInviteCode).where(StaffInviteCode.office_id == office_id,
                                                    StaffInviteCode.code_hash == _code_hash(text)))
    if invite is None or invite.used_at is not None:
        if attempts is None:
            attempts = CodeAttempts(office_id=office_id, line_user_id=line_user_id, failures=0)
            s.add(attempts)
        attempts.failures += 1
        if attempts.failures >= CODE_FAILURES_BEFORE_LOCK:
            attempts.locked_until = now + CODE_LOCK
            attempts.failures = 0
            return Redeemed("locked", locked_until=attempts.locked_until)
        return Redeemed("wrong")
    if invite.expires_at < now:
        return Redeemed("expired")
    if existing is not None:
        return Redeemed("already", existing)
    member = s.get(StaffMember, invite.staff_id)
    member.line_user_id = line_user_id
    member.enrolled_at = now
    invite.used_at = now
    if attempts is not None:
        s.delete(attempts)
    return Redeemed("enrolled", member)


def staff_member(s: Session, office_id: int, line_user_id: str) -> StaffMember | None:
    return s.scalar(select(StaffMember).where(StaffMember.office_id == office_id,
                                              StaffMember.line_user_id == line_user_id))
