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


def overlapping(s: Session, office_id: int, kind: str, opens: date, closes: date) -> SurveyCampaign | None:
    """The office's campaign of this kind whose dates overlap ``opens``–``closes``, if there is one."""
    return s.scalar(select(SurveyCampaign).where(
        SurveyCampaign.office_id == office_id, SurveyCampaign.kind == kind,
        SurveyCampaign.opens_on <= closes, SurveyCampaign.closes_on >= opens).order_by(SurveyCampaign.id).limit(1))


def add_campaign(s: Session, office_id: int, kind: str, url: str, opens: date, closes: date,
                 internal_deadline: date | None = None, target: int | None = None,
                 today: date | None = None) -> SurveyCampaign:
    from bot.thaidate import be_date

    kind = kind.upper()
    if kind not in KINDS:
        raise CampaignError("kind must be IIT or EIT", "survey_err_kind")
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
    clash = overlapping(s, office_id, kind, opens, closes)
    if clash is not None:
        raise CampaignError(
            f"campaign {clash.id} ({clash.kind} FY {clash.fiscal_year}, {clash.opens_on.isoformat()} to "
            f"{clash.closes_on.isoformat()}) already covers these dates: an office runs one {kind} campaign at "
            "a time", "survey_err_overlap", id=clash.id, kind=clash.kind, fy=clash.fiscal_year,
            opens=clash.opens_on, closes=clash.closes_on)
    campaign = SurveyCampaign(office_id=office_id, kind=kind, url=url, opens_on=opens, closes_on=closes,
                              internal_deadline=internal_deadline, target=target, fiscal_year=fiscal_year_be(opens))
    s.add(campaign)
    s.flush()
    return campaign


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


def invite_staff(s: Session, office_id: int, name: str, division: str, started_on: date) -> str:
    """Register a member of staff and return their single-use invite code (e.g. "KX7P-R2MD")."""
    if not name.strip() or not division.strip():
        raise CampaignError("name and division are required")
    if started_on > today_bangkok():
        raise CampaignError("the start date is in the future")
    member = StaffMember(office_id=office_id, name=name.strip(), division=division.strip(), started_on=started_on)
    s.add(member)
    s.flush()
    raw = codes.random_code(8)
    code = f"{raw[:4]}-{raw[4:]}"
    s.add(StaffInviteCode(office_id=office_id, staff_id=member.id, code_hash=_code_hash(code),
                          expires_at=utcnow() + INVITE_TTL))
    return code


def looks_like_code(text: str) -> bool:
    t = text.strip().upper()
    for prefix in ("รหัส", "CODE"):
        t = t.removeprefix(prefix).strip(" :")
    return len(t) in (8, 9) and len(normalize_code(t)) == 8 and all(ch in CODE_ALPHABET + "- " for ch in t)


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
