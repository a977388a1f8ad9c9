"""Settings from the environment.

Operators and our tools rely on the variable names below, so they are part of the product's
interface. Start-up stops with one clear line naming the setting that is missing or malformed
(:class:`ConfigError`), never with a traceback deep inside a library.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import site
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

DEFAULT_LINE_API = "https://api.line.me"
DEFAULT_LINE_DATA_API = "https://api-data.line.me"
DEFAULT_OFFICE_NAME = "สำนักงานเขตตัวอย่าง (Demo District Office)"
DEV_SECRETS_FILE = "dev-secrets.json"
DATABASE_FILE = "itabot.sqlite3"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line naming it."""


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    redis_url: str | None
    line_channel_secret: str | None
    line_channel_access_token: str | None
    line_api_base_url: str
    line_data_api_base_url: str
    public_base_url: str
    secret_key: str
    data_key: str
    office_name: str
    simulator_enabled: bool
    worker_threads: int = 1
    sender_threads: int = 32
    processing: str = "process"  # embedded mode: "process" (bot.processing) or "threads"
    dev_keys: bool = False
    notes: tuple[str, ...] = field(default=())
    # One line when these settings make a new instance (a new SQLite database, new development keys): a command
    # run with another instance folder than intended says so instead of quietly starting afresh.
    new_instance: str | None = None

    @property
    def embedded(self) -> bool:
        """Embedded mode: no Redis, work is done by threads inside the web process."""
        return self.redis_url is None

    @property
    def has_line_credentials(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def simulator_transport(self) -> bool:
        """Without credentials the bot talks to the in-app simulator instead of LINE."""
        return not self.has_line_credentials


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or (parts.scheme == "unix" and parts.path)):
        raise ConfigError(f"{name} is malformed: expected a {'/'.join(schemes)} URL, got {value!r}")
    return value.rstrip("/")


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} is malformed: expected true or false, got {value!r}")


def _check_data_key(value: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            "ITABOT_DATA_KEY is malformed: expected 32 url-safe base64 bytes (make one with `itabot keygen`)"
        )
    return value


def instance_folder_for(code_root: Path) -> Path:
    """The instance folder when ITABOT_INSTANCE_PATH is unset, for code imported from ``code_root`` (the folder
    holding ``bot/``). Never the current directory, so every ``itabot`` command finds the same database and keys
    wherever it is run from: a checkout (``pip install -e .``) keeps its ``instance`` folder beside the code; an
    installed package uses ``<environment>/var/itabot-instance``, as Flask places an installed app's instance."""
    if code_root.name.lower() not in ("site-packages", "dist-packages"):
        return code_root / "instance"
    prefix = Path(sys.prefix).resolve()
    base = prefix if code_root.is_relative_to(prefix) else Path(site.getuserbase())  # else: pip install --user
    return base / "var" / "itabot-instance"


def default_instance_path() -> Path:
    return instance_folder_for(Path(__file__).resolve().parent.parent)


def _dev_secrets(instance: Path) -> dict[str, str]:
    """Keys for a machine without LINE credentials, kept so restarts can read old data.

    Only used in simulator/development mode; a real channel must set its keys in the
    environment (see ``load_settings``).
    """
    path = instance / DEV_SECRETS_FILE
    if path.exists():
        return json.loads(path.read_text())
    data = {"SECRET_KEY": secrets.token_urlsafe(48), "ITABOT_DATA_KEY": Fernet.generate_key().decode()}
    instance.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return data


def load_settings(environ: Mapping[str, str] | None = None, instance_path: Path | None = None) -> Settings:
    """Read and validate every setting; raise :class:`ConfigError` on the first bad one."""
    env = os.environ if environ is None else environ
    get = lambda k: (env.get(k) or "").strip() or None  # noqa: E731

    instance = Path(get("ITABOT_INSTANCE_PATH") or instance_path or default_instance_path())
    new: list[str] = []  # what these settings make afresh in the instance folder

    secret = get("LINE_CHANNEL_SECRET")
    token = get("LINE_CHANNEL_ACCESS_TOKEN")
    if secret and not token:
        raise ConfigError("LINE_CHANNEL_ACCESS_TOKEN is missing: it is required when LINE_CHANNEL_SECRET is set")
    if token and not secret:
        raise ConfigError("LINE_CHANNEL_SECRET is missing: it is required when LINE_CHANNEL_ACCESS_TOKEN is set")
    if secret and (len(secret) < 16 or not all(c.isalnum() for c in secret)):
        raise ConfigError(
            "LINE_CHANNEL_SECRET is malformed: expected the channel secret from the LINE Developers console"
        )

    api = _url("LINE_API_BASE_URL", get("LINE_API_BASE_URL") or DEFAULT_LINE_API, ("http", "https"))
    data_api = _url("LINE_DATA_API_BASE_URL", get("LINE_DATA_API_BASE_URL") or DEFAULT_LINE_DATA_API, ("http", "https"))

    database_url = get("DATABASE_URL")
    if not database_url:
        database_url = f"sqlite:///{instance / DATABASE_FILE}"
        if not (instance / DATABASE_FILE).exists():
            new.append("a new database")
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(database_url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a long message
        raise ConfigError(f"DATABASE_URL is malformed: {exc.__class__.__name__}") from None
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ConfigError("DATABASE_URL is malformed: only sqlite:// and postgresql:// are supported")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # psycopg 3 is the driver we ship in the `scaled` extra.
        database_url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)

    redis_url = get("REDIS_URL")
    if redis_url:
        redis_url = _url("REDIS_URL", redis_url, ("redis", "rediss", "unix"))

    notes: list[str] = []
    public = get("PUBLIC_BASE_URL")
    public = _url("PUBLIC_BASE_URL", public, ("http", "https")) if public else "http://localhost:8000"
    if secret and not public.startswith("https://"):
        notes.append(
            "PUBLIC_BASE_URL is not https: LINE shows images only from https URLs, "
            "so QR codes will not display on a real channel"
        )

    secret_key = get("SECRET_KEY")
    data_key = get("ITABOT_DATA_KEY")
    dev_keys = False
    if secret:  # a real channel: secrets come only from the environment
        if not secret_key:
            raise ConfigError("SECRET_KEY is missing: set a long random value (e.g. `itabot keygen`)")
        if not data_key:
            raise ConfigError("ITABOT_DATA_KEY is missing: make one with `itabot keygen`")
    elif not (secret_key and data_key):
        if not (instance / DEV_SECRETS_FILE).exists():
            new.append("new development keys")
        dev = _dev_secrets(instance)
        secret_key = secret_key or dev["SECRET_KEY"]
        data_key = data_key or dev["ITABOT_DATA_KEY"]
        dev_keys = True
        notes.append(
            f"development keys are kept in {instance / DEV_SECRETS_FILE}; "
            "set SECRET_KEY and ITABOT_DATA_KEY before connecting a real LINE channel"
        )
    if len(secret_key) < 16:
        raise ConfigError("SECRET_KEY is malformed: use at least 16 random characters")
    _check_data_key(data_key)

    threads_raw = get("ITABOT_WORKER_THREADS") or "1"
    if not threads_raw.isdigit() or not 1 <= int(threads_raw) <= 64:
        raise ConfigError(f"ITABOT_WORKER_THREADS is malformed: expected a number from 1 to 64, got {threads_raw!r}")

    senders_raw = get("ITABOT_SENDER_THREADS") or "32"
    if not senders_raw.isdigit() or not 0 <= int(senders_raw) <= 256:
        raise ConfigError(f"ITABOT_SENDER_THREADS is malformed: expected a number from 0 to 256, got {senders_raw!r}")

    processing = (get("ITABOT_PROCESSING") or "process").lower()
    if processing not in ("process", "threads"):
        raise ConfigError(f"ITABOT_PROCESSING is malformed: expected process or threads, got {processing!r}")

    sim_raw = get("ITABOT_SIMULATOR")
    simulator = _bool("ITABOT_SIMULATOR", sim_raw) if sim_raw is not None else not secret

    return Settings(
        instance_path=instance,
        database_url=database_url,
        redis_url=redis_url,
        line_channel_secret=secret,
        line_channel_access_token=token,
        line_api_base_url=api,
        line_data_api_base_url=data_api,
        public_base_url=public,
        secret_key=secret_key,
        data_key=data_key,
        office_name=get("OFFICE_NAME") or DEFAULT_OFFICE_NAME,
        simulator_enabled=simulator,
        worker_threads=int(threads_raw),
        sender_threads=int(senders_raw),
        processing=processing,
        dev_keys=dev_keys,
        notes=tuple(notes),
        new_instance=_new_instance_line(instance, new),
    )


def _new_instance_line(instance: Path, new: list[str]) -> str | None:
    if not new:
        return None
    line = (f"new instance in {instance}: {' and '.join(new)} (to use an existing instance, set ITABOT_INSTANCE_PATH "
            "to its folder)")
    here = Path.cwd() / "instance"
    if here.resolve() != instance.resolve() and (here / DATABASE_FILE).exists():
        line += f"; {here} is not used unless ITABOT_INSTANCE_PATH points to it"
    return line
