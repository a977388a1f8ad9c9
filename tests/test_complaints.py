"""Reporting corruption on LINE: the flow, each identity choice, evidence, the receipt, following
the case, and that an anonymous report leaves nothing that points back to the reporter."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets

import pytest
from conftest import new_user
from PIL import Image
from sqlalchemy import select, text

from complaints import cases, evidence, officers, receipts
from models import (
    Base,
    Complaint,
    ComplaintEvent,
    ComplaintEvidence,
    ConversationState,
    LineGroup,
    StaffOffice,
    StaffUser,
    UnansweredQuestion,
)

CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})\b")


def jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (64, 48), "blue")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # camera make
    exif[0x8825] = {1: "N", 2: (13.0, 45.0, 12.0), 3: "E", 4: (100.0, 30.0, 5.0)}  # GPS
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def image_message(bot, user, data: bytes, ctype: str = "image/jpeg") -> dict:
    mid = str(secrets.randbelow(10**17))
    bot.fake.contents[mid] = (data, ctype)
    return bot.send(user, "message", message={"type": "image", "id": mid,
                                              "contentProvider": {"type": "line"}, "quoteToken": "q"})


def to_evidence(bot, user, texts, photo: bytes | None = None) -> None:
    """A report up to its evidence question: a corruption case of the first category (bribe), on 10 Nov 2026,
    at ฝ่ายทะเบียน."""
    bot.text(user, "แจ้งเบาะแส")
    bot.postback(user, "action=c_kind&v=corruption")
    bot.text(user, "๑")  # Thai digit 1 → the first category (bribe)
    for t in texts:
        bot.text(user, t)
    if photo is not None:
        image_message(bot, user, photo)
    bot.text(user, "เสร็จแล้ว")
    bot.postback(user, "action=c_when&v=date", params={"date": "2026-11-10"})
    bot.postback(user, "action=c_place&v=1")  # ฝ่ายทะเบียน


def report(bot, user, identity="anonymous", *, name="สมชาย ใจดี", contact="0812345678", photo: bytes | None = None,
           texts=("เจ้าหน้าที่เรียกเงิน 500 บาทเพื่อให้ได้คิวก่อน", "เกิดขึ้นที่เคาน์เตอร์ทะเบียน")) -> str:
    """Walk the whole report, mixing taps and typing, and return the receipt code."""
    to_evidence(bot, user, texts, photo)
    bot.postback(user, "action=c_next")  # no (more) evidence
    bot.postback(user, f"action=c_id&v={identity}")
    if identity != "anonymous":
        bot.text(user, name)
        bot.text(user, contact)
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user)
    bot.postback(user, "action=c_submit")
    found = [m for t in bot.texts(user) for m in CODE.findall(t)]
    assert found, bot.texts(user)[-3:]
    return found[-1]


def test_general_problems_go_to_traffy_and_nothing_is_stored(bot, services):
    user = new_user()
    bot.text(user, "ร้องเรียน")
    assert "ทุจริต" in bot.last_text(user)
    bot.text(user, "2")
    assert "@traffyfondue" in bot.last_text(user) and "1555" in bot.last_text(user)
    with services.db.Session() as s:
        assert s.scalar(select(Complaint.id)) is None
        assert s.scalar(select(ConversationState.id)) is None


def test_anonymous_report_end_to_end_leaves_no_trace_of_the_reporter(bot, services, caplog):
    caplog.set_level(logging.DEBUG)
    user = new_user()
    bot.follow(user)
    with services.db.Session() as s:
        before = [tuple(r) for r in s.execute(text("select * from line_users")).all()]
    code = report(bot, user, "anonymous", photo=jpeg_with_gps())
    texts = bot.texts(user)
    assert any("ทางเดียว" in t for t in texts)  # told plainly the code is the only way back
    assert any("คุ้มครองผู้แจ้งเบาะแส" in t for t in texts)  # the protection notice
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert c.identity == "anonymous" and c.category == "bribe" and c.place == "ฝ่ายทะเบียน"
        assert "500 บาท" in c.description and c.occurred_on.isoformat() == "2026-11-10"
        assert c.reporter_enc is None and c.reporter_line_enc is None
        ev = s.scalars(select(ComplaintEvidence)).all()
        assert len(ev) == 1 and ev[0].complaint_id == c.id and ev[0].draft_token is None and ev[0].message_key is None
        # The whole database: the user ID is only on the follower record, which the report did not touch.
        hits = []
        for table in Base.metadata.sorted_tables:
            for row in s.execute(table.select()).all():
                if any(user in str(v) for v in row if v is not None):
                    hits.append(table.name)
        assert hits == ["line_users"], hits
        after = [tuple(r) for r in s.execute(text("select * from line_users")).all()]
        assert after == before
    # ...and the logs never saw it, nor the complaint text, nor the code.
    logged = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert user not in logged and "500 บาท" not in logged and code not in logged


def test_photo_evidence_is_kept_without_exif_and_gps(bot, services):
    user = new_user()
    report(bot, user, photo=jpeg_with_gps())
    with services.db.Session() as s:
        ev = s.scalar(select(ComplaintEvidence))
        data = ev.data
    assert ev.kind == "image" and ev.content_type == "image/jpeg" and ev.size == len(data)
    assert b"SecretCam" not in data
    assert not Image.open(io.BytesIO(data)).getexif()
    import hashlib

    assert ev.sha256 == hashlib.sha256(data).hexdigest()


def test_confidential_identity_is_ciphertext_and_status_changes_reach_the_reporter(bot, services):
    user = new_user()
    code = report(bot, user, "confidential", name="สมหญิง รักดี", contact="0899999999")
    assert any("แจ้งให้คุณทราบ" in t for t in bot.texts(user))
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert c.identity == "confidential"
        assert "สมหญิง" not in c.reporter_enc and "0899999999" not in c.reporter_enc
        assert user not in (c.reporter_line_enc or "")
        assert services.cipher.decrypt(c.reporter_line_enc) == user
        who = cases.reveal(s, c, None, services.cipher)
        assert who == {"name": "สมหญิง รักดี", "contact": "0899999999"}
        assert s.scalar(select(ComplaintEvent).where(ComplaintEvent.kind == "reveal")) is not None
        s.commit()
    assert code


def test_named_report_keeps_the_name(bot, services):
    user = new_user()
    report(bot, user, "named", name="นายทดสอบ ระบบ", contact="test@example.com")
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert c.identity == "named"
        assert json.loads(services.cipher.decrypt(c.reporter_enc))["name"] == "นายทดสอบ ระบบ"


def test_status_lookup_and_two_way_exchange_through_the_code(bot, services):
    user = new_user()
    code = report(bot, user)
    bot.text(user, f"สถานะ {code.lower().replace('-', ' ')}")
    assert "รับเรื่องแล้ว" in bot.last_text(user)
    with services.db.session() as s:
        c = s.scalar(select(Complaint))
        cases.change_status(s, c, None, "investigating")
        cases.message_reporter(s, c, None, "ขอทราบช่วงเวลาที่เกิดเหตุเพิ่มเติม")
    bot.text(user, f"ติดตาม {code}")
    last = bot.last_text(user)
    assert "กำลังตรวจสอบข้อเท็จจริง" in last and "ขอทราบช่วงเวลา" in last and f"ตอบ {code}" in last
    bot.text(user, f"ตอบ {code} ประมาณบ่ายสองโมง วันที่ 10")
    assert "ส่งข้อความถึงเจ้าหน้าที่แล้ว" in bot.last_text(user)
    with services.db.Session() as s:
        rows = s.scalars(select(ComplaintEvent).where(ComplaintEvent.kind == "from_reporter")).all()
        assert [r.body for r in rows] == ["ประมาณบ่ายสองโมง วันที่ 10"]
    # the question is answered: it is no longer shown as open
    bot.text(user, f"สถานะ {code}")
    assert "ฝากคำถาม" not in bot.last_text(user)
    # someone else who knows the code can follow it too (the code is the key, not the account)
    other = new_user()
    bot.text(other, f"status {code}")
    assert "Investigating" in bot.last_text(other) or "กำลังตรวจสอบ" in bot.last_text(other)


def test_the_officers_private_note_on_a_status_change_never_reaches_line(bot, services):
    user = new_user()
    code = report(bot, user)
    with services.db.session() as s:
        c = s.scalar(select(Complaint))
        cases.change_status(s, c, None, "investigating", note="ภายใน: น่าจะเป็นหัวหน้าเทศกิจ")
    bot.text(user, f"สถานะ {code}")
    assert "กำลังตรวจสอบ" in bot.last_text(user)
    assert not any("หัวหน้าเทศกิจ" in t for t in bot.texts(user))


def test_a_code_with_politeness_after_it_is_a_status_request_and_never_goes_to_the_q_and_a(bot, services):
    user = new_user()
    code = report(bot, user)
    bot.text(user, f"ติดตาม {code} ค่ะ 🙏")
    assert "รับเรื่องแล้ว" in bot.last_text(user)
    # The code alone with ครับ, "ขอติดตาม…", or after the follow button: the status too (they were "type สถานะ
    # and the code" and, after the button, "no case matches this code" for the right code).
    for tap, typed in ((False, f"{code} ครับ"), (False, f"ขอติดตามเรื่อง {code.lower()} หน่อยค่ะ"),
                       (True, f"{code} ค่ะ 🙏")):
        if tap:
            bot.postback(user, "action=c_status")
        bot.text(user, typed)
        assert "รับเรื่องแล้ว" in bot.last_text(user), typed
    bot.text(user, f"ตอบกลับ {code} เกิดเหตุประมาณบ่ายสอง")
    assert "ส่งข้อความถึงเจ้าหน้าที่แล้ว" in bot.last_text(user)
    # Any other sentence holding the code: not answered as a question, no "ask an officer" to tap.
    bot.text(user, f"ช่วยดูเรื่อง {code.lower()} ให้หน่อยได้ไหมคะ ผ่านมานานแล้ว")
    assert "ไม่ส่งต่อ" in bot.last_text(user)
    bot.postback(user, "action=qa_ask")
    with services.db.Session() as s:
        assert s.scalar(select(UnansweredQuestion.id)) is None


def test_follow_button_then_code(bot):
    user = new_user()
    code = report(bot, user)
    bot.postback(user, "action=c_status")
    assert "รหัสรับเรื่อง" in bot.last_text(user)
    bot.text(user, code)
    assert "รับเรื่องแล้ว" in bot.last_text(user)


def test_a_category_typed_as_a_word_of_its_name_is_taken(bot):
    """The category list shows "1. เรียกรับเงิน/สินบน หรือเก็บเงินเกินอัตรา": typing "สินบน" or "bribe" picks it (it
    used to ask the same question again, with no word on why); a word of two categories still asks."""
    for lang, word, ambiguous in (("th", "สินบน", "ส่วนตัว"), ("en", "bribe", "favouritism")):
        user = new_user()
        if lang == "en":
            bot.text(user, "English")
        bot.text(user, "แจ้งเบาะแส")
        bot.text(user, "1")
        bot.text(user, ambiguous)  # in two categories: which one is not guessed
        assert "1. " in bot.last_text(user) and "8. " in bot.last_text(user)
        bot.text(user, word)
        assert "เล่าเหตุการณ์" in bot.last_text(user) or "Tell us what happened" in bot.last_text(user), word
        for t in ("เจ้าหน้าที่เรียกเงินค่าลัดคิว", "เสร็จแล้ว", "ไม่แน่ใจ", "ไม่ทราบ", "ไม่มี", "1"):
            bot.text(user, t)
        summary = bot.last_text(user)
        assert "เรียกรับเงิน/สินบน" in summary or "Bribe" in summary, summary


def test_wrong_codes_are_throttled(bot, services):
    user = new_user()
    code = report(bot, user)
    for _ in range(cases.RECEIPT_FAILURES - 1):
        bot.text(user, "สถานะ " + receipts.new_code())
        assert "ไม่พบเรื่อง" in bot.last_text(user)
    bot.text(user, "สถานะ " + receipts.new_code())
    assert "หลายครั้ง" in bot.last_text(user)
    bot.text(user, f"สถานะ {code}")  # even the right code waits out the lock
    assert "หลายครั้ง" in bot.last_text(user)
    with services.db.Session() as s:  # the throttle holds a keyed hash, not the LINE user ID
        row = s.execute(text("select who from receipt_attempts")).first()
        assert row is not None and user not in row[0]


def test_cancel_discards_draft_and_evidence(bot, services):
    user = new_user()
    bot.text(user, "complaint")
    bot.text(user, "1")
    bot.text(user, "1")
    bot.text(user, "something happened")
    image_message(bot, user, jpeg_with_gps())
    with services.db.Session() as s:
        assert s.scalar(select(ComplaintEvidence.id)) is not None
    bot.text(user, "ยกเลิก")
    with services.db.Session() as s:
        assert s.scalar(select(ComplaintEvidence.id)) is None
        assert s.scalar(select(ConversationState.id)) is None
        assert s.scalar(select(Complaint.id)) is None


def test_unsend_during_a_draft_removes_that_message(bot, services):
    user = new_user()
    bot.text(user, "แจ้งเบาะแส")
    bot.text(user, "1")
    bot.text(user, "1")
    first = bot.text(user, "ข้อความที่จะลบทิ้ง")
    bot.text(user, "ข้อความที่เก็บไว้")
    photo = image_message(bot, user, jpeg_with_gps())
    bot.send(user, "unsend", unsend={"messageId": first["message"]["id"]})
    bot.send(user, "unsend", unsend={"messageId": photo["message"]["id"]})
    with services.db.Session() as s:
        assert s.scalar(select(ComplaintEvidence.id)) is None
        state = s.scalar(select(ConversationState))
        assert "ข้อความที่จะลบทิ้ง" not in json.dumps(state.data, ensure_ascii=False)
    bot.text(user, "เสร็จแล้ว")
    bot.text(user, "ไม่แน่ใจ")
    bot.text(user, "ไม่ทราบ")
    bot.text(user, "ไม่มี")
    bot.text(user, "1")
    bot.text(user, "ยืนยัน")
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert c.description == "ข้อความที่เก็บไว้" and c.occurred_text == "unsure" and c.place is None


def test_words_typed_at_the_evidence_step_join_the_description_and_the_reporter_is_told(bot, services):
    from handlers.i18n import t

    user = new_user()
    to_evidence(bot, user, ("เจ้าหน้าที่เรียกเงิน 500 บาทเพื่อให้ได้คิวก่อน",))
    assert bot.last_text(user).startswith("มีหลักฐานไหม")
    bot.text(user, "อีกอย่างคือเขาบอกว่าถ้าไม่จ่ายจะไม่ได้ใบอนุญาตค่ะ")
    assert bot.last_text(user) == t("c_text_added_at_evidence", "th", count=2, s="s")
    bot.postback(user, "action=c_next")
    bot.postback(user, "action=c_id&v=anonymous")
    assert "ถ้าไม่จ่ายจะไม่ได้ใบอนุญาต" in bot.last_text(user)  # in the summary before sending
    bot.postback(user, "action=c_submit")
    with services.db.Session() as s:
        description = s.scalar(select(Complaint)).description
    assert "500 บาท" in description and "ถ้าไม่จ่ายจะไม่ได้ใบอนุญาต" in description


def test_evidence_wrong_type_and_too_large_are_refused_with_a_clear_answer(bot, services, monkeypatch):
    user = new_user()
    bot.text(user, "แจ้งเบาะแส")
    bot.text(user, "1")
    bot.text(user, "2")
    mid = str(secrets.randbelow(10**17))
    bot.fake.contents[mid] = (b"MZ\x90\x00 this is an exe", "application/octet-stream")
    bot.send(user, "message", message={"type": "file", "id": mid, "fileName": "invoice.exe", "fileSize": 20})
    assert "ไม่ได้เก็บไว้" in bot.last_text(user)
    bot.send(user, "message", message={"type": "file", "id": "9", "fileName": "big.pdf",
                                       "fileSize": evidence.MAX_BYTES + 1})
    assert "ใหญ่เกิน" in bot.last_text(user)
    monkeypatch.setattr(evidence, "MAX_BYTES", 1000)
    big = io.BytesIO()
    Image.new("RGB", (400, 400), "white").save(big, "PNG")
    noise = bytes(secrets.token_bytes(3000))
    image_message(bot, user, big.getvalue() + noise, "image/png")
    assert "ใหญ่เกิน" in bot.last_text(user)
    pdf = b"%PDF-1.4\n% test\n"
    mid = str(secrets.randbelow(10**17))
    bot.fake.contents[mid] = (pdf, "application/pdf")
    bot.send(user, "message", message={"type": "file", "id": mid, "fileName": "ใบเสร็จ.pdf", "fileSize": len(pdf)})
    assert "ได้รับหลักฐานแล้ว (1" in bot.last_text(user)
    bot.send(user, "message", message={"type": "location", "id": "77", "latitude": 13.75, "longitude": 100.5,
                                       "address": "หน้าสำนักงานเขต"})
    assert "ได้รับหลักฐานแล้ว (2" in bot.last_text(user)
    with services.db.Session() as s:
        kinds = sorted((e.kind, e.filename) for e in s.scalars(select(ComplaintEvidence)))
    assert kinds == [("file", "ใบเสร็จ.pdf"), ("location", None)]


def test_edit_from_the_summary_returns_to_the_summary(bot, services):
    user = new_user()
    bot.text(user, "แจ้งเบาะแส")
    bot.text(user, "1")
    bot.text(user, "3")
    bot.text(user, "เบิกค่าล่วงเวลาเท็จ")
    bot.text(user, "done")
    bot.text(user, "15/11/2569")
    bot.text(user, "โยธา")
    bot.text(user, "none")
    bot.text(user, "anonymous")
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user) and "15 พ.ย. 2569" in bot.last_text(user)
    bot.postback(user, "action=c_edit")
    bot.postback(user, "action=c_editpart&v=where")
    bot.text(user, "ฝ่ายการคลัง")
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user) and "ฝ่ายการคลัง" in bot.last_text(user)
    bot.postback(user, "action=c_submit")
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert (c.category, c.place, c.occurred_on.isoformat()) == ("false_claim", "ฝ่ายการคลัง", "2026-11-15")


def test_the_part_to_change_can_be_typed_as_well_as_tapped(bot):
    """"What would you like to change?" typed with the button's word ("เวลา", "Where") or "แก้เวลา" at the
    summary: that part is asked again (it used to say "answer the question below" and show the summary)."""
    user = new_user()
    for typed in ("แจ้งเบาะแส", "1", "3", "เบิกค่าล่วงเวลาเท็จ", "เสร็จแล้ว", "ไม่แน่ใจ", "ไม่ทราบ", "ไม่มี", "1", "แก้ไข",
                  "เวลา"):
        bot.text(user, typed)
    assert "เกิดขึ้นเมื่อใด" in bot.last_text(user)
    bot.text(user, "15/11/2569")
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user) and "15 พ.ย. 2569" in bot.last_text(user)
    bot.text(user, "แก้สถานที่ค่ะ")
    assert "ฝ่ายหรืองานบริการใด" in bot.last_text(user)
    for typed in ("โยธา", "English", "edit", "Category"):
        bot.text(user, typed)
    assert "Which best describes it?" in bot.last_text(user)
    bot.text(user, "2")
    last = bot.last_text(user)
    assert "Procurement" in last and "Public Works" in last and "15 Nov 2569" in last, last


def test_officers_are_alerted_with_the_category_only(bot, services):
    officer_line = new_user()
    with services.db.session() as s:
        staff = StaffUser(email="officer@example.go.th", role="complaint_officer", active=True)
        s.add(staff)
        s.flush()
        office_id = services.offices.by_slug(None).id
        s.add(StaffOffice(user_id=staff.id, office_id=office_id))
        code = officers.new_link_code(s, staff, office_id, services.cipher)
        s.add(LineGroup(office_id=office_id, group_id="C" + secrets.token_hex(16), complaint_alerts=True))
        s.add(LineGroup(office_id=office_id, group_id="C" + secrets.token_hex(16), complaint_alerts=False))
    bot.text(officer_line, f"เชื่อมบัญชี {code}")
    assert "เชื่อมบัญชี LINE นี้กับคอนโซลแล้ว" in bot.last_text(officer_line)
    reporter = new_user()
    report(bot, reporter)
    alert = bot.texts(officer_line)[-1]
    assert "มีเรื่องร้องเรียนใหม่" in alert and "เรียกรับเงิน" in alert
    assert "500 บาท" not in alert
    pushes = [c for c in bot.fake.calls("/v2/bot/message/push")]
    assert len(pushes) == 2  # the officer and the one alert group, not the other group


def test_receipt_codes_are_long_random_and_forgiving_to_type():
    codes = {receipts.new_code() for _ in range(200)}
    assert len(codes) == 200
    code = codes.pop()
    assert CODE.fullmatch(code)
    assert receipts.normalize(code.lower().replace("-", " ")) == code.replace("-", "")
    assert receipts.normalize("๒" * 20) == "2" * 20
    assert receipts.normalize(code[:-1]) is None


@pytest.mark.parametrize("typed,expected", [("15/11/2569", "2026-11-15"), ("๑๕/๑๑/๒๕๖๙", "2026-11-15"),
                                            ("2026-11-15", "2026-11-15"), ("15/11/69", "2026-11-15"),
                                            ("เมื่อวาน", None), ("31/02/2569", None)])
def test_dates_typed_in_thai_ways(typed, expected):
    from bot.thaidate import parse_thai_date

    d = parse_thai_date(typed)
    assert (d.isoformat() if d else None) == expected


def test_a_draft_untouched_for_a_day_is_deleted_with_its_evidence(bot, services):
    from datetime import timedelta

    from models import utcnow

    user = new_user()
    bot.text(user, "แจ้งเบาะแส")
    bot.text(user, "1")
    bot.text(user, "1")
    bot.text(user, "ร่างที่ไม่ได้ส่ง")
    image_message(bot, user, jpeg_with_gps())
    keeper = new_user()  # another person's live draft is left alone
    bot.text(keeper, "แจ้งเบาะแส")
    bot.text(keeper, "1")
    bot.text(keeper, "1")
    image_message(bot, keeper, jpeg_with_gps())
    with services.db.session() as s:
        state = s.scalar(select(ConversationState).where(ConversationState.line_user_id == user))
        state.expires_at = utcnow() - timedelta(hours=2)
    services.processor.maintain()
    with services.db.Session() as s:
        assert s.scalar(select(ConversationState).where(ConversationState.line_user_id == user)) is None
        assert len(s.scalars(select(ComplaintEvidence)).all()) == 1  # the keeper's photo only


# -- the report flow: every input gets an answer ---------------------------------------------


STICKER = {"type": "sticker", "packageId": "1", "stickerId": "1", "stickerResourceType": "STATIC"}


def sticker(bot, user) -> dict:
    return bot.send(user, "message", message={**STICKER, "id": str(secrets.randbelow(10**17))})


def last_quick(bot, user) -> list[str]:
    """The postback data (or the action type, for a date picker) of the last message's quick replies."""
    items = (bot.fake.sent_to(user)[-1].get("quickReply") or {}).get("items", [])
    return [i["action"].get("data", i["action"]["type"]) if i["action"]["type"] == "postback"
            else i["action"]["type"] for i in items]


def failures(services) -> list[str]:
    """Events whose handling raised (LINE got no answer, and the person's next message waited)."""
    from models import WebhookEvent

    with services.db.Session() as s:
        return [e.error for e in s.scalars(select(WebhookEvent).where(WebhookEvent.error.is_not(None)))]


def draft(services, user) -> dict:
    with services.db.Session() as s:
        state = s.scalar(select(ConversationState).where(ConversationState.line_user_id == user))
        return {"state": state.state, **state.data} if state is not None else {}


def unsend(bot, user, ev: dict) -> None:
    bot.send(user, "unsend", unsend={"messageId": ev["message"]["id"]})


def to_step(bot, user, step: str, identity: str = "confidential") -> dict:
    """Walk a report up to ``step`` (tapping where one can) and return the messages typed on the way."""
    typed: dict = {}
    bot.text(user, "แจ้งเบาะแส")
    if step == "kind":
        return typed
    bot.postback(user, "action=c_kind&v=corruption")
    if step == "category":
        return typed
    bot.postback(user, "action=c_cat&v=bribe")
    if step == "description":
        return typed
    typed["description"] = bot.text(user, "เจ้าหน้าที่เรียกเงินค่าคิว")
    bot.postback(user, "action=c_next")
    if step == "when":
        return typed
    typed["when"] = bot.text(user, "15/11/2569")
    if step == "where":
        return typed
    typed["where"] = bot.text(user, "จุดบริการด่วนหน้าตลาด")
    if step == "evidence":
        return typed
    bot.postback(user, "action=c_next")
    if step == "identity":
        return typed
    bot.postback(user, f"action=c_id&v={identity}")
    if step == "name" or identity == "anonymous":
        return typed
    typed["name"] = bot.text(user, "สมศรี มีสุข")
    if step == "contact":
        return typed
    typed["contact"] = bot.text(user, "0812223333")
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user)
    return typed


def who_holds(services, needle: str) -> list[str]:
    with services.db.Session() as s:
        return sorted({table.name for table in Base.metadata.sorted_tables
                       for row in s.execute(table.select()).all()
                       if any(needle in str(v) for v in row if v is not None)})


STEP_QUESTIONS = {
    "kind": ("c_kind_question", ["action=c_kind&v=corruption", "action=c_kind&v=general", "action=cancel"]),
    "category": ("c_category_question", None),
    "description": ("c_describe", ["action=c_next", "action=cancel"]),
    "when": ("c_when_question", ["datetimepicker", "action=c_when&v=unsure", "action=cancel"]),
    "where": ("c_where_question", None),
    "evidence": ("c_evidence_question", ["action=c_next", "action=cancel"]),
    "identity": ("c_identity_question", ["action=c_id&v=anonymous", "action=c_id&v=confidential",
                                         "action=c_id&v=named", "action=cancel"]),
    "name": ("c_name_question", ["action=c_id&v=anonymous", "action=cancel"]),
    "contact": ("c_contact_question", ["action=c_skip", "action=cancel"]),
    "summary": ("c_summary", ["action=c_submit", "action=c_edit", "action=cancel"]),
}


@pytest.mark.parametrize("step", list(STEP_QUESTIONS))
def test_a_sticker_at_any_step_gets_that_step_s_question_and_buttons(bot, services, step):
    from handlers.i18n import t

    user = new_user()
    to_step(bot, user, step)
    key, buttons = STEP_QUESTIONS[step]
    sticker(bot, user)
    assert "ยังอยู่ในขั้นตอนแจ้งเบาะแส" in bot.texts(user)[-2]
    question = t(key, "th", office="x", files=10, mb=20, choices="", category="", description="", when="",
                 where="", evidence="", identity="", s="")
    assert bot.last_text(user).startswith(question.split("\n")[0][:30]), bot.last_text(user)
    quick = last_quick(bot, user)
    if buttons is not None:
        assert quick == buttons
    else:
        assert len(quick) > 2 and quick[-1] == "action=cancel"
    assert draft(services, user)["state"] == step
    assert failures(services) == []


def test_ask_about_gifts_in_the_middle_of_a_report_is_reminded_of_the_report_and_mixes_nothing_in(bot, services):
    # An exploratory tester: "เมนู", then "ask about gifts" ("type your question"), then the question typed went into
    # the report's description.
    user = new_user()
    to_step(bot, user, "evidence")
    before = draft(services, user)
    bot.text(user, "เมนู")
    bot.postback(user, "action=qa_intro")
    assert "ยังอยู่ในขั้นตอนแจ้งเบาะแส" in " ".join(bot.texts(user)[-2:])
    assert "พิมพ์คำถามเรื่องการรับของขวัญ" not in bot.last_text(user)
    assert draft(services, user) == before


@pytest.mark.parametrize("how", ["sticker", "location"])
def test_a_confidential_reporter_can_still_switch_to_anonymous_at_the_name(bot, services, how):
    user = new_user()
    bot.follow(user)
    to_step(bot, user, "name")
    if how == "sticker":
        sticker(bot, user)
    else:
        bot.send(user, "message", message={"type": "location", "id": "5", "latitude": 13.7, "longitude": 100.5})
    assert "ชื่อ-นามสกุล" in bot.last_text(user)  # the name question again, not the identity question
    assert "ต้องการเปิดเผยตัวตนแบบใด" not in bot.last_text(user)
    bot.postback(user, "action=c_id&v=anonymous")
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user) and "ตัวตน: ไม่เปิดเผยตัวตน" in bot.last_text(user)
    bot.postback(user, "action=c_submit")
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert c.identity == "anonymous" and c.reporter_enc is None and c.reporter_line_enc is None
    assert who_holds(services, user) == ["line_users"]
    assert failures(services) == []


@pytest.mark.parametrize("step,words", [("name", "ไม่เปิดเผยตัวตน"), ("name", "ไม่ระบุตัวตนครับ"),
                                        ("name", "anonymous"), ("contact", "ไม่เปิดเผยตัวตน"),
                                        ("contact", "Anonymous")])
def test_identity_words_typed_at_the_name_or_contact_are_a_choice_not_a_name(bot, services, step, words):
    user = new_user()
    bot.follow(user)
    to_step(bot, user, step)
    bot.text(user, words)
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user) and "ตัวตน: ไม่เปิดเผยตัวตน" in bot.last_text(user)
    assert "สมศรี" not in bot.last_text(user)
    bot.text(user, "ยืนยันส่ง")
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert c.identity == "anonymous" and c.reporter_enc is None and c.reporter_line_enc is None
    assert who_holds(services, user) == ["line_users"]
    assert who_holds(services, "สมศรี") == []


def test_typing_another_identity_at_the_name_switches_to_it(bot, services):
    user = new_user()
    to_step(bot, user, "name")  # confidential
    bot.text(user, "เปิดเผยชื่อ")
    assert "เปิดเผยชื่อ" in bot.texts(user)[-2] and "ชื่อ-นามสกุล" in bot.last_text(user)
    bot.text(user, "สมศรี มีสุข")
    bot.text(user, "ข้าม")
    assert "ตัวตน: เปิดเผยชื่อ — สมศรี มีสุข" in bot.last_text(user)
    bot.postback(user, "action=c_submit")
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert c.identity == "named"
        assert json.loads(services.cipher.decrypt(c.reporter_enc)) == {"name": "สมศรี มีสุข", "contact": ""}


@pytest.mark.parametrize("step", ["kind", "category", "when", "where", "identity", "name", "contact", "summary"])
def test_a_photo_before_the_evidence_step_is_kept_and_the_step_goes_on_without_dead_buttons(bot, services, step):
    from handlers.i18n import t

    user = new_user()
    to_step(bot, user, step)
    image_message(bot, user, jpeg_with_gps())
    texts = bot.texts(user)
    assert "ได้รับหลักฐานแล้ว (1 รายการ)" in texts[-2]
    assert "action=c_next" not in last_quick(bot, user)  # nothing that would do nothing here
    first_line = t(STEP_QUESTIONS[step][0], "th", office="x", files=10, mb=20, choices="", category="",
                   description="", when="", where="", evidence="", identity="", s="").split("\n")[0][:30]
    assert texts[-1].startswith(first_line), texts[-1]
    if step == "summary":
        assert "หลักฐาน: 1 รายการ" in texts[-1]
    assert draft(services, user)["state"] == step
    with services.db.Session() as s:
        assert len(s.scalars(select(ComplaintEvidence)).all()) == 1
    assert failures(services) == []


def test_a_photo_while_describing_offers_a_done_button_that_works(bot, services):
    user = new_user()
    to_step(bot, user, "description")
    image_message(bot, user, jpeg_with_gps())
    assert "ได้รับหลักฐานแล้ว (1 รายการ)" in bot.last_text(user) and "เสร็จแล้ว" in bot.last_text(user)
    assert last_quick(bot, user) == ["action=c_next", "action=cancel"]
    bot.text(user, "เรียกเงินที่เคาน์เตอร์")
    bot.postback(user, "action=c_next")
    assert "เกิดขึ้นเมื่อใด" in bot.last_text(user)


@pytest.mark.parametrize("answer", [("postback", "2030-01-01"), ("text", "01/01/2573"), ("text", "1/1/2030")])
def test_a_future_date_is_refused_whether_picked_or_typed(bot, services, answer):
    user = new_user()
    to_step(bot, user, "when")
    kind, value = answer
    if kind == "postback":
        bot.postback(user, "action=c_when&v=date", params={"date": value})
    else:
        bot.text(user, value)
    assert "ยังมาไม่ถึง" in bot.last_text(user)
    assert last_quick(bot, user) == ["datetimepicker", "action=c_when&v=unsure", "action=cancel"]
    assert draft(services, user)["state"] == "when"
    assert "occurred_on" not in draft(services, user) and "occurred_text" not in draft(services, user)
    bot.postback(user, "action=c_when&v=date", params={"date": "2026-11-01"})
    assert "ฝ่ายหรืองานบริการใด" in bot.last_text(user)
    assert draft(services, user)["occurred_on"] == "2026-11-01"


def test_submitting_after_unsending_the_description_asks_for_it_again(bot, services):
    user = new_user()
    typed = to_step(bot, user, "summary", identity="anonymous")
    unsend(bot, user, typed["description"])
    bot.postback(user, "action=c_submit")
    texts = bot.texts(user)
    assert "ยกเลิกข้อความที่เล่าเหตุการณ์" in texts[-2] and "พิมพ์เล่าเหตุการณ์อีกครั้ง" in texts[-2]
    assert "เล่าเหตุการณ์ที่พบ" in texts[-1] and "action=c_next" in last_quick(bot, user)
    assert failures(services) == []
    assert draft(services, user)["state"] == "description"
    bot.text(user, "   ")  # blank is not a description
    assert "เล่าเหตุการณ์ที่พบ" in bot.last_text(user)
    bot.text(user, "เล่าใหม่: ขอเงินใต้โต๊ะ")
    bot.text(user, "เสร็จแล้ว")
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user) and "เล่าใหม่" in bot.last_text(user)  # back to the summary
    bot.postback(user, "action=c_submit")
    assert CODE.search(" ".join(bot.texts(user)[-3:]))
    with services.db.Session() as s:
        assert s.scalar(select(Complaint.description)) == "เล่าใหม่: ขอเงินใต้โต๊ะ"
    assert failures(services) == []


def test_a_sticker_at_the_summary_after_unsending_the_description_offers_to_write_it_again(bot, services):
    user = new_user()
    bot.text(user, "English")
    typed = to_step(bot, user, "evidence")
    bot.postback(user, "action=c_next")
    bot.postback(user, "action=c_id&v=anonymous")
    assert "Check before sending" in bot.last_text(user)
    unsend(bot, user, typed["description"])
    sticker(bot, user)
    assert "unsent the messages describing what happened" in bot.last_text(user)
    assert last_quick(bot, user) == ["action=c_editpart&v=description", "action=cancel"]
    bot.postback(user, "action=c_editpart&v=description")
    assert "Tell us what happened" in bot.last_text(user)
    bot.text(user, "typed again")
    bot.postback(user, "action=c_next")
    assert "Check before sending" in bot.last_text(user)
    bot.text(user, "send")
    with services.db.Session() as s:
        assert s.scalar(select(Complaint.description)) == "typed again"
    assert failures(services) == []


def test_submitting_in_english_after_unsending_the_description(bot, services):
    user = new_user()
    bot.text(user, "English")
    typed = to_step(bot, user, "evidence")
    bot.postback(user, "action=c_next")
    bot.postback(user, "action=c_id&v=anonymous")
    unsend(bot, user, typed["description"])
    bot.postback(user, "action=c_submit")
    assert "unsent the messages describing what happened" in bot.texts(user)[-2]
    assert "type what happened again" in bot.texts(user)[-2]
    assert "Tell us what happened" in bot.last_text(user)
    assert failures(services) == []


def test_unsent_answers_are_erased_and_asked_for_again_before_sending(bot, services):
    user = new_user()
    typed = to_step(bot, user, "summary")
    for part in ("when", "where", "name", "contact"):
        unsend(bot, user, typed[part])
    stored = json.dumps(draft(services, user), ensure_ascii=False)
    for gone in ("15/11/2569", "2026-11-15", "จุดบริการด่วนหน้าตลาด", "สมศรี", "0812223333"):
        assert gone not in stored, gone
    bot.postback(user, "action=c_submit")
    assert "วันเวลาที่เกิดเหตุ" in bot.texts(user)[-2] and "เกิดขึ้นเมื่อใด" in bot.last_text(user)
    bot.text(user, "ไม่แน่ใจ")
    assert "ฝ่ายหรือสถานที่" in bot.texts(user)[-2] and "ฝ่ายหรืองานบริการใด" in bot.last_text(user)
    bot.postback(user, "action=c_place&v=unknown")
    assert "ชื่อของคุณ" in bot.texts(user)[-2] and "ชื่อ-นามสกุล" in bot.last_text(user)
    bot.text(user, "นางสาวใหม่ ชื่อจริง")
    assert "ช่องทางติดต่อ" in bot.texts(user)[-2] and "เบอร์โทรศัพท์" in bot.last_text(user)
    bot.postback(user, "action=c_skip")
    summary = bot.last_text(user)
    assert "ตรวจสอบก่อนส่ง" in summary and "เมื่อ: ไม่แน่ใจ" in summary and "ที่: ไม่ทราบ" in summary
    assert "นางสาวใหม่ ชื่อจริง" in summary
    bot.postback(user, "action=c_submit")
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert (c.occurred_on, c.occurred_text, c.place) == (None, "unsure", None)
        assert json.loads(services.cipher.decrypt(c.reporter_enc)) == {"name": "นางสาวใหม่ ชื่อจริง", "contact": ""}
    for gone in ("จุดบริการด่วนหน้าตลาด", "สมศรี", "0812223333"):
        assert who_holds(services, gone) == [], gone
    assert failures(services) == []


def test_an_unsent_typed_identity_is_asked_again_and_anonymous_then_keeps_no_name(bot, services):
    user = new_user()
    bot.follow(user)
    to_step(bot, user, "identity")
    choice = bot.text(user, "ปกปิด")
    bot.text(user, "สมศรี มีสุข")
    bot.text(user, "0812223333")
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user)
    unsend(bot, user, choice)
    bot.postback(user, "action=c_submit")
    assert "วิธีเปิดเผยตัวตน" in bot.texts(user)[-2] and "ต้องการเปิดเผยตัวตนแบบใด" in bot.last_text(user)
    bot.postback(user, "action=c_id&v=anonymous")
    assert "ตัวตน: ไม่เปิดเผยตัวตน" in bot.last_text(user) and "สมศรี" not in bot.last_text(user)
    bot.postback(user, "action=c_submit")
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert c.identity == "anonymous" and c.reporter_enc is None and c.reporter_line_enc is None
    assert who_holds(services, user) == ["line_users"] and who_holds(services, "สมศรี") == []
    assert failures(services) == []


def test_an_unsent_answer_of_an_anonymous_report_leaves_nothing_behind(bot, services):
    user = new_user()
    bot.follow(user)
    typed = to_step(bot, user, "summary", identity="anonymous")
    unsend(bot, user, typed["where"])
    bot.text(user, "ยืนยัน")
    assert "ฝ่ายหรือสถานที่" in bot.texts(user)[-2]
    bot.text(user, "ฝ่ายโยธา")
    assert "ตรวจสอบก่อนส่ง" in bot.last_text(user) and "ที่: ฝ่ายโยธา" in bot.last_text(user)
    bot.text(user, "ยืนยัน")
    with services.db.Session() as s:
        c = s.scalar(select(Complaint))
        assert c.identity == "anonymous" and c.place == "ฝ่ายโยธา" and c.reporter_line_enc is None
    assert who_holds(services, user) == ["line_users"]
    assert who_holds(services, "จุดบริการด่วนหน้าตลาด") == []


def test_a_full_description_is_kept_whole_and_what_does_not_fit_is_refused_out_loud(bot, services):
    user = new_user()
    to_step(bot, user, "description")
    sep = len("\n\n")
    part = (cases.DESCRIPTION_MAX - 2 * sep) // 3
    assert 3 * part + 2 * sep == cases.DESCRIPTION_MAX
    parts = [c * part for c in "กขค"]
    for p in parts:
        bot.text(user, p)
    assert "3 ข้อความ" in bot.last_text(user)
    bot.text(user, "ง")
    assert "ไม่ได้บันทึก" in bot.last_text(user) and "10,000" in bot.last_text(user)
    bot.text(user, "เสร็จแล้ว")
    bot.postback(user, "action=c_when&v=unsure")
    bot.postback(user, "action=c_place&v=unknown")
    bot.postback(user, "action=c_next")
    bot.postback(user, "action=c_id&v=anonymous")
    bot.postback(user, "action=c_submit")
    with services.db.Session() as s:
        description = s.scalar(select(Complaint.description))
    assert description == "\n\n".join(parts) and len(description) == cases.DESCRIPTION_MAX


def test_a_description_cut_at_submit_is_said_so(bot, services):
    user = new_user()
    to_step(bot, user, "summary", identity="anonymous")
    with services.db.session() as s:  # a draft from before the limit counted its separators
        state = s.scalar(select(ConversationState))
        data = dict(state.data)
        data["_messages"] = {"a": {"text": "ก" * 5000}, "b": {"text": "ข" * 5000}}
        state.data = data
    bot.postback(user, "action=c_submit")
    assert any("2 ตัวอักษร" in t and "ไม่ได้บันทึก" in t for t in bot.texts(user)[-4:])
    with services.db.Session() as s:
        assert len(s.scalar(select(Complaint.description))) == cases.DESCRIPTION_MAX


def test_the_english_summary_is_in_english_with_singulars(bot, services):
    user = new_user()
    bot.text(user, "English")
    bot.text(user, "report")
    bot.postback(user, "action=c_kind&v=corruption")
    bot.postback(user, "action=c_cat&v=bribe")
    bot.text(user, "asked for a fee")
    assert "(1 message)" in bot.last_text(user)
    bot.text(user, "at the counter")
    assert "(2 messages)" in bot.last_text(user)
    bot.postback(user, "action=c_next")
    bot.postback(user, "action=c_when&v=unsure")
    bot.postback(user, "action=c_place&v=1")
    image_message(bot, user, jpeg_with_gps())
    assert "(1 item)" in bot.last_text(user)
    bot.postback(user, "action=c_next")
    bot.postback(user, "action=c_id&v=anonymous")
    summary = bot.last_text(user)
    assert "Where: Registration" in summary and "ฝ่าย" not in summary
    assert "Evidence: 1 item\n" in summary
    bot.postback(user, "action=c_submit")
    with services.db.Session() as s:
        assert s.scalar(select(Complaint.place)) == "ฝ่ายทะเบียน"  # stored as the office writes it


def test_too_many_starts_say_when_to_start_again_and_that_sent_reports_are_kept(bot):
    from handlers.complaints import STARTS_PER_HOUR

    user = new_user()
    for _ in range(STARTS_PER_HOUR):
        bot.text(user, "แจ้งเบาะแส")
        bot.text(user, "ยกเลิก")
    bot.text(user, "แจ้งเบาะแส")
    last = bot.last_text(user)
    assert "นับรวมครั้งที่ยกเลิก" in last and "เรื่องที่ส่งแล้วยังอยู่ครบ" in last
    assert re.search(r"หลังเวลา \d{1,2}[:.]\d{2} น\.", last), last
