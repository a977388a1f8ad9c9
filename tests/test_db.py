"""The SQLite writer queue: writers wait their turn without polling, and the webhook goes first."""

from __future__ import annotations

import threading
import time

import pytest

from models.db import WriterLock


def test_priority_writer_goes_before_background_writers(tmp_path):
    lock = WriterLock(str(tmp_path / "db.sqlite3"))
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def first():
        with lock.held():
            holding.set()
            release.wait(5)

    def writer(name: str, priority: bool):
        with lock.held(priority):
            order.append(name)

    t0 = threading.Thread(target=first)
    t0.start()
    holding.wait(5)
    background = threading.Thread(target=writer, args=("background", False))
    background.start()
    time.sleep(0.05)  # the background writer is queued first...
    webhook = threading.Thread(target=writer, args=("webhook", True))
    webhook.start()
    time.sleep(0.05)
    release.set()
    for t in (t0, background, webhook):
        t.join(5)
    assert order == ["webhook", "background"]  # ...but the webhook gets the next turn


def test_writers_in_two_processes_take_turns(tmp_path):
    """The flock half: a second process waits while this one holds the turn."""
    import subprocess
    import sys

    path = str(tmp_path / "db.sqlite3")
    lock = WriterLock(path)
    code = (
        "import time; from models.db import WriterLock; "
        f"l=WriterLock({path!r}); print('ready', flush=True)\n"
        "with l.held(): print(time.time(), flush=True)"
    )
    with lock.held():
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        released = time.time()
    got_turn = float(proc.communicate(timeout=20)[0])
    assert got_turn >= released


def test_a_webhook_writer_of_another_process_is_seen_waiting_and_goes_first(tmp_path, monkeypatch):
    """The processing process ends its batch early for the web processes' webhook writers, and lets them
    take the next turn. (Two WriterLocks on one file stand for two processes: flock locks belong to open
    files, not threads.)"""
    import models.db

    monkeypatch.setattr(models.db, "STEP_ASIDE", 5.0)  # however slow this machine is today
    path = str(tmp_path / "db.sqlite3")
    web, processing = WriterLock(path), WriterLock(path)
    order: list[str] = []
    waiting = threading.Event()

    def webhook():
        waiting.set()
        with web.held(priority=True):
            order.append("webhook")

    with processing.held():  # a batch holds the turn
        assert not processing.urgent_waiting
        t = threading.Thread(target=webhook)
        t.start()
        waiting.wait(5)
        deadline = time.monotonic() + 5
        while not processing.urgent_waiting and time.monotonic() < deadline:
            time.sleep(0.001)
        assert processing.urgent_waiting  # the batch sees it and ends early
    with processing.held():  # the next batch steps aside for it
        order.append("background")
    t.join(5)
    assert order == ["webhook", "background"]
    assert not processing.urgent_waiting


def test_a_nested_write_fails_at_once_instead_of_hanging(tmp_path):
    import pytest

    lock = WriterLock(str(tmp_path / "db.sqlite3"))
    with lock.held(), pytest.raises(RuntimeError, match="nested write"), lock.held():
        pass


@pytest.mark.postgres
def test_several_processes_migrating_at_once_all_succeed():
    """Web processes, workers and a release phase may all run `itabot db upgrade` at the same moment:
    one migrates, the others wait and find nothing to do — none fails."""
    import subprocess
    import sys

    import sqlalchemy as sa
    from conftest import _pg_url

    base = _pg_url()
    if base is None:
        pytest.skip("PostgreSQL not reachable (TEST_DATABASE_URL)")
    admin = sa.create_engine(base.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql("DROP DATABASE IF EXISTS itabot_migrate_race WITH (FORCE)")
        c.exec_driver_sql("CREATE DATABASE itabot_migrate_race")
    url = base.rsplit("/", 1)[0] + "/itabot_migrate_race"
    try:
        code = "import sys; from models.db import Database; Database(sys.argv[1]).upgrade()"
        procs = [subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        assert [rc for rc, _ in results] == [0, 0, 0, 0], [err[-500:] for _, err in results]
        eng = sa.create_engine(url)
        with eng.connect() as c:
            assert c.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
        eng.dispose()
    finally:
        with admin.connect() as c:
            c.exec_driver_sql("DROP DATABASE IF EXISTS itabot_migrate_race WITH (FORCE)")
        admin.dispose()


@pytest.mark.parametrize("database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_web_and_worker_starting_together_agree_on_the_default_office(database_url):
    # Both find no default office; the other process inserts it between this one's look and its insert.
    import sqlalchemy as sa
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from bot.config import load_settings
    from bot.offices import ensure_default_office
    from models.db import Database

    settings = load_settings({"DATABASE_URL": database_url, "OFFICE_NAME": "สำนักงานเขตทดสอบ"})
    db = Database(database_url)
    with db.session() as s:
        s.execute(sa.text("DELETE FROM offices"))
    other = sa.create_engine(database_url)
    raced = []

    def the_other_process_first(session, _ctx, _instances):
        if not raced:
            raced.append(True)
            with other.begin() as c:
                c.execute(sa.text("INSERT INTO offices (slug, name, is_default, created_at) "
                                  "VALUES ('default', 'สำนักงานเขตทดสอบ', true, now())"))

    event.listen(Session, "before_flush", the_other_process_first)
    try:
        office_id = ensure_default_office(db, settings)  # it used to crash the starting process
    finally:
        event.remove(Session, "before_flush", the_other_process_first)
        other.dispose()
    with db.Session() as s:
        assert s.execute(sa.text("SELECT id FROM offices")).scalars().all() == [office_id]
    db.dispose()
