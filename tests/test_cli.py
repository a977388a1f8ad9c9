"""The `itabot` command line, as an operator uses it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_env, new_user

from bot.cli import main


@pytest.fixture
def cli_env(tmp_path, fake_line):
    return make_env(tmp_path, f"sqlite:///{tmp_path / 'cli.sqlite3'}", fake_line.url)


def run(env, *args):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result


def test_db_upgrade_and_office_add_and_list(cli_env):
    assert "up to date" in run(cli_env, "db", "upgrade").output
    env = dict(cli_env, NEW_OFFICE_CHANNEL_SECRET="feedfacefeedfacefeedfacefeedface",
               NEW_OFFICE_ACCESS_TOKEN="tok-2")
    out = run(env, "office", "add", "--slug", "nongchok", "--name", "สำนักงานเขตหนองจอก").output
    assert "https://bot.example.go.th/callback/nongchok" in out
    out = run(cli_env, "office", "add", "--slug", "trial", "--name", "ทดลอง").output
    assert "trial added" in out
    listing = run(cli_env, "office", "list").output.splitlines()
    assert listing[0].startswith("default\tสำนักงานเขตทดสอบ (default)\tLINE\thttps://bot.example.go.th/callback")
    assert listing[1] == "nongchok\tสำนักงานเขตหนองจอก\tLINE\thttps://bot.example.go.th/callback/nongchok"
    assert listing[2].startswith("trial\tทดลอง\tsimulator")
    again = run(cli_env, "office", "add", "--slug", "trial", "--name", "x")
    assert again.exit_code != 0 and "exists already" in again.output
    bad = run(cli_env, "office", "add", "--slug", "Bad Slug", "--name", "x")
    assert bad.exit_code != 0 and "slug" in bad.output


def test_office_credentials_are_stored_encrypted(cli_env):
    env = dict(cli_env, NEW_OFFICE_CHANNEL_SECRET="feedfacefeedfacefeedfacefeedface",
               NEW_OFFICE_ACCESS_TOKEN="very-secret-token")
    run(env, "office", "add", "--slug", "bangrak", "--name", "บางรัก")
    raw = Path(cli_env["DATABASE_URL"].removeprefix("sqlite:///")).read_bytes()
    assert b"very-secret-token" not in raw and b"feedfacefeedface" not in raw


def test_an_office_saved_under_another_data_key_is_listed_and_marked_not_a_traceback(cli_env):
    from cryptography.fernet import Fernet

    env = dict(cli_env, NEW_OFFICE_CHANNEL_SECRET="feedfacefeedfacefeedfacefeedface", NEW_OFFICE_ACCESS_TOKEN="tok-2")
    assert run(env, "office", "add", "--slug", "nongchok", "--name", "สำนักงานเขตหนองจอก").exit_code == 0
    rekeyed = dict(cli_env, ITABOT_DATA_KEY=Fernet.generate_key().decode())
    result = CliRunner().invoke(main, ["office", "list"], env=rekeyed)
    assert result.exit_code == 0 and result.exception is None
    default, nongchok = result.output.splitlines()
    assert default.startswith("default\t") and "cannot be decrypted" not in default
    assert nongchok.startswith("nongchok\tสำนักงานเขตหนองจอก\tLINE — credentials cannot be decrypted with this "
                               "ITABOT_DATA_KEY") and nongchok.endswith("/callback/nongchok")
    # A command for that office that needs no LINE still works, with one line saying what is wrong.
    listed = CliRunner().invoke(main, ["festivals", "list", "--office", "nongchok"], env=rekeyed)
    assert listed.exit_code == 0 and "new_year" in listed.output
    assert listed.output.count("cannot be decrypted") == 1


def test_a_command_that_makes_a_new_instance_says_so_in_one_line(tmp_path):
    env = {"ITABOT_INSTANCE_PATH": str(tmp_path / "elsewhere"), "DATABASE_URL": None, "SECRET_KEY": None,
           "ITABOT_DATA_KEY": None, "LINE_CHANNEL_SECRET": None, "LINE_CHANNEL_ACCESS_TOKEN": None}
    first = CliRunner().invoke(main, ["office", "list"], env=env)
    assert first.exit_code == 0 and "default\t" in first.stdout
    assert first.stderr.splitlines() == [
        f"itabot: new instance in {tmp_path / 'elsewhere'}: a new database and new development keys "
        "(to use an existing instance, set ITABOT_INSTANCE_PATH to its folder)"]
    again = CliRunner().invoke(main, ["office", "list"], env=env)
    assert again.exit_code == 0 and "new instance" not in again.stderr


def test_keygen_prints_usable_keys(tmp_path):
    out = CliRunner().invoke(main, ["keygen"]).output
    env = dict(line.split("=", 1) for line in out.splitlines())
    from bot.config import load_settings

    s = load_settings({"ITABOT_INSTANCE_PATH": str(tmp_path), "LINE_CHANNEL_SECRET": "a" * 32,
                       "LINE_CHANNEL_ACCESS_TOKEN": "t", **env})
    assert s.secret_key == env["SECRET_KEY"] and s.data_key == env["ITABOT_DATA_KEY"]


def test_richmenu_deploy_creates_both_menus_and_links_followers(cli_env, fake_line, tmp_path):
    out = run(cli_env, "richmenu", "deploy").output
    assert "public rich menu: richmenu-" in out
    created = fake_line.calls("/v2/bot/richmenu", method="POST")
    menus = [c.json for c in created if c.path == "/v2/bot/richmenu"]
    assert [m["name"] for m in menus] == ["itabot-public", "itabot-staff"]
    for m in menus:
        assert m["size"] == {"width": 2500, "height": 843}
        assert all(a["action"]["type"] == "postback" for a in m["areas"])
    uploads = [c for c in fake_line.calls("/content", method="POST")]
    assert len(uploads) == 2 and uploads[0].body.startswith(b"\x89PNG") and len(uploads[0].body) < 1024 * 1024
    assert fake_line.calls("/v2/bot/user/all/richmenu/richmenu-")
    # A new follower is linked to the public menu.
    from conftest import Bot

    from bot.app import create_app
    from bot.config import load_settings

    app = create_app(load_settings(cli_env), start_worker=False)
    try:
        user = new_user()
        Bot(app, fake_line).follow(user)
        assert fake_line.calls(f"/v2/bot/user/{user}/richmenu/richmenu-")
    finally:
        app.extensions["itabot"].close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_on_a_fresh_instance_with_the_simulator(tmp_path):
    """The README's quick start: no settings at all, SQLite, simulator on."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LINE_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ITABOT_"))}
    env["ITABOT_INSTANCE_PATH"] = str(tmp_path / "instance")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 60
        health = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                # The processing process needs a few seconds to start; until then it says so.
                assert health["worker"] in ("starting", "ok"), health
                if health["worker"] == "ok":
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert health == {"database": "ok", "events": {}, "mode": "embedded", "status": "ok",
                          "oldest_pending_s": None, "outbox": 0, "worker": "ok"}
        # A message through the simulator is answered by the processing process.
        user = "U" + "c" * 32
        req = urllib.request.Request(f"http://127.0.0.1:{port}/simulator/api/default/events",
                                     data=json.dumps({"user": user, "type": "follow"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())["webhook_status"] == 200
        texts = []
        while time.time() < deadline and not texts:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/simulator/api/default/messages?user={user}", timeout=5) as r:
                texts = [m for m in json.loads(r.read())["messages"] if m["direction"] == "out"]
            time.sleep(0.2)
        assert texts and "สวัสดีค่ะ" in texts[0]["message"]["text"]
        assert (tmp_path / "instance" / "itabot.sqlite3").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
    assert user.encode() not in err  # no user IDs in the logs


# -- one clear line, never a traceback -----------------------------------------------------------------


def _trial_office_with_a_reminder_due(env) -> tuple[str, str]:
    """An office on the simulator (no LINE channel), an EIT open today, its reminders, one follower."""
    from datetime import timedelta

    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from models import LineUser, Office
    from surveys.campaigns import today_bangkok

    today = today_bangkok()
    assert run(env, "office", "add", "--slug", "trial", "--name", "ทดลอง").exit_code == 0
    added = run(env, "survey", "add", "--office", "trial", "--kind", "EIT", "--url", "https://itas.nacc.go.th/x",
                "--opens", today.isoformat(), "--closes", (today + timedelta(days=60)).isoformat())
    assert added.exit_code == 0, added.output
    user = new_user()
    with Session(create_engine(env["DATABASE_URL"])) as s:
        office_id = s.scalar(select(Office.id).where(Office.slug == "trial"))
        s.add(LineUser(office_id=office_id, line_user_id=user, language="th", following=True))
        s.commit()
    assert run(env, "reminders", "schedule", "--campaign", "1").exit_code == 0
    return user, f"{today.isoformat()}T12:00:00+07:00"


def test_run_due_sends_a_simulated_offices_reminders_to_the_simulator(cli_env):
    env = dict(cli_env, ITABOT_SIMULATOR="true")
    user, now = _trial_office_with_a_reminder_due(env)
    result = CliRunner().invoke(main, ["reminders", "run-due", "--now", now], env=env)
    assert result.exit_code == 0 and "1 recipients in 1 calls" in result.output, result.output
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from models import SimMessage

    with Session(create_engine(env["DATABASE_URL"])) as s:
        sent = s.scalars(select(SimMessage).where(SimMessage.user_id == user, SimMessage.direction == "out")).all()
    assert len(sent) == 1 and "เปิดให้ตอบแบบวัด EIT" in sent[0].body


def test_run_due_without_a_channel_or_the_simulator_is_one_clear_error(cli_env):
    env = dict(cli_env, ITABOT_SIMULATOR="false")
    _, now = _trial_office_with_a_reminder_due(env)
    result = CliRunner().invoke(main, ["reminders", "run-due", "--now", now], env=env)
    assert result.exit_code == 1 and result.exception is not None and isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: office has no LINE channel") and "ITABOT_SIMULATOR" in result.output


def test_a_poster_with_the_default_http_address_still_prints_and_says_so(cli_env, tmp_path):
    from datetime import timedelta

    from surveys.campaigns import today_bangkok

    env = dict(cli_env, PUBLIC_BASE_URL="http://localhost:8000")
    today = today_bangkok()
    assert run(env, "survey", "add", "--kind", "EIT", "--url", "https://itas.nacc.go.th/x", "--opens",
               today.isoformat(), "--closes", (today + timedelta(days=60)).isoformat()).exit_code == 0
    out = tmp_path / "counter-1.pdf"
    result = CliRunner().invoke(main, ["survey", "poster", "--campaign", "1", "--source", "counter-1",
                                       "--output", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF") and "http://localhost:8000/s/" in result.output
    assert "not an https address" in result.stderr and "PUBLIC_BASE_URL" in result.stderr


def test_a_command_run_without_office_name_does_not_rename_the_office(cli_env):
    named = dict(cli_env, OFFICE_NAME="สำนักงานเขตบางรัก")
    run(named, "db", "upgrade")
    run(named, "worker", "--burst")  # a process of the bot names the office from OFFICE_NAME
    bare = {k: v for k, v in cli_env.items() if k != "OFFICE_NAME"}
    listing = run(bare, "office", "list").output  # an operator's shell without the variable
    assert "สำนักงานเขตบางรัก" in listing and "ตัวอย่าง" not in listing


@pytest.mark.parametrize("name", ["PORT", "WEB_CONCURRENCY"])
def test_a_malformed_port_or_worker_count_is_one_clear_line(cli_env, name):
    result = CliRunner().invoke(main, ["serve"], env=dict(cli_env, **{name: "abc"}))
    assert result.exit_code == 2 and f"{name} is malformed" in result.output
    assert "Traceback" not in result.output


def test_serve_on_another_port_makes_links_and_qr_images_point_there(cli_env, monkeypatch):
    from gunicorn.app.base import BaseApplication

    seen = {}
    monkeypatch.setattr(BaseApplication, "run", lambda self: seen.update(
        base=os.environ.get("PUBLIC_BASE_URL"), bind=self.cfg.bind))
    result = CliRunner().invoke(main, ["serve", "--port", "18765"], env=dict(cli_env, PUBLIC_BASE_URL=""))
    assert result.exit_code == 0, result.output
    assert seen == {"base": "http://localhost:18765", "bind": ["127.0.0.1:18765"]}


def test_redis_over_a_unix_socket_is_accepted(tmp_path):
    from bot.config import load_settings

    env = {"REDIS_URL": "unix:///run/redis/redis.sock", "ITABOT_INSTANCE_PATH": str(tmp_path)}
    assert load_settings(env).redis_url == "unix:///run/redis/redis.sock"


def test_line_refusals_in_commands_are_one_line_that_says_why(cli_env):
    wrong = dict(cli_env, LINE_CHANNEL_ACCESS_TOKEN="revoked-token")  # the fake accepts only its own token
    result = CliRunner().invoke(main, ["richmenu", "deploy"], env=wrong)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "richmenu deploy: LINE refused the channel access token (401)" in result.output
    result = CliRunner().invoke(main, ["followers", "sync"], env=wrong)
    assert "(401)" in result.output and "verified or premium" not in result.output
