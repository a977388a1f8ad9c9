"""The SQLite writer queue: writers wait their turn without polling, and the webhook goes first."""

from __future__ import annotations

import threading
import time

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


def test_a_nested_write_fails_at_once_instead_of_hanging(tmp_path):
    import pytest

    lock = WriterLock(str(tmp_path / "db.sqlite3"))
    with lock.held(), pytest.raises(RuntimeError, match="nested write"), lock.held():
        pass
