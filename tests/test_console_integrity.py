"""Console pages for the integrity Q&A and the gift register: the queue of questions people asked
an officer on LINE (answer → pushed to the asker, dismiss, teach the bot), the knowledge-base editor
with its revisions, the gift register and its xlsx export — and who is kept out of them."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from datetime import date, timedelta

from click.testing import CliRunner
from conftest import new_user
from openpyxl import load_workbook
from sqlalchemy import func, select
from test_console import Console, add_user, signed_in

from bot.cli import main
from bot.thaidate import be_date
from integrity import store
from models import AuditEntry, GiftReport, KbEntry, KbRevision, OutboxMessage, UnansweredQuestion
from surveys import campaigns

COORDINATOR = "ita@khet.go.th"
NOT_KNOWN = "รถเมล์สาย 8 ผ่านเขตนี้ไหม"  # nothing in the knowledge base answers this
POLICY_Q = "นโยบายไม่รับของขวัญคืออะไรครับ"  # gift.policy answers this


def coordinator(app, env, email: str = COORDINATOR, *offices: str) -> Console:
    add_user(app, env, email, "survey_coordinator", *offices)
    c = Console(app)
    assert c.login(email).status_code == 302
    return c


def ask_an_officer(bot, user: str, question: str = NOT_KNOWN) -> None:
    bot.text(user, question)
    assert "ไม่แน่ใจ" in bot.last_text(user) or "not sure" in bot.last_text(user).lower()
    bot.postback(user, "action=qa_ask")


def only_question(services) -> UnansweredQuestion:
    with services.db.Session() as s:
        return s.scalars(select(UnansweredQuestion)).one()


def outbox(services) -> list[OutboxMessage]:
    with services.db.Session() as s:
        return s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()


def audit_rows(services, action: str) -> list[AuditEntry]:
    with services.db.Session() as s:
        return s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def page(c: Console, path: str) -> str:
    return html.unescape(c.client.get(path).get_data(as_text=True))


def entry(services, key: str, office_id: int = 1) -> KbEntry:
    with services.db.Session() as s:
        return s.scalar(select(KbEntry).where(KbEntry.office_id == office_id, KbEntry.key == key))


def form_of(content: dict, **changes) -> dict:
    """The edit form as a browser would post it for this content, with some fields changed."""
    sources = content["sources"]
    form = {
        "title_th": content["title_th"], "title_en": content["title_en"],
        "answer_th": content["answer_th"], "answer_en": content["answer_en"],
        "read_more": content.get("read_more") or "",
        "source_th": [x["th"] for x in sources] + ["", ""], "source_en": [x["en"] for x in sources] + ["", ""],
        "examples_th": "\r\n".join(content["examples"]["th"]), "examples_en": "\r\n".join(content["examples"]["en"]),
        "related": ", ".join(content["related"]), "reviewed": content["reviewed"],
    }
    if content.get("needs_legal_review"):
        form["needs_legal_review"] = "1"
    form.update(changes)
    return form


def line_answer(bot, question: str = POLICY_Q) -> str:
    user = new_user()
    bot.text(user, question)
    return bot.last_text(user)


# -- the question queue --------------------------------------------------------------------------------


def test_a_question_asked_on_line_is_answered_from_the_console_and_reaches_the_asker(app, env, services, bot):
    asker = new_user()
    ask_an_officer(bot, asker)
    c = coordinator(app, env)

    home = page(c, "/console/")  # the dashboard says someone is waiting, and links to them
    assert 'data-questions="open">1<' in home and 'href="/console/questions?status=open"' in home
    queue = page(c, "/console/questions")
    assert NOT_KNOWN in queue and 'data-status="open">1<' in queue
    q = only_question(services)
    detail = page(c, f"/console/questions/{q.id}")
    assert NOT_KNOWN in detail and 'id="answer-form"' in detail

    answer = "รถเมล์สาย 8 ไม่ผ่านเขตนี้ค่ะ สอบถามเส้นทางได้ที่ ขสมก. 1348"
    resp = c.post(f"/console/questions/{q.id}/answer", {"answer": answer}, form_page=f"/console/questions/{q.id}")
    assert resp.status_code == 302
    assert "ส่งคำตอบถึงผู้ถามทาง LINE แล้ว" in page(c, resp.headers["Location"])

    pushes = outbox(services)
    assert len(pushes) == 1 and pushes[0].to == asker and pushes[0].reply_token is None
    sent = json.loads(pushes[0].messages)[0]["text"]
    assert answer in sent and NOT_KNOWN in sent and sent.startswith("คำตอบจากเจ้าหน้าที่")
    q = only_question(services)
    assert q.status == "answered" and q.answer == answer and q.asker_enc is None  # who asked is forgotten

    services.processor.sweep()  # the sweeper sends the outbox
    assert answer in bot.last_text(asker)
    assert outbox(services) == []

    assert NOT_KNOWN not in page(c, "/console/questions")  # no longer open
    assert 'data-questions="open">0<' in page(c, "/console/")
    viewer = signed_in(app, env, "viewer")  # whoever cannot answer questions is not shown the count
    assert "data-questions" not in viewer.client.get("/console/").get_data(as_text=True)
    answered = page(c, "/console/questions?status=answered")
    assert NOT_KNOWN in answered and "ตอบแล้ว" in answered
    (row,) = audit_rows(services, "question.answered")
    assert row.target == f"question:{q.id}" and row.detail == {"pushed": True} and row.actor_email == COORDINATOR
    assert NOT_KNOWN not in json.dumps(row.detail, ensure_ascii=False) and answer not in json.dumps(row.detail)

    # Answering twice sends nothing more.
    again = c.post(f"/console/questions/{q.id}/answer", {"answer": "อีกครั้ง"}, form_page=f"/console/questions/{q.id}")
    assert again.status_code == 409 and outbox(services) == []


def test_an_english_asker_gets_the_answer_in_english(app, env, services, bot):
    asker = new_user()
    bot.text(asker, "English")
    ask_an_officer(bot, asker, "Which bus goes past the district office?")
    c = coordinator(app, env)
    q = only_question(services)
    assert q.asker_lang == "en"
    resp = c.post(f"/console/questions/{q.id}/answer", {"answer": "Bus 8 does."},
                  form_page=f"/console/questions/{q.id}")
    assert resp.status_code == 302
    (push,) = outbox(services)
    sent = json.loads(push.messages)[0]["text"]
    assert sent.startswith("An officer") and "Which bus goes past the district office?" in sent
    assert "Bus 8 does." in sent


def test_an_empty_answer_is_refused_and_nothing_is_sent(app, env, services, bot):
    ask_an_officer(bot, new_user())
    c = coordinator(app, env)
    q = only_question(services)
    resp = c.post(f"/console/questions/{q.id}/answer", {"answer": "  "}, form_page=f"/console/questions/{q.id}")
    assert resp.status_code == 400 and "กรุณาพิมพ์คำตอบ" in resp.get_data(as_text=True)
    assert outbox(services) == [] and only_question(services).status == "open"
    # Without the form's CSRF token nothing happens either.
    assert c.client.post(f"/console/questions/{q.id}/answer", data={"answer": "x"}).status_code == 400
    assert outbox(services) == [] and only_question(services).status == "open"


def test_an_answer_with_emoji_is_measured_as_line_counts_so_the_push_is_never_refused(app, env, services, bot):
    question = NOT_KNOWN + " " + "🚌" * 900
    ask_an_officer(bot, new_user(), question)
    c = coordinator(app, env)
    q = only_question(services)
    form = f"/console/questions/{q.id}"
    # 1,999 emoji are 3,998 of LINE's characters; with the question that is over LINE's 5,000.
    resp = c.post(f"{form}/answer", {"answer": "🚌" * 1999}, form_page=form)
    assert resp.status_code == 400 and "อีโมจิหนึ่งตัวนับเป็น 2" in resp.get_data(as_text=True)
    assert outbox(services) == [] and only_question(services).status == "open"
    answer = "🚌" * 1000
    assert c.post(f"{form}/answer", {"answer": answer}, form_page=form).status_code == 302
    sent = json.loads(outbox(services)[0].messages)[0]["text"]
    assert answer in sent and question in sent and len(sent.encode("utf-16-le")) // 2 <= 5000


def test_dismissing_a_question_sends_nothing_and_forgets_the_asker(app, env, services, bot):
    ask_an_officer(bot, new_user(), "ฮัลโหล มีใครอยู่ไหม")
    c = coordinator(app, env)
    q = only_question(services)
    resp = c.post(f"/console/questions/{q.id}/dismiss", {}, form_page=f"/console/questions/{q.id}")
    assert resp.status_code == 302 and "ปิดคำถามแล้ว" in page(c, resp.headers["Location"])
    q = only_question(services)
    assert q.status == "dismissed" and q.asker_enc is None and q.answered_at is not None
    assert outbox(services) == []
    assert "ฮัลโหล" not in page(c, "/console/questions")
    assert "ฮัลโหล" in page(c, "/console/questions?status=dismissed")
    assert [r.target for r in audit_rows(services, "question.dismissed")] == [f"question:{q.id}"]


def test_a_question_of_several_lines_becomes_one_example_and_a_later_save_changes_nothing(app, env, services, bot):
    ask_an_officer(bot, new_user(), "สอบถามค่ะ\nรถเมล์สาย 8\nผ่านเขตนี้ไหม")
    c = coordinator(app, env)
    q = only_question(services)
    c.post(f"/console/questions/{q.id}/example", {"entry": "complaint.general"}, form_page=f"/console/questions/{q.id}")
    row = entry(services, "complaint.general")
    assert "สอบถามค่ะ รถเมล์สาย 8 ผ่านเขตนี้ไหม" in row.content["examples"]["th"]
    assert "ผ่านเขตนี้ไหม" not in row.content["examples"]["th"]  # not split into three "examples"
    edited = row.revision
    resp = c.post("/console/kb/complaint.general", form_of(row.content))  # saved as it stands
    assert resp.status_code == 302 and "saved" not in resp.headers["Location"]
    assert entry(services, "complaint.general").revision == edited


def test_adding_a_question_as_an_example_teaches_the_bot(app, env, services, bot):
    asker = new_user()
    ask_an_officer(bot, asker)
    c = coordinator(app, env)
    q = only_question(services)
    before = entry(services, "complaint.general").revision
    with services.db.session() as s:
        matcher, _ = store.MATCHERS.get(s, 1)
        assert matcher.match(NOT_KNOWN).id is None

    detail = page(c, f"/console/questions/{q.id}")
    assert 'value="complaint.general"' in detail
    resp = c.post(f"/console/questions/{q.id}/example", {"entry": "complaint.general"},
                  form_page=f"/console/questions/{q.id}")
    assert resp.status_code == 302
    assert "เพิ่มเป็นตัวอย่างคำถามของ complaint.general แล้ว" in page(c, resp.headers["Location"])

    row = entry(services, "complaint.general")
    assert row.revision == before + 1 and row.edited and NOT_KNOWN in row.content["examples"]["th"]
    assert only_question(services).added_to == "complaint.general"
    with services.db.session() as s:
        matcher, _ = store.MATCHERS.get(s, 1)  # rebuilt: the entry's revision changed
        assert matcher.match(NOT_KNOWN).id == "complaint.general"
    # Whoever asks it on LINE now gets the answer with its source, not "not sure".
    reply = line_answer(bot, NOT_KNOWN)
    assert "ที่มา:" in reply and "ไม่แน่ใจ" not in reply
    history = page(c, "/console/kb/complaint.general/history")
    assert COORDINATOR in history and "คอนโซล" in history
    (a,) = audit_rows(services, "question.added_as_example")
    assert a.detail["entry"] == "complaint.general" and NOT_KNOWN not in json.dumps(a.detail, ensure_ascii=False)

    # The same wording asked again cannot become an example of a second entry.
    with services.db.session() as s:
        second = store.ask_officer(s, 1, NOT_KNOWN, None, "th", services.cipher).id
    resp = c.post(f"/console/questions/{second}/example", {"entry": "gift.policy"},
                  form_page=f"/console/questions/{second}")
    assert resp.status_code == 409 and "complaint.general" in html.unescape(resp.get_data(as_text=True))
    assert NOT_KNOWN not in entry(services, "gift.policy").content["examples"]["th"]


# -- the knowledge base --------------------------------------------------------------------------------


def test_kb_list_shows_entries_with_review_date_and_flags(app, env, services, bot):
    c = coordinator(app, env)
    listing = page(c, "/console/kb")
    rows = dict(re.findall(r'<tr data-entry="([^"]+)">(.*?)</tr>', listing, re.S))
    assert len(rows) >= 24 and "gift.policy" in rows
    policy = entry(services, "gift.policy").content
    assert policy["title_th"] in rows["gift.policy"]
    assert be_date(date.fromisoformat(policy["reviewed"])) in rows["gift.policy"]  # Buddhist Era
    legal = [k for k, v in rows.items() if "มีตัวเลขตามกฎหมาย รอนิติกรตรวจ" in v]
    with services.db.Session() as s:
        flagged = {r.key for r in s.scalars(select(KbEntry).where(KbEntry.office_id == 1))
                   if r.content.get("needs_legal_review")}
    assert set(legal) == flagged and flagged
    assert not any("แก้ไขโดยสำนักงาน" in v for v in rows.values())


def test_editing_an_entry_makes_a_revision_and_changes_what_line_answers(app, env, services, bot):
    c = coordinator(app, env)
    old = entry(services, "gift.policy")
    assert old.content["answer_th"].strip()[:30] in line_answer(bot)
    new_answer = "สำนักงานเขตไม่รับของขวัญทุกชนิดจากการปฏิบัติหน้าที่ แค่อวยพรก็เพียงพอ (ฉบับแก้ไขของสำนักงาน)"
    form = form_of(old.content, answer_th=new_answer, title_en="No Gift Policy (edited)")
    resp = c.post("/console/kb/gift.policy", form)
    assert resp.status_code == 302
    assert "บันทึกเป็นฉบับใหม่แล้ว" in page(c, resp.headers["Location"])

    row = entry(services, "gift.policy")
    assert row.revision == old.revision + 1 and row.edited
    assert row.content["answer_th"] == new_answer and row.content["title_en"] == "No Gift Policy (edited)"
    assert row.content["examples"] == old.content["examples"] and row.content["sources"] == old.content["sources"]
    with services.db.Session() as s:
        rev = s.scalar(select(KbRevision).where(KbRevision.entry_id == row.id, KbRevision.revision == row.revision))
        assert rev.source == "console" and rev.staff_id is not None and rev.content["answer_th"] == new_answer
    assert new_answer in line_answer(bot)
    assert "แก้ไขโดยสำนักงาน" in re.search(r'<tr data-entry="gift.policy">(.*?)</tr>', page(c, "/console/kb"),
                                           re.S).group(1)
    (a,) = audit_rows(services, "kb.edited")
    assert a.target == "kb:1:gift.policy" and a.detail["fields"] == ["answer_th", "title_en"]

    # Saving the same content again makes no revision.
    resp = c.post("/console/kb/gift.policy", form_of(row.content))
    assert resp.status_code == 302 and entry(services, "gift.policy").revision == row.revision


def test_the_review_date_is_shown_and_typed_in_the_buddhist_era_and_a_ce_date_still_works(app, env, services):
    c = coordinator(app, env)
    old = entry(services, "gift.policy")
    shipped = date.fromisoformat(old.content["reviewed"])
    form_page = page(c, "/console/kb/gift.policy")
    shown = re.search(r'name="reviewed"[^>]*?value="([^"]*)"', form_page).group(1)
    assert shown == f"{shipped.day}/{shipped.month}/{shipped.year + 543}"  # e.g. 22/11/2569, not 2026-11-22
    assert 'type="date" name="reviewed"' not in form_page  # a browser's date picker shows the CE year

    # Saved as it is shown: nothing changed.
    resp = c.post("/console/kb/gift.policy", form_of(old.content, reviewed=shown))
    assert resp.status_code == 302 and "unchanged" in resp.headers["Location"]
    earlier = shipped - timedelta(days=3)
    typed_be = f"{earlier.day}/{earlier.month}/{earlier.year + 543}"
    assert c.post("/console/kb/gift.policy", form_of(old.content, reviewed=typed_be)).status_code == 302
    assert entry(services, "gift.policy").content["reviewed"] == earlier.isoformat()
    assert re.search(r'name="reviewed"[^>]*?value="([^"]*)"', page(c, "/console/kb/gift.policy")).group(1) == typed_be
    ce = (shipped - timedelta(days=5)).isoformat()  # CE, as before, still accepted
    assert c.post("/console/kb/gift.policy", form_of(entry(services, "gift.policy").content, reviewed=ce)
                  ).status_code == 302
    assert entry(services, "gift.policy").content["reviewed"] == ce


def test_an_invalid_edit_shows_every_problem_and_saves_nothing(app, env, services, bot):
    c = coordinator(app, env)
    old = entry(services, "gift.policy")
    other_example = entry(services, "gift.limit").content["examples"]["th"][0]
    tomorrow = (campaigns.today_bangkok() + timedelta(days=1)).isoformat()
    form = form_of(old.content, title_th="ก" * 41, answer_th="**ตัวหนา** ไม่ได้", related="gift.limit, no.such",
                   examples_en="Only one?", examples_th=form_of(old.content)["examples_th"] + "\r\n" + other_example,
                   reviewed=tomorrow, source_th=["มาตรา 128", ""], source_en=["", ""])
    with services.db.Session() as s:
        revisions = s.scalar(select(func.count(KbRevision.id)))
    resp = c.post("/console/kb/gift.policy", form)
    body = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400 and "ยังไม่ได้บันทึก" in body
    problems = re.findall(r"<li>(.*?)</li>", body.split('id="problems"')[1].split("</div>")[0])
    tomorrow_be = be_date(date.fromisoformat(tomorrow))
    # In Thai, naming the form's fields — not the knowledge base's file keys or English developer text.
    assert set(problems) == {
        "หัวข้อ (ไทย) ยาว 41 ตัวอักษร (ไม่เกิน 40)",
        "คำตอบ (ไทย) มีเครื่องหมายจัดรูปแบบ (เช่น ** หรือ #) ซึ่ง LINE จะแสดงตามตัว ให้ใช้ข้อความธรรมดา",
        "ไม่มีคำตอบรหัส no.such (คำตอบที่เกี่ยวข้อง)",
        "ตัวอย่างคำถามภาษาอังกฤษ มี 1 คำถาม (อย่างน้อย 3)",
        f'ตัวอย่างคำถาม "{other_example}" เป็นตัวอย่างของคำตอบ gift.limit อยู่แล้ว',
        f"วันที่ตรวจทาน {tomorrow_be} ยังไม่ถึง",
        "ที่มารายการที่ 1: ยังไม่ได้กรอกที่มา (อังกฤษ)",
    }, problems
    c.client.get("/console/lang/en")  # and in English for an officer who switched
    english = html.unescape(c.post("/console/kb/gift.policy", form).get_data(as_text=True))
    assert "Title (Thai) is 41 characters long (at most 40)." in english
    assert "Source 1: Source (English) is empty." in english and "'title_th'" not in english
    c.client.get("/console/lang/th")
    assert "ก" * 41 in body  # what was typed is shown again to be fixed
    row = entry(services, "gift.policy")
    assert row.revision == old.revision and row.content == old.content and not row.edited
    with services.db.Session() as s:
        assert s.scalar(select(func.count(KbRevision.id))) == revisions
    assert audit_rows(services, "kb.edited") == []
    assert "ตัวหนา" not in line_answer(bot)

    resp = c.post("/console/kb/gift.policy", form_of(old.content, reviewed="เมื่อวาน"))
    assert resp.status_code == 400 and "วันที่ตรวจทานไม่ถูกต้อง" in resp.get_data(as_text=True)


def test_every_knowledge_base_problem_is_worded_in_thai_and_english_in_the_console_catalog():
    import inspect
    import tomllib
    from pathlib import Path

    from integrity import kb

    codes = set(re.findall(r'(?:bad|Problem)\((?:"[^"]*", )?"([a-z_]+)"', inspect.getsource(kb.validate)))
    assert {"too_long", "example_elsewhere", "required_missing"} <= codes and len(codes) > 30
    catalog = tomllib.loads((Path(kb.__file__).parents[1] / "bot/console/messages.toml").read_text(encoding="utf-8"))
    for code in codes:
        entry = catalog.get(f"kb_problem_{code}")
        assert entry and re.search("[\u0e00-\u0e7f]", entry["th"]) and entry["en"], code


def test_an_older_revision_can_be_shown_and_restored(app, env, services, bot):
    c = coordinator(app, env)
    original = entry(services, "gift.policy").content
    edited = "คำตอบที่แก้ไขแล้วชั่วคราว ไม่รับของขวัญทุกชนิด"
    assert c.post("/console/kb/gift.policy", form_of(original, answer_th=edited)).status_code == 302
    assert edited in line_answer(bot)

    history = page(c, "/console/kb/gift.policy/history")
    revs = re.findall(r'<tr data-revision="(\d+)"[^>]*>(.*?)</tr>', history, re.S)
    assert [n for n, _ in revs] == ["2", "1"]
    assert COORDINATOR in revs[0][1] and "ไฟล์ที่มากับระบบ" in revs[1][1]  # who, or "the file"
    old = page(c, "/console/kb/gift.policy/history?rev=1")
    assert original["answer_th"].strip() in old and 'id="restore-form"' in old
    resp = c.post("/console/kb/gift.policy/restore", {"rev": "1"}, form_page="/console/kb/gift.policy/history?rev=1")
    assert resp.status_code == 302 and "นำฉบับเดิมกลับมาใช้แล้ว" in page(c, resp.headers["Location"])
    row = entry(services, "gift.policy")
    assert row.revision == 3 and row.content == {**original, "id": "gift.policy"}
    assert original["answer_th"].strip()[:30] in line_answer(bot) and edited not in line_answer(bot)
    assert audit_rows(services, "kb.restored")[0].detail == {"from_revision": 1, "revision": 3}
    assert c.client.get("/console/kb/gift.policy/history?rev=99").status_code == 404

    # Back to the shipped file: the entry follows the files again.
    c.post("/console/kb/gift.policy", form_of(original, answer_th=edited))
    resp = c.post("/console/kb/gift.policy/revert", {}, form_page="/console/kb/gift.policy/history")
    assert resp.status_code == 302
    row = entry(services, "gift.policy")
    assert not row.edited and row.content["answer_th"] == original["answer_th"] and row.revision == 5
    assert len(audit_rows(services, "kb.reverted_to_file")) == 1


def test_reverting_an_entry_that_already_has_the_file_s_content_changes_nothing_and_says_so(app, env, services):
    c = coordinator(app, env)
    original = entry(services, "gift.policy").content
    c.post("/console/kb/gift.policy", form_of(original, answer_th="ไม่รับของขวัญทุกชนิด (ฉบับแก้ไข)"))
    history = "/console/kb/gift.policy/history"
    assert c.post("/console/kb/gift.policy/revert", {}, form_page=history).status_code == 302
    before = entry(services, "gift.policy")
    with services.db.Session() as s:
        revisions = s.scalar(select(func.count(KbRevision.id)))
    # Again (a second click, or a tab opened before the first): the entry already follows the file.
    resp = c.post("/console/kb/gift.policy/revert", {}, form_page=history)
    assert resp.status_code == 302
    assert "ไม่มีการเปลี่ยนแปลง" in page(c, resp.headers["Location"])
    after = entry(services, "gift.policy")
    assert (after.revision, after.content, after.edited) == (before.revision, before.content, False)
    with services.db.Session() as s:
        assert s.scalar(select(func.count(KbRevision.id))) == revisions
    assert len(audit_rows(services, "kb.reverted_to_file")) == 1


# -- the gift register ---------------------------------------------------------------------------------


def file_gift_on_line(bot, services, item: str = "กระเช้าผลไม้") -> str:
    """An enrolled member of staff reports a gift received today through the LINE flow."""
    user = new_user()
    with services.db.session() as s:
        code = campaigns.invite_staff(s, 1, "สมศรี ทดสอบ", "ฝ่ายปกครอง", date(2020, 1, 1))
    bot.text(user, code)
    bot.text(user, "รายงานของขวัญ")
    bot.postback(user, "action=r_giver&v=served")
    bot.text(user, item)
    bot.text(user, "๑,๕๐๐")
    bot.postback(user, "action=r_today")
    bot.postback(user, "action=r_act&v=returned")
    return re.search(r"G-[A-Z0-9]+", bot.last_text(user)).group(0)


def test_the_gift_register_lists_a_report_filed_on_line_and_exports_it(app, env, services, bot, tmp_path):
    reference = file_gift_on_line(bot, services)
    today = campaigns.today_bangkok()
    c = coordinator(app, env)
    register = page(c, "/console/gifts")  # this fiscal year by default
    row = re.search(rf'<tr data-reference="{reference}">(.*?)</tr>', register, re.S).group(1)
    for shown in ("กระเช้าผลไม้", "1,500", be_date(today), "ผู้มารับบริการ", "ส่งคืนผู้ให้", "สมศรี ทดสอบ"):
        assert shown in row, shown
    fy = today.year + 543 + (1 if today.month >= 10 else 0)
    assert f"ปีงบประมาณ {fy} รอบ 6 เดือน" in register and f"ปีงบประมาณ {fy} รอบ 12 เดือน" in register
    assert f"1 ต.ค. {fy - 1}" in register  # the fiscal year starts on 1 October

    before = (today - timedelta(days=40)).isoformat(), (today - timedelta(days=30)).isoformat()
    assert reference not in page(c, f"/console/gifts?from={before[0]}&to={before[1]}")
    assert "วันเริ่มต้องไม่อยู่หลังวันสิ้นสุด" in page(c, f"/console/gifts?from={today}&to={before[0]}")

    link = re.search(r'href="(/console/gifts\.xlsx[^"]*)"', register).group(1)
    resp = c.client.get(html.unescape(link))
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in resp.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(resp.data)).active
    cells = [[v for v in r if v is not None] for r in sheet.iter_rows(values_only=True)]
    header = next(r for r in cells if "เลขอ้างอิง" in r)
    assert "วันที่ได้รับ" in header and "มูลค่า (บาท)" in header and "ผู้รายงาน" in header
    line = next(r for r in cells if reference in r)
    assert be_date(today) in line and "กระเช้าผลไม้" in line and 1500 in line and "สมศรี ทดสอบ" in line
    assert str(today.year + 543) in be_date(today)
    (a,) = audit_rows(services, "gifts.exported")
    assert a.detail["reports"] == 1 and a.actor_email == COORDINATOR

    out = tmp_path / "gifts.xlsx"
    result = CliRunner().invoke(main, ["gifts", "export", "--from", (today - timedelta(days=1)).isoformat(),
                                       "--to", today.isoformat(), "--output", str(out)], env=env)
    assert result.exit_code == 0, result.output
    cells = [v for r in load_workbook(out).active.iter_rows(values_only=True) for v in r]
    assert reference in cells and be_date(today) in cells


# -- who may -------------------------------------------------------------------------------------------


def test_another_office_s_questions_entries_and_gifts_answer_404(app, env, services, bot):
    other_id = services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    with services.db.session() as s:
        theirs = store.ask_officer(s, other_id, "คำถามของหนองจอก", "U" + "b" * 32, "th", services.cipher).id
        store.sync(s, other_id)
        store.report_gift(s, other_id, None, giver_type="served", item="ของหนองจอก", value_baht=100,
                          received_on=campaigns.today_bangkok(), action="declined")
    c = coordinator(app, env)
    assert "คำถามของหนองจอก" not in page(c, "/console/questions?status=all")
    assert c.client.get(f"/console/questions/{theirs}").status_code == 404
    for action, data in (("answer", {"answer": "x"}), ("dismiss", {}), ("example", {"entry": "gift.policy"})):
        resp = c.post(f"/console/questions/{theirs}/{action}", data, form_page="/console/kb")
        assert resp.status_code == 404, action
    with services.db.Session() as s:
        q = s.get(UnansweredQuestion, theirs)
        assert q.status == "open" and q.asker_enc is not None
    assert outbox(services) == []

    assert c.client.get(f"/console/kb?office_id={other_id}").status_code == 404
    assert c.client.get(f"/console/kb/gift.policy?office_id={other_id}").status_code == 404
    assert c.client.get(f"/console/kb/gift.policy/history?office_id={other_id}").status_code == 404
    before = entry(services, "gift.policy", other_id)
    resp = c.post(f"/console/kb/gift.policy?office_id={other_id}", form_of(before.content, answer_th="แก้ข้ามเขต"),
                  form_page="/console/kb")
    assert resp.status_code == 404 and entry(services, "gift.policy", other_id).revision == before.revision
    resp = c.post(f"/console/kb/gift.policy/restore?office_id={other_id}", {"rev": "1"}, form_page="/console/kb")
    assert resp.status_code == 404

    assert "ของหนองจอก" not in page(c, "/console/gifts")
    assert c.client.get(f"/console/gifts?office_id={other_id}").status_code == 404
    assert c.client.get(f"/console/gifts.xlsx?office_id={other_id}").status_code == 404
    sheet = load_workbook(io.BytesIO(c.client.get("/console/gifts.xlsx").data)).active
    assert "ของหนองจอก" not in [v for r in sheet.iter_rows(values_only=True) for v in r]
    with services.db.Session() as s:
        assert s.scalar(select(func.count(GiftReport.id))) == 1


PAGES = ("/console/questions", "/console/kb", "/console/kb/gift.policy", "/console/kb/gift.policy/history",
         "/console/gifts", "/console/gifts.xlsx")


def test_roles_without_the_permission_get_403_and_the_tabs_follow_the_role(app, env, services, bot):
    viewer = signed_in(app, env, "viewer")
    for path in PAGES:
        assert viewer.client.get(path).status_code == 403, path
    officer = signed_in(app, env, "complaint_officer")
    for path in PAGES:
        assert officer.client.get(path).status_code == 403, path
    admin = signed_in(app, env, "admin")  # the gift register yes, the Q&A no
    assert admin.client.get("/console/gifts").status_code == 200
    assert admin.client.get("/console/gifts.xlsx").status_code == 200
    for path in PAGES[:4]:
        assert admin.client.get(path).status_code == 403, path
    tabs = page(admin, "/console/")
    assert 'href="/console/gifts"' in tabs and 'href="/console/questions"' not in tabs

    ita = coordinator(app, env)
    tabs = page(ita, "/console/")
    for href in ("/console/questions", "/console/kb", "/console/gifts"):
        assert f'href="{href}"' in tabs
    assert "ทะเบียนของขวัญ" in tabs and "คลังคำตอบ" in tabs
    ita.client.get("/console/lang/en")
    assert "Gift register" in page(ita, "/console/gifts") and "Knowledge base" in page(ita, "/console/kb")


def test_without_a_session_the_pages_send_to_sign_in(app, services):
    with services.db.session() as s:
        ask_question = store.ask_officer(s, 1, NOT_KNOWN, "U" + "c" * 32, "th", services.cipher).id
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    for path in (*PAGES, f"/console/questions/{ask_question}"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/console/login" in resp.headers["Location"], path
    resp = client.post(f"/console/questions/{ask_question}/answer", data={"answer": "x"})
    assert resp.status_code in (302, 400)
    with services.db.Session() as s:
        assert s.get(UnansweredQuestion, ask_question).status == "open"
        assert s.scalar(select(func.count(OutboxMessage.id))) == 0


def test_a_gift_item_typed_like_a_formula_is_exported_as_text_never_as_a_formula(app, env, services, bot):
    planted = '=HYPERLINK("https://evil.example/x","เปิด")'
    reference = file_gift_on_line(bot, services, item=planted)
    c = coordinator(app, env)
    data = c.client.get("/console/gifts.xlsx").data
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet_xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml  # no formula anywhere in the workbook
    cells = [v for r in load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True) for v in r]
    assert planted in cells and reference in cells  # the staff member's words, shown as typed


def test_an_answer_sent_after_signing_out_is_handed_back_not_lost(app, env, services, bot):
    ask_an_officer(bot, new_user())
    c = coordinator(app, env)
    q = only_question(services)
    token = c.csrf(f"/console/questions/{q.id}")
    answer = "รถเมล์สาย 8 ไม่ผ่านเขตนี้ค่ะ ลองสาย 511 ที่ป้ายหน้าสำนักงานเขตได้เลย"
    signed_out = app.test_client()  # the session ended in another tab: the browser has no session cookie
    resp = signed_out.post(f"/console/questions/{q.id}/answer", data={"csrf_token": token, "answer": answer},
                           base_url="https://bot.example.go.th")
    page_ = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "แบบฟอร์มนี้หมดอายุแล้ว" in page_ and "/console/login" in page_
    assert answer in page_  # to copy, not retype
    assert only_question(services).status == "open"
    c.client.get("/console/lang/en")  # in the language the officer chose
    resp = c.client.post(f"/console/questions/{q.id}/answer", data={"answer": answer})  # no token
    page_ = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "This form has expired" in page_ and '<html lang="en">' in page_


def test_saving_an_out_of_date_form_does_not_overwrite_a_newer_save(app, env, services):
    c = coordinator(app, env)
    row = entry(services, "gift.limit")
    seen = str(row.revision)  # both tabs opened the same revision
    tab2 = form_of(row.content, answer_en="Tab two's English answer.", revision=seen)
    assert c.post("/console/kb/gift.limit", tab2).status_code == 302
    tab1 = form_of(row.content, answer_th="คำตอบภาษาไทยจากแท็บแรก", revision=seen)
    resp = c.post("/console/kb/gift.limit", tab1)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "ฉบับใหม่กว่า" in body and "คำตอบภาษาไทยจากแท็บแรก" in body  # kept to save again
    now = entry(services, "gift.limit")
    assert now.content["answer_en"] == "Tab two's English answer." and now.revision == row.revision + 1
    assert f'name="revision" value="{now.revision}"' in page(c, "/console/kb/gift.limit")
