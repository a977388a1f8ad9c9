"""Engine and sessions, tuned per backend, and schema migration with Alembic."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# How long a background writer lets waiting webhook writers of other processes go first (seconds).
STEP_ASIDE = 0.003


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so threads can share it."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Let SQLAlchemy issue BEGIN itself so "BEGIN IMMEDIATE" can be used for writes.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover - exercised by every test
            # Write transactions take the write lock up front: SQLite cannot upgrade a read
            # transaction to a write one while another writer waits (it fails at once instead
            # of waiting). Reads stay deferred so they never block anyone.
            # Straight to the driver: this runs for every transaction, and SQLAlchemy's statement machinery
            # (exec_driver_sql) cost more than the BEGIN itself (bench/README.md, 2026-12-07 sixth session).
            conn.connection.dbapi_connection.execute(
                "BEGIN IMMEDIATE" if conn.get_execution_options().get("itabot_write") else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class WriterLock:
    """Queues SQLite writers in the kernel instead of in SQLite's busy handler.

    SQLite lets one writer in at a time and makes the others poll with growing sleeps (up to
    100 ms each), which under load turns into long, uneven waits. Threads of a process queue
    on a condition, processes on an ``flock`` of a file beside the database; both wake the
    next writer the moment the lock is released. Within a process, ``priority`` writers (the
    webhook, which LINE is waiting on) go before background processing. Across processes (the web
    processes and the processing process, ``bot.processing``) a waiting webhook writer holds a shared
    lock on a second file: a batch holding the turn sees it (``urgent_waiting``) and ends early, and a
    background writer about to take the turn lets it go first — for ``STEP_ASIDE`` at most, so a
    steady stream of webhooks cannot starve the processing (an unbounded version of this was tried when
    processing ran in the web processes, and starved it: see bench/README.md).
    """

    def __init__(self, db_path: str) -> None:
        self._mutex = threading.Lock()
        self._urgent = threading.Condition(self._mutex)  # webhook writers wait here
        self._normal = threading.Condition(self._mutex)  # background writers wait here
        self._busy = False
        self._urgent_waiting = 0
        self._normal_waiting = 0
        self._owner: int | None = None
        self._path = f"{db_path}-writer.lock"
        self._fd: int | None = None
        # Webhook writers of any process hold a shared lock on this file while they wait for the turn;
        # a background writer of another process sees it (see ``urgent_waiting``).
        self._waiting_path = f"{db_path}-writer.waiting"
        self._waiting_fd: int | None = None  # for this process's webhook writers (one at a time: GroupCommit)
        self._probe_fd: int | None = None  # for asking whether any process's webhook writer waits
        self._pid = 0

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child needs its own
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._waiting_fd = os.open(self._waiting_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._probe_fd = os.open(self._waiting_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @property
    def urgent_waiting(self) -> bool:
        """A webhook writer is waiting for the turn: one of this process, or of another process (such as a
        web process, seen from the processing process)."""
        if self._urgent_waiting > 0:
            return True
        self._file()
        try:
            fcntl.flock(self._probe_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True  # someone holds it shared: waiting
        fcntl.flock(self._probe_fd, fcntl.LOCK_UN)
        return False

    def _step_aside(self) -> None:
        """A background writer about to take the turn lets a webhook writer of another process go first,
        for a few milliseconds at most (longer, and a steady stream of webhooks would starve it)."""
        deadline = time.monotonic() + STEP_ASIDE
        while self.urgent_waiting and time.monotonic() < deadline:
            time.sleep(0.0002)

    @contextmanager
    def held(self, priority: bool = False) -> Iterator[None]:
        if self._owner == threading.get_ident():
            # SQLite would wait 30 s for itself and then fail; say what is wrong at once.
            raise RuntimeError("nested write transaction on SQLite: finish the outer one first")
        with self._mutex:
            if priority:
                self._urgent_waiting += 1
                while self._busy:
                    self._urgent.wait()
                self._urgent_waiting -= 1
            else:
                self._normal_waiting += 1
                while self._busy or self._urgent_waiting:
                    self._normal.wait()
                self._normal_waiting -= 1
            self._busy = True
        try:
            fd = self._file()
            if priority:
                fcntl.flock(self._waiting_fd, fcntl.LOCK_SH)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                finally:
                    fcntl.flock(self._waiting_fd, fcntl.LOCK_UN)
            else:
                self._step_aside()
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._owner = threading.get_ident()
            try:
                yield
            finally:
                self._owner = None
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            with self._mutex:
                self._busy = False
                # Wake exactly one writer, a webhook one first.
                if self._urgent_waiting:
                    self._urgent.notify()
                elif self._normal_waiting:
                    self._normal.notify()


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        # Reads: ``with db.Session() as s``. Writes: ``with db.session() as s`` (one transaction).
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = self.engine.execution_options(itabot_write=True)
        self._WriteSession = sessionmaker(self._write_engine, expire_on_commit=False)
        u = make_url(url)
        file_db = self.is_sqlite and u.database not in (None, "", ":memory:")
        self._writer = WriterLock(u.database) if file_db else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        with self._writer.held() if self._writer else nullcontext(), self._WriteSession() as s, s.begin():
            yield s

    def urgent_waiting(self) -> bool:
        """Someone LINE is waiting on (a webhook request of this process) waits for the write turn:
        long background transactions may end early for it."""
        return self._writer is not None and self._writer.urgent_waiting

    @contextmanager
    def write(self, priority: bool = False) -> Iterator[Connection]:
        """A Core connection in a write transaction, for the hot paths that need no ORM.

        ``priority``: someone is waiting for this (the webhook); go before background work.
        """
        with self._writer.held(priority) if self._writer else nullcontext(), self._write_engine.begin() as conn:
            yield conn

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision."""
        from alembic import command

        command.upgrade(alembic_config(self.url), "head")

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
