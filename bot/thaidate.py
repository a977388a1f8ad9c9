"""Dates as Thai people read them: Buddhist Era, Asia/Bangkok, e.g. "30 มิ.ย. 2569 14:05"."""

from __future__ import annotations

import re
from datetime import date, datetime
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


_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY = re.compile(r"(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4}|\d{2})")


def parse_thai_date(text: str | None) -> date | None:
    """A day as Thai people type it: ``D/M/YYYY`` (also ``.`` or ``-``, two-digit years) or
    ``YYYY-MM-DD``, in the Buddhist or Common Era, Arabic or Thai digits; None if it is not one.
    Years from 2400 are BE (2569 → 2026); two-digit years over 60 are BE ("69" → 2569)."""
    from handlers.text import thai_digits_to_arabic

    t = thai_digits_to_arabic(text or "").strip()
    if m := _ISO.fullmatch(t):
        year, month, day = (int(x) for x in m.groups())
    elif m := _DMY.fullmatch(t):
        day, month, year = (int(x) for x in m.groups())
        if year < 100:
            year += 2500 if year > 60 else 2000
    else:
        return None
    if year >= 2400:
        year -= 543
    if not 1990 <= year <= 2200:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None
