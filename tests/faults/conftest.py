"""Fixtures of the fault tests: their own PostgreSQL database, Redis, a fault-injecting fake LINE,
real ``itabot`` processes, and a client that posts signed webhook deliveries over HTTP as LINE does.

The tests use their own database, ``faults`` (created here through the ``postgres`` database if
missing, then migrated once per session; ``faults_gw0``… per pytest-xdist worker), on the server
of TEST_DATABASE_URL, so they never touch the ``test`` database other runs may be using; likewise
a Redis database of their own on the server of TEST_REDIS_URL (see ``redis_url``). Without either
service they skip, and ``tests/conftest.py`` says so loudly.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import conftest as root
import pytest

from models import utcnow

from .faultline import FaultyLine, FaultyLineServer

# Under pytest-xdist each worker gets its own database and Redis database (gw0: faults_gw0, 14; gw1: 13 …).
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
FAULTS_DB = f"faults_{XDIST_WORKER}" if XDIST_WORKER else "faults"
FAULTS_REDIS_DB = int(os.environ.get("FAULTS_REDIS_DB", "14")) - int(XDIST_WORKER[2:] or 0) % 14
REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "faults: fault tests (tests/faults): real processes, restarts; run serially")


def pytest_collection_modifyitems(config, items) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.faults)


# -- services ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _faults_db() -> str:
    """The ``faults`` database, created if missing and migrated to the newest schema."""
    if root.PG_URL is None:
        pytest.skip(f"PostgreSQL not reachable: {root._skipped_services.get('PostgreSQL')}")
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    base = make_url(root.psycopg_url(root.PG_URL))
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if c.scalar(sa.text("select 1 from pg_database where datname = :n"), {"n": FAULTS_DB}) is None:
            with contextlib.suppress(sa.exc.ProgrammingError):  # created meanwhile by another run
                c.exec_driver_sql(f'CREATE DATABASE "{FAULTS_DB}"')
    admin.dispose()
    return root.fresh_pg_schema(base.set(database=FAULTS_DB).render_as_string(hide_password=False))


@pytest.fixture
def pg_url(_faults_db) -> str:
    """The ``faults`` database, emptied."""
    root._truncate_pg(_faults_db)
    return _faults_db


@pytest.fixture
def redis_url() -> str:
    """The Redis server of TEST_REDIS_URL, database FAULTS_REDIS_DB (default 14), emptied.

    Not the other tests' database 15: RQ's queue has one name ("itabot"), so a worker of another
    test run sharing the database would take these tests' jobs (and they its) against another
    database — and those tests empty database 15 when they start.
    """
    url = root.redis_url()
    if url is None:
        pytest.skip(f"Redis not reachable: {root._skipped_services.get('Redis')}")
    import redis

    own = urlsplit(url)._replace(path=f"/{FAULTS_REDIS_DB}").geturl()
    redis.Redis.from_url(own).flushdb()
    return own


@pytest.fixture
def fake() -> Iterator[FaultyLine]:
    """A fresh fake LINE per test (its holds and outages are per test)."""
    with FaultyLineServer() as line:
        line.quota = 1_000_000
        yield line


# -- processes --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(tmp_path: Path, database_url: str, fake_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LINE_", "DATABASE_URL", "REDIS_URL", "ITABOT_", "WEB_CONCURRENCY", "PORT"))}
    env.update(root.make_env(tmp_path, database_url, fake_url, **extra))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _parents() -> dict[int, int]:
    """{pid: parent pid} of every process (Linux /proc)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    return out


class Proc:
    """An ``itabot`` command in its own process group, its output in a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen([sys.executable, "-m", "bot.cli", *args], env=env, cwd=REPO,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.popen.pid

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 15) -> None:
        """Signal the whole group (RQ's scheduler and gunicorn's workers are children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.kill(signal.SIGTERM, timeout=15)
        self.kill(signal.SIGKILL, timeout=5)  # whatever is left of the group

    def children(self) -> list[int]:
        return [pid for pid, parent in _parents().items() if parent == self.pid]

    def descendants(self) -> list[int]:
        """Children, their children, and so on (gunicorn's workers, the processing process a worker started)."""
        parents, out, frontier = _parents(), [], {self.pid}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier}
            out += sorted(frontier)
        return out

    def tail(self, n: int = 4000) -> str:
        try:
            return f"--- {self.name} ({self.log}) ---\n" + self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture
def procs(tmp_path) -> Iterator[Callable[..., Proc]]:
    """``procs(name, args, env)`` starts ``python -m bot.cli <args>``; all are stopped at the end."""
    started: list[Proc] = []

    def start(name: str, args: list[str], env: dict[str, str]) -> Proc:
        p = Proc(name, args, env, tmp_path)
        started.append(p)
        return p

    start.started = started  # type: ignore[attr-defined]
    yield start
    for p in started:
        p.stop()


def logs(procs_fixture) -> str:
    return "\n".join(p.tail() for p in procs_fixture.started)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1,
               diagnostics: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{diagnostics()}")
        time.sleep(interval)


# -- LINE's side of the webhook, over HTTP -------------------------------------------------------------


class LineClient:
    """Posts signed deliveries to a running web process the way LINE does (and redelivers)."""

    def __init__(self, base_url: str, fake: FaultyLine) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.fake = fake

    def event(self, user: str, kind: str, **fields) -> dict:
        return root.line_event(self.fake, user, kind, **fields)

    def text(self, user: str, text: str) -> dict:
        return self.event(user, "message", message={"type": "text", "id": str(secrets.randbelow(10**17)),
                                                    "text": text, "quoteToken": "q"})

    def post(self, events: list[dict], timeout: float = 10.0) -> int:
        """The HTTP status, or 0 when there was no answer (connection refused, reset, timeout)."""
        body = json.dumps({"destination": "U" + "0" * 32, "events": events}, ensure_ascii=False).encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("POST", "/callback", body=body, headers={"X-Line-Signature": root.sign(body),
                                                                   "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException):
            return 0
        finally:
            conn.close()

    def redeliver(self, events: list[dict]) -> int:
        """LINE's redelivery: the same events, same webhookEventId, marked as redelivered."""
        again = [{**ev, "deliveryContext": {"isRedelivery": True}} for ev in events]
        return self.post(again)

    def healthy(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()


def services_for(env: dict[str, str]):
    """An in-process ``Services`` on the same database (for setting up and looking)."""
    from bot.config import load_settings
    from bot.services import Services

    services = Services(load_settings(env))
    services.ensure_default_office()
    return services


# -- a survey reminder due now ---------------------------------------------------------------------------

MULTICAST = "/v2/bot/message/multicast"


def due_reminder(services, followers: int) -> tuple[int, list[str]]:
    """An EIT campaign open now whose opening reminder is due (whatever the hour: the office sends
    round the clock), and that many followers. Returns the reminder's id and the followers."""
    from sqlalchemy import insert, select, update

    from models import LineUser, Office, Reminder, SurveyCampaign
    from surveys import reminders
    from surveys.campaigns import add_campaign, today_bangkok

    today = today_bangkok()
    with services.db.session() as s:
        cid = add_campaign(s, 1, "EIT", "https://itas.nacc.go.th/x", today - timedelta(days=2),
                           today + timedelta(days=30)).id
    with services.db.session() as s:
        reminders.schedule(s, s.get(SurveyCampaign, cid))
        s.execute(update(Office).where(Office.id == 1).values(send_from=0, send_until=24 * 60))
        s.execute(update(Reminder).where(Reminder.campaign_id == cid).values(status="cancelled"))
        s.execute(update(Reminder).where(Reminder.campaign_id == cid, Reminder.label == "open")
                  .values(status="scheduled", send_at=utcnow() - timedelta(minutes=1)))
        rid = s.scalar(select(Reminder.id).where(Reminder.campaign_id == cid, Reminder.label == "open"))
    users = [root.new_user() for _ in range(followers)]
    with services.db.session() as s:
        s.execute(insert(LineUser), [{"office_id": 1, "line_user_id": u, "language": "th", "following": True}
                                     for u in users])
    return rid, users


def survey_multicasts(fake: FaultyLine) -> list:
    """Every attempt of the survey reminder's multicasts (they carry its tracked link, /s/…) — not
    those of a No Gift festival reminder that might fall due on the day the tests run."""
    return [c for c in fake.calls(MULTICAST, ok_only=False) if "/s/" in c.json["messages"][0]["text"]]
