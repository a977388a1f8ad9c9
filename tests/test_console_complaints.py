"""Console pages for complaint officers: inbox, case page (content, evidence, timeline, actions,
identity reveal), complaint settings with the LINE link code, statistics download — and who is
kept out of all of them."""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import secrets
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import select, update
from test_console import Console, add_user, enrol, signed_in

from complaints import cases, officers
from models import (
    AuditEntry,
    Complaint,
    ComplaintEvent,
    ComplaintEvidence,
    ComplaintSettings,
    LineGroup,
    OutboxMessage,
    StaffUser,
    utcnow,
)

OFFICER = "officer@khet.go.th"


def officer(app, env, email: str = OFFICER, *offices: str) -> Console:
    add_user(app, env, email, "complaint_officer", *offices)
    c = Console(app)
    enrol(c, email)
    return c


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def make_case(services, *, identity: str = "anonymous", office_id: int = 1, category: str = "bribe",
              texts: tuple[str, ...] = ("เจ้าหน้าที่เรียกเงินเพิ่ม 500 บาท",), line_user: str | None = None,
              evidence: tuple[dict, ...] = (), **draft_extra) -> tuple[int, str]:
    """A case as the LINE flow submits it (evidence attached to the draft first)."""
    token = secrets.token_hex(8)
    with services.db.session() as s:
        for ev in evidence:
            cases.add_draft_evidence(s, office_id, token, None, **ev)
        draft = {"identity": identity, "category": category,
                 "_messages": {f"m{i}": {"text": t} for i, t in enumerate(texts, start=1)},
                 "occurred_on": None, "occurred_text": None, "place": None, "draft_token": token}
        draft.update(draft_extra)
        sub = cases.submit(s, office_id, draft, services.cipher, line_user)
        return sub.complaint.id, sub.complaint.reference


def audit_rows(services, action: str) -> list[AuditEntry]:
    with services.db.Session() as s:
        return s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def inbox_rows(page: str) -> dict[str, str]:
    """reference → the row's classes, as the inbox table shows them."""
    return dict((ref, cls) for cls, ref in re.findall(r'<tr class="([^"]*)" data-reference="([^"]+)">', page))


def outbox(services) -> list[OutboxMessage]:
    with services.db.Session() as s:
        return s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()


# -- inbox -----------------------------------------------------------------------------------------


def test_inbox_filters_highlights_overdue_cases_and_charts_categories(app, env, services):
    c = officer(app, env)
    old_id, old_ref = make_case(services, category="bribe")
    _, named_ref = make_case(services, identity="named", category="procurement", name="สมชาย", contact="081",
                             texts=("ประมูลงานถนนให้ญาติผู้อำนวยการ",), line_user="U" + "a" * 32)
    spam_id, spam_ref = make_case(services, category="other", texts=("โฆษณาขายของ",))
    with services.db.session() as s:
        s.execute(update(Complaint).where(Complaint.id == old_id).values(created_at=utcnow() - timedelta(days=20)))
        s.execute(update(Complaint).where(Complaint.id == spam_id).values(spam=True))

    page = c.client.get("/console/complaints").get_data(as_text=True)
    rows = inbox_rows(page)
    assert set(rows) == {old_ref, named_ref}  # spam hidden by default
    assert "overdue" in rows[old_ref] and "overdue" not in rows[named_ref]
    assert 'id="open-count">2<' in page and 'id="overdue-count">1<' in page
    assert "เรียกรับเงิน/สินบน" in page and "จัดซื้อจัดจ้างเอื้อประโยชน์" in page  # category labels
    assert "ไม่เปิดเผยตัวตน" in page and "เปิดเผยชื่อ" in page  # identity labels
    assert "รับเรื่องแล้ว" in page
    # The chart: one bar segment per month and category, with the count in its title.
    bars = re.findall(r"<title>[^<·]+· ([^<:]+): (\d+)</title>", page)
    assert ("เรียกรับเงิน/สินบน หรือเก็บเงินเกินอัตรา", "1") in bars
    assert not any(label.startswith("การกระทำผิดอื่น") for label, _ in bars)  # spam is not counted

    def refs(query: str) -> set[str]:
        return set(inbox_rows(c.client.get("/console/complaints?" + query).get_data(as_text=True)))

    assert refs("category=procurement") == {named_ref}
    assert refs("q=ประมูล") == {named_ref}
    assert refs("q=" + old_ref) == {old_ref}
    assert refs("status=open") == {old_ref, named_ref}
    assert refs("status=closed") == set()
    assert refs("spam=only") == {spam_ref}
    assert refs("spam=show") == {old_ref, named_ref, spam_ref}
    assert refs("overdue=1") == {old_ref}

    c.client.get("/console/lang/en")
    page = c.client.get("/console/complaints").get_data(as_text=True)
    assert "Bribe or extra-fee demand" in page and "Received" in page and "Anonymous" in page
    assert " BE" in page  # dates stay in the Buddhist Era in English too


# -- case page -------------------------------------------------------------------------------------


def test_case_page_shows_the_report_and_its_evidence(app, env, services):
    c = officer(app, env)
    image, pdf = png_bytes(), PDF
    cid, ref = make_case(
        services, category="procurement", texts=("บรรทัดแรก\nบรรทัดที่สอง", "ข้อความที่สอง"),
        occurred_on="2026-11-01", place="ฝ่ายโยธา",
        evidence=(
            {"kind": "image", "content_type": "image/png", "data": image, "sha256": hashlib.sha256(image).hexdigest()},
            {"kind": "file", "content_type": "application/pdf", "data": pdf, "filename": "สัญญา.pdf",
             "sha256": hashlib.sha256(pdf).hexdigest()},
            {"kind": "location", "latitude": 13.7563, "longitude": 100.5018, "address": "ถนนราชดำเนิน"},
        ))
    unsure_id, _ = make_case(services, occurred_text="unsure")
    resp = c.client.get(f"/console/complaints/{cid}")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and ref in page
    description = re.search(r'id="description">(.*?)</div>', page, re.S).group(1)
    assert "บรรทัดแรก\nบรรทัดที่สอง" in description and "ข้อความที่สอง" in description
    assert re.search(r'id="case-when">1 พ.ย. 2569<', page)
    assert 'id="case-where">ฝ่ายโยธา<' in page
    assert "จัดซื้อจัดจ้างเอื้อประโยชน์" in page
    assert "ไม่มีข้อมูลใดที่ระบุตัวผู้แจ้ง" in page or "ไม่ได้เก็บข้อมูลใดที่ระบุตัวผู้แจ้ง" in page
    assert "https://www.google.com/maps?q=13.7563,100.5018" in page and "ถนนราชดำเนิน" in page
    with services.db.Session() as s:
        ev = {e.kind: e.id for e in s.scalars(select(ComplaintEvidence).where(ComplaintEvidence.complaint_id == cid))}
    img_url = f"/console/complaints/{cid}/evidence/{ev['image']}"
    assert f'<img src="{img_url}"' in page

    img = c.client.get(img_url)
    assert img.status_code == 200 and img.data == image and img.mimetype == "image/png"
    assert img.headers["Content-Disposition"].startswith("inline")
    assert img.headers["X-Content-Type-Options"] == "nosniff" and img.headers["Cache-Control"] == "no-store"
    doc = c.client.get(f"/console/complaints/{cid}/evidence/{ev['file']}")
    assert doc.status_code == 200 and doc.data == pdf and doc.mimetype == "application/pdf"
    assert doc.headers["Content-Disposition"].startswith("attachment")
    assert doc.headers["Cache-Control"] == "no-store"
    # A location has no bytes; evidence asked for through another case is not found.
    assert c.client.get(f"/console/complaints/{cid}/evidence/{ev['location']}").status_code == 404
    assert c.client.get(f"/console/complaints/{unsure_id}/evidence/{ev['image']}").status_code == 404
    assert "ไม่แน่ใจ" in c.client.get(f"/console/complaints/{unsure_id}").get_data(as_text=True)

    downloads = audit_rows(services, "complaint.evidence_downloaded")
    assert len(downloads) == 2 and {d.detail["kind"] for d in downloads} == {"image", "file"}
    assert all(d.target == f"complaint:{cid}" and d.office_id == 1 for d in downloads)
    assert len(audit_rows(services, "complaint.viewed")) == 2


def test_status_changes_need_an_outcome_or_a_referral_and_fill_the_timeline(app, env, services):
    c = officer(app, env)
    line_user = "U" + "b" * 32
    cid, ref = make_case(services, identity="named", name="สมชาย ใจดี", contact="081-111-2222", line_user=line_user)
    path = f"/console/complaints/{cid}"

    resp = c.post(path + "/status", {"status": "concluded"}, form_page=path)
    assert resp.status_code == 400 and "ต้องระบุผลการพิจารณา" in resp.get_data(as_text=True)
    resp = c.post(path + "/status", {"status": "referred"}, form_page=path)
    assert resp.status_code == 400 and "ต้องระบุหน่วยงาน" in resp.get_data(as_text=True)
    with services.db.Session() as s:
        case = s.get(Complaint, cid)
        assert case.status == "received" and case.first_action_at is None

    resp = c.post(path + "/status", {"status": "screening", "note": "ตรวจเอกสารเบื้องต้น"}, form_page=path)
    assert resp.status_code == 302
    page = c.client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "เปลี่ยนสถานะแล้ว" in page and "ตรวจเอกสารเบื้องต้น" in page
    assert 'id="case-status">กำลังคัดกรอง<' in page
    with services.db.Session() as s:
        assert s.get(Complaint, cid).first_action_at is not None
    resp = c.post(path + "/status", {"status": "screening"}, form_page=path)
    assert resp.status_code == 400 and "มีสถานะนี้อยู่แล้ว" in resp.get_data(as_text=True)
    resp = c.post(path + "/status", {"status": "concluded", "outcome": "substantiated"}, form_page=path)
    assert resp.status_code == 302
    resp = c.post(path + "/status", {"status": "referred", "referred_to": "nacc"}, form_page=path)
    assert resp.status_code == 302
    with services.db.Session() as s:
        case = s.get(Complaint, cid)
        events = s.scalars(select(ComplaintEvent).where(ComplaintEvent.complaint_id == cid)
                           .order_by(ComplaintEvent.id)).all()
    assert (case.status, case.referred_to, case.outcome) == ("referred", "nacc", None)
    assert case.closed_at is not None
    assert [(e.kind, e.status) for e in events] == [("created", "received"), ("status", "screening"),
                                                     ("status", "concluded"), ("status", "referred")]
    assert all(e.staff_id is not None for e in events[1:])
    page = c.client.get(path).get_data(as_text=True)
    timeline = page[page.index('id="timeline"'):]
    assert OFFICER in timeline and "สำนักงาน ป.ป.ช." in page and "2569" in timeline

    # The named reporter hears of each change on LINE.
    pushes = [json.loads(o.messages)[0]["text"] for o in outbox(services) if o.to == line_user]
    assert pushes[0] == (f"สถานะเรื่องร้องเรียน {ref}: กำลังคัดกรอง / Status of complaint {ref}: Screening")
    assert len(pushes) == 3 and "ได้ข้อยุติแล้ว" in pushes[1]
    changed = audit_rows(services, "complaint.status_changed")
    assert [a.detail["to"] for a in changed] == ["screening", "concluded", "referred"]
    assert "ตรวจเอกสาร" not in json.dumps([a.detail for a in changed], ensure_ascii=False)  # no text in the trail


def test_a_conclusion_submitted_twice_pushes_the_reporter_once(app, env, services):
    c = officer(app, env)
    line_user = "U" + "e" * 32
    cid, ref = make_case(services, identity="named", name="สมชาย ใจดี", contact="081-111-2222", line_user=line_user)
    path = f"/console/complaints/{cid}"
    conclusion = {"status": "concluded", "outcome": "substantiated"}
    assert c.post(path + "/status", conclusion, form_page=path).status_code == 302
    again = c.post(path + "/status", conclusion, form_page=path)  # sent again: a second click, or the back button
    assert again.status_code == 400 and "มีสถานะนี้อยู่แล้ว" in again.get_data(as_text=True)
    pushes = [json.loads(o.messages)[0]["text"] for o in outbox(services) if o.to == line_user]
    assert pushes == [f"สถานะเรื่องร้องเรียน {ref}: ได้ข้อยุติแล้ว / Status of complaint {ref}: Concluded"]
    # A corrected outcome is recorded, but the reporter's status has not changed: no second, identical push.
    assert c.post(path + "/status", {"status": "concluded", "outcome": "unsubstantiated"},
                  form_page=path).status_code == 302
    assert len([o for o in outbox(services) if o.to == line_user]) == 1
    with services.db.Session() as s:
        assert s.get(Complaint, cid).outcome == "unsubstantiated"
        statuses = s.scalars(select(ComplaintEvent.status).where(ComplaintEvent.complaint_id == cid,
                                                                 ComplaintEvent.kind == "status")).all()
    assert statuses == ["concluded", "concluded"]
    assert len(audit_rows(services, "complaint.status_changed")) == 2


def test_assignment_notes_and_spam_are_recorded(app, env, services):
    c = officer(app, env)
    add_user(app, env, "second@khet.go.th", "complaint_officer")
    add_user(app, env, "coord@khet.go.th", "survey_coordinator")
    cid, ref = make_case(services)
    path = f"/console/complaints/{cid}"
    with services.db.Session() as s:
        second = s.scalar(select(StaffUser.id).where(StaffUser.email == "second@khet.go.th"))
        coord = s.scalar(select(StaffUser.id).where(StaffUser.email == "coord@khet.go.th"))
    page = c.client.get(path).get_data(as_text=True)
    assert "second@khet.go.th" in page and "coord@khet.go.th" not in page  # only complaint officers
    assert c.post(path + "/assign", {"assignee": str(coord)}, form_page=path).status_code == 400
    assert c.post(path + "/assign", {"assignee": str(second)}, form_page=path).status_code == 302
    assert c.post(path + "/note", {"note": "  "}, form_page=path).status_code == 400
    assert c.post(path + "/note", {"note": "โทรสอบถามฝ่ายโยธาแล้ว"}, form_page=path).status_code == 302
    assert c.post(path + "/spam", {"spam": "1"}, form_page=path).status_code == 302
    page = c.client.get(path).get_data(as_text=True)
    assert 'id="case-assignee">second@khet.go.th<' in page and "โทรสอบถามฝ่ายโยธาแล้ว" in page
    assert ref not in c.client.get("/console/complaints").get_data(as_text=True)  # spam is hidden
    assert c.post(path + "/spam", {"spam": "0"}, form_page=path).status_code == 302
    with services.db.Session() as s:
        case = s.get(Complaint, cid)
        kinds = [e.kind for e in s.scalars(select(ComplaintEvent).where(ComplaintEvent.complaint_id == cid))]
    assert case.assigned_to == second and not case.spam
    assert kinds == ["created", "assigned", "note", "spam", "spam"]
    for action in ("complaint.assigned", "complaint.note_added", "complaint.spam_marked", "complaint.spam_unmarked"):
        assert audit_rows(services, action), action


def test_a_message_reaches_a_named_reporter_on_line_but_nothing_is_pushed_for_an_anonymous_one(app, env, services):
    c = officer(app, env)
    line_user = "U" + "c" * 32
    named_id, named_ref = make_case(services, identity="named", name="สมชาย", contact="081", line_user=line_user)
    anon_id, _ = make_case(services)
    question = "ขอทราบวันที่เกิดเหตุโดยประมาณ"
    path = f"/console/complaints/{named_id}"
    resp = c.post(path + "/message", {"message": question}, form_page=path)
    assert resp.status_code == 302
    assert "ส่งข้อความถึงผู้แจ้งทาง LINE แล้ว" in c.client.get(resp.headers["Location"]).get_data(as_text=True)
    (row,) = outbox(services)
    assert row.to == line_user and row.office_id == 1
    pushed = json.loads(row.messages)[0]
    assert pushed["type"] == "text" and question in pushed["text"] and named_ref in pushed["text"]
    assert "สถานะ" in pushed["text"] and "status" in pushed["text"]

    path = f"/console/complaints/{anon_id}"
    resp = c.post(path + "/message", {"message": question}, form_page=path)
    assert resp.status_code == 302
    assert len(outbox(services)) == 1  # nobody to push to: the reporter reads it with the receipt code
    with services.db.Session() as s:
        anon = s.get(Complaint, anon_id)
        event = s.scalar(select(ComplaintEvent).where(ComplaintEvent.complaint_id == anon_id,
                                                      ComplaintEvent.kind == "to_reporter"))
    assert event.body == question and anon.first_action_at is not None
    assert cases.open_question(services.db.Session(), anon) is not None
    sent = audit_rows(services, "complaint.message_sent")
    assert [a.detail for a in sent] == [{"pushed": True}, {"pushed": False}]
    assert c.post(path + "/message", {"message": ""}, form_page=path).status_code == 400


def test_a_message_with_emoji_that_line_would_refuse_is_refused_in_the_console(app, env, services):
    c = officer(app, env)
    case_id, _ = make_case(services, identity="named", name="สมชาย", contact="081", line_user="U" + "d" * 32)
    path = f"/console/complaints/{case_id}"
    # 1,500 emoji are 3,000 of LINE's characters (UTF-16 units); pushed in Thai and English, 6,000 > 5,000.
    resp = c.post(path + "/message", {"message": "🙏" * 1500}, form_page=path)
    assert resp.status_code == 400 and "อีโมจิหนึ่งตัวนับเป็น 2" in resp.get_data(as_text=True)
    assert outbox(services) == []
    fits = "🙏" * 1000  # 2,000 units: the push carries it whole, twice, within LINE's limit
    assert c.post(path + "/message", {"message": fits}, form_page=path).status_code == 302
    (row,) = outbox(services)
    pushed = json.loads(row.messages)[0]["text"]
    assert pushed.count(fits) == 2 and len(pushed.encode("utf-16-le")) // 2 <= 5000


# -- identity --------------------------------------------------------------------------------------


NAME, CONTACT = "สมหญิง ลับมาก", "081-234-5678"


def test_confidential_identity_is_ciphertext_and_revealed_only_to_an_officer_with_2fa(app, env, services, caplog):
    caplog.set_level("DEBUG")
    cid, _ = make_case(services, identity="confidential", name=NAME, contact=CONTACT, line_user="U" + "d" * 32)
    with services.db.Session() as s:
        stored = s.get(Complaint, cid)
    assert stored.reporter_enc and NAME not in stored.reporter_enc and CONTACT not in stored.reporter_enc
    path = f"/console/complaints/{cid}"

    # Another role: refused before anything is looked up.
    coord = signed_in(app, env, "survey_coordinator")
    assert coord.post(path + "/reveal", {}, form_page="/console/").status_code == 403

    # A complaint officer who has only typed the password: sent to the second factor.
    add_user(app, env, "new@khet.go.th", "complaint_officer")
    half = Console(app)
    half.login("new@khet.go.th")
    resp = half.post(path + "/reveal", {}, form_page="/console/2fa/setup")
    assert resp.status_code == 302 and "/console/2fa" in resp.headers["Location"]
    # …and a session marked as complete although no authenticator was ever enrolled: refused.
    with half.client.session_transaction(base_url="https://localhost") as sess:
        sess["mfa"] = True
    resp = half.post(path + "/reveal", {}, form_page="/console/")
    assert resp.status_code == 403
    assert audit_rows(services, "complaint.reveal_refused")[0].detail == {"reason": "no_2fa"}

    c = officer(app, env)
    page = c.client.get(path).get_data(as_text=True)
    assert NAME not in page and CONTACT not in page and 'id="reveal"' in page
    for _ in range(2):
        resp = c.post(path + "/reveal", {}, form_page=path)
        shown = resp.get_data(as_text=True)
        assert resp.status_code == 200 and NAME in shown and CONTACT in shown
        assert resp.headers["Cache-Control"] == "no-store"
    assert NAME not in c.client.get(path).get_data(as_text=True)  # shown only in the reveal's answer
    revealed = audit_rows(services, "complaint.identity_revealed")
    assert len(revealed) == 2 and all(r.actor_email == OFFICER and r.target == f"complaint:{cid}" for r in revealed)
    with services.db.Session() as s:
        reveals = s.scalars(select(ComplaintEvent).where(ComplaintEvent.complaint_id == cid,
                                                         ComplaintEvent.kind == "reveal")).all()
    assert len(reveals) == 2
    assert "เปิดดูตัวตนผู้แจ้ง" in c.client.get(path).get_data(as_text=True)  # in the timeline
    dump = json.dumps([a.detail for a in audit_rows(services, "complaint.identity_revealed")], ensure_ascii=False)
    assert NAME not in dump and CONTACT not in dump
    assert NAME not in caplog.text and CONTACT not in caplog.text


def test_named_identity_is_shown_and_audited_anonymous_says_nothing_is_stored(app, env, services):
    c = officer(app, env)
    named, _ = make_case(services, identity="named", name=NAME, contact=CONTACT, line_user="U" + "e" * 32)
    anon, _ = make_case(services)
    page = c.client.get(f"/console/complaints/{named}").get_data(as_text=True)
    assert NAME in page and CONTACT in page and 'id="reveal"' not in page
    viewed = audit_rows(services, "complaint.identity_viewed")
    assert len(viewed) == 1 and viewed[0].target == f"complaint:{named}"
    page = c.client.get(f"/console/complaints/{anon}").get_data(as_text=True)
    assert 'id="identity-none"' in page and 'id="reveal"' not in page
    assert len(audit_rows(services, "complaint.identity_viewed")) == 1
    path = f"/console/complaints/{anon}"
    assert c.post(path + "/reveal", {}, form_page=path).status_code == 400


# -- settings and the LINE link --------------------------------------------------------------------


def test_settings_are_validated_and_saved_by_officers_and_admins(app, env, services):
    c = officer(app, env)
    page = c.client.get("/console/complaints/settings").get_data(as_text=True)
    assert 'name="first_action_days" value="15"' in page and 'name="retention_days" value="365"' in page
    with services.db.Session() as s:
        assert s.get(ComplaintSettings, 1) is None  # defaults until someone saves
    good = {"form": "rules", "office_id": "1", "first_action_days": "๒๐", "conclude_days": "90",
            "retention_days": "400", "categories": ["bribe", "other"], "general_text_th": "แจ้งปัญหาถนนที่ Traffy",
            "general_text_en": ""}
    for bad in ({"first_action_days": "0"}, {"conclude_days": "abc"}, {"retention_days": "-5"},
                {"first_action_days": "100"}, {"categories": []}):
        resp = c.post("/console/complaints/settings", dict(good, **bad))
        assert resp.status_code == 400, bad
        assert 'role="alert"' in resp.get_data(as_text=True)
    with services.db.Session() as s:
        assert s.get(ComplaintSettings, 1) is None
    resp = c.post("/console/complaints/settings", good)
    assert resp.status_code == 200 and "บันทึกแล้ว" in resp.get_data(as_text=True)
    with services.db.Session() as s:
        row = s.get(ComplaintSettings, 1)
        offered = [cat[0] for cat in cases.categories_for(s, 1)]
    assert (row.first_action_days, row.conclude_days, row.retention_days) == (20, 90, 400)
    assert offered == ["bribe", "other"] and row.general_text_th == "แจ้งปัญหาถนนที่ Traffy"
    assert row.general_text_en is None  # empty = the default text
    changed = audit_rows(services, "complaint.settings_changed")
    assert len(changed) == 1 and "first_action_days" in changed[0].detail["fields"]
    assert changed[0].detail["first_action_days"] == 20 and changed[0].actor_email == OFFICER

    admin = signed_in(app, env, "admin")
    page = admin.client.get("/console/complaints/settings").get_data(as_text=True)
    assert 'name="first_action_days" value="20"' in page and 'id="line-link"' not in page
    resp = admin.post("/console/complaints/settings", dict(good, retention_days="730"))
    assert resp.status_code == 200
    with services.db.Session() as s:
        assert s.get(ComplaintSettings, 1).retention_days == 730
    assert audit_rows(services, "complaint.settings_changed")[-1].actor_email == "admin@khet.go.th"
    assert "/console/complaints/settings" in admin.client.get("/console/settings").get_data(as_text=True)


def test_a_day_limit_is_read_as_a_person_types_it_with_a_thousands_separator_or_thai_digits(app, env, services):
    """ "1,000" was refused as not a whole number."""
    c = officer(app, env)
    good = {"form": "rules", "office_id": "1", "first_action_days": " ๑๕ ", "conclude_days": "90",
            "retention_days": "1,000", "categories": ["bribe", "other"], "general_text_th": "", "general_text_en": ""}
    for typed, days in (("1,000", 1000), (" 1000 ", 1000), ("๑,๒๐๐", 1200), ("๓๖๕", 365), ("3,650", 3650)):
        resp = c.post("/console/complaints/settings", dict(good, retention_days=typed))
        assert resp.status_code == 200 and "บันทึกแล้ว" in resp.get_data(as_text=True), typed
        with services.db.Session() as s:
            row = s.get(ComplaintSettings, 1)
            assert (row.first_action_days, row.retention_days) == (15, days), typed
    for garbage in ("1,00", "10,0000", "1.000", "1,000,", ",500", "1 000x", "๑,๐๐", "3,651", "1,000 วัน",
                    "9" * 5000):
        resp = c.post("/console/complaints/settings", dict(good, retention_days=garbage))
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400 and "จำนวนวันต้องเป็นจำนวนเต็มตั้งแต่ 1 ถึง 3650" in page, garbage
    with services.db.Session() as s:
        assert s.get(ComplaintSettings, 1).retention_days == 3650


def test_groups_are_ticked_for_new_complaint_alerts(app, env, services):
    c = officer(app, env)
    gid = "C" + "f" * 32
    with services.db.session() as s:
        s.add(LineGroup(office_id=1, group_id=gid, active=True))
    page = c.client.get("/console/complaints/settings").get_data(as_text=True)
    assert "แจ้งเตือนเรื่องร้องเรียนใหม่" in page and gid[-6:] in page and gid not in page
    with services.db.Session() as s:
        group_id = s.scalar(select(LineGroup.id))
    resp = c.post("/console/complaints/settings", {"form": "groups", "office_id": "1", "alerts": [str(group_id)]})
    assert resp.status_code == 200
    with services.db.Session() as s:
        assert gid in officers.alert_targets(s, 1, services.cipher)
    c.post("/console/complaints/settings", {"form": "groups", "office_id": "1"})
    with services.db.Session() as s:
        assert gid not in officers.alert_targets(s, 1, services.cipher)
    assert len(audit_rows(services, "complaint.alert_groups_changed")) == 2


def test_an_officer_links_and_unlinks_their_line_account_with_a_one_time_code(app, env, services):
    c = officer(app, env)
    page = c.client.get("/console/complaints/settings").get_data(as_text=True)
    assert "ยังไม่ได้เชื่อมบัญชี LINE" in page
    resp = c.post("/console/complaints/settings/link", {"office_id": "1"}, form_page="/console/complaints/settings")
    shown = html.unescape(resp.get_data(as_text=True))
    code = re.search(r"เชื่อมบัญชี ([A-Z2-9]{4}-[A-Z2-9]{4})' ถึงบัญชี LINE ของสำนักงานภายใน 15 นาที", shown).group(1)
    assert resp.status_code == 200 and "รอการยืนยันจาก LINE" in shown
    with services.db.Session() as s:
        me = s.scalar(select(StaffUser).where(StaffUser.email == OFFICER))
    assert me.line_link_hash and code.replace("-", "") not in me.line_link_hash and me.line_link_office_id == 1
    line_user = "U" + "9" * 32
    with services.db.session() as s:
        linked = officers.redeem_link(s, 1, line_user, officers.looks_like_link(f"เชื่อมบัญชี {code}"),
                                      services.cipher)
    assert linked.result == "linked"
    assert "เชื่อมบัญชี LINE แล้ว" in c.client.get("/console/complaints/settings").get_data(as_text=True)
    with services.db.Session() as s:
        assert line_user in officers.alert_targets(s, 1, services.cipher)
    resp = c.post("/console/complaints/settings/unlink", {"office_id": "1"}, form_page="/console/complaints/settings")
    assert resp.status_code == 200 and "ยังไม่ได้เชื่อมบัญชี LINE" in resp.get_data(as_text=True)
    with services.db.Session() as s:
        assert s.scalar(select(StaffUser.line_user_id_enc).where(StaffUser.email == OFFICER)) is None
        assert line_user not in officers.alert_targets(s, 1, services.cipher)
    assert audit_rows(services, "complaint.line_link_started") and audit_rows(services, "complaint.line_unlinked")


# -- statistics download ---------------------------------------------------------------------------


def test_statistics_download_in_both_formats_is_audited(app, env, services):
    c = officer(app, env)
    make_case(services, category="bribe")
    make_case(services, category="procurement", texts=("ข้อความลับที่ไม่ควรหลุด",))
    form = c.client.get("/console/complaints/export")
    assert form.status_code == 200 and 'id="export-form"' in form.get_data(as_text=True)
    today = date.today()
    span = {"from": (today - timedelta(days=30)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    resp = c.client.get("/console/complaints/export", query_string=dict(span, format="csv"))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and ".csv" in disposition
    assert "เรียกรับเงิน" in body and "ข้อความลับ" not in body
    xlsx = c.client.get("/console/complaints/export", query_string=dict(span, format="xlsx"))
    assert xlsx.status_code == 200 and xlsx.data.startswith(b"PK")
    assert xlsx.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    bad = c.client.get("/console/complaints/export", query_string={"from": "2026-12-31", "to": "2026-01-01"})
    assert bad.status_code == 400 and 'role="alert"' in bad.get_data(as_text=True)
    assert "1/11/2569 (พ.ศ.)" in bad.get_data(as_text=True)  # the hint offers the BE date the form reads, not CE only
    exported = audit_rows(services, "complaint.exported")
    assert [e.detail["format"] for e in exported] == ["csv", "xlsx"] and exported[0].detail["offices"] == [1]


# -- dashboard and navigation ----------------------------------------------------------------------


def test_dashboard_counts_open_and_overdue_cases_for_complaint_officers_only(app, env, services):
    c = officer(app, env)
    old, _ = make_case(services)
    make_case(services)
    with services.db.session() as s:
        s.execute(update(Complaint).where(Complaint.id == old).values(created_at=utcnow() - timedelta(days=30)))
    page = c.client.get("/console/").get_data(as_text=True)
    assert 'data-complaints="open">2<' in page and 'data-complaints="overdue">1<' in page
    assert 'href="/console/complaints"' in page  # the nav link
    viewer = signed_in(app, env, "viewer")
    page = viewer.client.get("/console/").get_data(as_text=True)
    assert "data-complaints" not in page and 'href="/console/complaints"' not in page


# -- who is kept out -------------------------------------------------------------------------------


def _complaint_routes(app, cid: int, eid: int) -> list[tuple[str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/console/complaints"):
            continue
        path = rule.rule.replace("<int:complaint_id>", str(cid)).replace("<int:evidence_id>", str(eid))
        for method in ("GET", "POST"):
            if method in rule.methods:
                out.append((method, path))
    return out


@pytest.fixture
def a_case(services) -> tuple[int, int]:
    image = png_bytes()
    cid, _ = make_case(services, identity="confidential", name=NAME, contact=CONTACT,
                       evidence=({"kind": "image", "content_type": "image/png", "data": image},))
    with services.db.Session() as s:
        eid = s.scalar(select(ComplaintEvidence.id))
    return cid, eid


def test_every_complaint_route_needs_a_session(app, a_case):
    routes = _complaint_routes(app, *a_case)
    assert len(routes) >= 12
    c = Console(app)
    token = c.csrf("/console/login")
    for method, path in routes:
        resp = c.client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
        assert resp.status_code == 302 and "/console/login" in resp.headers["Location"], (method, path)


@pytest.mark.parametrize("role", ["survey_coordinator", "viewer", "supervisor", "admin"])
def test_every_complaint_route_refuses_other_roles(app, env, services, a_case, role):
    c = signed_in(app, env, role)
    token = c.csrf("/console/")
    for method, path in _complaint_routes(app, *a_case):
        resp = c.client.open(path, method=method, data={"csrf_token": token, "form": "rules"} if method == "POST"
                             else None)
        if role == "admin" and path == "/console/complaints/settings":
            assert resp.status_code in (200, 400), (method, path)  # admins look after the settings too
        else:
            assert resp.status_code == 403, (role, method, path, resp.status_code)
    assert not audit_rows(services, "complaint.identity_revealed")
    assert not audit_rows(services, "complaint.evidence_downloaded")


def test_another_office_s_cases_answer_404(app, env, services, a_case):
    cid, eid = a_case
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    other = officer(app, env, "officer@nongchok.go.th", "nongchok")
    nongchok = services.offices.by_slug("nongchok").id
    theirs, their_ref = make_case(services, office_id=nongchok)
    token = other.csrf("/console/")
    for method, path in _complaint_routes(app, cid, eid):
        if "/complaints/" + str(cid) not in path:
            continue
        resp = other.client.open(path, method=method, data={"csrf_token": token, "status": "screening",
                                                             "note": "x", "message": "x", "spam": "1"}
                                 if method == "POST" else None)
        assert resp.status_code == 404, (method, path, resp.status_code)
    page = other.client.get("/console/complaints").get_data(as_text=True)
    assert set(inbox_rows(page)) == {their_ref}
    assert other.client.get("/console/complaints/settings?office_id=1").status_code == 404
    with services.db.Session() as s:
        case = s.get(Complaint, cid)
        assert case.status == "received" and not case.spam
        assert s.scalar(select(ComplaintEvent).where(ComplaintEvent.complaint_id == cid,
                                                     ComplaintEvent.kind != "created")) is None
    mine = officer(app, env)
    assert mine.client.get(f"/console/complaints/{theirs}").status_code == 404


def test_inbox_search_finds_the_characters_typed_percent_and_underscore_included(services):
    with_percent, _ = make_case(services, texts=("ขอส่วนแบ่ง 10% จากค่าจ้าง",))
    plain, _ = make_case(services, texts=("เรียกเงินใต้โต๊ะ",))
    with_underscore, _ = make_case(services, texts=("ไฟล์ชื่อ slip_2569.pdf",))
    with services.db.Session() as s:
        def found(q):
            return {c.id for c in s.scalars(cases.inbox_query([1], q=q))}
        assert found("%") == {with_percent}  # it matched every case before
        assert found("_") == {with_underscore}
        assert found("ใต้โต๊ะ") == {plain}
        assert found("\x00ใต้โต๊ะ") == {plain}  # a NUL pasted in: PostgreSQL refused the query (a 500)
