"""The lists a complaint is described with, Thai and English side by side (DOMAIN.md §3)."""

from __future__ import annotations

# (id, Thai, English) — the seeds' categories; an office may offer a subset (ComplaintSettings).
CATEGORIES: list[tuple[str, str, str]] = [
    ("bribe", "เรียกรับเงิน/สินบน หรือเก็บเงินเกินอัตรา", "Bribe or extra-fee demand"),
    ("procurement", "จัดซื้อจัดจ้างเอื้อประโยชน์", "Procurement favouritism"),
    ("false_claim", "เบิกจ่ายเท็จ (ล่วงเวลา เดินทาง วัสดุ)", "False claims (overtime, travel, materials)"),
    ("property", "ใช้ทรัพย์สินราชการส่วนตัว", "Misuse of government property"),
    ("superior", "ผู้บังคับบัญชาสั่งให้ทำผิดหรือใช้งานส่วนตัว", "Superior orders wrongdoing or personal errands"),
    ("personnel", "เลือกปฏิบัติในการบริหารงานบุคคล", "Favouritism in personnel matters"),
    ("service", "ให้บริการไม่เท่าเทียม/ลัดคิว", "Unequal service or queue-jumping"),
    ("other", "การกระทำผิดอื่น ๆ ของเจ้าหน้าที่", "Other misconduct by officials"),
]
CATEGORY_IDS = [c[0] for c in CATEGORIES]

# Where it happened: the ten divisions of a district office, then the service areas.
PLACES: list[tuple[str, str]] = [
    ("ฝ่ายปกครอง", "Administration"),
    ("ฝ่ายทะเบียน", "Registration"),
    ("ฝ่ายโยธา", "Public Works"),
    ("ฝ่ายสิ่งแวดล้อมและสุขาภิบาล", "Environment and Sanitation"),
    ("ฝ่ายรายได้", "Revenue"),
    ("ฝ่ายรักษาความสะอาดและสวนสาธารณะ", "Cleansing and Parks"),
    ("ฝ่ายการศึกษา", "Education"),
    ("ฝ่ายการคลัง", "Finance"),
    ("ฝ่ายเทศกิจ", "City Law Enforcement"),
    ("ฝ่ายพัฒนาชุมชนและสวัสดิการสังคม", "Community Development and Social Welfare"),
]

STATUSES: dict[str, tuple[str, str]] = {
    "received": ("รับเรื่องแล้ว", "Received"),
    "screening": ("กำลังคัดกรอง", "Screening"),
    "investigating": ("กำลังตรวจสอบข้อเท็จจริง", "Investigating"),
    "concluded": ("ได้ข้อยุติแล้ว", "Concluded"),
    "referred": ("ส่งต่อหน่วยงานที่มีอำนาจ", "Referred"),
    "closed": ("ปิดเรื่อง", "Closed"),
}
OUTCOMES: dict[str, tuple[str, str]] = {
    "substantiated": ("มีมูล", "Substantiated"),
    "unsubstantiated": ("ไม่มีมูล", "Unsubstantiated"),
}
REFERRALS: dict[str, tuple[str, str]] = {
    "bma_acc": ("ศูนย์ปฏิบัติการต่อต้านการทุจริต กทม. (ศปท.กทม.)", "BMA Anti-Corruption Centre"),
    "nacc": ("สำนักงาน ป.ป.ช.", "NACC"),
    "police": ("สถานีตำรวจ", "Police"),
}
IDENTITIES: dict[str, tuple[str, str]] = {
    "anonymous": ("ไม่เปิดเผยตัวตน", "Anonymous"),
    "confidential": ("เปิดเผยเฉพาะเจ้าหน้าที่ (ปกปิด)", "Confidential"),
    "named": ("เปิดเผยชื่อ", "Named"),
}


def label(table: dict[str, tuple[str, str]], key: str | None, lang: str = "th") -> str:
    if key is None or key not in table:
        return "-" if key is None else key
    return table[key][0 if lang == "th" else 1]


def place_label(place: str, lang: str = "th") -> str:
    """A place as stored (a division's Thai name, or what the person typed), in ``lang``."""
    for th, en in PLACES:
        if place == th:
            return th if lang == "th" else en
    return place


def category_label(cid: str, lang: str = "th") -> str:
    for c in CATEGORIES:
        if c[0] == cid:
            return c[1] if lang == "th" else c[2]
    return cid
