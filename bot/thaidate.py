"""Dates as Thai people read them: Buddhist Era, Asia/Bangkok, e.g. "30 มิ.ย. 2569 14:05"."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

BANGKOK = ZoneInfo("Asia/Bangkok")
MONTHS_TH = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.")
BE_OFFSET = 543


def be_date(d: date | datetime, lang: str = "th") -> str:
    if isinstance(d, datetime):
        d = d.astimezone(BANGKOK).date() if d.tzinfo else d.date()
    if lang == "en":
        return f"{d.day} {d.strftime('%b')} {d.year + BE_OFFSET} BE"
    return f"{d.day} {MONTHS_TH[d.month - 1]} {d.year + BE_OFFSET}"


def be_numeric(d: date) -> str:
    """``2026-11-22`` → "22/11/2569": a date to type over in a form, day/month/BE year (``parse_thai_date``
    reads it back)."""
    return f"{d.day}/{d.month}/{d.year + BE_OFFSET}"


def be_datetime(dt: datetime, lang: str = "th") -> str:
    local = dt.astimezone(BANGKOK) if dt.tzinfo else dt
    return f"{be_date(local, lang)} {local:%H:%M}"


def parse_ce_date(text: str | None) -> date | None:
    """A date people type as YYYY-MM-DD (CE), Thai digits accepted; None if it is not one."""
    from handlers.text import thai_digits_to_arabic

    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(thai_digits_to_arabic(text.strip()))
    except ValueError:
        return None


def parse_typed_date(text: str | None) -> date | None:
    """A whole date an officer types for a campaign: ``YYYY-MM-DD`` or ``D/M/YYYY`` (or with a month's name),
    in the Common or the Buddhist Era (a year from 2400 is BE: 2569-11-01 is 1 Nov 2026), Thai digits
    accepted. None if it is not one, or if it has no year ("15/11": a campaign needs a whole date)."""
    from handlers.text import thai_digits_to_arabic

    if not text or not text.strip():
        return None
    typed = thai_digits_to_arabic(text.strip())
    d = parse_thai_date(typed, date(2000, 1, 1))
    # A day without a year is read as the latest such day: two far-apart "todays" tell it apart.
    return d if d is not None and d == parse_thai_date(typed, date(2100, 1, 1)) else None


_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY = re.compile(r"(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4}|\d{2})")
_DM = re.compile(r"(\d{1,2})\s*/\s*(\d{1,2})")

# Month names as typed, dots and spaces removed: full, spoken (no -คม/-ยน/-พันธ์), abbreviated, with the
# commonest misspellings (พฤษจิกายน, กรกฏาคม); English full and short.
_FULL_TH = ("มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน", "กรกฎาคม", "สิงหาคม", "กันยายน",
            "ตุลาคม", "พฤศจิกายน", "ธันวาคม")
_SPOKEN_TH = ("มกรา", "กุมภา", "มีนา", "เมษา", "พฤษภา", "มิถุนา", "กรกฎา", "สิงหา", "กันยา", "ตุลา", "พฤศจิกา",
              "ธันวา")
_MONTH_NAMES = {
    **{name: i for i, name in enumerate(_FULL_TH, 1)},
    **{name: i for i, name in enumerate(_SPOKEN_TH, 1)},
    **{abbr.replace(".", ""): i for i, abbr in enumerate(MONTHS_TH, 1)},
    "กุมภาพันธ": 2, "กรกฏาคม": 7, "กรกฏา": 7, "พฤษจิกายน": 11, "พฤษจิกา": 11,
    **{name: i for i, name in enumerate(("january", "february", "march", "april", "may", "june", "july",
                                          "august", "september", "october", "november", "december"), 1)},
    **{name: i for i, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                          "nov", "dec"), 1)},
    "sept": 9,
}
_ERA = r"(?:พ\.?\s*ศ\.?|ค\.?\s*ศ\.?|b\.?e\.?|c\.?e\.?|a\.?d\.?)"
_MONTH = r"([\u0e01-\u0e4e.]+?|[a-z]+\.?)"
_YEAR = rf"(?:\s*[,/-]?\s*{_ERA}?\s*(\d{{4}}|\d{{2}})(?:\s*{_ERA})?)?"
_DAY_MONTH = re.compile(rf"(\d{{1,2}})(?:st|nd|rd|th)?\s*[/-]?\s*{_MONTH}{_YEAR}")
_MONTH_DAY = re.compile(rf"([a-z]+\.?)\s*(\d{{1,2}})(?:st|nd|rd|th)?{_YEAR}")
_LEAD = re.compile(r"^(?:เมื่อวันที่|เมื่อ|วันที่|ได้รับวันที่|on|the)\s*")
_RELATIVE = {"วันนี้": 0, "today": 0, "เมื่อวาน": 1, "เมื่อวานนี้": 1, "วานนี้": 1, "yesterday": 1,
             "เมื่อวานซืน": 2, "วานซืน": 2, "เมื่อวานซืนนี้": 2, "the day before yesterday": 2,
             # the future too, so that the caller can say "not yet" rather than "not understood"
             "พรุ่งนี้": -1, "tomorrow": -1}
_DAYS_AGO = re.compile(r"(\d{1,2})\s*(?:วัน(?:ก่อน|ที่แล้ว)|days? ago)")


def _month(name: str) -> int | None:
    return _MONTH_NAMES.get(name.replace(".", "").replace(" ", ""))


def _year(two_or_four: str) -> int:
    year = int(two_or_four)
    if year < 100:
        year += 2500 if year > 60 else 2000
    return year


def _latest(month: int, day: int, today: date) -> date | None:
    """The most recent ``day``/``month`` that is not after ``today`` (29 Feb: the last leap year)."""
    for year in range(today.year, today.year - 8, -1):
        try:
            d = date(year, month, day)
        except ValueError:
            continue
        if d <= today:
            return d
    return None


def parse_thai_date(text: str | None, today: date | None = None, *, relative: bool = False) -> date | None:
    """A day as Thai people type it; None if it is not one. Arabic or Thai digits, Buddhist or Common Era:

    * ``D/M/YYYY`` (also ``.`` or ``-``) and ``YYYY-MM-DD``;
    * a month's name, Thai (มกราคม, มกรา, ม.ค., มค) or English (January, Jan): "15 พ.ย. 69",
      "15 พฤศจิกายน 2569", "15 Nov 2026", "Nov 15, 2026", with or without พ.ศ./ค.ศ.;
    * no year ("15 พ.ย.", "Nov 15", "15/11"): the latest such day that is not after ``today``
      (Bangkok's today unless given);
    * with ``relative``: วันนี้/เมื่อวาน/วานนี้/เมื่อวานซืน/พรุ่งนี้, today/yesterday/tomorrow, "3 วันก่อน", "3 days ago".

    Years from 2400 are BE (2569 → 2026); two-digit years over 60 are BE ("69" → 2569), others CE ("26" →
    2026). Relative words are asked for: a complaint keeps "เมื่อวาน" as the person's own words."""
    from handlers.text import normalize

    t = normalize(text or "").rstrip(" !?")
    if today is None:
        today = datetime.now(BANGKOK).date()
    if relative:
        if t in _RELATIVE:
            return today - timedelta(days=_RELATIVE[t])
        if m := _DAYS_AGO.fullmatch(t):
            return today - timedelta(days=int(m.group(1)))
    t = _LEAD.sub("", t)
    month: int | None
    if m := _ISO.fullmatch(t):
        year, month, day = (int(x) for x in m.groups())
    elif m := _DMY.fullmatch(t):
        day, month, year = int(m.group(1)), int(m.group(2)), _year(m.group(3))
    elif m := _DM.fullmatch(t):
        day, month, year = int(m.group(1)), int(m.group(2)), None
    elif (m := _DAY_MONTH.fullmatch(t)) and _month(m.group(2)):
        day, month, year = int(m.group(1)), _month(m.group(2)), _year(m.group(3)) if m.group(3) else None
    elif (m := _MONTH_DAY.fullmatch(t)) and _month(m.group(1)):
        month, day, year = _month(m.group(1)), int(m.group(2)), _year(m.group(3)) if m.group(3) else None
    else:
        return None
    if month is None or not 1 <= month <= 12:
        return None
    if year is None:
        return _latest(month, day, today)
    if year >= 2400:
        year -= 543
    if not 1990 <= year <= 2200:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None
