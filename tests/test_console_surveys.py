"""Console pages for surveys: campaigns, sources and posters, reach, participation, staff import."""

from __future__ import annotations

import re
from datetime import timedelta

from conftest import new_user
from sqlalchemy import select
from test_console import Console, add_user

from models import AuditEntry, StaffMember, SurveyAnswered, SurveyCampaign, TrackedLink
from surveys.campaigns import today_bangkok

TODAY = today_bangkok()


def coordinator(app, env) -> Console:
    add_user(app, env, "coord@khet.go.th", "survey_coordinator")
    c = Console(app)
    assert c.login("coord@khet.go.th").status_code == 302
    return c


def create(c: Console, kind="EIT", url="https://itas.nacc.go.th/eit/x", **extra):
    data = {"kind": kind, "office_id": "1", "url": url, "opens": (TODAY - timedelta(days=5)).isoformat(),
            "closes": (TODAY + timedelta(days=50)).isoformat(), "target": "100"}
    data.update(extra)
    return c.post("/console/surveys", data)


def _actions(services):
    with services.db.Session() as s:
        return [e.action for e in s.scalars(select(AuditEntry))]


def test_coordinator_creates_a_campaign_adds_a_poster_source_and_sees_reach(app, env, services, bot):
    c = coordinator(app, env)
    bad = create(c, url="http://not-https.example")
    assert bad.status_code == 400 and "https" in bad.get_data(as_text=True)
    resp = create(c)
    assert resp.status_code == 302
    detail_path = resp.headers["Location"]
    resp = c.post(detail_path + "/sources", {"source": "poster:counter-1"}, form_page=detail_path)
    assert resp.status_code == 302
    with services.db.Session() as s:
        link = s.scalar(select(TrackedLink).where(TrackedLink.source == "poster:counter-1"))
    for _ in range(4):
        app.test_client().get(f"/s/{link.token}")
    page = c.client.get(detail_path).get_data(as_text=True)
    assert "poster:counter-1" in page and f"/s/{link.token}" in page
    assert "<th>ลิงก์</th>" in page and 'data-label="ลิงก์"' in page and ">Link<" not in page  # Thai, as the page
    c.client.get("/console/lang/en")
    assert "<th>Link</th>" in c.client.get(detail_path).get_data(as_text=True)
    c.client.get("/console/lang/th")
    assert re.search(r'<td data-label="[^"]+" class="num">4</td>', page)
    csv = c.client.get(detail_path + "/reach.csv").get_data(as_text=True)
    assert "poster:counter-1,4" in csv.replace(" ", "") or "poster:counter-1,4" in csv
    pdf = c.client.get(f"{detail_path}/poster/{link.id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    listing = c.client.get("/console/surveys").get_data(as_text=True)
    assert "EIT" in listing and "0 / 100" in listing
    for action in ("survey.created", "survey.source_added", "survey.reach_exported", "survey.poster_downloaded"):
        assert action in _actions(services)


def test_iit_participation_is_shown_by_division_only_and_small_divisions_are_suppressed(app, env, services):
    c = coordinator(app, env)
    resp = create(c, kind="IIT", url="https://itas.nacc.go.th/iit/x")
    cid = int(resp.headers["Location"].rsplit("/", 1)[-1])
    long_ago = TODAY - timedelta(days=800)
    with services.db.session() as s:
        for i in range(6):
            uid = new_user()
            s.add(StaffMember(office_id=1, name=f"ทะเบียน {i}", division="ฝ่ายทะเบียน", started_on=long_ago,
                              line_user_id=uid))
            if i < 3:
                s.add(SurveyAnswered(campaign_id=cid, line_user_id=uid))
        for i in range(3):
            uid = new_user()
            s.add(StaffMember(office_id=1, name=f"โยธา {i}", division="ฝ่ายโยธา", started_on=long_ago, line_user_id=uid))
            s.add(SurveyAnswered(campaign_id=cid, line_user_id=uid))
    page = c.client.get(f"/console/surveys/{cid}").get_data(as_text=True)
    divisions = page[page.index('id="divisions"'):]
    assert "3 (50%)" in divisions
    row = divisions[divisions.index("ฝ่ายโยธา"):divisions.index("</tr>", divisions.index("ฝ่ายโยธา"))]
    shown = re.sub(r"<[^>]+>", " ", row)  # what a person reads in that row
    assert "น้อยกว่า 5 คน" in shown and "3" not in shown.replace("น้อยกว่า 5 คน", "")
    for name in ("ทะเบียน 0", "โยธา 0"):
        assert name not in page  # never who, only how many


def test_staff_csv_import_prints_slips_whose_codes_work_in_line(app, env, services, bot):
    c = coordinator(app, env)
    csv = "ชื่อ,ฝ่าย,วันเริ่มงาน\nสมชาย ใจดี,ฝ่ายทะเบียน,2019-05-01\nวิไล รักดี,ฝ่ายโยธา,๒๐๒๐-๐๑-๑๕\n".encode()
    import io

    data = {"file": (io.BytesIO(csv), "staff.csv"), "csrf_token": c.csrf("/console/staff")}
    resp = c.client.post("/console/staff", data=data, content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    codes = re.findall(r'class="code big">([A-Z0-9]{4}-[A-Z0-9]{4})<', page)
    assert resp.status_code == 200 and len(codes) == 2 and "สมชาย ใจดี" in page
    user = new_user()
    bot.text(user, codes[1])
    assert "วิไล รักดี" in bot.last_text(user)
    with services.db.Session() as s:
        assert s.scalar(select(StaffMember).where(StaffMember.name == "วิไล รักดี")).started_on.year == 2020
    bad = {"file": (io.BytesIO(b"no date here,x\n"), "bad.csv"), "csrf_token": c.csrf("/console/staff")}
    resp = c.client.post("/console/staff", data=bad, content_type="multipart/form-data")
    assert resp.status_code == 400
    assert "staff.imported" in _actions(services)


def test_other_roles_and_other_offices_are_kept_out(app, env, services):
    c = coordinator(app, env)
    cid = int(create(c).headers["Location"].rsplit("/", 1)[-1])
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    add_user(app, env, "coord@nongchok.go.th", "survey_coordinator", "nongchok")
    other = Console(app)
    other.login("coord@nongchok.go.th")
    assert other.client.get(f"/console/surveys/{cid}").status_code == 404
    assert other.client.get(f"/console/surveys/{cid}/reach.csv").status_code == 404
    add_user(app, env, "viewer@khet.go.th", "viewer")
    viewer = Console(app)
    viewer.login("viewer@khet.go.th")
    assert viewer.client.get("/console/surveys").status_code == 403
    assert viewer.client.get("/console/staff").status_code == 403


def test_groups_get_a_division_and_receive_the_announcement(app, env, services, bot, fake_line):
    c = coordinator(app, env)
    cid = int(create(c).headers["Location"].rsplit("/", 1)[-1])
    gid = "C" + "d" * 32
    bot.send("-", "join", source={"type": "group", "groupId": gid})
    page = c.client.get("/console/groups").get_data(as_text=True)
    assert gid[-6:] in page and gid not in page  # shown shortened
    from models import LineGroup

    with services.db.Session() as s:
        group_row = s.scalar(select(LineGroup))
    resp = c.post("/console/groups", {"group_id": str(group_row.id), "division": "ฝ่ายทะเบียน"})
    assert resp.status_code == 302
    resp = c.post(f"/console/surveys/{cid}/announce", {}, form_page=f"/console/surveys/{cid}")
    assert resp.status_code == 302 and "announced=1" in resp.headers["Location"]
    (push,) = fake_line.calls("/v2/bot/message/push")
    assert push.json["to"] == gid and push.json["messages"][0]["type"] == "flex"
    # No "ตอบแล้ว" button in a group: the bot would not act on it and colleagues would see who tapped it.
    bubble = push.json["messages"][0]["contents"]
    assert [b["action"]["type"] for b in bubble["footer"]["contents"]] == ["uri"]
    assert "survey_done" not in str(bubble) and "ไม่ต้องแจ้งในกลุ่ม" in str(bubble)
    with services.db.Session() as s:
        assert s.scalar(select(TrackedLink).where(TrackedLink.source == "group:ฝ่ายทะเบียน")) is not None
    assert {"group.division_set", "survey.announced"} <= set(_actions(services))


def test_reach_chart_shows_clicks_by_source(app, env, services):
    c = coordinator(app, env)
    detail = create(c).headers["Location"]
    for name in ("facebook", "poster:counter-1"):
        c.post(detail + "/sources", {"source": name}, form_page=detail)
    with services.db.Session() as s:
        tokens = {link.source: link.token for link in s.scalars(select(TrackedLink))}
    for _ in range(2):
        app.test_client().get(f"/s/{tokens['facebook']}")
    app.test_client().get(f"/s/{tokens['poster:counter-1']}")
    page = c.client.get(detail).get_data(as_text=True)
    bars = re.findall(r"<title>[^<·]*· ([^<]+): (\d+)</title>", page)
    assert ("facebook", "2") in bars and ("poster:counter-1", "1") in bars


def test_an_announcement_the_quota_cannot_pay_for_is_not_sent_and_a_failed_group_is_counted(app, env, services, bot,
                                                                                                fake_line):
    from fakeline import Fault

    c = coordinator(app, env)
    cid = int(create(c).headers["Location"].rsplit("/", 1)[-1])
    groups = ["C" + ch * 32 for ch in "ef"]
    for gid in groups:
        bot.send("-", "join", source={"type": "group", "groupId": gid})
    fake_line.group_sizes = {groups[0]: 40, groups[1]: 30}
    fake_line.quota, fake_line.used = 500, 440  # 60 left, 70 needed
    detail = f"/console/surveys/{cid}"
    resp = c.post(f"{detail}/announce", {}, form_page=detail)
    assert resp.status_code == 302 and "announced" not in resp.headers["Location"]
    assert fake_line.calls("/v2/bot/message/push", ok_only=False) == []
    page = c.client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "ต้องใช้ 70 ข้อความ" in page and "เหลือ 60 ข้อความ" in page
    fake_line.used = 400  # 100 left
    fake_line.faults.append(Fault("/v2/bot/message/push", 403, times=1))  # the first group removed the account
    resp = c.post(f"{detail}/announce", {}, form_page=detail)
    location = resp.headers["Location"]
    assert "announced=1" in location and "announce_failed=1" in location
    page = c.client.get(location).get_data(as_text=True)
    assert "ส่งประกาศไปยัง 1 กลุ่มแล้ว" in page and "ส่งไม่สำเร็จ 1 กลุ่ม" in page


def test_reminder_schedule_preview_costs_edits_and_cancel(app, env, services, fake_line):
    from models import LineUser, Reminder

    c = coordinator(app, env)
    detail = create(c).headers["Location"]
    with services.db.session() as s:
        s.add_all(LineUser(office_id=1, line_user_id=new_user(), following=True) for _ in range(7))
    page_path = detail + "/reminders"
    resp = c.post(page_path, {"action": "schedule"})
    assert resp.status_code == 302
    fake_line.used = 120
    page = c.client.get(page_path).get_data(as_text=True)
    assert 'id="quota-used">120 / 500<' in page
    with services.db.Session() as s:
        rows = s.scalars(select(Reminder).order_by(Reminder.send_at)).all()
    future = [r for r in rows if r.status == "scheduled"]
    assert re.search(r'id="schedule-cost">(\d+)<', page).group(1) == str(7 * len(future))
    first = rows[0]
    day = TODAY + timedelta(days=10)
    resp = c.post(page_path, {"action": "edit", "reminder_id": str(first.id), "send_at": f"{day.isoformat()}T22:30",
                              "text_th": "เตือนครับ {link}", "text_en": "Reminder {link}"})
    assert resp.status_code == 302
    resp = c.post(page_path, {"action": "cancel", "reminder_id": str(rows[1].id)})
    with services.db.Session() as s:
        edited, cancelled = s.get(Reminder, first.id), s.get(Reminder, rows[1].id)
    from zoneinfo import ZoneInfo

    local = edited.send_at.astimezone(ZoneInfo("Asia/Bangkok"))
    assert (local.date(), local.hour) == (day + timedelta(days=1), 8)  # 22:30 → 08:00 next day
    assert edited.text_th == "เตือนครับ {link}"
    assert cancelled.status == "cancelled"
    bad = c.post(page_path, {"action": "edit", "reminder_id": str(first.id), "send_at": "soon",
                             "text_th": "x", "text_en": "y"})
    assert bad.status_code == 400
    long = c.post(page_path, {"action": "edit", "reminder_id": str(first.id), "send_at": f"{day.isoformat()}T22:30",
                              "text_th": "เตือน {link} " + "ก" * 4000, "text_en": "Reminder {link}"})
    assert long.status_code == 400 and "ยาวเกิน 4,000 ตัวอักษร" in long.get_data(as_text=True)  # not "give a date"
    assert {"reminders.scheduled", "reminder.edited", "reminder.cancelled"} <= set(_actions(services))
    add_user(app, env, "viewer@khet.go.th", "viewer")
    viewer = Console(app)
    viewer.login("viewer@khet.go.th")
    assert viewer.client.get(page_path).status_code == 403


def _scheduled_reminder(c, services):
    from models import Reminder

    page_path = create(c).headers["Location"] + "/reminders"
    assert c.post(page_path, {"action": "schedule"}).status_code == 302
    with services.db.Session() as s:
        r = s.scalars(select(Reminder).where(Reminder.status == "scheduled").order_by(Reminder.send_at.desc())).first()
    return page_path, r


def test_a_reminder_edited_to_a_time_that_has_passed_is_refused_and_what_was_typed_is_shown_again(app, env, services):
    """A send time in the past was accepted (and the reminder went out at once); an error threw away the texts."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from models import Reminder

    c = coordinator(app, env)
    page_path, r = _scheduled_reminder(c, services)
    yesterday = (datetime.now(ZoneInfo("Asia/Bangkok")) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    form = {"action": "edit", "reminder_id": str(r.id), "send_at": yesterday, "audience": "eit_askers",
            "text_th": "เตือนอีกครั้ง <ด่วน> {link}", "text_en": "Once more {link}"}
    resp = c.post(page_path, form)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and re.search(r"เวลาที่ตั้ง \([^)]*25\d\d[^)]*\) ผ่านไปแล้ว", page)  # a BE date
    form_html = re.search(rf'<form method="post" class="edit-reminder">\s*<input[^>]*>\s*'
                          rf'<input type="hidden" name="reminder_id" value="{r.id}">(.*?)</form>', page, re.S).group(1)
    assert f'value="{yesterday}"' in form_html  # what was typed, not the stored time
    assert "เตือนอีกครั้ง &lt;ด่วน&gt; {link}</textarea>" in form_html and "Once more {link}</textarea>" in form_html
    assert '<option value="eit_askers" selected>' in form_html
    with services.db.Session() as s:
        assert (s.get(Reminder, r.id).send_at, s.get(Reminder, r.id).text_en) == (r.send_at, r.text_en)
    c.client.get("/console/lang/en")
    en = c.post(page_path, dict(form, send_at=yesterday.translate(str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙"))))
    assert en.status_code == 400 and "has already passed" in en.get_data(as_text=True)
    # Any other error keeps what was typed too.
    bad = c.post(page_path, dict(form, send_at="soon"))
    assert bad.status_code == 400 and "Once more {link}</textarea>" in bad.get_data(as_text=True)
    # A time to come, typed in Thai digits, is taken.
    later = (datetime.now(ZoneInfo("Asia/Bangkok")) + timedelta(days=3)).replace(hour=10, minute=0)
    ok = c.post(page_path, dict(form, send_at=later.strftime("%Y-%m-%dT%H:%M").translate(
        str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙"))))
    assert ok.status_code == 302
    with services.db.Session() as s:
        assert s.get(Reminder, r.id).send_at == later.replace(second=0, microsecond=0)


def test_a_reminder_that_has_waited_past_its_time_keeps_it_when_only_its_text_is_edited(app, env, services):
    """Its time unchanged (say it waited for quota) is not "set in the past": the text can still be mended."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from models import Reminder

    c = coordinator(app, env)
    page_path, r = _scheduled_reminder(c, services)
    past = datetime.now(ZoneInfo("Asia/Bangkok")).replace(second=0, microsecond=0) - timedelta(hours=2)
    with services.db.session() as s:
        s.get(Reminder, r.id).send_at = past
    page = c.client.get(page_path).get_data(as_text=True)
    shown = re.search(rf'name="reminder_id" value="{r.id}">\s*<label>[^<]*<input type="datetime-local" '
                      r'name="send_at" value="([^"]+)"', page).group(1)
    resp = c.post(page_path, {"action": "edit", "reminder_id": str(r.id), "send_at": shown,
                              "text_th": "แก้ข้อความ {link}", "text_en": "Mended {link}", "audience": r.audience})
    assert resp.status_code == 302
    with services.db.Session() as s:
        assert s.get(Reminder, r.id).text_th == "แก้ข้อความ {link}"


def test_a_survey_reminder_s_text_without_the_link_placeholder_is_refused_in_either_language(app, env, services):
    """Saved without {link}, a reminder would have gone out with no way to reach the survey."""
    from models import Reminder

    c = coordinator(app, env)
    page_path, r = _scheduled_reminder(c, services)
    form = {"action": "edit", "reminder_id": str(r.id), "send_at": f"{TODAY + timedelta(days=10)}T10:00",
            "audience": r.audience, "text_th": "อย่าลืมตอบแบบประเมินนะครับ {link}", "text_en": "Please answer {link}"}
    for th, en in (("อย่าลืมตอบแบบประเมินนะครับ", form["text_en"]), (form["text_th"], "Please answer"),
                   (form["text_th"], "Please answer {Link}")):
        resp = c.post(page_path, dict(form, text_th=th, text_en=en))
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400 and "ต้องมี {link}" in page, (th, en)
        assert f"{en}</textarea>" in page  # what was typed is kept
    c.client.get("/console/lang/en")
    en = c.post(page_path, dict(form, text_en="Please answer"))
    assert en.status_code == 400 and "must contain {link}" in en.get_data(as_text=True)
    with services.db.Session() as s:
        assert s.get(Reminder, r.id).text_en == r.text_en
    assert c.post(page_path, form).status_code == 302


def test_reminders_page_shows_a_send_in_progress_and_refreshes_itself_until_done(app, env, services):
    from models import Reminder, ReminderChunk

    c = coordinator(app, env)
    page_path = create(c).headers["Location"] + "/reminders"
    c.post(page_path, {"action": "schedule"})
    with services.db.session() as s:
        r = s.scalars(select(Reminder).order_by(Reminder.send_at)).first()
        r.status, r.recipients = "sending", 1200
        for seq, (size, status) in enumerate([(500, "sent"), (500, "sending"), (200, "pending")]):
            s.add(ReminderChunk(reminder_id=r.id, seq=seq, lang="th", size=size, status=status, retry_key=f"k{seq}"))
        rid = r.id
    page = c.client.get(page_path).get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="5">' in page
    assert re.search(rf'data-reminder="{rid}">ส่งแล้ว 1 จาก 3 ชุด · ถึง 500 คน<', page)
    assert '<progress max="3" value="1">' in page
    with services.db.session() as s:
        from sqlalchemy import update

        s.execute(update(ReminderChunk).values(status="sent"))
        s.execute(update(Reminder).where(Reminder.id == rid).values(status="sent"))
    page = c.client.get(page_path).get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page and "ส่งแล้ว 3 จาก 3 ชุด · ถึง 1200 คน" in page


def test_a_reminder_s_audience_and_groups_are_edited_and_costed(app, env, services, fake_line):
    from models import LineGroup, LineUser, Reminder

    c = coordinator(app, env)
    page_path = create(c).headers["Location"] + "/reminders"
    with services.db.session() as s:
        s.add_all(LineUser(office_id=1, line_user_id=new_user(), following=True) for _ in range(3))
        s.add(LineGroup(office_id=1, group_id="C" + "1" * 32, active=True))
    fake_line.group_sizes = {"C" + "1" * 32: 45}
    c.post(page_path, {"action": "schedule"})
    with services.db.Session() as s:
        rows = s.scalars(select(Reminder).where(Reminder.status == "scheduled").order_by(Reminder.send_at)).all()
    page = c.client.get(page_path).get_data(as_text=True)
    assert "(1 กลุ่ม; คิดโควตาตามจำนวนสมาชิก)" in page
    assert re.search(r'id="schedule-cost">(\d+)<', page).group(1) == str(3 * len(rows))
    form = {"action": "edit", "reminder_id": str(rows[0].id), "send_at": f"{TODAY + timedelta(days=10)}T10:00",
            "text_th": "เตือน {link}", "text_en": "Reminder {link}"}
    resp = c.post(page_path, dict(form, audience="eit_followers", include_groups="1"))
    assert resp.status_code == 302
    with services.db.Session() as s:
        assert s.get(Reminder, rows[0].id).include_groups
    page = c.client.get(page_path).get_data(as_text=True)
    assert re.search(r'id="schedule-cost">(\d+)<', page).group(1) == str(3 * len(rows) + 45)
    assert "+ กลุ่ม LINE ที่ลงทะเบียนไว้" in page
    assert c.post(page_path, dict(form, audience="iit_staff")).status_code == 400  # not an EIT audience
    resp = c.post(page_path, dict(form, audience="eit_askers"))  # unticked: no groups any more
    with services.db.Session() as s:
        r = s.get(Reminder, rows[0].id)
        assert r.audience == "eit_askers" and not r.include_groups
    edited = [e for e in _audit_entries(services) if e.action == "reminder.edited"]
    assert edited[-1].detail == {"audience": "eit_askers", "groups": False}


def _audit_entries(services):
    with services.db.Session() as s:
        return s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()


def test_admin_sets_the_office_s_sending_hours_and_what_happens_over_quota(app, env, services):
    from test_console import enrol

    from models import Office

    add_user(app, env, "admin@khet.go.th", "admin")
    c = Console(app)
    enrol(c, "admin@khet.go.th")
    page = c.client.get("/console/settings").get_data(as_text=True)
    assert 'name="send_from" value="08:00"' in page and 'name="send_until" value="20:00"' in page
    form = {"office_id": "1", "form": "reminders", "send_from": "๐๗:๓๐", "send_until": "21.00", "over_quota": "wait"}
    resp = c.post("/console/settings", form)
    assert resp.status_code == 200 and "บันทึกแล้ว" in resp.get_data(as_text=True)
    with services.db.Session() as s:
        office = s.get(Office, 1)
        assert (office.send_from, office.send_until, office.over_quota) == (7 * 60 + 30, 21 * 60, "wait")
    changed = [e for e in _audit_entries(services) if e.action == "settings.changed"][-1]
    assert changed.detail["over_quota"] == "wait" and changed.detail["send_from"] == 450
    bad = c.post("/console/settings", dict(form, send_from="20:00", send_until="08:00"))
    assert bad.status_code == 400 and "เวลาเริ่มต้องมาก่อนเวลาสิ้นสุด" in bad.get_data(as_text=True)
    assert c.post("/console/settings", dict(form, over_quota="always")).status_code == 400
    with services.db.Session() as s:
        assert s.get(Office, 1).send_from == 450  # the refused forms changed nothing
    coord = coordinator(app, env)
    page = coord.client.get(create(coord).headers["Location"] + "/reminders").get_data(as_text=True)
    assert "ส่งการแจ้งเตือนเฉพาะเวลา 07:30–21:00 น." in page and "รอจนโควตาพอสำหรับทุกคน" in page


def test_poster_for_a_thai_or_quoted_source_name_downloads_with_a_valid_header(app, env, services):
    from urllib.parse import quote

    c = coordinator(app, env)
    detail_path = create(c).headers["Location"]
    for source in ("เคาน์เตอร์ 1", 'counter "A"'):
        c.post(detail_path + "/sources", {"source": source}, form_page=detail_path)
        with services.db.Session() as s:
            link = s.scalar(select(TrackedLink).where(TrackedLink.source == source))
        resp = c.client.get(f"{detail_path}/poster/{link.id}.png")
        assert resp.status_code == 200 and resp.data.startswith(b"\x89PNG")
        header = resp.headers["Content-Disposition"]
        header.encode("ascii")  # what gunicorn sends: a Thai character here was a 500
        assert header.count('"') == 2  # one quoted ASCII name, never a broken quote
        assert f"filename*=UTF-8''{quote(f'poster-EIT-{source}.png', safe='')}" in header


def _upload(c, data: bytes):
    import io

    form = {"file": (io.BytesIO(data), "staff.csv"), "csrf_token": c.csrf("/console/staff")}
    return c.client.post("/console/staff", data=form, content_type="multipart/form-data")


def test_a_csv_from_thai_excel_imports_in_thai_with_be_dates(app, env, services, bot):
    from datetime import date

    c = coordinator(app, env)
    text = "ชื่อ,ฝ่าย,วันเริ่มงาน\r\nสมหญิง ดีใจ,ฝ่ายรายได้,1/3/2558\r\nสมปอง ใจงาม,ฝ่ายคลัง,2562-05-01\r\n"
    resp = _upload(c, text.encode("cp874"))  # what Excel saves as "CSV" on Thai Windows
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200, page
    assert "สมหญิง ดีใจ · ฝ่ายรายได้" in page and "สมปอง ใจงาม · ฝ่ายคลัง" in page and "\ufffd" not in page
    with services.db.Session() as s:
        started = {m.name: m.started_on for m in s.scalars(select(StaffMember))}
    assert started == {"สมหญิง ดีใจ": date(2015, 3, 1), "สมปอง ใจงาม": date(2019, 5, 1)}  # BE years read as BE
    future = _upload(c, "สมใจ,ฝ่ายคลัง,1/3/2599\n".encode())
    assert future.status_code == 400 and "แถวที่ 1" in future.get_data(as_text=True)
    # The row named is the row Excel shows: the header is row 1 and a blank line still counts.
    gap = _upload(c, "ชื่อ,ฝ่าย,วันเริ่มงาน\r\nสมหญิง ดีใจ,ฝ่ายรายได้,1/3/2558\r\n,,\r\nสมชาย,ฝ่ายคลัง,\r\n".encode())
    assert gap.status_code == 400 and "แถวที่ 4 ไม่ครบ" in gap.get_data(as_text=True)
    long = _upload(c, ("สมใจ" * 60 + ",ฝ่ายคลัง,1/3/2558\n").encode())  # 240 characters: more than the column holds
    assert long.status_code == 400 and "แถวที่ 1: ชื่อหรือฝ่ายยาวเกิน 200 ตัวอักษร" in long.get_data(as_text=True)
    binary = _upload(c, "ชื่อ,ฝ่าย\n".encode("utf-16"))  # neither UTF-8 nor Thai: refused, nothing stored
    assert binary.status_code == 400 and "CSV UTF-8" in binary.get_data(as_text=True)
    with services.db.Session() as s:
        assert len(s.scalars(select(StaffMember)).all()) == 2


def test_a_staff_csv_separated_by_semicolons_or_tabs_imports(app, env, services, bot):
    """Excel writes ";" where the comma is the decimal mark, and a copy from a sheet is tab-separated: such a file
    was read as one column and refused."""
    c = coordinator(app, env)
    semicolons = ("ชื่อ;ฝ่าย;วันเริ่มงาน\r\n\"สมหญิง ดีใจ\";\"ฝ่ายรายได้, งานภาษี\";1/3/2558\r\n"
                  "สมปอง ใจงาม;ฝ่ายคลัง;2562-05-01\r\n")
    resp = _upload(c, "\ufeff".encode() + semicolons.encode())  # "CSV UTF-8" from Excel, with its BOM
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200, page
    assert "สมหญิง ดีใจ · ฝ่ายรายได้, งานภาษี" in page and "สมปอง ใจงาม · ฝ่ายคลัง" in page
    tabs = _upload(c, "สมใจ ดีมาก\tฝ่ายโยธา\t๑/๓/๒๕๕๘\nสมศรี ใจงาม\tฝ่ายโยธา\t2019-05-01\n".encode("cp874"))
    assert tabs.status_code == 200 and "สมใจ ดีมาก · ฝ่ายโยธา" in tabs.get_data(as_text=True)
    with services.db.Session() as s:
        assert {(m.name, m.division) for m in s.scalars(select(StaffMember))} == {
            ("สมหญิง ดีใจ", "ฝ่ายรายได้, งานภาษี"), ("สมปอง ใจงาม", "ฝ่ายคลัง"), ("สมใจ ดีมาก", "ฝ่ายโยธา"),
            ("สมศรี ใจงาม", "ฝ่ายโยธา")}
    # A semicolon file's mistakes are named by row as before.
    gap = _upload(c, "ชื่อ;ฝ่าย;วันเริ่มงาน\r\nสมชาย;ฝ่ายคลัง;\r\n".encode())
    assert gap.status_code == 400 and "แถวที่ 2 ไม่ครบ" in gap.get_data(as_text=True)


def test_importing_again_updates_people_and_never_makes_a_second_code(app, env, services, bot):
    from surveys.campaigns import served_a_year

    c = coordinator(app, env)
    rows = "ชื่อ,ฝ่าย,วันเริ่มงาน\nสมหญิง ดีใจ,ฝ่ายรายได้,2015-03-01\nสมปอง ใจงาม,ฝ่ายรายได้,2016-01-01\n"
    first = re.findall(r'class="code big">([A-Z0-9]{4}-[A-Z0-9]{4})<', _upload(c, rows.encode()).get_data(as_text=True))
    assert len(first) == 2
    user = new_user()
    bot.text(user, first[0])
    again = _upload(c, (rows + "วิไล รักดี,ฝ่ายโยธา,2017-01-01\n").encode()).get_data(as_text=True)
    assert re.findall(r'class="code big">([A-Z0-9]{4}-[A-Z0-9]{4})<', again) != []
    summary = re.search(r'id="import-summary">([^<]*)<', again).group(1)
    assert "เพิ่มใหม่ 1 คน" in summary and "ปรับปรุงข้อมูลผู้ที่มีอยู่แล้ว 2 คน" in summary
    assert "วิไล รักดี · ฝ่ายโยธา" in again and "สมหญิง ดีใจ ·" not in again and "สมปอง ใจงาม ·" not in again
    with services.db.Session() as s:
        members = s.scalars(select(StaffMember)).all()
        assert sorted(m.name for m in members) == ["วิไล รักดี", "สมปอง ใจงาม", "สมหญิง ดีใจ"]
        assert sum(1 for m in members if m.division == "ฝ่ายรายได้" and served_a_year(m.started_on)) == 2
        somphong = next(m for m in members if m.name == "สมปอง ใจงาม")
    other = new_user()
    bot.text(other, first[1])  # the first slip still works: importing again did not replace it
    assert "สมปอง ใจงาม" in bot.last_text(other)
    # a lost or expired slip: the staff page issues a new code, and the old one stops working
    with services.db.Session() as s:
        vilai = s.scalar(select(StaffMember).where(StaffMember.name == "วิไล รักดี"))
    old = re.search(r'class="code big">([A-Z0-9]{4}-[A-Z0-9]{4})<', again).group(1)
    page = c.client.get("/console/staff").get_data(as_text=True)
    assert f"/console/staff/{vilai.id}/reissue" in page and f"/console/staff/{somphong.id}/reissue" not in page
    resp = c.post(f"/console/staff/{vilai.id}/reissue", {}, form_page="/console/staff")
    new = re.findall(r'class="code big">([A-Z0-9]{4}-[A-Z0-9]{4})<', resp.get_data(as_text=True))
    assert resp.status_code == 200 and len(new) == 1 and new[0] != old
    late = new_user()
    bot.text(late, old)
    assert "หมดอายุ" in bot.last_text(late)
    bot.text(late, new[0])
    assert "วิไล รักดี" in bot.last_text(late)
    assert "staff.code_reissued" in _actions(services)


def test_the_iit_total_never_gives_away_a_small_division_or_counts_people_who_are_not_staff(app, env, services):
    c = coordinator(app, env)
    cid = int(create(c, kind="IIT", url="https://itas.nacc.go.th/iit/x").headers["Location"].rsplit("/", 1)[-1])
    long_ago = TODAY - timedelta(days=800)
    staff: dict[str, list[str]] = {}
    with services.db.session() as s:
        for division, n in (("ฝ่ายทะเบียน", 6), ("ฝ่ายคลัง", 3)):
            for i in range(n):
                uid = new_user()
                staff.setdefault(division, []).append(uid)
                s.add(StaffMember(office_id=1, name=f"{division} {i}", division=division, started_on=long_ago,
                                  line_user_id=uid))
        s.add(SurveyAnswered(campaign_id=cid, line_user_id=staff["ฝ่ายทะเบียน"][0]))

    def seen() -> tuple[str, str]:
        page = c.client.get(f"/console/surveys/{cid}").get_data(as_text=True)
        headline = re.search(r'id="answered">([^<]*)<', page).group(1).strip()
        listing = c.client.get("/console/surveys").get_data(as_text=True)
        return headline, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", listing))

    before = seen()
    assert before[0].startswith("1 / 100")
    with services.db.session() as s:
        s.add(SurveyAnswered(campaign_id=cid, line_user_id=staff["ฝ่ายคลัง"][0]))  # the small division answers
        s.add(SurveyAnswered(campaign_id=cid, line_user_id=new_user()))  # a citizen taps ตอบแล้ว on an IIT card
    assert seen() == before  # nothing a coordinator sees has moved
    page = c.client.get(f"/console/surveys/{cid}").get_data(as_text=True)
    assert "ไม่รวม 1 ฝ่าย" in page
    # two small divisions that together reach 5 are shown as one group, and then counted
    with services.db.session() as s:
        for i in range(2):
            s.add(StaffMember(office_id=1, name=f"โยธา {i}", division="ฝ่ายโยธา", started_on=long_ago,
                              line_user_id=new_user()))
    page = c.client.get(f"/console/surveys/{cid}").get_data(as_text=True)
    other = page[page.index('id="other-divisions"'):]
    other = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", other[:other.index("</tr>")]))
    assert "ฝ่ายอื่น ๆ รวมกัน (2 ฝ่าย" in other and " 5 5 1 (20%)" in other
    assert re.search(r'id="answered">\s*2 / 100', page) and "ไม่รวม" not in page.split('id="answered"')[1][:300]


def test_campaign_form_reads_buddhist_era_years_and_refuses_typos_and_overlaps_in_thai(app, env, services):
    c = coordinator(app, env)
    opens, closes = TODAY - timedelta(days=5), TODAY + timedelta(days=50)

    def be(d):
        return f"{d.year + 543}-{d.month:02d}-{d.day:02d}"

    resp = create(c, opens=be(opens), closes=be(closes),
                  internal_deadline=f"{closes.day}/{closes.month}/{closes.year + 543}")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    with services.db.Session() as s:
        made = s.scalar(select(SurveyCampaign))
    assert (made.opens_on, made.closes_on, made.internal_deadline) == (opens, closes, closes)
    # The same kind again over the same dates: refused, naming campaign 1, in Thai.
    again = create(c, opens=(TODAY + timedelta(days=10)).isoformat())
    page = again.get_data(as_text=True)
    assert again.status_code == 400 and "ซ้อนกันอยู่แล้ว" in page and "รายการที่ 1" in page
    # A year far off (a BE year typed twice over, or a plain typo): refused with the allowed range.
    far = create(c, kind="IIT", url="https://itas.nacc.go.th/iit/x", closes="2035-06-30")
    assert far.status_code == 400 and "ห่างจากวันนี้เกินไป" in far.get_data(as_text=True)
    # A huge or a nonsense target: a clear error, not a 500 and not silently dropped.
    for target in ("99999999999999999999", "-5", "abc", "1,00", "1.200"):  # "1,00" was read as 100
        bad = create(c, kind="IIT", url="https://itas.nacc.go.th/iit/x", target=target)
        assert bad.status_code == 400 and "เป้าหมาย" in bad.get_data(as_text=True), target
    with services.db.Session() as s:
        assert len(s.scalars(select(SurveyCampaign)).all()) == 1
    # With its thousands separator, in Thai digits: read as typed.
    good = create(c, kind="IIT", url="https://itas.nacc.go.th/iit/x", target=" ๑,๒๐๐ ")
    assert good.status_code == 302, good.get_data(as_text=True)
    with services.db.Session() as s:
        assert s.scalar(select(SurveyCampaign.target).where(SurveyCampaign.kind == "IIT")) == 1200


def test_reminders_due_together_show_as_skipped_with_the_one_sent_instead(app, env, services, fake_line):
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from models import LineUser, Reminder
    from surveys import reminders

    c = coordinator(app, env)
    page_path = create(c, opens=(TODAY - timedelta(days=40)).isoformat()).headers["Location"] + "/reminders"
    with services.db.session() as s:
        s.add(LineUser(office_id=1, line_user_id=new_user(), following=True))
    c.post(page_path, {"action": "schedule"})  # 40 days late: the opening and two or more cadence reminders due
    reminders.run_due(services, datetime.combine(TODAY, time(10, 5), tzinfo=ZoneInfo("Asia/Bangkok")))
    assert len(fake_line.calls("/v2/bot/message/multicast")) == 1
    with services.db.Session() as s:
        rows = s.scalars(select(Reminder).where(Reminder.campaign_id.is_not(None),
                                                Reminder.status.in_(("sent", "skipped")))).all()
    assert len(rows) >= 3 and sum(r.status == "sent" for r in rows) == 1
    page = c.client.get(page_path).get_data(as_text=True)
    assert "ข้าม (ส่งรายการที่ใหม่กว่าแทน)" in page and "ถึงเวลาพร้อมกับการเตือนที่ใหม่กว่า" in page


def test_an_iit_reminder_s_cost_counts_staff_who_will_have_served_a_year_by_its_sending_day(app, env, services):
    """IIT reminders go to staff with a year's service on the sending day; the preview counts as the sending will."""
    from zoneinfo import ZoneInfo

    from models import LineUser, Reminder
    from surveys.campaigns import served_a_year

    c = coordinator(app, env)
    page_path = create(c, kind="IIT", url="https://itas.nacc.go.th/iit/x").headers["Location"] + "/reminders"
    c.post(page_path, {"action": "schedule"})
    with services.db.Session() as s:
        rows = s.scalars(select(Reminder).where(Reminder.status == "scheduled").order_by(Reminder.send_at)).all()
    days = [r.send_at.astimezone(ZoneInfo("Asia/Bangkok")).date() for r in rows]
    assert days[-1] > TODAY
    newcomer_start = days[-1].replace(year=days[-1].year - 1)  # a year's service on the last reminder's day
    with services.db.session() as s:
        for started in (TODAY - timedelta(days=800), newcomer_start):
            uid = new_user()
            s.add(LineUser(office_id=1, line_user_id=uid, following=True))
            s.add(StaffMember(office_id=1, name=f"staff {started}", division="ฝ่ายปกครอง", started_on=started,
                              line_user_id=uid))
    assert not served_a_year(newcomer_start)  # not yet today
    page = c.client.get(page_path).get_data(as_text=True)
    costs = [int(n) for n in re.findall(r'class="num">(\d+)', page[page.index('id="reminders"'):])]
    expected = [1 + served_a_year(newcomer_start, day) for day in days]
    assert costs == expected and expected[-1] == 2


def test_a_coordinator_edits_a_campaign_s_link_and_extends_it_and_its_reminders_follow(app, env, services):
    from models import Reminder

    c = coordinator(app, env)
    detail = create(c).headers["Location"]
    cid = int(detail.rsplit("/", 1)[-1])
    c.post(detail + "/reminders", {"action": "schedule"})
    with services.db.Session() as s:
        camp = s.get(SurveyCampaign, cid)
        old_close, old_count = camp.closes_on, len(s.scalars(select(Reminder)).all())
    form = {"url": "https://itas.nacc.go.th/eit/fixed", "opens": camp.opens_on.isoformat(),
            "closes": old_close.isoformat(), "internal_deadline": "", "target": "๑๒๐"}
    resp = c.post(detail + "/edit", form, form_page=detail)
    assert resp.status_code == 302 and "edited=1" in resp.headers["Location"]
    assert "replanned" not in resp.headers["Location"]  # only the link and target: the reminders stay
    with services.db.Session() as s:
        camp = s.get(SurveyCampaign, cid)
        assert (camp.url, camp.target) == ("https://itas.nacc.go.th/eit/fixed", 120)
        assert len(s.scalars(select(Reminder)).all()) == old_count
    new_close = old_close + timedelta(days=30)
    be = f"{new_close.day}/{new_close.month}/{new_close.year + 543}"  # typed in BE, as people do
    resp = c.post(detail + "/edit", dict(form, closes=be), form_page=detail)
    assert "replanned=" in resp.headers["Location"] and "kept=0" in resp.headers["Location"]
    page = c.client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "บันทึกการแก้ไขแล้ว" in page and "วางกำหนดการแจ้งเตือนใหม่ตามวันที่ใหม่" in page
    with services.db.Session() as s:
        assert s.get(SurveyCampaign, cid).closes_on == new_close
        last = s.scalars(select(Reminder).order_by(Reminder.send_at.desc())).first()
    from zoneinfo import ZoneInfo

    assert last.label == "closes-1" and last.send_at.astimezone(ZoneInfo("Asia/Bangkok")).date() == (
        new_close - timedelta(days=1))
    bad = c.post(detail + "/edit", dict(form, closes=(camp.opens_on - timedelta(days=1)).isoformat()),
                 form_page=detail)
    assert bad.status_code == 400 and 'id="edit-error"' in bad.get_data(as_text=True)
    with services.db.Session() as s:
        assert s.get(SurveyCampaign, cid).closes_on == new_close  # unchanged
    assert "survey.edited" in _actions(services)
    add_user(app, env, "viewer@khet.go.th", "viewer")
    viewer = Console(app)
    viewer.login("viewer@khet.go.th")
    assert viewer.client.post(detail + "/edit", data=form).status_code in (400, 403)
