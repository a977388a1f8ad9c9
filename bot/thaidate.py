"""Dates as Thai people read them: Buddhist Era, Asia/Bangkok, e.g. "30 มิ.ย. 2569 14:05"."""

from __future__ import annotations

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
