"""Reminders: schedules from dates, quiet hours, exclusions, quota, chunks and exactly-once."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from conftest import at_once, new_user
from fakeline import Fault
from sqlalchemy import select, update

from bot.cli import main
from models import LineUser, Reminder, ReminderChunk, StaffMember, SurveyAnswered, SurveyCampaign
from surveys import reminders
from surveys.campaigns import add_campaign

BKK = ZoneInfo("Asia/Bangkok")


@pytest.fixture(autouse=True)
def plenty_of_quota(fake_line):
    fake_line.quota = 1_000_000  # the quota test sets its own


def campaign(services, kind="EIT", opens=date(2026, 1, 1), closes=date(2026, 6, 30), internal=None) -> int:
    with services.db.session() as s:
        return add_campaign(s, 1, kind, "https://itas.nacc.go.th/x", opens, closes, internal, today=opens).id


def followers(services, n: int, lang: str = "th") -> list[str]:
    ids = [new_user() for _ in range(n)]
    with services.db.session() as s:
        s.add_all(LineUser(office_id=1, line_user_id=u, language=lang, following=True) for u in ids)
    return ids


def scheduled(services, cid: int) -> list[Reminder]:
    with services.db.session() as s:
        reminders.schedule(s, s.get(SurveyCampaign, cid))
    with services.db.Session() as s:
        return s.scalars(select(Reminder).where(Reminder.campaign_id == cid).order_by(Reminder.send_at)).all()


def at(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=BKK)


def recipients_by_call(fake_line) -> list[list[str]]:
    return [r.json["to"] for r in fake_line.calls("/v2/bot/message/multicast")]


def test_schedule_from_dates_twice_a_month_and_before_deadlines(services):
    cid = campaign(services, internal=date(2026, 2, 28))
    rows = scheduled(services, cid)
    labels = [r.label for r in rows]
    assert labels[0] == "open" and rows[0].send_at == at(2026, 1, 1)
    assert "cadence-2026-01-16" in labels and "cadence-2026-02-01" in labels
    for label in ("internal-7", "internal-3", "internal-1", "closes-7", "closes-3", "closes-1"):
        assert label in labels
    months = {r.send_at.astimezone(BKK).month for r in rows}
    for month in months:  # at least twice a month while open
        assert sum(r.send_at.astimezone(BKK).month == month for r in rows) >= 2
    assert len(scheduled(services, cid)) == len(rows)  # scheduling again adds nothing
    assert "{link}" in rows[0].text_th and "หยุดเตือน" in rows[0].text_th


def test_quiet_hours_move_a_night_send_to_the_morning():
    assert reminders.out_of_quiet_hours(at(2026, 1, 5, 21, 30)) == at(2026, 1, 6, 8, 0)
    assert reminders.out_of_quiet_hours(at(2026, 1, 5, 6, 0)) == at(2026, 1, 5, 8, 0)
    assert reminders.out_of_quiet_hours(at(2026, 1, 5, 12, 0)) == at(2026, 1, 5, 12, 0)


def test_nothing_is_sent_during_quiet_hours(services, fake_line):
    cid = campaign(services)
    scheduled(services, cid)
    followers(services, 3)
    assert reminders.run_due(services, at(2026, 1, 1, 22, 0)) == []
    assert fake_line.calls("/multicast") == []
    assert reminders.run_due(services, at(2026, 1, 2, 8, 5))[0].recipients == 3


def test_exclusions_answered_opted_out_unfollowed_and_staff(bot, services, fake_line):
    cid = campaign(services)
    scheduled(services, cid)
    everyone = followers(services, 6)
    answered, stopped, gone, staff = everyone[:4]
    with services.db.session() as s:
        s.add(SurveyAnswered(campaign_id=cid, line_user_id=answered))
        s.execute(update(LineUser).where(LineUser.line_user_id == gone).values(following=False))
        s.add(StaffMember(office_id=1, name="x", division="ฝ่ายโยธา", started_on=date(2015, 1, 1), line_user_id=staff))
    bot.text(stopped, "หยุดเตือน")
    assert "จะไม่ส่งการแจ้งเตือน" in bot.last_text(stopped)
    reminders.run_due(services, at(2026, 1, 1, 10, 0))
    (sent,) = recipients_by_call(fake_line)
    assert sorted(sent) == sorted(everyone[4:])  # staff never get the EIT reminder either


def test_iit_reminders_go_to_enrolled_eligible_staff(services, fake_line):
    cid = campaign(services, kind="IIT")
    scheduled(services, cid)
    old, new, public = followers(services, 3)
    with services.db.session() as s:
        s.add(StaffMember(office_id=1, name="a", division="ฝ่ายทะเบียน", started_on=date(2015, 1, 1), line_user_id=old))
        s.add(StaffMember(office_id=1, name="b", division="ฝ่ายทะเบียน", started_on=date(2025, 12, 1),
                          line_user_id=new))
    reminders.run_due(services, at(2026, 1, 1, 10, 0))
    assert recipients_by_call(fake_line) == [[old]]


def test_chunks_of_500_with_their_own_retry_keys_and_one_message_each(services, fake_line):
    cid = campaign(services)
    scheduled(services, cid)
    everyone = set(followers(services, 1100) + followers(services, 30, lang="en"))
    (outcome,) = reminders.run_due(services, at(2026, 1, 1, 10, 0))
    calls = fake_line.calls("/v2/bot/message/multicast")
    assert [len(c.json["to"]) for c in calls] == [500, 500, 100, 30]  # Thai first, then English
    assert len({c.retry_key for c in calls}) == 4
    sent = [u for c in calls for u in c.json["to"]]
    assert len(sent) == len(set(sent)) == len(everyone) and set(sent) == everyone
    assert calls[3].json["messages"][0]["text"].startswith("The EIT survey")
    assert "https://bot.example.go.th/s/" in calls[1].json["messages"][0]["text"]
    assert outcome.recipients == 1130 and outcome.chunks_sent == 4
    with services.db.Session() as s:
        assert all(c.user_ids == [] for c in s.scalars(select(ReminderChunk)))  # lists cleared once sent


def test_quota_limits_the_send_to_the_most_important_people(bot, services, fake_line):
    from surveys.campaigns import today_bangkok

    opens = today_bangkok() - timedelta(days=3)  # open now, so people can ask for the link
    cid = campaign(services, opens=opens, closes=opens + timedelta(days=60))
    scheduled(services, cid)
    plain = followers(services, 10)
    askers = followers(services, 2)
    for u in askers:
        bot.text(u, "แบบประเมิน")  # asked for the link: they come first
    fake_line.quota, fake_line.used = 500, 497
    (outcome,) = reminders.run_due(services, at(opens.year, opens.month, opens.day, 10, 0))
    (sent,) = recipients_by_call(fake_line)
    assert len(sent) == 3 and set(askers) <= set(sent) and outcome.skipped_for_quota == 9
    with services.db.Session() as s:
        assert "quota" in s.scalar(select(Reminder.note).where(Reminder.label == "open"))
    assert len(plain) == 10


def test_retry_key_is_reused_after_a_500_and_a_crash_mid_send_resumes(services, fake_line):
    cid = campaign(services)
    scheduled(services, cid)
    followers(services, 1200)
    gw = services.gateway(1)
    gw.max_attempts = 1  # the first failure ends this run, as a crash would
    fake_line.faults.append(Fault("/v2/bot/message/multicast", 500, times=1))
    # First run: the first chunk gets a 500 and the dispatcher stops, as if it had crashed.
    reminders.run_due(services, at(2026, 1, 1, 10, 0))
    first = fake_line.calls("/v2/bot/message/multicast", ok_only=False)
    assert [c.status for c in first] == [500]
    with services.db.session() as s:  # the lease of the interrupted chunk runs out
        s.execute(update(ReminderChunk).values(claimed_at=datetime(2000, 1, 1, tzinfo=BKK)))
    gw.max_attempts = 5
    reminders.run_due(services, at(2026, 1, 1, 10, 5))
    calls = fake_line.calls("/v2/bot/message/multicast", ok_only=False)
    assert calls[0].retry_key == calls[1].retry_key  # the same chunk, the same key
    delivered = [u for c in calls if c.status == 200 for u in c.json["to"]]
    assert len(delivered) == len(set(delivered)) == 1200


def _two_dispatchers(services, now):
    _, errors = at_once(services, lambda svc: reminders.run_due(svc, now))
    assert errors == []


@pytest.mark.parametrize("n", [1700])
def test_exactly_once_with_two_dispatchers_at_the_same_time(services, fake_line, n):
    cid = campaign(services)
    scheduled(services, cid)
    everyone = followers(services, n)
    _two_dispatchers(services, at(2026, 1, 1, 10, 0))
    sent = [u for c in fake_line.calls("/v2/bot/message/multicast") for u in c.json["to"]]
    assert sorted(sent) == sorted(everyone)  # every follower once, nobody twice
    with services.db.Session() as s:
        assert s.scalar(select(Reminder.status).where(Reminder.label == "open")) == "sent"


def test_cli_schedule_list_and_run_due(env, services, fake_line):
    cid = campaign(services)
    followers(services, 2)
    out = CliRunner().invoke(main, ["reminders", "schedule", "--campaign", str(cid)], env=env).output
    assert "open\t1 ม.ค. 2569 10:00" in out
    result = CliRunner().invoke(main, ["reminders", "run-due", "--now", "2026-01-01T10:00:00+07:00"], env=env)
    assert result.exit_code == 0 and "2 recipients in 1 calls" in result.output
    listing = CliRunner().invoke(main, ["reminders", "list"], env=env).output
    assert "open" in listing and "sent\t2 sent" in listing
    bad = CliRunner().invoke(main, ["reminders", "run-due", "--now", "tomorrow"], env=env)
    assert bad.exit_code != 0 and "ISO-8601" in bad.output
    assert CliRunner().invoke(main, ["reminders", "run-due", "--now", "2026-01-01T10:00:00+07:00"],
                              env=env).output.strip() == "nothing due"


def test_the_workers_own_scheduler_sends_due_reminders_without_cron(services, fake_line, monkeypatch):
    """Every web process (embedded) and `itabot worker` (scaled) runs this each minute."""
    cid = campaign(services)
    scheduled(services, cid)
    everyone = followers(services, 3)
    monkeypatch.setattr(reminders, "utcnow", lambda: at(2026, 1, 1, 10, 1).astimezone(BKK))
    services.processor.send_due_reminders()
    assert sorted(recipients_by_call(fake_line)[0]) == sorted(everyone)


def test_followers_sync_pages_through_line_and_adds_who_is_missing(env, services, fake_line):
    known = followers(services, 2)
    fake_line.followers = known + [new_user() for _ in range(2500)]
    result = CliRunner().invoke(main, ["followers", "sync"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "2502 followers, 2500 new"
    assert len(fake_line.calls("/v2/bot/followers/ids")) == 3  # 1000 a page
    with services.db.Session() as s:
        assert len(s.scalars(select(LineUser)).all()) == 2502
    fake_line.faults.append(Fault("/v2/bot/followers/ids", 403))
    refused = CliRunner().invoke(main, ["followers", "sync"], env=env)
    assert refused.exit_code != 0 and "verified or premium" in refused.output


def test_a_chunk_line_refuses_is_marked_failed_and_the_rest_still_go(services, fake_line):
    cid = campaign(services)
    scheduled(services, cid)
    followers(services, 700)
    fake_line.faults.append(Fault("/v2/bot/message/multicast", 400, times=1))
    (outcome,) = reminders.run_due(services, at(2026, 1, 1, 10, 0))
    assert outcome.chunks_sent == 1 and len(recipients_by_call(fake_line)) == 1
    with services.db.Session() as s:
        r = s.scalar(select(Reminder).where(Reminder.label == "open"))
        assert r.status == "sent" and "refused 1 chunk" in reminders.note_text(r.note, "en")
    assert reminders.run_due(services, at(2026, 1, 1, 10, 30)) == []  # nothing left hanging


# -- per-office sending hours, waiting for quota, registered groups ------------------------------------


def set_office(services, **values):
    from models import Office

    with services.db.session() as s:
        s.execute(update(Office).where(Office.id == 1).values(**values))


def test_sending_hours_are_per_office_and_typed_times_are_understood(services, fake_line):
    assert reminders.parse_clock("๐๘:๓๐") == 8 * 60 + 30 and reminders.parse_clock("7.05") == 7 * 60 + 5
    assert reminders.parse_clock("24:00") == 1440
    assert [reminders.parse_clock(x) for x in ("25:00", "8:75", "eight", "", None, "-1:00")] == [None] * 6
    late = (6 * 60, 22 * 60)
    assert reminders.out_of_quiet_hours(at(2026, 1, 5, 21, 30), late) == at(2026, 1, 5, 21, 30)
    assert reminders.out_of_quiet_hours(at(2026, 1, 5, 22, 0), late) == at(2026, 1, 6, 6, 0)
    cid = campaign(services)
    scheduled(services, cid)
    everyone = followers(services, 3)
    assert reminders.run_due(services, at(2026, 1, 1, 21, 30)) == []  # default hours: too late
    set_office(services, send_from=6 * 60, send_until=22 * 60)  # this office sends until 22:00
    (outcome,) = reminders.run_due(services, at(2026, 1, 1, 21, 30))
    assert sorted(recipients_by_call(fake_line)[0]) == sorted(everyone)
    later = campaign(services, kind="IIT", opens=date(2026, 2, 1), closes=date(2026, 3, 31))
    set_office(services, send_from=11 * 60, send_until=20 * 60)
    with services.db.session() as s:  # a schedule made now keeps the office's hours too
        first = reminders.schedule(s, s.get(SurveyCampaign, later))[0]
        assert first.send_at.astimezone(BKK).hour == 11  # planned for 10:00, before this office's 11:00


def test_wait_for_quota_sends_nothing_until_everyone_fits(services, fake_line):
    cid = campaign(services)
    scheduled(services, cid)
    everyone = followers(services, 12)
    set_office(services, over_quota="wait")
    fake_line.quota, fake_line.used = 500, 495  # 5 left for 12 people
    assert reminders.run_due(services, at(2026, 1, 1, 10, 0)) == []
    assert recipients_by_call(fake_line) == []
    with services.db.Session() as s:
        r = s.scalar(select(Reminder).where(Reminder.label == "open"))
        assert r.status == "scheduled" and r.note == "quota_wait:12:5"
        assert "needs 12 messages, 5 left" in reminders.note_text(r.note, "en")
        assert "รอโควตา" in reminders.note_text(r.note, "th")
    quota_reads = len(fake_line.calls("/v2/bot/message/quota/consumption"))
    assert reminders.run_due(services, at(2026, 1, 1, 10, 30)) == []  # not looked at again within the hour
    assert len(fake_line.calls("/v2/bot/message/quota/consumption")) == quota_reads
    fake_line.used = 0  # a new month, or a bigger plan
    (outcome,) = reminders.run_due(services, at(2026, 1, 1, 11, 1))
    assert sorted(recipients_by_call(fake_line)[0]) == sorted(everyone) and outcome.skipped_for_quota == 0
    with services.db.Session() as s:
        r = s.scalar(select(Reminder).where(Reminder.label == "open"))
        assert r.status == "sent" and r.note is None


def test_a_reminder_still_waiting_when_the_survey_closes_is_cancelled(services, fake_line):
    cid = campaign(services, opens=date(2026, 1, 1), closes=date(2026, 1, 20))
    scheduled(services, cid)
    followers(services, 3)
    set_office(services, over_quota="wait")
    fake_line.quota, fake_line.used = 500, 500
    reminders.run_due(services, at(2026, 1, 1, 10, 0))
    fake_line.used = 0
    reminders.run_due(services, at(2026, 1, 21, 10, 0))  # the quota is back, but the survey has closed
    assert recipients_by_call(fake_line) == []
    with services.db.Session() as s:
        r = s.scalar(select(Reminder).where(Reminder.label == "open"))
        assert r.status == "cancelled" and "closed" in reminders.note_text(r.note, "en")


def add_groups(services, *group_ids, inactive=()):
    from models import LineGroup

    with services.db.session() as s:
        for gid in group_ids:
            s.add(LineGroup(office_id=1, group_id=gid, active=True, division="ฝ่ายปกครอง"))
        for gid in inactive:
            s.add(LineGroup(office_id=1, group_id=gid, active=False))


def test_registered_groups_get_one_push_each_costed_by_their_members(services, fake_line):
    cid = campaign(services)
    with services.db.session() as s:
        made = reminders.schedule(s, s.get(SurveyCampaign, cid), include_groups=True)
        assert all(r.include_groups for r in made)
    people = followers(services, 4)
    groups = ["C" + "a" * 32, "C" + "b" * 32]
    add_groups(services, *groups, inactive=["C" + "c" * 32])  # the bot left that one
    fake_line.group_sizes = {groups[0]: 40, groups[1]: 7}
    (outcome,) = reminders.run_due(services, at(2026, 1, 1, 10, 0))
    pushes = fake_line.calls("/v2/bot/message/push")
    assert sorted(p.json["to"] for p in pushes) == sorted(groups)  # not the group the bot left
    assert len({p.retry_key for p in pushes}) == 2 and all(p.retry_key for p in pushes)
    thai, english = (m["text"] for m in pushes[0].json["messages"])  # two messages, one push: one of quota each
    assert "EIT" in thai and "แบบ" in thai and "The EIT survey" in english
    text = thai + "\n" + english
    assert "หยุดเตือน" not in text and "stop reminders" not in text  # would not stop a group's reminders
    group_link = text.split("https://bot.example.go.th/s/")[1].split()[0]
    user_text = fake_line.calls("/v2/bot/message/multicast")[0].json["messages"][0]["text"]
    assert group_link not in user_text  # reach is counted separately for groups
    assert sorted(recipients_by_call(fake_line)[0]) == sorted(people)
    assert outcome.recipients == 4 + 40 + 7


def test_a_group_gets_both_long_texts_whole(services, fake_line):
    """Each language may be 4,000 characters (the console's limit); one LINE text holds 5,000: a group's reminder
    is two texts in one push, so neither is cut."""
    from models import Reminder

    cid = campaign(services)
    with services.db.session() as s:
        made = reminders.schedule(s, s.get(SurveyCampaign, cid), include_groups=True)
        first = s.get(Reminder, made[0].id)
        first.text_th = "ก" * 3900 + " {link}"
        first.text_en = "e" * 3900 + " {link}"
    add_groups(services, "C" + "a" * 32)
    reminders.run_due(services, at(2026, 1, 1, 10, 0))
    (push,) = fake_line.calls("/v2/bot/message/push")
    thai, english = (m["text"] for m in push.json["messages"])
    assert thai.startswith("ก" * 3900) and english.startswith("e" * 3900)
    assert "https://bot.example.go.th/s/" in thai and "https://bot.example.go.th/s/" in english


def test_over_quota_whole_groups_that_do_not_fit_are_left_out(services, fake_line):
    cid = campaign(services)
    with services.db.session() as s:
        reminders.schedule(s, s.get(SurveyCampaign, cid), include_groups=True)
    people = followers(services, 5)
    big, small = "C" + "d" * 32, "C" + "e" * 32
    add_groups(services, big, small)
    fake_line.group_sizes = {big: 300, small: 20}
    fake_line.quota, fake_line.used = 500, 450  # 50 left: the 5 people, then only the small group fits
    (outcome,) = reminders.run_due(services, at(2026, 1, 1, 10, 0))
    assert [p.json["to"] for p in fake_line.calls("/v2/bot/message/push")] == [small]
    assert sorted(recipients_by_call(fake_line)[0]) == sorted(people)
    assert outcome.recipients == 25 and outcome.skipped_for_quota == 300


def test_a_group_the_bot_was_removed_from_does_not_stop_the_others(services, fake_line):
    cid = campaign(services)
    with services.db.session() as s:
        reminders.schedule(s, s.get(SurveyCampaign, cid), include_groups=True)
    gone, there = "C" + "f" * 32, "C" + "0" * 32
    add_groups(services, gone, there)
    fake_line.group_sizes = {gone: 3, there: 3}
    fake_line.faults.append(Fault("/v2/bot/message/push", 400))  # the first push: LINE says no
    reminders.run_due(services, at(2026, 1, 1, 10, 0))
    assert [p.json["to"] for p in fake_line.calls("/v2/bot/message/push")] == [there]
    with services.db.Session() as s:
        r = s.scalar(select(Reminder).where(Reminder.label == "open"))
        assert r.status == "sent" and r.note == "refused:1"


# -- scaled mode: two `itabot worker` processes, Redis and the job queue -------------------------------


@pytest.mark.redis
def test_exactly_once_with_two_worker_processes_through_redis(services, fake_line, tmp_path, database_url):
    """Two real `itabot worker` processes: each one's scheduler queues the due reminder as an RQ job
    and both workers send it at the same time; every follower still gets exactly one message."""
    import os
    import subprocess
    import sys
    import time as _time

    from conftest import make_env, redis_url

    url = redis_url()
    if url is None:
        pytest.skip("Redis not reachable (TEST_REDIS_URL)")
    import redis
    from rq import Queue
    from rq.registry import FinishedJobRegistry

    conn = redis.Redis.from_url(url)
    conn.flushdb()
    from surveys.campaigns import today_bangkok

    today = today_bangkok()
    cid = campaign(services, opens=today - timedelta(days=2), closes=today + timedelta(days=30))
    scheduled(services, cid)
    set_office(services, send_from=0, send_until=24 * 60)  # whatever the hour the test runs at
    with services.db.session() as s:
        s.execute(update(Reminder).where(Reminder.campaign_id == cid).values(status="cancelled"))
        s.execute(update(Reminder).where(Reminder.campaign_id == cid, Reminder.label == "open")
                  .values(status="scheduled", send_at=datetime.now(BKK) - timedelta(minutes=1)))
    everyone = followers(services, 2600)  # 6 chunks
    fake_line.send_delay = 0.4  # each multicast takes a while, so the two workers overlap
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "REDIS_URL"))}
    env.update(make_env(tmp_path, database_url, fake_line.url, REDIS_URL=url))
    procs = [subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        deadline = _time.monotonic() + 90
        status = None
        while _time.monotonic() < deadline:
            with services.db.Session() as s:
                status = s.scalar(select(Reminder.status).where(Reminder.campaign_id == cid, Reminder.label == "open"))
            if status == "sent":
                break
            _time.sleep(0.5)
    finally:
        for p in procs:
            p.terminate()
        errs = [p.communicate(timeout=30)[1] for p in procs]
    assert status == "sent", "\n".join(e[-2000:] for e in errs)
    calls = fake_line.calls("/v2/bot/message/multicast", ok_only=False)
    sent = [u for c in calls if c.status == 200 for u in c.json["to"]]
    assert sorted(sent) == sorted(everyone)  # every follower once, nobody twice
    assert len(calls) == 6 and len({c.retry_key for c in calls}) == 6  # no chunk went twice, not even as a 409
    finished = FinishedJobRegistry(queue=Queue("itabot", connection=conn))
    assert len(finished.get_job_ids()) >= 2  # both workers' schedulers queued it, and jobs ran it


# -- reminders due together, the "ตอบแล้ว" button, group wording --------------------------------------


def test_reminders_due_together_send_only_the_latest_and_the_older_are_marked_skipped(env, services, fake_line):
    cid = campaign(services, opens=date(2026, 1, 1), closes=date(2026, 6, 30))
    rows = scheduled(services, cid)
    people = followers(services, 3)
    # Scheduled late (or the bot was down): open (1 Jan), 16 Jan, 1 Feb and 16 Feb are all due on 20 Feb.
    outcomes = reminders.run_due(services, at(2026, 2, 20, 10, 0))
    calls = fake_line.calls("/v2/bot/message/multicast")
    assert len(calls) == 1 and sorted(calls[0].json["to"]) == sorted(people)  # one message each, not four
    assert [o.reminder_id for o in outcomes] == [next(r.id for r in rows if r.label == "cadence-2026-02-16")]
    with services.db.Session() as s:
        status = {r.label: (r.status, r.note) for r in s.scalars(select(Reminder).where(Reminder.campaign_id == cid))}
    latest = next(r.id for r in rows if r.label == "cadence-2026-02-16")
    for label in ("open", "cadence-2026-01-16", "cadence-2026-02-01"):
        assert status[label] == ("skipped", f"superseded:{latest}"), label
    assert status["cadence-2026-02-16"][0] == "sent" and status["cadence-2026-03-01"][0] == "scheduled"
    listing = CliRunner().invoke(main, ["reminders", "list", "--campaign", str(cid)], env=env).output
    skipped_line = next(line for line in listing.splitlines() if "\topen\t" in line)
    assert "skipped" in skipped_line and "newer reminder" in skipped_line
    # The next one, due on its own, goes out as usual.
    reminders.run_due(services, at(2026, 3, 1, 10, 0))
    assert len(fake_line.calls("/v2/bot/message/multicast")) == 2


def test_a_1to1_reminder_carries_the_answered_button_and_tapping_or_typing_it_stops_reminders(bot, services,
                                                                                              fake_line):
    cid = campaign(services, opens=date(2026, 1, 1), closes=date(2026, 6, 30))
    scheduled(services, cid)
    tapper, typer, english, other = followers(services, 4)
    with services.db.session() as s:
        s.execute(update(LineUser).where(LineUser.line_user_id == english).values(language="en"))
    reminders.run_due(services, at(2026, 1, 16, 10, 0))
    calls = fake_line.calls("/v2/bot/message/multicast")
    th, en = calls[0].json["messages"][0], calls[1].json["messages"][0]
    assert 'กดปุ่ม "ตอบแล้ว"' in th["text"] and "I have answered" in en["text"]
    (item,) = th["quickReply"]["items"]
    assert item["action"] == {"type": "postback", "label": "ตอบแล้ว", "data": f"action=survey_done&c={cid}",
                              "displayText": "ตอบแล้ว"}
    assert en["quickReply"]["items"][0]["action"]["label"] == "I have answered"
    bot.postback(tapper, item["action"]["data"])
    assert bot.last_text(tapper).startswith("ขอบคุณที่ตอบแบบประเมิน")
    from surveys.campaigns import today_bangkok

    if not date(2026, 1, 1) <= today_bangkok() <= date(2026, 6, 30):  # typed: the survey open today
        with services.db.session() as s:
            c = s.get(SurveyCampaign, cid)
            c.opens_on, c.closes_on = today_bangkok() - timedelta(days=5), today_bangkok() + timedelta(days=60)
    bot.text(typer, "ตอบแล้วค่ะ")
    assert bot.last_text(typer).startswith("ขอบคุณที่ตอบแบบประเมิน")
    bot.text(english, "I have answered.")
    assert bot.last_text(english).startswith("Thank you for answering")
    with services.db.Session() as s:
        said = set(s.scalars(select(SurveyAnswered.line_user_id).where(SurveyAnswered.campaign_id == cid)))
    assert said == {tapper, typer, english}
    with services.db.session() as s:
        c = s.get(SurveyCampaign, cid)
        c.opens_on, c.closes_on = date(2026, 1, 1), date(2026, 6, 30)
    reminders.run_due(services, at(2026, 2, 1, 10, 0))
    assert recipients_by_call(fake_line)[-1] == [other]  # the next reminder only to who has not answered


@pytest.mark.parametrize("word", ["ทำแล้ว", "ตอบแบบประเมินแล้ว", "I answered", "done the survey"])
def test_typing_that_you_answered_records_it_for_the_survey_open_now(bot, services, word):
    from surveys.campaigns import today_bangkok

    today = today_bangkok()
    cid = campaign(services, opens=today - timedelta(days=3), closes=today + timedelta(days=30))
    (user,) = followers(services, 1)
    bot.text(user, word)
    with services.db.Session() as s:
        assert s.get(SurveyAnswered, (cid, user)) is not None, bot.last_text(user)


def test_typing_that_you_answered_with_no_survey_open_records_nothing(bot, services):
    (user,) = followers(services, 1)
    bot.text(user, "ตอบแล้ว")
    assert bot.last_text(user) == "ตอนนี้ยังไม่มีแบบประเมินที่เปิดให้ตอบค่ะ"
    with services.db.Session() as s:
        assert s.scalars(select(SurveyAnswered)).all() == []


def test_group_reminders_never_ask_people_to_tap_or_type_answered(services, fake_line):
    cid = campaign(services, kind="IIT")
    with services.db.session() as s:
        reminders.schedule(s, s.get(SurveyCampaign, cid), include_groups=True)
        # A reminder scheduled before this wording: the request to tap is still removed in a group.
        old = s.scalar(select(Reminder).where(Reminder.label == "cadence-2026-01-16"))
        old.text_th = ('อย่าลืมตอบแบบวัด IIT สำหรับบุคลากร ภายใน 30 มิ.ย. 2569 ค่ะ ถ้าตอบแล้ว กด "ตอบแล้ว" '
                       'เพื่อไม่ให้เตือนอีก\n{link}\n' + reminders.STOP_TH)
        old.text_en = ('A reminder: please answer the IIT survey for staff by 30 Jun 2569 BE. Answered? Tap '
                       '"I have answered".\n{link}\n' + reminders.STOP_EN)
    group = "C" + "d" * 32
    add_groups(services, group)
    fake_line.group_sizes = {group: 12}
    for day in (1, 16):
        reminders.run_due(services, at(2026, 1, day, 10, 0))
    pushes = fake_line.calls("/v2/bot/message/push")
    assert len(pushes) == 2
    for push in pushes:
        thai, english = push.json["messages"]
        assert "quickReply" not in thai and "quickReply" not in english
        text = thai["text"] + "\n" + english["text"]
        assert "กด" not in text and "พิมพ์" not in text and "Tap" not in text, text
        assert "ไม่ต้องแจ้งในกลุ่ม" in thai["text"] and "no need to tell the group" in english["text"]


def test_a_deadline_extension_plans_the_reminders_again_and_keeps_what_was_sent_or_edited(services):
    """The NACC extends the survey from 31 Jan to 28 Feb after the 7-days-before reminder went out: the unsent
    reminders nobody touched follow the new dates, a hand-edited one stays as it is, and the new deadline gets its
    own 7-days-before reminder although that label was used."""
    from surveys.campaigns import edit_campaign

    cid = campaign(services, opens=date(2026, 1, 1), closes=date(2026, 1, 31))
    rows = scheduled(services, cid)
    by_label = {r.label: r for r in rows}
    assert {"closes-7", "closes-3", "closes-1"} <= set(by_label)
    with services.db.session() as s:
        s.get(Reminder, by_label["closes-7"].id).status = "sent"  # 24 Jan: gone out already
        s.get(Reminder, by_label["closes-3"].id).text_th = "ข้อความที่แก้เอง {link}"  # someone's own words
    now = at(2026, 1, 25)
    with services.db.session() as s:
        c = s.get(SurveyCampaign, cid)
        before = reminders.planned(s, c)
        assert edit_campaign(s, c, c.url, date(2026, 1, 1), date(2026, 2, 28), today=date(2026, 1, 25))
        made, kept = reminders.replan(s, c, before, now=now)
    assert kept == 1
    with services.db.Session() as s:
        after = {r.label: r for r in s.scalars(select(Reminder).where(Reminder.campaign_id == cid))}
    assert after["closes-7"].status == "sent" and after["closes-3"].text_th == "ข้อความที่แก้เอง {link}"
    assert after["closes-3"].send_at == by_label["closes-3"].send_at  # kept its date: the page asks to check it
    assert "closes-1" in after and after["closes-1"].send_at == at(2026, 2, 27)  # untouched: follows the new date
    new_seven = after["closes-7@2026-02-21"]
    assert new_seven.send_at == at(2026, 2, 21) and new_seven.status == "scheduled"
    assert after["closes-3@2026-02-25"].send_at == at(2026, 2, 25)
    assert {"cadence-2026-02-01", "cadence-2026-02-16"} <= set(after)
    assert "28 ก.พ. 2569" in after["closes-1"].text_th  # the texts say the new deadline
    scheduled_before_now = [r for r in after.values() if r.status == "scheduled" and r.send_at <= now
                            and r.label != "closes-3"]
    assert scheduled_before_now == []  # nothing new in the past, to go out at once
    assert made == len([r for r in after.values() if r.status == "scheduled"]) - kept


def test_replanning_a_campaign_whose_reminders_were_never_scheduled_schedules_nothing(services):
    from surveys.campaigns import edit_campaign

    cid = campaign(services)
    with services.db.session() as s:
        c = s.get(SurveyCampaign, cid)
        before = reminders.planned(s, c)
        edit_campaign(s, c, c.url, c.opens_on, date(2026, 7, 31), today=date(2026, 1, 1))
        assert reminders.replan(s, c, before, now=at(2026, 1, 2)) == (0, 0)
    with services.db.Session() as s:
        assert s.scalars(select(Reminder)).all() == []
