"""Surveys: campaigns from the CLI, the right card for each person, tracked links, staff enrolment."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from conftest import new_user
from sqlalchemy import select, update

from bot.cli import main
from bot.thaidate import be_date
from models import CodeAttempts, LinkClicks, StaffInviteCode, SurveyAnswered, TrackedLink, utcnow
from surveys.campaigns import fiscal_year_be, served_a_year, today_bangkok

TODAY = today_bangkok()
URL = "https://itas.nacc.go.th/go/eit/abc123"


def cli(env, *args):
    return CliRunner().invoke(main, list(args), env=env)


def add(env, kind="EIT", opens=None, closes=None, **extra):
    opens = opens or TODAY - timedelta(days=10)
    closes = closes or TODAY + timedelta(days=60)
    args = ["survey", "add", "--kind", kind, "--url", URL if kind == "EIT" else URL.replace("eit", "iit"),
            "--opens", opens.isoformat(), "--closes", closes.isoformat()]
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    result = cli(env, *args)
    assert result.exit_code == 0, result.output
    return result.output


def card(bot, user):
    flex = [m for m in bot.fake.sent_to(user) if m["type"] == "flex"]
    return flex[-1] if flex else None


def test_campaign_add_refuses_bad_input_clearly(env):
    bad = [
        (["--url", "http://itas.nacc.go.th/x"], "https"),
        (["--closes", (TODAY - timedelta(days=20)).isoformat()], "closing date is before"),
        (["--office", "nowhere"], "no office"),
        (["--opens", "31/12"], "not a date"),  # a campaign needs the year
        (["--target", "99999999999999999999"], "not in the range"),
    ]
    for override, message in bad:
        args = {"--kind": "EIT", "--url": URL, "--opens": (TODAY - timedelta(days=10)).isoformat(),
                "--closes": (TODAY + timedelta(days=5)).isoformat()}
        for i in range(0, len(override), 2):
            args[override[i]] = override[i + 1]
        result = cli(env, "survey", "add", *[x for kv in args.items() for x in kv])
        assert result.exit_code != 0 and message in result.output, (override, result.output)


def test_a_campaign_is_edited_from_the_command_line_and_its_reminders_follow_the_new_deadline(env):
    add(env, internal_deadline=(TODAY + timedelta(days=30)).isoformat())
    assert cli(env, "reminders", "schedule", "--campaign", "1").exit_code == 0
    same = cli(env, "survey", "edit", "--campaign", "1", "--url", URL + "-fixed", "--target", "150")
    assert same.exit_code == 0 and "planned again" not in same.output  # link and target only
    later = TODAY + timedelta(days=90)
    moved = cli(env, "survey", "edit", "--campaign", "1", "--closes", _be(later), "--internal-deadline", "none")
    assert moved.exit_code == 0, moved.output
    assert be_date(later) in moved.output and "reminders planned again from the new dates" in moved.output
    listing = cli(env, "survey", "list").output
    assert URL + "-fixed" in listing and "target 150" in listing and "internal deadline" not in listing
    assert be_date(later) in listing
    reminders = cli(env, "reminders", "list", "--campaign", "1").output
    assert "closes-1" in reminders and "internal-" not in reminders  # the removed deadline's reminders went
    bad = cli(env, "survey", "edit", "--campaign", "1", "--closes", (TODAY - timedelta(days=30)).isoformat())
    assert bad.exit_code != 0 and "closing date is before" in bad.output
    assert cli(env, "survey", "edit", "--campaign", "9").exit_code != 0


def _be(d: date) -> str:
    return f"{d.year + 543}-{d.month:02d}-{d.day:02d}"


def test_buddhist_era_years_are_read_as_such_and_far_off_dates_refused(env):
    opens, closes = TODAY - timedelta(days=10), TODAY + timedelta(days=60)
    result = cli(env, "survey", "add", "--kind", "EIT", "--url", URL, "--opens", _be(opens), "--closes", _be(closes))
    assert result.exit_code == 0, result.output
    assert f"FY {fiscal_year_be(opens)}," in result.output and be_date(closes) in result.output
    listing = cli(env, "survey", "list").output
    assert f"{be_date(opens)} – {be_date(closes)}" in listing and "FY 31" not in listing
    # D/M/YYYY in BE, as Thai officers write it, for an IIT campaign.
    iit = cli(env, "survey", "add", "--kind", "IIT", "--url", URL.replace("eit", "iit"),
              "--opens", f"{opens.day}/{opens.month}/{opens.year + 543}", "--closes", closes.isoformat())
    assert iit.exit_code == 0 and be_date(opens) in iit.output, iit.output
    # A date years away is a typo: refused with one clear line, nothing made.
    for far in ("2035-01-01", "2020-01-01", "3113-06-30"):
        result = cli(env, "survey", "add", "--kind", "EIT", "--url", URL, "--opens", TODAY.isoformat(),
                     "--closes", far)
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
        assert "too far from today" in result.output or "not a date" in result.output, result.output
    assert len(cli(env, "survey", "list").output.strip().splitlines()) == 2


def test_an_overlapping_campaign_of_the_same_kind_is_refused_naming_the_existing_one(env):
    add(env)  # campaign 1: EIT, open now
    again = cli(env, "survey", "add", "--kind", "EIT", "--url", URL,
                "--opens", (TODAY + timedelta(days=30)).isoformat(),
                "--closes", (TODAY + timedelta(days=200)).isoformat())
    assert again.exit_code != 0 and "campaign 1" in again.output and "already covers" in again.output, again.output
    # Another kind, or the next round after this one closes, is fine.
    add(env, kind="IIT")
    add(env, opens=TODAY + timedelta(days=61), closes=TODAY + timedelta(days=200))
    assert len(cli(env, "survey", "list").output.strip().splitlines()) == 3


def test_campaign_list_shows_buddhist_era_dates(env):
    y = TODAY.year  # this calendar year (campaign dates must be near today), shown as BE y + 543
    out = add(env, opens=date(y, 1, 1), closes=date(y, 6, 30), internal_deadline=f"{y}-02-28", target=400)
    assert f"FY {y + 543}" in out and f"1 ม.ค. {y + 543}" in out and f"30 มิ.ย. {y + 543}" in out
    listing = cli(env, "survey", "list").output
    be = y + 543
    assert f"EIT\tFY {be}\t1 ม.ค. {be} – 30 มิ.ย. {be} internal deadline 28 ก.พ. {be} target 400" in listing
    # A campaign opening in October is in the next fiscal year.
    assert f"FY {be + 1}" in add(env, opens=date(y, 10, 1), closes=date(y + 1, 3, 31))
    assert fiscal_year_be(date(2025, 10, 1)) == 2569 and fiscal_year_be(date(2026, 9, 30)) == 2569


def test_the_public_get_the_eit_card_with_a_tracked_link_qr_and_deadline(bot, env, services):
    add(env, internal_deadline=(TODAY + timedelta(days=20)).isoformat())
    user = new_user()
    bot.text(user, "แบบประเมินครับ")
    msg = card(bot, user)
    assert msg is not None and "EIT" in msg["altText"]
    bubble = msg["contents"]
    with services.db.Session() as s:
        link = s.scalar(select(TrackedLink).where(TrackedLink.source == "line-chat"))
    assert bubble["hero"]["url"] == f"https://bot.example.go.th/qr/{link.token}.png"
    buttons = bubble["footer"]["contents"]
    assert buttons[0]["action"]["uri"] == f"https://bot.example.go.th/s/{link.token}"
    assert buttons[1]["action"]["data"].startswith("action=survey_done")
    texts = " ".join(c["text"] for c in bubble["body"]["contents"])
    assert be_date(TODAY + timedelta(days=20)) in texts  # the office's own deadline, in BE
    # The rich-menu button gives the same card with its own source.
    bot.postback(user, "action=survey&src=richmenu")
    with services.db.Session() as s:
        assert s.scalar(select(TrackedLink).where(TrackedLink.source == "rich-menu")) is not None


def test_every_keyword_and_english(bot, env):
    add(env)
    for word in ("แบบสอบถาม", "แบบประเมิน", "EIT", "IIT", "survey"):
        user = new_user()
        bot.text(user, word)
        assert card(bot, user) is not None, word
    user = new_user()
    bot.text(user, "English")
    bot.text(user, "survey")
    assert "EIT survey for service users" in card(bot, user)["altText"]
    user = new_user()
    bot.text(user, "IIT")  # the IIT by name, from someone who is not enrolled staff: the EIT, and why
    assert "EIT" in card(bot, user)["altText"]
    assert any("แบบวัด IIT สำหรับบุคลากรของหน่วยงานที่ลงทะเบียนแล้ว" in t for t in bot.texts(user)[-2:])


def test_outside_the_dates_people_are_told_when(bot, env):
    user = new_user()
    bot.text(user, "แบบประเมิน")
    assert bot.last_text(user) == "ตอนนี้ยังไม่มีแบบประเมินที่เปิดให้ตอบค่ะ"
    add(env, opens=TODAY + timedelta(days=3), closes=TODAY + timedelta(days=40))
    bot.text(user, "แบบประเมิน")
    assert be_date(TODAY + timedelta(days=3)) in bot.last_text(user) and "จะเปิด" in bot.last_text(user)


def test_closed_campaign(bot, env):
    add(env, opens=TODAY - timedelta(days=40), closes=TODAY - timedelta(days=2))
    user = new_user()
    bot.text(user, "แบบประเมิน")
    assert "ปิดรับคำตอบแล้ว" in bot.last_text(user) and be_date(TODAY - timedelta(days=2)) in bot.last_text(user)
    bot.text(user, "survey")  # typed in English: answered in English, the date still in the Buddhist Era
    assert "closed on" in bot.last_text(user) and be_date(TODAY - timedelta(days=2), "en") in bot.last_text(user)


def test_i_have_answered_is_recorded_once(bot, env, services):
    add(env)
    user = new_user()
    bot.text(user, "แบบประเมิน")
    data = card(bot, user)["contents"]["footer"]["contents"][1]["action"]["data"]
    bot.postback(user, data)
    bot.postback(user, data)
    assert bot.last_text(user).startswith("ขอบคุณที่ตอบแบบประเมิน")
    with services.db.Session() as s:
        assert len(s.scalars(select(SurveyAnswered)).all()) == 1


def tracked_path(bot, env) -> str:
    """The survey button's link on a card asked for in the chat, as a path of this app."""
    add(env)
    user = new_user()
    bot.text(user, "แบบประเมิน")
    uri = card(bot, user)["contents"]["footer"]["contents"][0]["action"]["uri"]
    return uri.removeprefix("https://bot.example.go.th")


def test_tracked_link_redirects_and_counts_per_source_and_day(bot, env, services, app):
    path = tracked_path(bot, env)
    for _ in range(3):
        resp = app.test_client().get(path)
        assert resp.status_code == 302 and resp.headers["Location"] == URL
    with services.db.Session() as s:
        row = s.scalars(select(LinkClicks)).one()
    assert (row.clicks, row.day) == (3, TODAY)
    assert app.test_client().get("/s/doesnotexist").status_code == 404
    qr = app.test_client().get(path.replace("/s/", "/qr/") + ".png")
    assert qr.status_code == 200 and qr.data.startswith(b"\x89PNG") and len(qr.data) < 1024 * 1024


PREVIEW_AGENTS = (
    "facebookexternalhit/1.1;line-poker/1.0",  # LINE drawing the link's preview in a chat
    "Line/1.0 (compatible; Line-Crawler; +https://help.line.me/)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "facebookexternalhit/1.1 Facebot Twitterbot/1.0",  # iMessage
    "Twitterbot/1.0", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "TelegramBot (like TwitterBot)",
    "WhatsApp/2.23.20.0 A",
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def test_link_previews_and_head_requests_are_redirected_but_not_counted(bot, env, services, app):
    path = tracked_path(bot, env)
    client = app.test_client()
    for agent in PREVIEW_AGENTS:
        preview = client.get(path, headers={"User-Agent": agent})
        assert preview.status_code == 302 and preview.headers["Location"] == URL, agent
    head = client.head(path, headers={"User-Agent": IPHONE + " Safari/604.1"})
    assert head.status_code == 302 and head.headers["Location"] == URL
    with services.db.Session() as s:
        assert s.scalars(select(LinkClicks)).all() == []
    # People count: in LINE's in-app browser (its user agent names "Line/") and in Safari.
    for agent in (IPHONE + " Safari Line/14.0.0", IPHONE + " Safari/604.1"):
        assert client.get(path, headers={"User-Agent": agent}).status_code == 302
    with services.db.Session() as s:
        assert s.scalars(select(LinkClicks)).one().clicks == 2


def _invite(env, name="สมศรี ใจดี", division="ฝ่ายทะเบียน", started=None):
    started = started or (TODAY - timedelta(days=800)).isoformat()
    result = cli(env, "staff", "invite", "--name", name, "--division", division, "--started", started)
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_staff_enrol_with_their_code_and_get_the_iit_never_the_eit(bot, env, services, fake_line):
    add(env, kind="EIT")
    add(env, kind="IIT")
    from bot.richmenu import deploy

    deploy(services, 1)
    code = _invite(env)
    assert len(code) == 9 and code[4] == "-"
    user = new_user()
    bot.text(user, f"รหัส {code.lower().replace('-', ' ')}")  # as people type it
    assert "ยืนยันตัวตนเรียบร้อย" in bot.last_text(user) and "ฝ่ายทะเบียน" in bot.last_text(user)
    assert fake_line.calls(f"/v2/bot/user/{user}/richmenu/")  # the staff menu
    bot.text(user, "แบบประเมิน")
    assert "IIT" in card(bot, user)["altText"]
    bot.text(user, "EIT")  # asking for the EIT by name still gives a member of staff the IIT, and says why
    assert "IIT" in card(bot, user)["altText"]
    assert any("บุคลากรของหน่วยงานตอบแบบวัด IIT" in t for t in bot.texts(user)[-2:])
    other = new_user()
    bot.text(other, code)  # single use
    assert "ไม่ถูกต้องหรือถูกใช้ไปแล้ว" in bot.last_text(other)


def _card_texts(msg) -> str:
    return " ".join(c["text"] for c in msg["contents"]["body"]["contents"])


def test_the_iit_card_asks_staff_to_share_it_with_colleagues_not_service_users(bot, env):
    add(env, kind="EIT")
    add(env, kind="IIT")
    user = new_user()
    bot.text(user, _invite(env))
    bot.text(user, "แบบประเมิน")
    iit = _card_texts(card(bot, user))
    assert "เพื่อนร่วมงาน" in iit and "มารับบริการ" not in iit
    bot.text(user, "English")
    bot.text(user, "survey")
    iit_en = _card_texts(card(bot, user))
    assert "colleague" in iit_en and "used our services" not in iit_en
    public = new_user()
    bot.text(public, "แบบประเมิน")  # the EIT card still asks the public to pass it on
    assert "มารับบริการ" in _card_texts(card(bot, public))


def test_once_the_internal_deadline_has_passed_the_card_and_poster_show_the_closing_date(bot, env, services):
    closes = TODAY + timedelta(days=60)
    passed = (TODAY - timedelta(days=20)).isoformat()
    add(env, opens=TODAY - timedelta(days=30), closes=closes, internal_deadline=passed)
    user = new_user()
    bot.text(user, "แบบประเมิน")
    msg = card(bot, user)
    assert be_date(closes) in _card_texts(msg) and be_date(TODAY - timedelta(days=20)) not in _card_texts(msg)
    assert be_date(closes) in msg["altText"]
    from models import SurveyCampaign
    from surveys.campaigns import link_for, poster_content

    with services.db.session() as s:
        c = s.get(SurveyCampaign, 1)
        assert poster_content(s, c, link_for(s, c, "poster:x"), "https://bot.example.go.th").deadline == closes


def test_staff_with_less_than_a_year_get_a_kind_explanation(bot, env):
    add(env, kind="IIT")
    code = _invite(env, started=(TODAY - timedelta(days=100)).isoformat())
    user = new_user()
    bot.text(user, code)
    bot.text(user, "แบบประเมิน")
    expected = be_date(TODAY - timedelta(days=100) + timedelta(days=365))
    assert "ครบ 1 ปี" in bot.last_text(user)
    assert expected[-4:] in bot.last_text(user)
    assert not served_a_year(date(2024, 2, 29), date(2025, 2, 27))
    assert served_a_year(date(2024, 2, 29), date(2025, 2, 28))


def test_codes_expire_and_guessing_is_throttled(bot, env, services):
    code = _invite(env)
    with services.db.session() as s:
        s.execute(update(StaffInviteCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    user = new_user()
    bot.text(user, code)
    assert "หมดอายุ" in bot.last_text(user)
    guesser = new_user()
    for _ in range(5):
        bot.text(guesser, "ABCD-EFGH")
    assert "รอ 15 นาที" in bot.last_text(guesser)
    fresh = _invite(env, name="ก้อง")
    bot.text(guesser, fresh)  # even the right code waits out the lock
    assert "รอ 15 นาที" in bot.last_text(guesser)
    with services.db.session() as s:
        s.execute(update(CodeAttempts).values(locked_until=utcnow() - timedelta(seconds=1)))
    bot.text(guesser, fresh)
    assert "ยืนยันตัวตนเรียบร้อย" in bot.last_text(guesser)


def test_a_code_typed_with_thai_digits_enrols(bot, env):
    code = _invite(env)
    thai = code.translate(str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙"))
    assert thai != code  # every new code has a digit
    user = new_user()
    bot.text(user, thai)
    assert "ยืนยันตัวตนเรียบร้อย" in bot.last_text(user)


def test_plain_english_words_are_not_taken_for_codes_and_never_lock_anyone(bot, env):
    _invite(env)
    user = new_user()
    for word in ("feedback", "Standard", "WHATSAPP", "take care", "feedback", "Standard"):
        bot.text(user, word)
        reply = bot.last_text(user)
        assert "ไม่ถูกต้องหรือถูกใช้ไปแล้ว" not in reply and "รอ 15 นาที" not in reply, (word, reply)
    bot.text(user, _invite(env, name="ก้อง"))  # not locked out by the words
    assert "ยืนยันตัวตนเรียบร้อย" in bot.last_text(user)


def test_new_invite_codes_always_have_a_digit_and_old_all_letter_codes_still_work_dashed(bot, env, services):
    from surveys.campaigns import _code_hash, invite_staff, looks_like_code

    with services.db.session() as s:
        fresh = [invite_staff(s, 1, f"คน {i}", "ฝ่ายโยธา", TODAY - timedelta(days=800)) for i in range(60)]
    assert all(any(ch.isdigit() for ch in code) for code in fresh)
    assert looks_like_code("ABCD-EFGH") and looks_like_code("รหัส ABCDEFGH") and not looks_like_code("ABCDEFGH")
    with services.db.session() as s:  # a code issued before codes had digits
        s.execute(update(StaffInviteCode).where(StaffInviteCode.code_hash == _code_hash(fresh[0]))
                  .values(code_hash=_code_hash("ABCD-EFGH")))
    user = new_user()
    bot.text(user, "abcd-efgh")
    assert "ยืนยันตัวตนเรียบร้อย" in bot.last_text(user)


def test_inviting_the_same_person_again_makes_no_second_code_and_reissue_replaces_a_lost_one(bot, env, services):
    code = _invite(env, started="1/3/2558")  # Thai Excel's D/M/YYYY in the Buddhist Era
    again = cli(env, "staff", "invite", "--name", "สมศรี  ใจดี", "--division", "ฝ่ายทะเบียน", "--started", "2558-03-01")
    assert again.exit_code == 1 and "already registered" in again.output and "staff reissue" in again.output
    listing = cli(env, "staff", "list").output.strip().splitlines()
    assert len(listing) == 1 and "1 Mar 2558 BE" in listing[0] and "code until" in listing[0]
    member_id = listing[0].split("\t")[0]
    new = cli(env, "staff", "reissue", member_id)
    assert new.exit_code == 0, new.output
    fresh = new.output.strip().splitlines()[-1]
    user = new_user()
    bot.text(user, code)
    assert "หมดอายุ" in bot.last_text(user)  # the lost slip no longer works
    bot.text(user, fresh)
    assert "ยืนยันตัวตนเรียบร้อย" in bot.last_text(user)
    assert "enrolled" in cli(env, "staff", "list").output
    assert cli(env, "staff", "reissue", member_id).exit_code == 1  # on LINE already: nothing to reissue
    with services.db.Session() as s:
        from models import StaffMember

        assert len(s.scalars(select(StaffMember)).all()) == 1


@pytest.mark.parametrize("bad", ["--started 2099-01-01", "--name ''"])
def test_staff_invite_refuses_bad_input(env, bad):
    flag, value = bad.split(" ", 1)
    args = {"--name": "x", "--division": "ฝ่ายโยธา", "--started": "2020-01-01"}
    args[flag] = value.strip("'")
    result = cli(env, "staff", "invite", *[x for kv in args.items() for x in kv])
    assert result.exit_code != 0


@pytest.mark.parametrize("ext", ["pdf", "png"])
def test_poster_from_the_command_line_carries_its_own_tracked_link(env, services, tmp_path, ext):
    add(env)
    out = tmp_path / f"counter-1.{ext}"
    result = cli(env, "survey", "poster", "--campaign", "1", "--source", "counter-1", "--output", str(out))
    assert result.exit_code == 0, result.output
    with services.db.Session() as s:
        link = s.scalar(select(TrackedLink).where(TrackedLink.source == "poster:counter-1"))
    assert link is not None and f"/s/{link.token}" in result.output
    data = out.read_bytes()
    assert data.startswith(b"%PDF" if ext == "pdf" else b"\x89PNG")
    if ext == "png":
        cv2 = pytest.importorskip("cv2", reason="opencv-python-headless decodes the QR code")
        import numpy as np

        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        # OpenCV's classic detector misses about 1 code in 25 of these (the token is random each run; the code
        # itself is fine: quiet zone 4, level Q); its ArUco-based one, and the classic one at half size, read
        # all of 200 tried. Any reading must be the link.
        detectors = [cv2.QRCodeDetectorAruco()] if hasattr(cv2, "QRCodeDetectorAruco") else []
        readings = [det.detectAndDecode(im)[0] for det in (*detectors, cv2.QRCodeDetector())
                    for im in (img, cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))]
        assert f"https://bot.example.go.th/s/{link.token}" in readings
        assert set(readings) <= {"", f"https://bot.example.go.th/s/{link.token}"}
    assert cli(env, "survey", "poster", "--campaign", "99", "--source", "x", "--output", str(out)).exit_code != 0


def test_asking_about_the_eit_in_words_brings_the_card_with_the_answer(bot, env):
    add(env)
    user = new_user()
    bot.postback(user, "action=qa&id=survey.eit")  # as when the Q&A answers "ขอลิงก์แบบประเมินหน่อยครับ"
    sent = bot.fake.sent_to(user)[-2:]
    assert sent[0]["type"] == "text" and "EIT" in sent[0]["text"] and "quickReply" not in sent[0]
    assert sent[1]["type"] == "flex" and URL not in str(sent[1])  # the tracked link, not the raw one
    assert any(q["action"].get("data") == "action=menu" for q in sent[1]["quickReply"]["items"])


def test_asking_about_the_survey_when_none_is_open_says_so(bot):
    user = new_user()
    bot.postback(user, "action=qa&id=survey.deadline")
    texts = bot.texts(user)
    assert len(texts) == 2 and "ที่มา:" in texts[0]


def test_a_code_sent_with_a_polite_word_enrols(bot, env):
    """Thai users end a message with ครับ/ค่ะ: the code still enrols them (it used to go to the Q&A as
    a question the bot was not sure of, with a button offering to send it to an officer)."""
    for typed in ("รหัส {} ค่ะ", "{} ครับ", "{} นะคะ 🙏"):
        code = _invite(env, name=f"คน {typed}")
        user = new_user()
        bot.text(user, typed.format(code.lower()))
        assert "ยืนยันตัวตนเรียบร้อย" in bot.last_text(user), (typed, bot.last_text(user))
    user = new_user()
    bot.text(user, "feedback ครับ")  # still a word, not a code
    assert "ไม่ถูกต้องหรือถูกใช้ไปแล้ว" not in bot.last_text(user)
