"""No Gift festival reminders (issue #7): New Year and Songkran every year, dates per office, sent
through the survey reminders' machinery (quiet hours, quota, chunks with retry keys, exactly once)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from conftest import at_once, new_user
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.cli import main
from models import AuditEntry, LineUser, Office, Reminder, StaffMember
from surveys import festivals, reminders

BKK = ZoneInfo("Asia/Bangkok")


@pytest.fixture(autouse=True)
def plenty_of_quota(fake_line):
    fake_line.quota = 1_000_000  # the quota tests set their own


def at(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=BKK)


def people(services, n: int, lang: str = "th", staff: bool = False, **user) -> list[str]:
    """Followers of office 1; with ``staff`` also enrolled staff (joined last month: no year of service
    is needed for a festival reminder)."""
    ids = [new_user() for _ in range(n)]
    with services.db.session() as s:
        for uid in ids:
            s.add(LineUser(office_id=1, line_user_id=uid, language=lang, following=True, **user))
            if staff:
                s.add(StaffMember(office_id=1, name="ทดสอบ", division="ฝ่ายปกครอง", started_on=date(2026, 10, 1),
                                  line_user_id=uid))
    return ids


def rows(services, status: str | None = None) -> list[Reminder]:
    with services.db.Session() as s:
        stmt = select(Reminder).where(Reminder.festival.is_not(None)).order_by(Reminder.send_at, Reminder.id)
        if status:
            stmt = stmt.where(Reminder.status == status)
        return s.scalars(stmt).all()


def row(services, festival: str, year: int) -> Reminder:
    with services.db.Session() as s:
        return s.scalar(select(Reminder).where(Reminder.festival == festival, Reminder.label == str(year)))


def change(services, key: str | None, now: datetime, **values) -> str | None:
    with services.db.session() as s:
        return festivals.change(s, s.get(Office, 1), key, now=now, **values)


def set_office(services, **values):
    with services.db.session() as s:
        s.execute(update(Office).where(Office.id == 1).values(**values))


def multicasts(fake_line) -> list:
    return fake_line.calls("/v2/bot/message/multicast")


# -- schedules ---------------------------------------------------------------------------------------


def test_new_year_and_songkran_are_scheduled_by_the_scheduler_in_bangkok_time(services):
    assert reminders.run_due(services, at(2026, 11, 22, 9, 0)) == []  # the worker's pass: nothing due yet
    new_year, songkran = rows(services)
    assert (new_year.festival, new_year.label, songkran.festival, songkran.label) == (
        "new_year", "2027", "songkran", "2027")
    assert new_year.send_at == at(2026, 12, 22, 10, 0)  # ten days before 1 Jan 2570, 10:00 Bangkok
    assert songkran.send_at == at(2027, 4, 3, 10, 0)  # ten days before 13 Apr 2570
    for r in (new_year, songkran):
        assert reminders.in_window(r.send_at) and r.campaign_id is None and r.status == "scheduled"
        assert r.audience == "festival_staff" and not r.include_groups
    th, en = new_year.text_th, new_year.text_en
    assert "ปีใหม่ 2570" in th and "No Gift Policy" in th and "ปฏิเสธอย่างสุภาพ" in th
    assert "\"ได้รับของขวัญ\"" in th and "\"รายงานของขวัญ\"" in th  # the helper and the register
    assert "3,000 บาท" in th and "โปรดตรวจสอบกับนิติกรของหน่วยงาน" in th  # the figure, marked for the office
    assert "หยุดเตือน" in th and "{" not in th
    assert "New Year is coming (1 Jan 2570 BE)" in en and "\"I received a gift\"" in en and "legal officer" in en
    assert "สงกรานต์ 2570" in songkran.text_th and "Songkran" in songkran.text_en
    reminders.run_due(services, at(2026, 11, 22, 9, 1))
    assert len(rows(services)) == 2  # the scheduler runs every minute: never a second row


def test_the_office_s_sending_hours_apply_and_a_fresh_install_does_not_send_late(services, fake_line):
    set_office(services, send_from=11 * 60, send_until=20 * 60)
    festivals.ensure(services, at(2026, 12, 25, 9, 0))  # installed after this year's New Year reminder day
    by_key = {r.festival: r for r in rows(services)}
    assert by_key["new_year"].label == "2028" and by_key["new_year"].send_at == at(2027, 12, 22, 11, 0)
    assert by_key["songkran"].label == "2027" and by_key["songkran"].send_at == at(2027, 4, 3, 11, 0)
    people(services, 2, staff=True)
    assert reminders.run_due(services, at(2027, 4, 3, 10, 30)) == []  # before this office's hours
    assert reminders.run_due(services, at(2027, 4, 3, 21, 0)) == []  # after them
    (outcome,) = reminders.run_due(services, at(2027, 4, 4, 11, 0))  # the office's next morning
    assert outcome.recipients == 2 and len(multicasts(fake_line)) == 1


def test_a_changed_date_moves_the_unsent_reminder_and_bad_dates_are_refused(services):
    now = at(2026, 11, 22, 9, 0)
    festivals.ensure(services, now)
    assert change(services, "new_year", now, send=festivals.parse_day("๑๕/๑๒")) is None
    moved = row(services, "new_year", 2027)
    assert moved.send_at == at(2026, 12, 15, 10, 0) and moved.status == "scheduled"
    assert change(services, "songkran", now, day="04-14", send=festivals.parse_day("1 เม.ย.")) is None
    assert row(services, "songkran", 2027).send_at == at(2027, 4, 1, 10, 0)
    assert change(services, "new_year", now, send="10-01") == "festival_bad_gap"  # 92 days before
    assert change(services, "new_year", now, send="02-29") == "festival_bad_date"
    assert festivals.parse_day("29/02") is None and festivals.parse_day("31/04") is None
    assert festivals.parse_day("22 ธันวาคม") == festivals.parse_day("22/12") == "12-22"
    assert row(services, "new_year", 2027).send_at == at(2026, 12, 15, 10, 0)  # a refused change keeps it
    assert len(rows(services)) == 2


def test_a_text_is_measured_as_line_counts_it_so_an_emoji_counts_two(services):
    now = at(2026, 11, 22, 9, 0)
    festivals.ensure(services, now)
    # 2,001 emoji are 4,002 UTF-16 units, as LINE (and the page's maxlength) count them: over the 4,000.
    assert change(services, "new_year", now, text_th="🎁" * 2001) == "festival_bad_text"
    assert change(services, "new_year", now, text_th="🎁" * 2000) is None


def test_every_numeric_day_is_day_month_as_thai_people_write_it():
    for typed in ("03/04", "03-04", "3.4", "๓/๔", "3 เม.ย.", "3 เมษายน", "3 Apr"):
        assert festivals.parse_day(typed) == "04-03", typed  # 3 April
    assert festivals.parse_day("12-22") is None  # month first is not read: there is no 22nd month
    assert festivals.typed_day("04-03") == "03/04"


def test_the_cli_reads_a_dashed_date_as_day_month_and_lists_dates_as_they_are_typed(env, services):
    out = CliRunner().invoke(main, ["festivals", "set", "songkran", "--send", "05-04"], env=env)  # 5 April
    assert out.exit_code == 0, out.output
    assert "songkran\tสงกรานต์ / Songkran\tday 13/04\tsend 05/04 (8 days before)" in out.output
    bad = CliRunner().invoke(main, ["festivals", "set", "new_year", "--send", "12-22"], env=env)
    assert bad.exit_code != 0 and "give day/month, e.g. 22/12" in bad.output


def test_a_festival_turned_off_is_not_sent_and_comes_back_when_turned_on(services, fake_line):
    now = at(2026, 11, 22, 9, 0)
    festivals.ensure(services, now)
    people(services, 3, staff=True)
    assert change(services, "new_year", now, on=False) is None
    r = row(services, "new_year", 2027)
    assert r.status == "cancelled" and "turned off" in reminders.note_text(r.note, "en")
    assert reminders.run_due(services, at(2026, 12, 22, 10, 0)) == [] and multicasts(fake_line) == []
    assert rows(services, "scheduled")[0].festival == "songkran"  # the other festival is untouched
    festivals.ensure(services, at(2026, 12, 23, 9, 0))
    assert row(services, "new_year", 2028) is None  # an office that turned it off gets no new ones
    assert change(services, "new_year", at(2026, 12, 1, 9, 0), on=True) is None
    assert row(services, "new_year", 2027).status == "scheduled"  # turned on again before its day


def test_turned_off_after_the_dispatcher_s_last_look_is_still_not_sent(services, fake_line):
    festivals.ensure(services, at(2026, 11, 22, 9, 0))
    people(services, 2, staff=True)
    with services.db.session() as s:  # the setting changes without the reminders being brought in line
        office = s.get(Office, 1)
        current = festivals.of_office(office)
        festivals.store(office, [replace(f, on=False) if f.key == "new_year" else f for f in current])
    assert reminders.run_due(services, at(2026, 12, 22, 10, 0)) == [] and multicasts(fake_line) == []
    assert row(services, "new_year", 2027).note == "festival_off"


# -- who gets what -------------------------------------------------------------------------------------


def test_each_enrolled_staff_member_gets_exactly_one_message_in_their_language(services, fake_line):
    festivals.ensure(services, at(2026, 11, 22, 9, 0))
    thai = people(services, 3, staff=True)
    english = people(services, 2, lang="en", staff=True)
    public = people(services, 4)
    stopped = people(services, 1, staff=True, reminders_off=True)  # said "หยุดเตือน"
    gone = people(services, 1, staff=True)
    with services.db.session() as s:
        s.execute(update(LineUser).where(LineUser.line_user_id == gone[0]).values(following=False))
        s.add(StaffMember(office_id=1, name="ยังไม่ลงทะเบียน", division="ฝ่ายโยธา", started_on=date(2010, 1, 1)))
    (outcome,) = reminders.run_due(services, at(2026, 12, 22, 10, 0))
    assert outcome.recipients == 5
    calls = multicasts(fake_line)
    assert [sorted(c.json["to"]) for c in calls] == [sorted(thai), sorted(english)]  # Thai first
    assert len({c.retry_key for c in calls}) == 2 and all(c.retry_key for c in calls)
    for uid in thai + english:
        (message,) = fake_line.texts_to(uid)  # exactly one
        assert ("No Gift Policy" in message) and (("ปีใหม่ 2570" in message) == (uid in thai))
        assert ("New Year is coming" in message) == (uid in english)
    for uid in public + stopped + gone:
        assert fake_line.texts_to(uid) == []
    assert row(services, "new_year", 2027).status == "sent"


def test_everyone_audience_reaches_the_public_and_staff_with_the_public_text(services, fake_line):
    now = at(2026, 11, 22, 9, 0)
    festivals.ensure(services, now)
    assert change(services, "songkran", now, audience="followers") is None
    r = row(services, "songkran", 2027)
    assert r.audience == "festival_followers" and "แจ้งเบาะแส" in r.text_th and "สำนักงานเขตทดสอบ" in r.text_th
    staff = people(services, 2, staff=True)
    public = people(services, 3) + people(services, 1, lang="en")
    (outcome,) = reminders.run_due(services, at(2027, 4, 3, 10, 0))
    assert outcome.recipients == 6
    for uid in staff + public:
        assert len(fake_line.texts_to(uid)) == 1
    (english,) = fake_line.texts_to(public[-1])
    assert "please don't give them gifts" in english and "a blessing is enough" in english


def test_an_office_s_own_texts_replace_the_standard_ones(services, fake_line):
    now = at(2026, 11, 22, 9, 0)
    festivals.ensure(services, now)
    own = {"text_th": "ปีใหม่ {year} งดรับ งดให้ {oops}", "text_en": "No gifts, {festival}"}
    assert change(services, "new_year", now, **own) is None
    r = row(services, "new_year", 2027)
    assert r.text_th.startswith("ปีใหม่ 2570 งดรับ งดให้ {oops}") and r.text_en.startswith("No gifts, New Year")
    uid = people(services, 1, staff=True)[0]
    reminders.run_due(services, at(2026, 12, 22, 10, 0))
    assert fake_line.texts_to(uid)[0].startswith("ปีใหม่ 2570 งดรับ งดให้ {oops}")  # no survey link filled in
    assert change(services, "new_year", now, text_th="", text_en="") is None  # back to the standard text
    assert "No Gift Policy" in row(services, "new_year", 2028).text_th
    th, en = festivals.default_texts("staff")  # the standard text sent back as the console shows it
    assert change(services, "new_year", now, text_th=th.replace("\n", "\r\n"), text_en=en) is None
    with services.db.Session() as s:
        assert festivals.find(festivals.of_office(s.get(Office, 1)), "new_year").text_th is None


# -- quota ---------------------------------------------------------------------------------------------


def test_over_quota_a_partial_office_sends_to_part_of_the_staff(services, fake_line):
    festivals.ensure(services, at(2026, 11, 22, 9, 0))
    people(services, 5, staff=True)
    fake_line.quota, fake_line.used = 500, 498
    (outcome,) = reminders.run_due(services, at(2026, 12, 22, 10, 0))
    (call,) = multicasts(fake_line)
    assert len(call.json["to"]) == 2 and outcome.skipped_for_quota == 3
    r = row(services, "new_year", 2027)
    assert r.status == "sent" and "allowed 2 of 5" in reminders.note_text(r.note, "en")


def test_over_quota_a_waiting_office_sends_nothing_until_it_fits_and_never_after_the_festival(services, fake_line):
    festivals.ensure(services, at(2026, 11, 22, 9, 0))
    staff = people(services, 4, staff=True)
    set_office(services, over_quota="wait")
    fake_line.quota, fake_line.used = 500, 499
    assert reminders.run_due(services, at(2026, 12, 22, 10, 0)) == []
    r = row(services, "new_year", 2027)
    assert r.status == "scheduled" and r.note == "quota_wait:4:1" and multicasts(fake_line) == []
    fake_line.used = 0
    (outcome,) = reminders.run_due(services, at(2026, 12, 22, 11, 5))
    assert sorted(multicasts(fake_line)[0].json["to"]) == sorted(staff) and outcome.skipped_for_quota == 0
    # Songkran waits for quota until its day has come: then it is cancelled, not sent late.
    fake_line.used = 500
    reminders.run_due(services, at(2027, 4, 3, 10, 0))
    fake_line.used = 0
    reminders.run_due(services, at(2027, 4, 13, 10, 0))
    late = row(services, "songkran", 2027)
    assert late.status == "cancelled" and late.note == "festival_passed" and len(multicasts(fake_line)) == 1


# -- exactly once ----------------------------------------------------------------------------------------


def test_the_scheduler_twice_at_once_makes_one_row_and_the_database_refuses_a_second(services):
    made, errors = at_once(services, lambda svc: festivals.ensure(svc, at(2026, 11, 22, 9, 0)))
    # (the app's own scheduler may have made them first: what matters is one row each, no error)
    assert errors == [] and sum(made) <= 2 and len(rows(services)) == 2
    r = rows(services)[0]
    with pytest.raises(IntegrityError), services.db.session() as s:
        s.add(Reminder(office_id=1, festival=r.festival, label=r.label, audience=r.audience, send_at=r.send_at,
                       text_th="x", text_en="x"))


def test_two_dispatchers_send_each_staff_member_one_message(services, fake_line):
    from test_reminders import _two_dispatchers

    festivals.ensure(services, at(2026, 11, 22, 9, 0))
    staff = people(services, 1200, staff=True)
    _two_dispatchers(services, at(2026, 12, 22, 10, 0))
    sent = [u for c in multicasts(fake_line) for u in c.json["to"]]
    assert sorted(sent) == sorted(staff)  # three chunks, every member once
    assert reminders.run_due(services, at(2026, 12, 22, 10, 30)) == []  # and nothing left to send again
    assert len(multicasts(fake_line)) == 3


def test_next_year_s_reminder_is_made_once_this_year_s_has_gone(services, fake_line):
    festivals.ensure(services, at(2026, 11, 22, 9, 0))
    people(services, 2, staff=True)
    reminders.run_due(services, at(2026, 12, 22, 10, 0))
    assert row(services, "new_year", 2027).status == "sent"
    following = row(services, "new_year", 2028)
    assert following.status == "scheduled" and following.send_at == at(2027, 12, 22, 10, 0)
    assert "ปีใหม่ 2571" in following.text_th
    reminders.run_due(services, at(2026, 12, 22, 10, 5))
    assert len([r for r in rows(services) if r.festival == "new_year"]) == 2 and len(multicasts(fake_line)) == 1


# -- the console and the command line ----------------------------------------------------------------------


def test_console_shows_the_schedule_in_be_changes_dates_adds_a_festival_and_cancels(app, env, services, fake_line):
    from test_console import Console, add_user

    add_user(app, env, "coord@khet.go.th", "survey_coordinator")
    c = Console(app)
    assert c.login("coord@khet.go.th").status_code == 302
    page = c.client.get("/console/festivals").get_data(as_text=True)
    assert "ยังไม่มีการแจ้งเตือนช่วงเทศกาล" in page and 'id="festival-new_year"' in page  # defaults, no row yet
    people(services, 3, staff=True)
    resp = c.post("/console/festivals", {"action": "save", "key": "new_year", "on": "1", "name_th": "ปีใหม่",
                                         "name_en": "New Year", "day": "1/1", "send": "15/12", "audience": "staff"})
    assert resp.status_code == 302
    page = c.client.get("/console/festivals").get_data(as_text=True)
    new_year = re.search(r'<tr data-festival="new_year" data-year="(\d+)">(.*?)</tr>', page, re.S)
    year = int(new_year.group(1))
    assert f"15 ธ.ค. {year - 1 + 543} 10:00" in new_year.group(2)  # Buddhist Era, Bangkok time
    assert f"ปีใหม่ {year + 543}" in new_year.group(2) and "บุคลากรที่ลงทะเบียนแล้ว" in new_year.group(2)
    assert re.search(r'class="num">3<', new_year.group(2))  # three enrolled staff: three messages
    assert 'id="festival-cost">6<' in page  # New Year and Songkran
    bad = c.post("/console/festivals", {"action": "add", "name_th": "ตรุษจีน", "name_en": "Chinese New Year",
                                        "day": "17/02", "send": "17/03", "audience": "staff"})
    assert bad.status_code == 400 and "1–60" in bad.get_data(as_text=True)
    resp = c.post("/console/festivals", {"action": "add", "name_th": "ตรุษจีน", "name_en": "Chinese New Year",
                                         "day": "6/2", "send": "30/1", "audience": "followers"})
    assert resp.status_code == 302
    with services.db.Session() as s:
        own = s.scalar(select(Reminder).where(Reminder.festival == "chinese_new_year"))
        assert own.audience == "festival_followers" and "ตรุษจีน" in own.text_th
    resp = c.post("/console/festivals", {"action": "cancel", "reminder_id": str(own.id)})
    assert resp.status_code == 302
    with services.db.Session() as s:
        assert s.get(Reminder, own.id).status == "cancelled"
        actions = [e.action for e in s.scalars(select(AuditEntry))]
    assert {"festival.changed", "reminder.cancelled"} <= set(actions)
    resp = c.post("/console/festivals", {"action": "remove", "key": "new_year"})
    assert resp.status_code == 400  # the defaults are turned off, not removed
    assert CliRunner().invoke(main, ["office", "add", "--slug", "other", "--name", "เขตอื่น"], env=env).exit_code == 0
    festivals.ensure(services)
    with services.db.Session() as s:
        theirs = s.scalar(select(Reminder).where(Reminder.office_id != 1))
    assert c.post("/console/festivals", {"action": "cancel", "reminder_id": str(theirs.id)}).status_code == 404
    assert c.client.get(f"/console/festivals?office_id={theirs.office_id}").status_code == 404
    with services.db.Session() as s:
        assert s.get(Reminder, theirs.id).status == "scheduled"
    add_user(app, env, "viewer@khet.go.th", "viewer")
    viewer = Console(app)
    viewer.login("viewer@khet.go.th")
    assert viewer.client.get("/console/festivals").status_code == 403


def test_cli_adds_changes_lists_and_removes_festivals(env, services):
    out = CliRunner().invoke(main, ["festivals", "set", "--add", "--name-th", "ตรุษจีน", "--name-en", "Chinese New Year",
                                    "--day", "06/02", "--send", "30/01"], env=env)
    assert out.exit_code == 0, out.output
    assert "chinese_new_year\tตรุษจีน / Chinese New Year\tday 06/02\tsend 30/01 (7 days before)" in out.output
    assert re.search(r"ตรุษจีน 25\d\d\t30 ม\.ค\. 25\d\d 10:00\tfestival_staff\tscheduled", out.output)
    off = CliRunner().invoke(main, ["festivals", "set", "songkran", "--off"], env=env)
    assert off.exit_code == 0 and "songkran\tสงกรานต์ / Songkran\tday 13/04\tsend 03/04" in off.output
    assert "\toff" in off.output.splitlines()[1]
    bad = CliRunner().invoke(main, ["festivals", "set", "new_year", "--send", "31/02"], env=env)
    assert bad.exit_code != 0 and "not a day of the year" in bad.output
    builtin = CliRunner().invoke(main, ["festivals", "remove", "new_year"], env=env)
    assert builtin.exit_code != 0 and "--off" in builtin.output
    gone = CliRunner().invoke(main, ["festivals", "remove", "chinese_new_year"], env=env)
    assert gone.exit_code == 0
    listing = CliRunner().invoke(main, ["reminders", "list"], env=env).output
    assert re.search(r"chinese_new_year 25\d\d\t.*\tcancelled", listing)


def test_the_same_festival_cannot_be_added_twice_so_staff_never_get_the_message_twice(app, env, services):
    add = ["festivals", "set", "--add", "--name-th", "ตรุษจีน", "--name-en", "Chinese New Year",
           "--day", "17/02", "--send", "07/02"]
    assert CliRunner().invoke(main, add, env=env).exit_code == 0
    again = CliRunner().invoke(main, add, env=env)
    assert again.exit_code != 0 and "already exists" in again.output and "Traceback" not in again.output
    same_day = CliRunner().invoke(main, ["festivals", "set", "--add", "--name-th", "วันตรุษจีน",
                                         "--name-en", "Lunar New Year", "--day", "17/02", "--send", "10/02"], env=env)
    assert same_day.exit_code != 0 and "already exists" in same_day.output
    with services.db.Session() as s:
        office = s.get(Office, 1)
        assert [f.key for f in festivals.of_office(office)].count("chinese_new_year") == 1
        assert not any(f.key.startswith("chinese_new_year_") for f in festivals.of_office(office))
        assert len([r for r in festivals.upcoming(s, 1) if r.festival.startswith("chinese")]) == 1
    # the same day for the other audience is a different reminder, and is allowed
    public = CliRunner().invoke(main, ["festivals", "set", "--add", "--name-th", "ตรุษจีน (ประชาชน)",
                                       "--name-en", "Chinese New Year (public)", "--day", "17/02", "--send", "10/02",
                                       "--audience", "followers"], env=env)
    assert public.exit_code == 0, public.output
    # an office that already has a duplicate (from before this check) can still turn it off
    with services.db.session() as s:
        office = s.get(Office, 1)
        current = festivals.of_office(office)
        twin = replace(festivals.find(current, "chinese_new_year"), key="chinese_new_year_2")
        festivals.store(office, current + [twin])
    off = CliRunner().invoke(main, ["festivals", "set", "chinese_new_year_2", "--off"], env=env)
    assert off.exit_code == 0, off.output
    from test_console import Console, add_user

    add_user(app, env, "coord@khet.go.th", "survey_coordinator")
    c = Console(app)
    assert c.login("coord@khet.go.th").status_code == 302
    resp = c.post("/console/festivals", {"action": "add", "name_th": "ปีใหม่สากล", "name_en": "New Year's Day",
                                         "day": "1/1", "send": "20/12", "audience": "staff"})
    assert resp.status_code == 400 and "มีเทศกาลนี้อยู่แล้ว" in resp.get_data(as_text=True)
