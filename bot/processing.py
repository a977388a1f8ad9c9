"""Embedded mode's processing process: one process beside the web workers that processes and sends.

Processing in a thread of each web process (``EmbeddedRunner`` alone) makes it share that process's
interpreter lock with the webhook's threads; under load the webhook wins the turns, the processing
falls behind, and replies wait seconds while a second core sits idle. So in embedded mode the web
processes only store and acknowledge, and one *processing process* runs the ``EmbeddedRunner``
(processing thread, sender thread, ``Sweeper``) with an interpreter of its own:

* **Who starts it.** Every web process runs a ``ProcessingHost`` thread that waits for the host lock
  (``flock`` of ``<database>-processing-host.lock``). The web process that holds it starts the
  processing process (``python -m bot.processing``) and starts it again if it ends. Another web
  process takes over when the holder dies (gunicorn restarts workers; the kernel frees the lock).
* **Only one at a time.** The processing process itself holds ``<database>-processing.lock`` while it
  works, so a new one waits until an old one (orphaned when its web process was killed) has gone.
  It stops when its web process has gone, and on SIGTERM (finishing the batch and the sends).
* **How it hears of new events.** The webhook stores first; then it sends a datagram to the processing
  process's socket with the new rows' ids (our own row numbers, nothing of the event), which it takes
  at once, without reading the inbox (``Intake``). At least every half second, and when a wake-up carries
  no ids (too many for one datagram), it reads the ids of pending events newer than the last it read, and
  takes those no wake-up told it of. A lost wake-up costs at most that half second; an event nobody took
  is the ``Sweeper``'s.
* **Health.** ``/healthz`` in any web process says ``worker: ok`` while some processing process holds
  its lock, ``starting`` during the first seconds, otherwise ``stopped``.

``ITABOT_PROCESSING=threads`` keeps the older way (a runner in every web process); tests that drive
the app in-process use it too (``create_app(start_worker=True)``).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import gc
import hashlib
import logging
import os
import signal
import socket
import struct
import subprocess  # nosec B404 # starts python -m bot.processing, nothing else
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import bindparam, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from models import WebhookEvent
from models.event import PENDING

log = logging.getLogger("itabot.processing")

POLL = 0.5  # seconds between reads of the inbox when no wake-up comes
GATHER = 0.002  # seconds a wake-up waits for others before their ids are taken
WAKE_IDS = 512  # at most this many ids in one wake-up (4 KB); more, and it says "read the inbox" instead
STARTING_FOR = 60.0  # seconds a just-started host reports "starting" rather than "stopped"
_ev = WebhookEvent.__table__
_NEW = (select(_ev.c.id).where(_ev.c.status == PENDING, _ev.c.id > bindparam("after"))
        .order_by(_ev.c.id).limit(1000))


def _queue_limit() -> int:
    """How many wake-ups the kernel keeps waiting on the socket; a web process's next one is dropped (Linux's
    ``net.unix.max_dgram_qlen``, 10 unless raised)."""
    try:
        return max(1, int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text()))
    except (OSError, ValueError):
        return 10


def _base(settings: Settings) -> str:
    """Where the locks live: beside the SQLite file, else in the instance folder."""
    u = make_url(settings.database_url)
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        return str(Path(u.database).resolve())
    return str(Path(settings.instance_path).resolve() / "itabot")


def _address(settings: Settings) -> str | bytes:
    """The processing process's datagram socket: an abstract name on Linux (nothing on disk to clean up)."""
    digest = hashlib.sha256(_base(settings).encode()).hexdigest()[:24]
    if sys.platform.startswith("linux"):
        return b"\0itabot-processing-" + digest.encode()
    return str(Path(settings.instance_path) / f"processing-{digest[:8]}.sock")


def usable(settings: Settings) -> bool:
    """A separate process can share the work only through a database it can open too."""
    u = make_url(settings.database_url)
    return not (u.get_backend_name() == "sqlite" and u.database in (None, "", ":memory:"))


def _lock(path: str, blocking: bool) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def held(path: str) -> bool:
    """Whether someone holds the lock at ``path`` (tried from a descriptor of our own, so a lock this
    process holds counts as held too)."""
    try:
        fd = _lock(path, blocking=False)
    except OSError:
        return False
    if fd is None:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return False


class ProcessingHost:
    """In a web process: wakes the processing process, and starts it when this process holds the host lock."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        base = _base(settings)
        self.host_lock = base + "-processing-host.lock"
        self.work_lock = base + "-processing.lock"
        self.address = _address(settings)
        self._wake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._wake.setblocking(False)
        self._stop = threading.Event()
        self._child: subprocess.Popen | None = None
        self._fd: int | None = None
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._last_ok = self._spawned = float("-inf")  # last seen working; last started by this host

    def start(self) -> None:
        self._fd = _lock(self.host_lock, blocking=False)  # the first web process starts it at once
        if self._fd is not None:
            self._spawn_or_log()
        self._thread = threading.Thread(target=self._run, name="itabot-processing-host", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def wake(self, event_ids: list[int] | tuple[int, ...] = ()) -> None:
        """New events are stored (``event_ids``: their rows). Never raises: the processing process also
        reads the inbox by itself."""
        ids = b"" if len(event_ids) > WAKE_IDS else struct.pack(f"<{len(event_ids)}q", *event_ids)
        # OSError: not running yet, or its queue of wake-ups is full (its next read of the inbox finds them)
        with contextlib.suppress(OSError):
            self._wake.sendto(ids, self.address)

    def state(self) -> str:
        """"ok" while a processing process works; "starting" until one has been missing for ``STARTING_FOR``
        (a web process's first seconds, or a processing process being started again); then "stopped"."""
        now = time.monotonic()
        if held(self.work_lock):
            self._last_ok = now
            return "ok"
        since = max(self._started, self._last_ok, self._spawned)
        return "starting" if now - since < STARTING_FOR else "stopped"

    def _spawn(self) -> None:
        env = dict(os.environ)
        env["ITABOT_INSTANCE_PATH"] = str(self.settings.instance_path)
        env["DATABASE_URL"] = self.settings.database_url
        env["PUBLIC_BASE_URL"] = self.settings.public_base_url
        env["ITABOT_PARENT_PID"] = str(os.getpid())
        # The same code as this web process runs, wherever it was imported from (gunicorn --chdir, --pythonpath).
        code = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (code, env.get("PYTHONPATH")) if p)
        command = [sys.executable, "-m", "bot.processing"]  # a fixed command: no input of anyone's in it
        self._spawned = time.monotonic()
        self._child = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)  # noqa: S603 # nosec B603
        log.info("processing process started", extra={"pid": self._child.pid})

    def _spawn_or_log(self) -> None:
        try:
            self._spawn()
        except OSError:  # out of processes or memory: tried again after a pause (see _run)
            self._child = None
            log.exception("processing process could not be started")

    def _run(self) -> None:
        if self._fd is None:
            fd = _lock(self.host_lock, blocking=True)  # until the web process holding it is gone
            if self._stop.is_set():
                os.close(fd)
                return
            self._fd = fd
            self._spawn_or_log()
        delay = 1.0
        while not self._stop.is_set():
            child = self._child
            started = time.monotonic()
            if child is not None:
                code = child.wait()
                if self._stop.is_set():
                    return
                log.error("processing process ended; starting it again", extra={"code": code})
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)
            if self._stop.wait(delay):
                return
            self._spawn_or_log()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        child, self._child = self._child, None
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._wake.close()


class Intake:
    """Which pending events the processing process takes next: the ids the wake-ups carry, at once, and what
    a read of the inbox finds that no wake-up told of (a wake-up lost, or one with too many ids to carry).

    A read is due every ``POLL`` seconds, at start, after a wake-up without ids, and after the wake-ups taken
    together filled the socket's queue (under load: a web process's wake-up may have been dropped meanwhile,
    and its events would wait for the next ``POLL``). Each read looks only at events newer than the last read's
    newest; ids heard since are not taken twice."""

    def __init__(self) -> None:
        self.after = 0  # the newest id a read of the inbox has seen
        self._heard: set[int] = set()  # ids taken from wake-ups that no read has seen yet
        self._last_read = float("-inf")
        self._read_asked = True
        self.queue_limit = _queue_limit()

    def drained(self, wake_ups: int) -> None:
        """This many wake-ups were taken from the socket in one go: as many as its queue holds, and one sent
        meanwhile may have been dropped (the sender cannot wait), so the inbox is read next."""
        if wake_ups >= self.queue_limit:
            self._read_asked = True

    def hear(self, datagram: bytes) -> list[int]:
        """The ids of one wake-up, to take now (an empty or odd wake-up asks for a read instead)."""
        if not datagram or len(datagram) % 8:
            self._read_asked = True
            return []
        # Not only ids newer than ``after``: PostgreSQL may commit a lower id after a higher one a read has seen.
        # An id a read took already may come again; the runner takes each event once.
        ids = [i for i in struct.unpack(f"<{len(datagram) // 8}q", datagram) if i not in self._heard]
        self._heard.update(ids)
        return ids

    def read_due(self, now: float) -> bool:
        return self._read_asked or now - self._last_read >= POLL

    def until_read(self, now: float) -> float:
        """Seconds to wait for a wake-up before a read is due."""
        return 0.0 if self._read_asked else max(0.0, self._last_read + POLL - now)

    def read(self, pending: list[int], now: float) -> list[int]:
        """A read of the inbox found these pending ids (ascending, newer than ``after``): those to take now."""
        self._last_read, self._read_asked = now, False
        fresh = [i for i in pending if i not in self._heard]
        if pending:
            self.after = pending[-1]
            self._heard = {i for i in self._heard if i > self.after}
        return fresh


def main() -> int:
    """``python -m bot.processing``: started by a web process's ``ProcessingHost``, never by hand."""
    from bot.app import create_app
    from bot.config import load_settings

    parent = int(os.environ.get("ITABOT_PARENT_PID") or os.getppid())
    settings = load_settings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    app = create_app(settings, start_worker=False, rename_office=False)
    services = app.extensions["itabot"]
    from integrity.store import MATCHERS

    MATCHERS.warm(services.db)  # before taking any event: nobody's first question waits for the training
    # What start-up built (the app, the models' tables, the matchers) lives as long as the process: out of the
    # collector's full passes, which walked all of it under load, a quarter of a second each (bench/README.md).
    gc.collect()
    gc.freeze()
    base = _base(settings)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = _address(settings)
    fd = None
    while fd is None and not stop.is_set():  # an older processing process may still be finishing
        fd = _lock(base + "-processing.lock", blocking=False)
        if fd is None and (stop.wait(0.2) or os.getppid() != parent):
            return 0
    if fd is None:
        return 0
    try:
        if isinstance(address, str) and os.path.exists(address):
            os.unlink(address)
        sock.bind(address)
    except OSError as exc:  # e.g. the name is taken: reading every POLL still works, only slower
        log.warning("no wake-up socket; polling", extra={"error": exc.__class__.__name__})
        sock.close()
        sock = None
    services.start_embedded_worker(warm=False)  # built above, before the lock
    runner = services.runner
    log.info("processing process ready")
    intake = Intake()
    code = 0
    try:
        while not stop.is_set():
            if intake.read_due(time.monotonic()):
                try:
                    with services.db.engine.connect() as conn:
                        pending = list(conn.execute(_NEW, {"after": intake.after}).scalars())
                except SQLAlchemyError as exc:  # the database is away for a moment: the events wait in it
                    log.warning("inbox not readable; trying again", extra={"error": exc.__class__.__name__})
                    stop.wait(POLL)
                    continue
                runner.submit(intake.read(pending, time.monotonic()))
                if len(pending) == 1000:
                    continue
            if os.getppid() != parent:
                log.warning("web process gone; processing process stops")
                break
            if runner.stopped_threads():
                log.error("a processing thread ended; processing process stops to be started again")
                code = 1
                break
            if sock is None:
                stop.wait(POLL)
                continue
            sock.settimeout(max(0.001, intake.until_read(time.monotonic())))
            try:
                heard = intake.hear(sock.recv(65536))
            except (TimeoutError, InterruptedError):
                continue
            time.sleep(GATHER)  # under load wake-ups come in streams: their ids go to the runner together
            sock.setblocking(False)
            wake_ups = 1
            try:
                while True:
                    heard += intake.hear(sock.recv(65536))
                    wake_ups += 1
            except (BlockingIOError, InterruptedError):
                pass
            intake.drained(wake_ups)
            runner.submit(heard)
    finally:
        services.close()  # finishes the batch in hand and the sends, then records them
        if sock is not None:
            sock.close()
            if isinstance(address, str):
                with contextlib.suppress(OSError):
                    os.unlink(address)
        os.close(fd)
    return code


if __name__ == "__main__":
    sys.exit(main())
