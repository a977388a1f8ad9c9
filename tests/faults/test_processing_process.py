"""Embedded mode's processing process (``bot.processing``), with real processes: ``itabot serve`` (gunicorn)
on SQLite, a fake LINE over HTTP.

* every web process stores and acknowledges, one processing process beside them answers;
* killed, it is started again, and what arrived meanwhile is answered;
* the web process that started it killed: it stops, and another web process starts the next one;
* ``ITABOT_PROCESSING=threads``: no such process, each web process answers by itself, as before.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.request
from pathlib import Path

import pytest
from conftest import new_user

from .conftest import LineClient, free_port, logs, process_env, wait_until

MENU = "เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def processing_pids(web) -> list[int]:
    return [p for p in web.descendants() if "bot.processing" in _cmdline(p)]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def health(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
    except OSError:
        return {}


@pytest.fixture
def served(fake, procs, tmp_path, _sqlite_template):
    """``serve(**env)``: ``itabot serve`` on a fresh migrated SQLite database; returns (proc, port, client)."""

    def serve(**extra: str):
        db_path = tmp_path / "itabot.sqlite3"
        shutil.copy(_sqlite_template, db_path)
        port = free_port()
        env = process_env(tmp_path, f"sqlite:///{db_path}", fake.url, **extra)
        web = procs("web", ["serve", "--port", str(port)], env)
        line = LineClient(f"http://127.0.0.1:{port}", fake)
        wait_until(lambda: health(port).get("worker") == "ok", 60, "the processing process to be ready",
                   diagnostics=lambda: logs(procs))
        return web, port, line

    return serve


def _menus_answered(fake, line, users: list[str], procs, already_sent: tuple[str, ...] = ()) -> None:
    for u in users:
        assert line.post([line.text(u, "เมนู")]) == 200
    wait_until(lambda: all(fake.delivered_to(u) == [MENU] for u in [*already_sent, *users]), 30,
               "every menu to be answered, once", interval=0.1, diagnostics=lambda: logs(procs))


def test_web_processes_share_one_processing_process(served, fake, procs):
    web, port, line = served(WEB_CONCURRENCY="2")
    workers = web.children()
    assert len(workers) == 2
    (proc,) = processing_pids(web)  # one for both web processes, a child of one of them
    assert _parent(proc) in workers
    users = [new_user() for _ in range(12)]
    _menus_answered(fake, line, users, procs)  # deliveries reach both web processes; each is answered once
    assert len(fake.delivered_by("/reply")) == len(users)
    assert processing_pids(web) == [proc]
    assert health(port)["worker"] == "ok"


def test_processing_process_killed_is_started_again(served, fake, procs):
    web, port, line = served()
    (proc,) = processing_pids(web)
    os.kill(proc, signal.SIGKILL)
    before = new_user()
    assert line.post([line.text(before, "เมนู")]) == 200  # stored while nobody processes: kept, answered later
    wait_until(lambda: processing_pids(web) not in ([], [proc]), 30, "a new processing process",
               diagnostics=lambda: logs(procs))
    wait_until(lambda: health(port).get("worker") == "ok", 30, "the new processing process to be ready")
    after = new_user()
    _menus_answered(fake, line, [after], procs, already_sent=(before,))
    assert "processing process ended; starting it again" in logs(procs)


def test_web_process_killed_its_processing_process_stops_and_another_takes_over(served, fake, procs):
    web, port, line = served(WEB_CONCURRENCY="2")
    (proc,) = processing_pids(web)
    host = _parent(proc)
    os.kill(host, signal.SIGKILL)  # gunicorn starts a new web process by itself
    wait_until(lambda: not Path(f"/proc/{proc}").exists() or "bot.processing" not in _cmdline(proc), 30,
               "the orphaned processing process to stop", diagnostics=lambda: logs(procs))
    wait_until(lambda: len(processing_pids(web)) == 1 and processing_pids(web) != [proc], 30,
               "another web process to start the next one", diagnostics=lambda: logs(procs))
    wait_until(lambda: health(port).get("worker") == "ok", 30, "it to be ready")
    _menus_answered(fake, line, [new_user() for _ in range(4)], procs)
    assert len(processing_pids(web)) == 1


def test_threads_mode_has_no_processing_process(served, fake, procs):
    web, port, line = served(ITABOT_PROCESSING="threads", WEB_CONCURRENCY="2")
    assert processing_pids(web) == []
    _menus_answered(fake, line, [new_user() for _ in range(4)], procs)
    assert processing_pids(web) == []
