"""Statistics of complaints for publication (OIT items O17/O31) and for the console's chart.

Everything here is a count or a duration over many cases: no complaint text, no names, no
reporter's identity, not even the officers' case references. The query reads only the columns a
count needs (never ``description``), so no content can slip into an export.

Periods are Asia/Bangkok calendar days (``created_at`` is stored in UTC); spam is left out and
counted apart. Time to first action and to close are measured in days, and set against each
office's own limits (``cases.settings_for``: by default 15 days to a first action, 60 to close).
"""

from __future__ import annotations

import calendar
import csv
import io
import re
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.thaidate import BANGKOK, BE_OFFSET, be_date, parse_thai_date
from bot.xlsx import Sheet
from complaints import cases, catalog
from handlers.text import thai_digits_to_arabic
from models import Complaint, Office, utcnow
from models.complaint import OPEN_STATUSES, OUTCOMES, REFERRED_TO, STATUSES

# How a case came in (only LINE for now; the console may add others).
CHANNELS: dict[str, tuple[str, str]] = {
    "line": ("ไลน์ (LINE Official Account)", "LINE Official Account"),
    "console": ("บันทึกโดยเจ้าหน้าที่", "Entered by an officer"),
    "web": ("เว็บไซต์", "Website"),
}
SECONDS_PER_DAY = 86400.0


# -- parsing periods -----------------------------------------------------------------------------


def _ce_year(year: int) -> int:
    """A year as typed: 2400 and later is the Buddhist Era (2569 → 2026)."""
    year = year - BE_OFFSET if year >= 2400 else year
    if not 1990 <= year <= 2200:
        raise ValueError(f"{year} is not a plausible year")
    return year


def month_range(text: str) -> tuple[date, date]:
    """The first and last day of a month typed as ``YYYY-MM`` (CE or BE: 2026-11 or 2569-11; also
    ``MM/YYYY``); Thai digits accepted. ValueError otherwise."""
    t = thai_digits_to_arabic((text or "").strip())
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})", t)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
    else:
        m = re.fullmatch(r"(\d{1,2})[-/.](\d{4})", t)
        if not m:
            raise ValueError(f"{text!r} is not a month like 2026-11 or 2569-11")
        month, year = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        raise ValueError(f"{text!r}: the month must be 01–12")
    year = _ce_year(year)
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def parse_day(text: str) -> date:
    """A day typed as ``YYYY-MM-DD`` or ``D/M/YYYY``, CE or BE (2569-11-30, 30/11/2569), Thai
    digits accepted (``bot.thaidate.parse_thai_date``). ValueError otherwise."""
    day = parse_thai_date(text)
    if day is None:
        raise ValueError(f"{text!r} is not a day like 2026-11-30 or 30/11/2569")
    return day


def _utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in Bangkok, as aware datetimes."""
    return (datetime.combine(start, time(0), BANGKOK),
            datetime.combine(end + timedelta(days=1), time(0), BANGKOK))


# -- the summary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: str
    th: str
    en: str
    count: int


@dataclass(frozen=True)
class Timing:
    """How long cases waited for something (a first action, or being closed)."""

    measured: int  # cases where it has happened
    median_days: float | None
    mean_days: float | None
    within: int  # of those, within the office's limit
    late: int  # of those, over the limit
    pending: int  # cases where it has not happened yet
    pending_late: int  # of those, already past the limit at the time of the export
    limits: tuple[int, ...]  # the limits in days (one value when every office has the same)


@dataclass(frozen=True)
class Summary:
    offices: tuple[str, ...]
    start: date
    end: date
    generated_at: datetime
    total: int  # cases in the period, spam left out
    spam: int  # cases marked as spam in the period (not counted anywhere else)
    by_category: tuple[Row, ...]
    by_channel: tuple[Row, ...]
    by_status: tuple[Row, ...]
    by_outcome: tuple[Row, ...]
    by_referral: tuple[Row, ...]
    first_action: Timing
    close: Timing


def _rows(labels: list[tuple[str, str, str]], counts: dict[str, int], keep_zero: bool = True) -> tuple[Row, ...]:
    out = [Row(k, th, en, counts.get(k, 0)) for k, th, en in labels if keep_zero or counts.get(k)]
    known = {k for k, _, _ in labels}
    out += [Row(k, k, k, n) for k, n in sorted(counts.items()) if k not in known and n]
    return tuple(out)


def _table(table: dict[str, tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [(k, th, en) for k, (th, en) in table.items()]


def _timing(durations: list[tuple[float, int]], pending: list[tuple[float, int]], limits: set[int]) -> Timing:
    """``durations``: (days, limit) of cases where it happened; ``pending``: (days so far, limit)."""
    days = [d for d, _ in durations]
    within = sum(1 for d, lim in durations if d <= lim)
    return Timing(
        measured=len(days),
        median_days=round(statistics.median(days), 1) if days else None,
        mean_days=round(statistics.fmean(days), 1) if days else None,
        within=within,
        late=len(days) - within,
        pending=len(pending),
        pending_late=sum(1 for d, lim in pending if d > lim),
        limits=tuple(sorted(limits)),
    )


def summary(s: Session, office_ids: list[int], start: date, end: date, now: datetime | None = None) -> Summary:
    """Counts and durations of the cases created from ``start`` to ``end`` (Bangkok days, both
    included) at these offices. ``now`` (default: the clock) is when waiting cases are measured."""
    if end < start:
        raise ValueError("the period ends before it starts")
    now = now or utcnow()
    lo, hi = _utc_bounds(start, end)
    names = tuple(s.scalars(select(Office.name).where(Office.id.in_(office_ids)).order_by(Office.id)))
    rules = {oid: cases.settings_for(s, oid) for oid in office_ids}
    # Only the columns a count needs: the text of a case is never read here.
    rows = s.execute(
        select(Complaint.office_id, Complaint.category, Complaint.channel, Complaint.status, Complaint.outcome,
               Complaint.referred_to, Complaint.spam, Complaint.created_at, Complaint.first_action_at,
               Complaint.closed_at)
        .where(Complaint.office_id.in_(office_ids), Complaint.created_at >= lo, Complaint.created_at < hi)
    ).all()
    spam = sum(1 for r in rows if r.spam)
    rows = [r for r in rows if not r.spam]

    def count(attr: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in rows:
            key = getattr(r, attr)
            if key is not None:
                out[key] = out.get(key, 0) + 1
        return out

    first_done, first_wait, close_done, close_wait = [], [], [], []
    for r in rows:
        rule = rules[r.office_id]
        if r.first_action_at is not None:
            first_done.append(((r.first_action_at - r.created_at).total_seconds() / SECONDS_PER_DAY,
                               rule.first_action_days))
        else:
            first_wait.append(((now - r.created_at).total_seconds() / SECONDS_PER_DAY, rule.first_action_days))
        if r.status not in OPEN_STATUSES and r.closed_at is not None:
            close_done.append(((r.closed_at - r.created_at).total_seconds() / SECONDS_PER_DAY, rule.conclude_days))
        else:
            close_wait.append(((now - r.created_at).total_seconds() / SECONDS_PER_DAY, rule.conclude_days))
    statuses = {k: catalog.STATUSES.get(k, (k, k)) for k in STATUSES}
    outcomes = {k: catalog.OUTCOMES.get(k, (k, k)) for k in OUTCOMES}
    referrals = {k: catalog.REFERRALS.get(k, (k, k)) for k in REFERRED_TO}
    used_channels = count("channel")
    channel_labels = [(k, th, en) for k, (th, en) in CHANNELS.items() if k == "line" or used_channels.get(k)]
    return Summary(
        offices=names,
        start=start,
        end=end,
        generated_at=now,
        total=len(rows),
        spam=spam,
        by_category=_rows(list(catalog.CATEGORIES), count("category")),
        by_channel=_rows(channel_labels, used_channels),
        by_status=_rows(_table(statuses), count("status")),
        by_outcome=_rows(_table(outcomes), count("outcome")),
        by_referral=_rows(_table(referrals), count("referred_to")),
        first_action=_timing(first_done, first_wait, {r.first_action_days for r in rules.values()}),
        close=_timing(close_done, close_wait, {r.conclude_days for r in rules.values()}),
    )


# -- what the exports say ------------------------------------------------------------------------

TITLE_TH = "สถิติเรื่องร้องเรียนการทุจริตและประพฤติมิชอบ"
TITLE_EN = "Statistics of complaints of corruption and misconduct"
NO_PERSONAL_TH = "ไม่มีข้อมูลส่วนบุคคล ไม่มีเนื้อหาของเรื่องร้องเรียน และไม่นับเรื่องที่เจ้าหน้าที่ระบุว่าเป็นสแปม"
NO_PERSONAL_EN = "No personal data and no complaint text; cases marked as spam are not counted"

# (title Thai, title English, Summary attribute, item header Thai, item header English)
COUNT_TABLES = (
    ("จำนวนเรื่องตามประเภท", "Cases by category", "by_category", "ประเภทเรื่อง", "Category"),
    ("จำนวนเรื่องตามช่องทางที่รับ", "Cases by channel", "by_channel", "ช่องทาง", "Channel"),
    ("จำนวนเรื่องตามสถานะปัจจุบัน", "Cases by current status", "by_status", "สถานะ", "Status"),
    ("ผลการพิจารณา (เรื่องที่ได้ข้อยุติ)", "Outcome of concluded cases", "by_outcome", "ผล", "Outcome"),
    ("ส่งต่อหน่วยงานที่มีอำนาจ", "Cases referred, by body", "by_referral", "หน่วยงาน", "Referred to"),
)
TIMING_TABLES = (
    ("ระยะเวลาถึงการดำเนินการครั้งแรก", "Time to first action", "first_action",
     "ดำเนินการแล้ว", "Cases acted on", "ยังไม่ได้ดำเนินการ", "Not yet acted on"),
    ("ระยะเวลาถึงการปิดเรื่อง", "Time to close", "close",
     "ปิดแล้ว", "Cases closed", "ยังไม่ปิด", "Still open"),
)


def period_text(sm: Summary, lang: str = "th") -> str:
    return f"{be_date(sm.start, lang)} – {be_date(sm.end, lang)}"


def _limits_text(limits: tuple[int, ...], lang: str) -> str:
    if len(limits) == 1:
        return f"{limits[0]} วัน" if lang == "th" else f"{limits[0]} days"
    return "ตามเกณฑ์ของแต่ละหน่วยงาน" if lang == "th" else "each office's own limit"


def _timing_lines(t: Timing, done_th: str, done_en: str, wait_th: str, wait_en: str
                  ) -> list[tuple[str, str, float | int | None, str, str]]:
    """(item Thai, item English, value, unit Thai, unit English) lines of a timing table."""
    lim_th, lim_en = _limits_text(t.limits, "th"), _limits_text(t.limits, "en")
    return [
        (f"จำนวนเรื่องที่{done_th}", done_en, t.measured, "เรื่อง", "cases"),
        ("ค่ามัธยฐาน", "Median", t.median_days, "วัน", "days"),
        ("ค่าเฉลี่ย", "Mean", t.mean_days, "วัน", "days"),
        (f"ภายในกำหนด ({lim_th})", f"Within the limit ({lim_en})", t.within, "เรื่อง", "cases"),
        (f"เกินกำหนด ({lim_th})", f"Over the limit ({lim_en})", t.late, "เรื่อง", "cases"),
        (wait_th, wait_en, t.pending, "เรื่อง", "cases"),
        (f"{wait_th} และเลยกำหนดแล้ว", f"{wait_en}, past the limit", t.pending_late, "เรื่อง", "cases"),
    ]


def _meta_lines(sm: Summary) -> list[tuple[str, str, str | int]]:
    offices = ", ".join(sm.offices) or "-"
    return [
        ("หน่วยงาน", "Office", offices),
        ("ช่วงเวลา (วันที่รับเรื่อง)", "Period (date received)", f"{period_text(sm)} ({period_text(sm, 'en')})"),
        ("จัดทำเมื่อ", "Prepared on", be_date(sm.generated_at)),
        ("จำนวนเรื่องทั้งหมด", "Total cases", sm.total),
        ("เรื่องที่ระบุว่าเป็นสแปม (ไม่นับรวม)", "Marked as spam (not counted)", sm.spam),
    ]


# -- CSV --------------------------------------------------------------------------------------------

CSV_HEADER = ("ตาราง", "รายการ", "ค่า", "หน่วย", "Table", "Item", "Unit")


def to_csv(sm: Summary) -> str:
    """One long table (Thai columns first, English after), UTF-8 with a byte-order mark so that
    Excel opens the Thai correctly."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_HEADER)
    for th, en, value in _meta_lines(sm):
        w.writerow(("ข้อมูลรายงาน", th, value, "", "Report", en, ""))
    for title_th, title_en, attr, _, _ in COUNT_TABLES:
        for row in getattr(sm, attr):
            w.writerow((title_th, row.th, row.count, "เรื่อง", title_en, row.en, "cases"))
    for title_th, title_en, attr, done_th, done_en, wait_th, wait_en in TIMING_TABLES:
        for th, en, value, unit_th, unit_en in _timing_lines(getattr(sm, attr), done_th, done_en, wait_th, wait_en):
            shown = "" if value is None else (f"{value:.1f}" if isinstance(value, float) else value)
            w.writerow((title_th, th, shown, unit_th, title_en, en, unit_en))
    return "\ufeff" + out.getvalue()


# -- Excel ------------------------------------------------------------------------------------------


def to_xlsx(sm: Summary) -> bytes:
    """One sheet, ready to print on A4 and to publish: a title block with the office and the period
    in the Buddhist Era, then each table with Thai headers and English beside them, in Sarabun."""
    sh = Sheet("สถิติ (Statistics)", TITLE_TH)
    put = sh.put
    r = 1
    put(r, 1, TITLE_TH, sh.title)
    r += 1
    put(r, 1, TITLE_EN, sh.bold)
    r += 2
    for th, en, value in _meta_lines(sm):
        put(r, 1, th, sh.bold)
        put(r, 2, en, sh.bold)
        put(r, 3, value, fmt="#,##0" if isinstance(value, int) else None)
        sh.ws.merge_cells(start_row=r, start_column=3, end_row=r, end_column=4)
        r += 1
    sh.line(r, NO_PERSONAL_TH, sh.subtle, last_col=4)
    sh.line(r + 1, NO_PERSONAL_EN, sh.subtle, last_col=4)
    r += 3

    for title_th, title_en, attr, item_th, item_en in COUNT_TABLES:
        sh.line(r, f"{title_th} / {title_en}", sh.bold, sh.section_fill, last_col=4)
        r += 1
        for col, head in enumerate((item_th, item_en, "จำนวน (เรื่อง) / Cases", "ร้อยละ / Per cent"), start=1):
            put(r, col, head, sh.bold, sh.head_fill, border=True)
        r += 1
        for row in getattr(sm, attr):
            put(r, 1, row.th, border=True)
            put(r, 2, row.en, border=True)
            put(r, 3, row.count, fmt="#,##0", border=True)
            base = sm.total if attr in ("by_category", "by_channel", "by_status") else None
            if base is None:  # outcomes and referrals: a share of the cases that had one
                base = sum(x.count for x in getattr(sm, attr))
            put(r, 4, (row.count / base) if base else None, fmt="0.0%", border=True)
            r += 1
        r += 1

    for title_th, title_en, attr, done_th, done_en, wait_th, wait_en in TIMING_TABLES:
        sh.line(r, f"{title_th} / {title_en}", sh.bold, sh.section_fill, last_col=4)
        r += 1
        for col, head in enumerate(("รายการ", "Measure", "ค่า / Value", "หน่วย / Unit"), start=1):
            put(r, col, head, sh.bold, sh.head_fill, border=True)
        r += 1
        for th, en, value, unit_th, unit_en in _timing_lines(getattr(sm, attr), done_th, done_en, wait_th, wait_en):
            put(r, 1, th, border=True)
            put(r, 2, en, border=True)
            put(r, 3, "-" if value is None else value, fmt="0.0" if isinstance(value, float) else "#,##0", border=True)
            put(r, 4, f"{unit_th} / {unit_en}", border=True)
            r += 1
        r += 1

    sh.line(r, "ระยะเวลานับเป็นวัน ตั้งแต่วันเวลาที่รับเรื่อง", sh.subtle, last_col=4)
    sh.line(r + 1, "Durations in days, from the moment a case was received", sh.subtle, last_col=4)
    return sh.finish((46, 40, 24, 18), landscape=False, title_rows="1:2")
