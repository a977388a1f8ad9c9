"""Configuration from the environment: a missing or malformed setting stops start-up with one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import CHANNEL_SECRET, DATA_KEY

from bot.config import DEFAULT_LINE_API, ConfigError, load_settings


def _env(tmp_path, **kw):
    env = {"ITABOT_INSTANCE_PATH": str(tmp_path)}
    env.update(kw)
    return env


def test_defaults_need_nothing_and_turn_the_simulator_on(tmp_path):
    s = load_settings(_env(tmp_path))
    assert s.database_url == f"sqlite:///{tmp_path / 'itabot.sqlite3'}"
    assert s.embedded and s.simulator_enabled and not s.has_line_credentials
    assert s.line_api_base_url == DEFAULT_LINE_API
    assert s.dev_keys and (tmp_path / "dev-secrets.json").exists()
    assert oct((tmp_path / "dev-secrets.json").stat().st_mode & 0o777) == "0o600"
    # The same keys next time, so data encrypted yesterday can be read today.
    assert load_settings(_env(tmp_path)).data_key == s.data_key


def test_the_default_instance_is_the_same_from_any_directory(tmp_path, monkeypatch):
    from pathlib import Path

    import bot

    checkout = Path(bot.__file__).resolve().parent.parent
    keys = {"SECRET_KEY": "x" * 32, "ITABOT_DATA_KEY": DATA_KEY}  # nothing is written to the checkout
    for where in (tmp_path, checkout):
        monkeypatch.chdir(where)
        s = load_settings(keys)
        assert s.instance_path == checkout / "instance"
        assert s.database_url == f"sqlite:///{checkout / 'instance' / 'itabot.sqlite3'}"


def test_an_installed_package_keeps_its_instance_beside_its_environment():
    from pathlib import Path

    from bot.config import instance_folder_for

    # As Flask places an installed app's instance folder: <prefix>/var/<name>-instance.
    site = Path(sys.prefix) / "lib" / "python3.11" / "site-packages"
    assert instance_folder_for(site) == Path(sys.prefix).resolve() / "var" / "itabot-instance"


def test_credentials_turn_the_simulator_off_and_require_keys(tmp_path):
    creds = dict(LINE_CHANNEL_SECRET=CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN="tok")
    with pytest.raises(ConfigError, match="^SECRET_KEY is missing"):
        load_settings(_env(tmp_path, **creds))
    with pytest.raises(ConfigError, match="^ITABOT_DATA_KEY is missing"):
        load_settings(_env(tmp_path, SECRET_KEY="x" * 32, **creds))
    s = load_settings(_env(tmp_path, SECRET_KEY="x" * 32, ITABOT_DATA_KEY=DATA_KEY, **creds))
    assert not s.simulator_enabled and s.has_line_credentials and not s.dev_keys
    s = load_settings(_env(tmp_path, SECRET_KEY="x" * 32, ITABOT_DATA_KEY=DATA_KEY, ITABOT_SIMULATOR="on", **creds))
    assert s.simulator_enabled


@pytest.mark.parametrize(
    "setting,value,message",
    [
        ("LINE_CHANNEL_SECRET", CHANNEL_SECRET, "LINE_CHANNEL_ACCESS_TOKEN is missing"),
        ("LINE_CHANNEL_ACCESS_TOKEN", "tok", "LINE_CHANNEL_SECRET is missing"),
        ("LINE_API_BASE_URL", "api.line.me", "LINE_API_BASE_URL is malformed"),
        ("LINE_DATA_API_BASE_URL", "ftp://x", "LINE_DATA_API_BASE_URL is malformed"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL is malformed"),
        ("DATABASE_URL", "not a url", "DATABASE_URL is malformed"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL is malformed"),
        ("PUBLIC_BASE_URL", "bot.example", "PUBLIC_BASE_URL is malformed"),
        ("ITABOT_DATA_KEY", "too-short", "ITABOT_DATA_KEY is malformed"),
        ("SECRET_KEY", "short", "SECRET_KEY is malformed"),
        ("ITABOT_SIMULATOR", "maybe", "ITABOT_SIMULATOR is malformed"),
        ("ITABOT_PROCESSING", "fork", "ITABOT_PROCESSING is malformed"),
    ],
)
def test_bad_settings_are_named(tmp_path, setting, value, message):
    env = _env(tmp_path, **{setting: value})
    if setting == "SECRET_KEY":
        env["ITABOT_DATA_KEY"] = DATA_KEY
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_plain_postgresql_url_uses_psycopg(tmp_path):
    s = load_settings(_env(tmp_path, DATABASE_URL="postgresql://u@h/db"))
    assert s.database_url.startswith("postgresql+psycopg://")


def test_https_warning_for_a_real_channel(tmp_path):
    s = load_settings(_env(tmp_path, LINE_CHANNEL_SECRET=CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN="t",
                           SECRET_KEY="x" * 32, ITABOT_DATA_KEY=DATA_KEY, PUBLIC_BASE_URL="http://bot.local"))
    assert any("https" in n for n in s.notes)


def test_the_command_line_reports_one_clear_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "REDIS_URL"))}
    env.update(ITABOT_INSTANCE_PATH=str(tmp_path), REDIS_URL="localhost")
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "office", "list"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "itabot: configuration error: REDIS_URL is malformed: expected a redis/rediss/unix URL, got 'localhost'"
    ]
