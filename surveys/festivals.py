"""No Gift festival reminders: before New Year and Songkran (and an office's own festivals).

Each festival is a day (``MM-DD``) and a send date (``MM-DD``, 1–60 days before), repeated every
year. The defaults and the default texts are data (``festivals.toml``); an office's own list —
dates changed, a festival turned off, one added, texts rewritten — is kept on the office
(``Office.festivals``, None until changed). Audiences: enrolled staff (default) or everyone who
follows the account (the public is asked not to give; staff are reminded too).

A festival reminder is an ordinary :class:`Reminder` with no campaign: ``festival`` names it and
``label`` is the festival's year (CE). The unique constraint (office, festival, label) makes it one
row per office, festival and year; rows are made by :func:`ensure` (every worker's scheduler, each
minute, before it looks for due reminders) and :func:`sync` (when an office's festivals change),
both with ``INSERT … ON CONFLICT DO NOTHING``, so two processes never make two. Sending is the survey
reminders' code path (``surveys.reminders``): quiet hours, quota (partial/wait), chunks with kept
retry keys, exactly once.

Which year is made: the first whose send time is still ahead — so next year's row appears as soon
as this year's goes out, and a fresh install never sends a reminder whose day has gone by. A row
still unsent when its festival day comes (waiting for quota, or the workers were down) is cancelled.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.thaidate import MONTHS_TH, be_date
from handlers.context import utf16_len
from handlers.text import thai_digits_to_arabic
from models import Office, Reminder, utcnow
from surveys.reminders import BANGKOK, SEND_TIME, STOP_EN, STOP_TH, out_of_quiet_hours, window_of

log = logging.getLogger("itabot.festivals")

AUDIENCES = {"staff": "festival_staff", "followers": "festival_followers"}  # setting → Reminder.audience
MAX_DAYS_BEFORE = 60
KEY = re.compile(r"[a-z0-9_]{2,24}")
MAX_TEXT = 4000  # UTF-16 code units, as LINE counts a text (and a page's maxlength)
UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Festival:
    key: str
    name_th: str
    name_en: str
    day: str  # the festival day, MM-DD
    send: str  # the reminder's day, MM-DD, before ``day``
    audience: str = "staff"  # staff | followers
    on: bool = True
    groups: bool = False  # also push to the office's registered LINE groups
    text_th: str | None = None  # None: the default text for the audience
    text_en: str | None = None

    @property
    def days_before(self) -> int:
        day, send = _md(self.day), _md(self.send)
        gap = (date(2001, *day) - date(2001 if send <= day else 2000, *send)).days
        return gap if gap > 0 else 365


@cache
def _data() -> dict:
    with open(Path(__file__).with_name("festivals.toml"), "rb") as fh:
        return tomllib.load(fh)


def defaults() -> list[Festival]:
    return [Festival(**f) for f in _data()["festival"]]


def default_texts(audience: str) -> tuple[str, str]:
    t = _data()["text"][audience]
    return t["th"].strip(), t["en"].strip()


def of_office(office: Office) -> list[Festival]:
    """The office's festivals (the defaults until it changes them); unreadable entries are skipped."""
    if office.festivals is None:
        return defaults()
    names = {f.name for f in fields(Festival)}
    out = []
    for raw in office.festivals:
        try:
            f = Festival(**{k: v for k, v in raw.items() if k in names})
        except TypeError:
            continue
        if validate(f) is None:
            out.append(f)
    return out


def store(office: Office, festivals: list[Festival]) -> None:
    office.festivals = [asdict(f) for f in festivals]


def find(festivals: list[Festival], key: str) -> Festival | None:
    return next((f for f in festivals if f.key == key), None)


# -- dates people type -------------------------------------------------------------------------------


def _md(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)


def parse_day(text: str | None) -> str | None:
    """A day of the year as Thai people write it, the day first — "22/12", "22-12", "22.12", "๒๒/๑๒", "22 ธ.ค.",
    "22 ธันวาคม", "22 Dec" — as the stored ``MM-DD``; None if it is not one. 29 February is refused (not every
    year). Every numeric form is day/month: "03-04" is 3 April, as "03/04" is."""
    t = thai_digits_to_arabic((text or "").strip())
    if m := re.fullmatch(r"(\d{1,2})\s*[/.-]\s*(\d{1,2})", t):
        day, month = int(m[1]), int(m[2])
    elif m := re.fullmatch(r"(\d{1,2})\s*(\S+)", t):
        name = m[2].replace(".", "").lower()
        month = next((i + 1 for i, ab in enumerate(MONTHS_TH)
                      if name == ab.replace(".", "") or name in _MONTH_NAMES[i]), 0)
        day = int(m[1])
    else:
        return None
    return _stored_day(month, day)


def _stored_day(month: int, day: int) -> str | None:
    """``MM-DD`` for a day that comes every year (not 29 February), else None."""
    if not 1 <= month <= 12 or (month, day) == (2, 29):
        return None
    try:
        date(2001, month, day)
    except ValueError:
        return None
    return f"{month:02d}-{day:02d}"


def typed_day(md: str) -> str:
    """A stored ``MM-DD`` as people type it back: ``12-22`` → "22/12"."""
    month, day = _md(md)
    return f"{day:02d}/{month:02d}"


_MONTH_NAMES = (("มกราคม", "jan", "january"), ("กุมภาพันธ์", "feb", "february"), ("มีนาคม", "mar", "march"),
                ("เมษายน", "apr", "april"), ("พฤษภาคม", "may"), ("มิถุนายน", "jun", "june"),
                ("กรกฎาคม", "jul", "july"), ("สิงหาคม", "aug", "august"), ("กันยายน", "sep", "september"),
                ("ตุลาคม", "oct", "october"), ("พฤศจิกายน", "nov", "november"), ("ธันวาคม", "dec", "december"))


def day_text(md: str, lang: str = "th") -> str:
    """``12-22`` → "22 ธ.ค." / "22 Dec" (no year: it repeats)."""
    month, day = _md(md)
    return f"{day} {MONTHS_TH[month - 1]}" if lang == "th" else f"{day} {date(2001, month, day):%b}"


def validate(f: Festival) -> str | None:
    """None, or the catalog key of what is wrong (``festival_bad_*``)."""
    if not KEY.fullmatch(f.key or ""):
        return "festival_bad_key"
    if not (f.name_th or "").strip() or not (f.name_en or "").strip() or max(len(f.name_th), len(f.name_en)) > 60:
        return "festival_bad_name"
    for md in (f.day, f.send):
        if not isinstance(md, str) or not re.fullmatch(r"\d\d-\d\d", md) or _stored_day(*_md(md)) != md:
            return "festival_bad_date"
    if not 1 <= f.days_before <= MAX_DAYS_BEFORE:
        return "festival_bad_gap"
    if f.audience not in AUDIENCES:
        return "festival_bad_audience"
    if any(t is not None and (not t.strip() or utf16_len(t) > MAX_TEXT) for t in (f.text_th, f.text_en)):
        return "festival_bad_text"
    return None


# -- one year's reminder -------------------------------------------------------------------------------


def festival_day(f: Festival, year: int) -> date:
    return date(year, *_md(f.day))


def send_time(f: Festival, year: int, window: tuple[int, int]) -> datetime:
    """When the reminder for the festival of ``year`` goes out (UTC): 10:00 Bangkok on its send day,
    moved into the office's sending hours."""
    day, send = _md(f.day), _md(f.send)
    on = date(year if send <= day else year - 1, *send)
    local = datetime.combine(on, SEND_TIME, tzinfo=BANGKOK)
    return out_of_quiet_hours(local, window).astimezone(UTC)


def next_year(f: Festival, now: datetime, window: tuple[int, int]) -> int:
    """The first festival year whose reminder has not yet come due."""
    year = now.astimezone(BANGKOK).year
    while send_time(f, year, window) <= now:
        year += 1
    return year


def texts(f: Festival, year: int, office_name: str) -> tuple[str, str]:
    th, en = default_texts(f.audience)
    th, en = f.text_th or th, f.text_en or en
    day = festival_day(f, year)
    values = {"{festival}": (f.name_th, f.name_en), "{year}": (str(year + 543), str(year + 543)),
              "{date}": (be_date(day), be_date(day, "en")), "{office}": (office_name, office_name)}
    for placeholder, (vth, ven) in values.items():  # plain replacement: braces an officer types stay as typed
        th, en = th.replace(placeholder, vth), en.replace(placeholder, ven)
    return f"{th.strip()}\n{STOP_TH}", f"{en.strip()}\n{STOP_EN}"


def _values(office: Office, f: Festival, year: int) -> dict:
    th, en = texts(f, year, office.name)
    return {"send_at": send_time(f, year, window_of(office)), "audience": AUDIENCES[f.audience],
            "include_groups": f.groups, "text_th": th, "text_en": en}


def _insert(s: Session, office: Office, f: Festival, year: int) -> bool:
    """The festival's reminder for ``year`` unless it exists (whoever made it first)."""
    insert = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = insert(Reminder).values(office_id=office.id, campaign_id=None, festival=f.key, label=str(year),
                                   status="scheduled", recipients=0, skipped_for_quota=0, created_at=utcnow(),
                                   **_values(office, f, year)).on_conflict_do_nothing()
    return s.execute(stmt).rowcount == 1


def ensure(services, now: datetime | None = None) -> int:
    """The scheduler's pass: every office's festivals that are on get their next reminder row.
    A cheap read decides; a write happens only when a row is missing. Returns how many were made."""
    now = now or utcnow()
    with services.db.Session() as s:
        offices = s.scalars(select(Office).order_by(Office.id)).all()
        have = {tuple(row) for row in s.execute(select(Reminder.office_id, Reminder.festival, Reminder.label)
                                                .where(Reminder.festival.is_not(None)))}
        missing = [(o.id, f.key, y) for o in offices for f in of_office(o) if f.on
                   for y in [next_year(f, now, window_of(o))] if (o.id, f.key, str(y)) not in have]
    made = 0
    if missing:
        with services.db.session() as s:
            for office_id, key, year in missing:
                office = s.get(Office, office_id)
                f = find(of_office(office), key)
                if f is not None and f.on and _insert(s, office, f, year):
                    made += 1
                    log.info("festival reminder scheduled", extra={"office_id": office_id, "festival": key})
    return made


def sync(s: Session, office: Office, now: datetime | None = None) -> None:
    """After the office's festivals changed (in the caller's transaction): unsent reminders follow
    the new dates, audience and texts; those of a festival turned off or removed are cancelled (and
    come back if it is turned on again before its day); missing next reminders are made."""
    now = now or utcnow()
    today = now.astimezone(BANGKOK).date()
    festivals = {f.key: f for f in of_office(office)}
    rows = s.scalars(select(Reminder).where(Reminder.office_id == office.id, Reminder.festival.is_not(None),
                                            Reminder.status.in_(("scheduled", "cancelled")))).all()
    for r in rows:
        f = festivals.get(r.festival)
        if r.status == "scheduled" and (f is None or not f.on):
            values = {"status": "cancelled", "note": "festival_off", "retry_at": None}
        elif f is not None and f.on and (r.status == "scheduled" or r.note == "festival_off"):
            if today >= festival_day(f, int(r.label)):
                continue  # its day has come: it stays as it is (the dispatcher cancels a late one)
            values = {**_values(office, f, int(r.label)), "status": "scheduled", "note": None, "retry_at": None}
        else:
            continue
        # Only if no dispatcher has taken it meanwhile: a reminder being sent is left alone.
        s.execute(update(Reminder).where(Reminder.id == r.id, Reminder.status == r.status).values(**values)
                  .execution_options(synchronize_session=False))
    for f in festivals.values():
        if f.on:
            _insert(s, office, f, next_year(f, now, window_of(office)))


# -- changes (console and CLI) ---------------------------------------------------------------------------


def key_for(name_en: str, taken: list[Festival]) -> str:
    """A key for an office's own festival from its English name ("Chinese New Year" → chinese_new_year)."""
    base = re.sub(r"[^a-z0-9]+", "_", (name_en or "").lower()).strip("_")[:20] or "own"
    base = base if len(base) >= 2 else f"own_{base}"
    keys = {f.key for f in taken}
    key, n = base, 2
    while key in keys:
        key, n = f"{base}_{n}", n + 1
    return key


def duplicate_of(festival: Festival, others: list[Festival]) -> Festival | None:
    """Another festival that is the same one: the same Thai or English name (case and spacing aside),
    or the same day for the same audience. Turned-off ones count too (turn that one on instead)."""
    def same(a: str, b: str) -> bool:
        return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()

    for other in others:
        if other.key != festival.key and (
                same(other.name_th, festival.name_th) or same(other.name_en, festival.name_en)
                or (other.day == festival.day and other.audience == festival.audience)):
            return other
    return None


def change(s: Session, office: Office, key: str | None, now: datetime | None = None, **values) -> str | None:
    """Change one of the office's festivals, or add one (``key`` None: from ``name_en``), then bring its
    reminders in line (:func:`sync`). ``text_th``/``text_en`` of "" or None go back to the default
    text. Returns None, or the catalog key of what is wrong (nothing is changed then)."""
    current = of_office(office)
    standard = {t for a in AUDIENCES for t in default_texts(a)}
    for name in ("text_th", "text_en"):  # empty, or a standard text as the console shows it: the default
        if name in values:
            given = (values[name] or "").replace("\r\n", "\n").strip()
            values[name] = given if given and given not in standard else None
    old = find(current, key) if key else None
    if key and old is None:
        return "festival_unknown"
    if old is None:
        needed = ("name_th", "name_en", "day", "send")
        if any(not values.get(n) for n in needed):
            return "festival_bad_name" if not (values.get("name_th") and values.get("name_en")) else "festival_bad_date"
        new = Festival(key=key_for(values["name_en"], current), **values)
    else:
        new = replace(old, **values)
    error = validate(new)
    if error is not None:
        return error
    clash = duplicate_of(new, current)
    if clash is not None and (old is None or duplicate_of(old, [clash]) is None):
        return "festival_duplicate"  # a second one would send the same No Gift message twice
    store(office, [new if f.key == new.key else f for f in current] + ([new] if old is None else []))
    sync(s, office, now)
    return None


def remove(s: Session, office: Office, key: str, now: datetime | None = None) -> str | None:
    """Remove an office's own festival (the default ones can only be turned off)."""
    current = of_office(office)
    if find(current, key) is None:
        return "festival_unknown"
    if key in {f.key for f in defaults()}:
        return "festival_builtin"
    store(office, [f for f in current if f.key != key])
    sync(s, office, now)
    return None


def stale(office: Office, reminder: Reminder, today: date) -> str | None:
    """Why a festival reminder must not go out now (a note code), or None: the festival was turned
    off or removed, or its day has come."""
    f = find(of_office(office), reminder.festival)
    if f is None or not f.on:
        return "festival_off"
    if today >= festival_day(f, int(reminder.label)):
        return "festival_passed"
    return None


def name_of(office: Office, reminder: Reminder, lang: str = "th") -> str:
    f = find(of_office(office), reminder.festival)
    name = reminder.festival if f is None else (f.name_th if lang == "th" else f.name_en)
    return f"{name} {int(reminder.label) + 543}"


def upcoming(s: Session, office_id: int) -> list[Reminder]:
    """The office's festival reminders, soonest first (what the console lists)."""
    return list(s.scalars(select(Reminder).where(Reminder.office_id == office_id, Reminder.festival.is_not(None))
                          .order_by(Reminder.send_at, Reminder.id)))


def date_range_note(f: Festival, lang: str = "th") -> str:
    """"22 ธ.ค. (10 วันก่อน 1 ม.ค.)" — for lists."""
    if lang == "th":
        return f"{day_text(f.send)} ({f.days_before} วันก่อน {day_text(f.day)})"
    return f"{day_text(f.send, 'en')} ({f.days_before} days before {day_text(f.day, 'en')})"

