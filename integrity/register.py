"""The gift register for the 6- and 12-month reports (ศปท.กทม.): the reports of a period, the
periods of the Thai fiscal year, and the register as an xlsx workbook with Thai headers and
Buddhist-Era dates. No Flask, no LINE: the console page and ``itabot gifts export`` share it.

A report belongs to the period its gift was received in (``received_on``); a report without that
date (none the LINE flow files) counts by the day it was filed, in Bangkok.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from bot.thaidate import BANGKOK, BE_OFFSET, be_date, be_datetime
from bot.xlsx import Sheet
from models import GiftReport, Office, StaffMember, utcnow
from surveys.campaigns import fiscal_year_be

# What people gave and what was done, as the register names them (Thai, English).
GIVER_LABELS: dict[str, tuple[str, str]] = {
    "relative": ("ญาติ", "Relative"),
    "served": ("ผู้มารับบริการ", "Someone served"),
    "contractor": ("ผู้รับเหมา/ผู้เสนอราคา/คู่สัญญา", "Contractor or bidder"),
    "colleague": ("เพื่อนร่วมงาน/ผู้บังคับบัญชา", "Colleague or superior"),
    "other": ("บุคคลอื่น", "Someone else"),
}
ACTION_LABELS: dict[str, tuple[str, str]] = {
    "declined": ("ปฏิเสธไม่รับ", "Declined"),
    "returned": ("ส่งคืนผู้ให้", "Returned to the giver"),
    "handed_over": ("ส่งมอบให้หน่วยงาน", "Handed over to the office"),
    "kept_reported": ("รับไว้และรายงานผู้บังคับบัญชา", "Kept and reported"),
}
TITLE_TH = "ทะเบียนรายงานการรับของขวัญและประโยชน์อื่นใด"
TITLE_EN = "Register of gifts and other benefits reported"
HEADERS_TH = ("ลำดับ", "เลขอ้างอิง", "วันที่ได้รับ", "ผู้ให้", "สิ่งที่ได้รับ", "มูลค่า (บาท)", "การดำเนินการ",
              "ผู้รายงาน", "หน่วยงาน", "วันที่รายงาน")


def label(table: dict[str, tuple[str, str]], key: str | None, lang: str = "th") -> str:
    pair = table.get(key or "")
    if pair is None:
        return key or ""
    return pair[0] if lang == "th" else pair[1]


# -- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    fiscal_year: int  # BE
    months: int  # 6 (1 Oct – 31 Mar) or 12 (1 Oct – 30 Sep)
    start: date
    end: date

    @property
    def key(self) -> str:
        return f"{self.fiscal_year}-{self.months}"


def period(fiscal_year: int, months: int) -> Period:
    if months not in (6, 12):
        raise ValueError("a reporting period is 6 or 12 months")
    first = date(fiscal_year - BE_OFFSET - 1, 10, 1)
    last = date(first.year + 1, 3, 31) if months == 6 else date(first.year + 1, 9, 30)
    return Period(fiscal_year, months, first, last)


def reporting_periods(today: date) -> list[Period]:
    """The 6- and 12-month periods of this fiscal year and the last one, newest first."""
    fy = fiscal_year_be(today)
    return [period(fy, 12), period(fy, 6), period(fy - 1, 12), period(fy - 1, 6)]


# -- the reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    report: GiftReport
    reporter: str | None  # the member of staff's name, when the report is linked to one
    office: str


def reports(s: Session, office_ids: list[int], start: date, end: date) -> list[Row]:
    """The reports of these offices for gifts received from ``start`` to ``end`` (both included)."""
    since = datetime.combine(start, time(0), BANGKOK)
    until = datetime.combine(end + timedelta(days=1), time(0), BANGKOK)
    in_period = or_(
        GiftReport.received_on.between(start, end),
        and_(GiftReport.received_on.is_(None), GiftReport.created_at >= since, GiftReport.created_at < until),
    )
    stmt = (
        select(GiftReport, StaffMember.name, Office.name)
        .outerjoin(StaffMember, StaffMember.id == GiftReport.staff_member_id)
        .join(Office, Office.id == GiftReport.office_id)
        .where(GiftReport.office_id.in_(office_ids), in_period)
        .order_by(GiftReport.received_on, GiftReport.created_at, GiftReport.id)
    )
    return [Row(report, reporter, office) for report, reporter, office in s.execute(stmt).all()]


def to_xlsx(rows: list[Row], start: date, end: date, office_names: list[str], now: datetime | None = None) -> bytes:
    """One A4 landscape sheet: the title, the offices and the period in the Buddhist Era, then one
    row per report with Thai headers, dates as Thai people read them, and the total value."""
    sh = Sheet("ทะเบียนของขวัญ", TITLE_TH)
    put = sh.put
    width = len(HEADERS_TH)

    def line(row: int, value, f) -> None:
        sh.line(row, value, f, last_col=width)

    line(1, TITLE_TH, sh.title)
    line(2, TITLE_EN, sh.bold)
    line(3, "หน่วยงาน: " + ", ".join(office_names), sh.font)
    line(4, f"ช่วงวันที่ได้รับ: {be_date(start)} – {be_date(end)}", sh.font)
    line(5, f"จัดทำเมื่อ: {be_datetime(now or utcnow())} น.", sh.subtle)
    r = 7
    for col, head in enumerate(HEADERS_TH, start=1):
        put(r, col, head, sh.bold, sh.head_fill, border=True)
    r += 1
    total = 0
    for n, row in enumerate(rows, start=1):
        g = row.report
        value = g.value_baht
        total += value or 0
        cells = (n, g.reference, be_date(g.received_on) if g.received_on else "ไม่ระบุ",
                 label(GIVER_LABELS, g.giver_type), g.item, value if value is not None else "ไม่ทราบ",
                 label(ACTION_LABELS, g.action), row.reporter or "ไม่ระบุ", row.office, be_date(g.created_at))
        for col, value_ in enumerate(cells, start=1):
            put(r, col, value_, fmt="#,##0" if col == 6 and isinstance(value_, int) else None, border=True)
        r += 1
    put(r, 5, "รวม", sh.bold, border=True)
    put(r, 6, total, sh.bold, fmt="#,##0", border=True)
    put(r, 7, f"{len(rows):,} รายการ", sh.bold, border=True)
    r += 2
    line(r, "มูลค่าตามที่ผู้รายงานประมาณ; \"ไม่ทราบ\" ไม่นับรวมในยอดรวม", sh.subtle)
    line(r + 1, "Values as estimated by the person reporting; unknown values are not in the total.", sh.subtle)
    return sh.finish((7, 13, 14, 20, 32, 12, 22, 24, 24, 14), landscape=True, title_rows="7:7", freeze="A8")
