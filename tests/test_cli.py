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
                    break
            except OSError:
                time.sleep(0.3)
        assert health == {"database": "ok", "events": {}, "mode": "embedded", "status": "ok",
                          "oldest_pending_s": None, "outbox": 0, "worker": "ok"}
        # A message through the simulator is answered by the in-process worker.
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
