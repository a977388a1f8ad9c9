"""Complaint statistics (exports with no personal data), the retention purge and the officers'
daily digest — as functions, through `itabot complaints …`, and from the workers' scheduler."""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
import zipfile
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from conftest import at_once
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.cli import main
from complaints import cases, catalog, digest, retention, stats
from models import (
    AuditEntry,
    Complaint,
    ComplaintEvidence,
    ComplaintSettings,
    LineGroup,
    OutboxMessage,
    StaffOffice,
    StaffUser,
)

BKK = ZoneInfo("Asia/Bangkok")
SECRET_TEXT = "ผอ.ฝ่ายโยธารับซองขาวหนึ่งหมื่นบาท-XQ7"
NAME = "นางสาวลับเฉพาะ ทดสอบสถิติ"
CONTACT = "089-765-4321"


def bkk(*args) -> datetime:
    return datetime(*args, tzinfo=BKK)


def new_case(s, services, *, office_id=1, identity="anonymous", category="bribe", at: datetime,
             status: str | None = None, acted_after: float | None = None, closed_after: float | None = None,
             outcome=None, referred_to=None, spam=False, text=SECRET_TEXT, files: int = 0) -> Complaint:
    token = secrets.token_hex(8)
    for i in range(files):
        cases.add_draft_evidence(s, office_id, token, None, kind="file", content_type="application/pdf",
                                 data=b"%PDF-1.4 evidence " + bytes([i]), filename=f"e{i}.pdf")
    draft = {"identity": identity, "category": category, "_messages": {"m1": {"text": text}},
             "occurred_on": None, "place": None, "name": NAME if identity != "anonymous" else None,
             "contact": CONTACT if identity != "anonymous" else None, "draft_token": token}
    c = cases.submit(s, office_id, draft, services.cipher, "U" + secrets.token_hex(16)).complaint
    if status is not None:
        cases.change_status(s, c, None, status, outcome=outcome, referred_to=referred_to)
    if spam:
        cases.mark_spam(s, c, None)
    c.created_at = at.astimezone(UTC)
    c.first_action_at = c.created_at + timedelta(days=acted_after) if acted_after is not None else None
    c.closed_at = c.created_at + timedelta(days=closed_after) if closed_after is not None else None
    s.flush()
    return c


@pytest.fixture
def november(services):
    """Cases around November 2026 (Bangkok) at the default office, and one at another office."""
    other = services.offices.add("second", "สำนักงานเขตที่สอง", None, None)
    with services.db.session() as s:
        made = [
            new_case(s, services, at=bkk(2026, 11, 5, 10, 0), status="concluded", outcome="substantiated",
                     acted_after=2, closed_after=20),
            new_case(s, services, identity="confidential", category="procurement", at=bkk(2026, 11, 30, 23, 30),
                     status="referred", referred_to="nacc", acted_after=3, closed_after=70),
            new_case(s, services, identity="named", at=bkk(2026, 11, 1, 0, 10)),  # 31 Oct in UTC
            new_case(s, services, at=bkk(2026, 10, 31, 23, 50)),  # October in Bangkok
            new_case(s, services, at=bkk(2026, 12, 1, 0, 0)),  # December
            new_case(s, services, at=bkk(2026, 11, 10, 9, 0), spam=True),
            new_case(s, services, office_id=other, at=bkk(2026, 11, 10, 9, 0)),
        ]
        refs = [c.reference for c in made]
    return other, refs


# -- periods ---------------------------------------------------------------------------------------


def test_months_and_days_in_ce_be_and_thai_digits():
    nov = (date(2026, 11, 1), date(2026, 11, 30))
    for text in ("2026-11", "2569-11", "๒๕๖๙-๑๑", "11/2569", " 2026-11 "):
        assert stats.month_range(text) == nov
    assert stats.month_range("2569-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert stats.month_range("2028-2") == (date(2028, 2, 1), date(2028, 2, 29))
    for bad in ("2026-13", "2026-00", "november", "", "26-11", "0026-11"):
        with pytest.raises(ValueError):
            stats.month_range(bad)
    for text in ("2026-11-30", "2569-11-30", "30/11/2569", "๓๐/๑๑/๒๕๖๙", "30/11/2026"):
        assert stats.parse_day(text) == date(2026, 11, 30)
    for bad in ("31/11/2569", "2026/11/30", "tomorrow", "30-11"):
        with pytest.raises(ValueError):
            stats.parse_day(bad)


# -- the summary and the exports -----------------------------------------------------------------


def test_summary_counts_bangkok_days_without_spam_or_other_offices(services, november):
    with services.db.Session() as s:
        sm = stats.summary(s, [1], date(2026, 11, 1), date(2026, 11, 30), now=bkk(2027, 3, 1, 12, 0))
    assert sm.total == 3 and sm.spam == 1
    assert sm.offices == ("สำนักงานเขตทดสอบ",)
    by = {r.key: r.count for r in sm.by_category}
    assert by["bribe"] == 2 and by["procurement"] == 1 and sum(by.values()) == 3
    assert [r.key for r in sm.by_category] == catalog.CATEGORY_IDS  # every category, zeros included
    assert {r.key: r.count for r in sm.by_channel} == {"line": 3}
    status = {r.key: r.count for r in sm.by_status}
    assert status == {"received": 1, "screening": 0, "investigating": 0, "concluded": 1, "referred": 1,
                      "closed": 0}
    assert {r.key: r.count for r in sm.by_outcome} == {"substantiated": 1, "unsubstantiated": 0}
    assert {r.key: r.count for r in sm.by_referral} == {"bma_acc": 0, "nacc": 1, "police": 0}
    fa = sm.first_action
    assert (fa.measured, fa.median_days, fa.mean_days, fa.within, fa.late) == (2, 2.5, 2.5, 2, 0)
    assert (fa.pending, fa.pending_late, fa.limits) == (1, 1, (15,))
    cl = sm.close
    assert (cl.measured, cl.median_days, cl.mean_days, cl.within, cl.late) == (2, 45.0, 45.0, 1, 1)
    assert (cl.pending, cl.pending_late, cl.limits) == (1, 1, (60,))
    # The office's own limits decide what is late.
    with services.db.session() as s:
        s.add(ComplaintSettings(office_id=1, first_action_days=2, conclude_days=90, retention_days=365))
    with services.db.Session() as s:
        sm = stats.summary(s, [1], date(2026, 11, 1), date(2026, 11, 30), now=bkk(2027, 3, 1, 12, 0))
    assert (sm.first_action.within, sm.first_action.late, sm.close.within, sm.close.late) == (1, 1, 2, 0)
    with services.db.Session() as s:
        both = stats.summary(s, [1, november[0]], date(2026, 11, 1), date(2026, 11, 30))
        empty = stats.summary(s, [1], date(2025, 1, 1), date(2025, 1, 31))
        with pytest.raises(ValueError):
            stats.summary(s, [1], date(2026, 11, 30), date(2026, 11, 1))
    assert both.total == 4 and len(both.offices) == 2 and both.first_action.limits == (2, 15)
    assert empty.total == 0 and empty.first_action.median_days is None
    stats.to_xlsx(empty), stats.to_csv(empty)  # an empty month exports too


def _forbidden(services, refs) -> list[str]:
    """Everything an export must never contain: texts, names, contacts, references."""
    return [SECRET_TEXT, "ซองขาว", NAME, "ลับเฉพาะ", CONTACT, "0897654321", *refs]


REFERENCE = re.compile(r"\bC-[A-Z2-9]{6}\b")


def test_xlsx_has_the_counts_thai_headers_sarabun_and_no_personal_data(services, november):
    _, refs = november
    with services.db.Session() as s:
        sm = stats.summary(s, [1], date(2026, 11, 1), date(2026, 11, 30), now=bkk(2027, 3, 1))
    data = stats.to_xlsx(sm)
    ws = load_workbook(io.BytesIO(data)).active
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    values = [str(c.value) for c in cells]
    assert all(c.font.name == "Sarabun" for c in cells)
    assert values[0] == stats.TITLE_TH and values[1] == stats.TITLE_EN  # Thai first, English under
    assert any("1 พ.ย. 2569 – 30 พ.ย. 2569" in v for v in values)  # the period in the Buddhist Era
    rows = {str(r[0].value): r for r in ws.iter_rows() if r[0].value is not None}
    bribe_th, bribe_en = catalog.CATEGORIES[0][1], catalog.CATEGORIES[0][2]
    assert rows[bribe_th][1].value == bribe_en and rows[bribe_th][2].value == 2
    assert rows[bribe_th][3].value == pytest.approx(2 / 3)
    assert rows["ประเภทเรื่อง"][1].value == "Category"  # a table's header row, Thai then English
    assert rows["จำนวนเรื่องทั้งหมด"][2].value == 3
    assert rows[catalog.OUTCOMES["substantiated"][0]][2].value == 1
    assert rows[catalog.REFERRALS["nacc"][0]][2].value == 1
    medians = [r[2].value for r in ws.iter_rows() if r[0].value == "ค่ามัธยฐาน"]
    assert medians == [2.5, 45]  # time to first action, then time to close
    for bad in _forbidden(services, refs):
        assert not any(bad in v for v in values), bad
    assert not any(REFERENCE.search(v) for v in values)
    with zipfile.ZipFile(io.BytesIO(data)) as z:  # nor anywhere in the file's parts
        raw = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    for bad in _forbidden(services, refs):
        assert bad not in raw, bad


def test_csv_has_a_bom_thai_headers_the_counts_and_no_personal_data(services, november):
    _, refs = november
    with services.db.Session() as s:
        sm = stats.summary(s, [1], date(2026, 11, 1), date(2026, 11, 30), now=bkk(2027, 3, 1))
    out = stats.to_csv(sm)
    assert out.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(out[1:])))
    assert rows[0] == ["ตาราง", "รายการ", "ค่า", "หน่วย", "Table", "Item", "Unit"]
    table = {(r[0], r[1]): r for r in rows[1:]}
    assert table[("จำนวนเรื่องตามประเภท", catalog.CATEGORIES[0][1])][2] == "2"
    assert table[("จำนวนเรื่องตามประเภท", catalog.CATEGORIES[0][1])][5] == "Bribe or extra-fee demand"
    assert table[("จำนวนเรื่องตามสถานะปัจจุบัน", "ส่งต่อหน่วยงานที่มีอำนาจ")][2] == "1"
    assert table[("ข้อมูลรายงาน", "จำนวนเรื่องทั้งหมด")][2] == "3"
    assert "1 พ.ย. 2569 – 30 พ.ย. 2569" in table[("ข้อมูลรายงาน", "ช่วงเวลา (วันที่รับเรื่อง)")][2]
    assert table[("ระยะเวลาถึงการปิดเรื่อง", "ค่าเฉลี่ย")][2] == "45.0"
    for bad in _forbidden(services, refs):
        assert bad not in out, bad
    assert not REFERENCE.search(out)


# -- `itabot complaints export` ------------------------------------------------------------------


def run(env, *args):
    return CliRunner().invoke(main, ["complaints", *args], env=env)


def test_cli_export_xlsx_and_csv_and_clear_errors(env, services, november, tmp_path):
    xlsx = tmp_path / "nov.xlsx"
    result = run(env, "export", "--month", "๒๕๖๙-๑๑", "--format", "xlsx", "--output", str(xlsx))
    assert result.exit_code == 0, result.output
    assert "3 cases from 2026-11-01 to 2026-11-30" in result.output
    rows = {str(r[0].value): r for r in load_workbook(xlsx).active.iter_rows() if r[0].value is not None}
    assert rows["จำนวนเรื่องทั้งหมด"][2].value == 3
    out_csv = tmp_path / "nov.csv"  # the format from the file name; BE day and ISO day
    result = run(env, "export", "--from", "1/11/2569", "--to", "2026-11-30", "--output", str(out_csv))
    assert result.exit_code == 0, result.output
    raw = out_csv.read_bytes()
    assert raw.startswith("\ufeff".encode()) and "จำนวนเรื่องทั้งหมด,3".encode() in raw
    # Two offices together (a supervisor's view).
    result = run(env, "export", "--month", "2026-11", "--office", "default", "--office", "second",
                 "--format", "csv", "--output", str(out_csv))
    assert result.exit_code == 0 and "4 cases" in result.output
    to_stdout = run(env, "export", "--month", "2026-11", "--format", "csv", "--output", "-")
    assert to_stdout.exit_code == 0 and "ตาราง,รายการ" in to_stdout.output
    with services.db.Session() as s:
        actions = s.scalars(select(AuditEntry.action)).all()
    assert actions.count("complaint.exported_cli") == 5  # every export is audited
    errors = {
        ("--month", "2026-11", "--from", "2026-11-01", "--to", "2026-11-30"): "not both",
        ("--from", "2026-11-01"): "go together",
        (): "give the period",
        ("--month", "2026-13"): "--month",
        ("--from", "2026-11-31", "--to", "2026-12-01"): "--from",
        ("--from", "2026-12-01", "--to", "2026-11-01"): "ends before it starts",
        ("--month", "2026-11", "--office", "nowhere"): "no office",
    }
    for args, message in errors.items():
        fmt = ("--format", "csv") if "--office" not in args else ()
        bad = run(env, "export", *args, *fmt, "--output", str(tmp_path / "x.csv"))
        assert bad.exit_code != 0 and message in bad.output, (args, bad.output)
    bad = run(env, "export", "--month", "2026-11", "--output", str(tmp_path / "x.txt"))
    assert bad.exit_code != 0 and "--format" in bad.output
    bad = run(env, "export", "--month", "2026-11", "--format", "pdf", "--output", str(tmp_path / "x.pdf"))
    assert bad.exit_code != 0 and "pdf" in bad.output
    assert "Thai digits" in run(env, "export", "--help").output


# -- retention -------------------------------------------------------------------------------------


def test_purge_removes_evidence_and_identity_only_after_the_retention_period(env, services, caplog):
    closed = bkk(2026, 1, 10, 9, 0)
    with services.db.session() as s:
        kept = new_case(s, services, identity="confidential", at=closed - timedelta(days=30), status="closed",
                        acted_after=1, closed_after=30, files=2)
        anon = new_case(s, services, at=closed - timedelta(days=5), status="concluded", outcome="unsubstantiated",
                        acted_after=1, closed_after=5, files=1)
        still_open = new_case(s, services, identity="named", at=closed - timedelta(days=900), status="investigating",
                              acted_after=1, files=1)
        ids = (kept.id, anon.id, still_open.id)
        refs = (kept.reference, anon.reference)
        # A draft nobody finished, and one still being written.
        cases.add_draft_evidence(s, 1, "old-draft", None, kind="file", data=b"%PDF-old")
        cases.add_draft_evidence(s, 1, "new-draft", None, kind="file", data=b"%PDF-new")
        s.flush()
        for ev in cases.draft_evidence(s, "old-draft"):
            ev.created_at = datetime(2020, 1, 1, tzinfo=UTC)
        for ev in cases.draft_evidence(s, "new-draft"):
            ev.created_at = bkk(2027, 1, 10, 8, 0)
    caplog.set_level(logging.INFO, logger="itabot.complaints")

    early = run(env, "purge", "--now", "2027-01-09T09:00:00+07:00")  # 364 days after closing
    assert early.exit_code == 0, early.output
    assert "0 cases purged, 1 files of abandoned drafts removed" in early.output
    with services.db.Session() as s:
        assert s.get(Complaint, ids[0]).reporter_enc is not None
        assert s.scalar(select(func.count()).select_from(ComplaintEvidence)) == 5  # 4 of cases + the new draft

    due = run(env, "purge", "--now", "2027-01-10T09:00:01+07:00")  # a year and a second later
    assert due.exit_code == 0, due.output
    lines = due.output.strip().splitlines()
    assert f"{refs[0]}\tevidence removed: 2\tidentity removed: yes" in lines
    assert f"{refs[1]}\tevidence removed: 1\tidentity removed: no" in lines
    assert lines[-1] == "2 cases purged, 0 files of abandoned drafts removed"
    with services.db.Session() as s:
        for cid in ids[:2]:
            c = s.get(Complaint, cid)
            assert c.reporter_enc is None and c.reporter_line_enc is None and c.purged_at is not None
            assert c.description == SECRET_TEXT  # the report itself stays: the policy removes files and identity
        assert s.get(Complaint, ids[2]).reporter_enc is not None  # an open case is never purged
        left = s.scalars(select(ComplaintEvidence.complaint_id)).all()
        assert sorted(left, key=str) == sorted([ids[2], None], key=str)
    logged = [r for r in caplog.records if r.name == "itabot.complaints"]
    assert {getattr(r, "reference", None) for r in logged} >= set(refs)
    assert any(getattr(r, "evidence", None) == 2 and r.identity_removed is True for r in logged)
    everything = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    for bad in (SECRET_TEXT, NAME, CONTACT):
        assert bad not in everything
    assert run(env, "purge", "--now", "2027-01-10T10:00:00+07:00").output.strip() == \
        "0 cases purged, 0 files of abandoned drafts removed"  # nothing twice
    bad = run(env, "purge", "--now", "next year")
    assert bad.exit_code != 0 and "ISO-8601" in bad.output
    bad = run(env, "purge", "--now", "2027-01-10T09:00:00")
    assert bad.exit_code != 0 and "time zone" in bad.output


def test_an_office_keeps_cases_for_its_own_retention_period(services):
    with services.db.session() as s:
        s.add(ComplaintSettings(office_id=1, first_action_days=15, conclude_days=60, retention_days=30))
        c = new_case(s, services, identity="named", at=bkk(2026, 1, 1, 9, 0), status="closed", acted_after=1,
                     closed_after=1, files=1)
        cid = c.id
    assert retention.run_purge(services, bkk(2026, 1, 31, 9, 0)).cases == []
    purged = retention.run_purge(services, bkk(2026, 2, 2, 9, 1))
    assert [(p["evidence"], p["identity"]) for p in purged.cases] == [(1, True)]
    with services.db.Session() as s:
        assert s.get(Complaint, cid).reporter_enc is None


# -- the daily digest -----------------------------------------------------------------------------


def officer(services, office_id: int, line_id: str, email: str) -> None:
    with services.db.session() as s:
        u = StaffUser(email=email, role="complaint_officer", line_user_id_enc=services.cipher.encrypt(line_id))
        s.add(u)
        s.flush()
        s.add(StaffOffice(user_id=u.id, office_id=office_id))


@pytest.fixture
def digest_setup(services):
    other = services.offices.add("quiet", "สำนักงานเขตเงียบ", None, None)
    ids = {"officer": "U" + secrets.token_hex(16), "group": "C" + secrets.token_hex(16),
           "quiet": "U" + secrets.token_hex(16)}
    officer(services, 1, ids["officer"], "officer@example.go.th")
    officer(services, other, ids["quiet"], "quiet@example.go.th")  # an office with no open case
    with services.db.session() as s:
        s.add(LineGroup(office_id=1, group_id=ids["group"], kind="group", active=True, complaint_alerts=True))
        new_case(s, services, at=bkk(2026, 11, 1, 9, 0))  # overdue: no action after 15 days
        new_case(s, services, at=bkk(2026, 11, 19, 9, 0), status="screening", acted_after=1)
        new_case(s, services, at=bkk(2026, 11, 1, 9, 0), status="closed", acted_after=1, closed_after=2)
        new_case(s, services, at=bkk(2026, 11, 1, 9, 0), spam=True)
        new_case(s, services, office_id=other, at=bkk(2026, 11, 1, 9, 0), status="closed", acted_after=1,
                 closed_after=2)
    return other, ids


def outbox(services) -> list[OutboxMessage]:
    with services.db.Session() as s:
        return s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()


EXPECTED = "เรื่องร้องเรียนที่ยังไม่ปิด 2 เรื่อง เกินกำหนด 1 เรื่อง — ดูในคอนโซล"


def test_digest_goes_once_a_day_from_0830_to_officers_with_open_cases(services, digest_setup, fake_line):
    other, ids = digest_setup
    assert digest.run_digest(services, bkk(2026, 11, 20, 8, 29)) == 0  # before 08:30 Bangkok
    assert outbox(services) == []
    assert digest.run_digest(services, bkk(2026, 11, 20, 8, 30)) == 1
    rows = outbox(services)
    assert sorted(r.to for r in rows) == sorted([ids["officer"], ids["group"]])
    assert all(r.office_id == 1 for r in rows)
    text = rows[0].messages
    assert EXPECTED in text and "Open complaints: 2, overdue: 1" in text
    assert SECRET_TEXT not in text and "C-" not in text and catalog.CATEGORIES[0][1] not in text
    assert digest.run_digest(services, bkk(2026, 11, 20, 8, 31)) == 0  # called again: nothing more
    assert digest.run_digest(services, bkk(2026, 11, 20, 17, 0)) == 0
    assert len(outbox(services)) == 2
    services.processor.sweep()  # the sweeper sends the outbox
    assert fake_line.texts_to(ids["officer"])[-1].startswith(EXPECTED)
    assert fake_line.texts_to(ids["quiet"]) == []  # nothing to an office with no open case
    assert digest.run_digest(services, bkk(2026, 11, 21, 8, 30)) == 1  # the next day, again
    assert len(fake_line.texts_to(ids["officer"])) == 1 and len(outbox(services)) == 2
    with services.db.Session() as s:
        assert s.get(ComplaintSettings, other).digest_sent_on == date(2026, 11, 21)  # the row was made


def test_two_workers_at_the_same_moment_queue_one_digest(services, digest_setup):
    results, errors = at_once(services, lambda svc: digest.run_digest(svc, bkk(2026, 11, 20, 9, 0)), 4)
    assert errors == [] and sorted(results) == [0, 0, 0, 1]
    assert len(outbox(services)) == 2


def test_cli_digest_and_the_workers_scheduler(env, services, digest_setup, monkeypatch):
    from bot.worker import Sweeper

    _, ids = digest_setup
    early = run(env, "digest", "--now", "2026-11-20T08:00:00+07:00")
    assert early.exit_code == 0 and "too early" in early.output
    done = run(env, "digest", "--now", "2026-11-20T08:45:00+07:00")
    assert done.exit_code == 0 and "digest queued for 1 offices" in done.output, done.output
    again = run(env, "digest", "--now", "2026-11-20T10:00:00+07:00")
    assert "nothing queued" in again.output and len(outbox(services)) == 2
    assert run(env, "digest", "--now", "soon").exit_code != 0
    # The workers' per-minute scheduler does the same on its own, and its failures stay its own.
    monkeypatch.setattr(digest, "utcnow", lambda: bkk(2026, 11, 21, 8, 31).astimezone(UTC))
    sweeper = Sweeper(services.processor)
    sweeper._complaints("digest")
    assert len(outbox(services)) == 4
    monkeypatch.setattr(digest, "run_digest", lambda services: 1 / 0)
    sweeper._complaints("digest")  # logged, not raised
    monkeypatch.setattr(retention, "utcnow", lambda: bkk(2030, 1, 1, 0, 0).astimezone(UTC))
    sweeper._complaints("purge")
    with services.db.Session() as s:
        assert s.scalar(select(func.count()).select_from(Complaint).where(Complaint.purged_at.is_not(None))) == 2
