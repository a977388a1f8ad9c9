"""The inbox of webhook events: store once, take, finish, retry, sweep.

Correctness lives here, in the database, so it holds in both deployment modes:

* ``store`` inserts each event keyed by (office, webhookEventId) and ignores duplicates;
* ``take`` reads an event inside the transaction that will handle it, locking its row
  (PostgreSQL ``FOR UPDATE``; SQLite's write lock), and only when no earlier event of the
  same person is still waiting, so a conversation is processed in the order it was typed;
* ``finish`` marks it done and erases payload and source key in that same transaction, so
  the handler's effects and "done" commit together — or, if the worker dies, not at all and
  the event is still pending for the sweeper. Two workers can never both commit one event:
  the second waits on the row lock and then finds it done.
* a handler that raises is rolled back; ``fail`` records the attempt and schedules a retry
  with backoff, and parks the event as failed after ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models import OutboxMessage, WebhookEvent, utcnow
from models.db import Database
from models.event import DONE, FAILED, PENDING

SWEEP_GRACE = timedelta(seconds=5)
MAX_ATTEMPTS = 6
KEEP_DONE = timedelta(days=7)  # LINE redelivers for a limited time; after that ids can go
# Older than this, an event cannot be a genuine (re)delivery: a replayed capture, ignored.
MAX_EVENT_AGE = KEEP_DONE - timedelta(days=1)
KEEP_FAILED_PAYLOAD = timedelta(days=30)


def queue_push(s: Session, office_id: int, to: str, messages: list[dict]) -> None:
    """A push outside any event (an officer's answer, a case update, a digest): written to the outbox
    in the caller's transaction, so it goes out only if that commits; the sweeper sends it within
    seconds, with one retry key kept across retries."""
    s.add(OutboxMessage(office_id=office_id, source_key=None, reply_token=None, to=to,
                        messages=json.dumps(messages, ensure_ascii=False), retry_key=str(uuid.uuid4()),
                        attempts=0, next_attempt_at=utcnow()))


def event_id_of(event: dict) -> str:
    """LINE's webhookEventId, or a stable hash for the rare event without one."""
    wid = event.get("webhookEventId")
    if isinstance(wid, str) and 0 < len(wid) <= 64:
        return wid
    digest = hashlib.sha256(json.dumps(event, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return "h:" + digest[:40]


def source_id_of(event: dict) -> str | None:
    src = event.get("source")
    if not isinstance(src, dict):
        return None
    for key in ("userId", "groupId", "roomId"):
        value = src.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def event_kind(event: dict) -> str:
    """The event type, and for messages that carry content (image, video, audio, file) the
    message type too — "message.image" — so the worker knows, from the row alone, which events
    need work before their transaction (a download) without reading every text message."""
    kind = str(event.get("type"))[:24]
    if kind == "message":
        msg = event.get("message")
        mtype = msg.get("type") if isinstance(msg, dict) else None
        if mtype in ("image", "video", "audio", "file"):
            return f"message.{mtype}"
    return kind


def _event_ts(event: dict) -> int:
    ts = event.get("timestamp")
    return ts if isinstance(ts, int) and 0 <= ts < 2**62 else 0


class _Slot:
    """One webhook request's rows, waiting for a group commit."""

    __slots__ = ("rows", "ids", "error", "ready", "lead")

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.ids: list[int] = []
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.lead = False


class GroupCommit:
    """Stores the events of concurrent webhook requests in one transaction (a group commit).

    Under load many requests wait for the database's write turn at once; the first to arrive leads:
    once it has the turn it takes every request waiting by then, inserts all their rows in one
    statement and commits, then hands the lead to the next request that arrived meanwhile. Each
    request gets back the ids of its own new events. If the transaction fails, every request in it
    fails (and LINE gets a 5xx for each, and redelivers); nothing is acknowledged unstored.
    """

    def __init__(self, db: Database, statement) -> None:
        self._db = db
        self._statement = statement
        self._lock = threading.Lock()
        self._waiting: list[_Slot] = []
        self._leading = False

    def submit(self, rows: list[dict]) -> list[int]:
        slot = _Slot(rows)
        with self._lock:
            self._waiting.append(slot)
            lead = not self._leading
            self._leading = True
        if not lead:
            slot.ready.wait()
            if not slot.lead:
                if slot.error is not None:  # the leader's exception, a copy of it for each thread
                    raise copy.copy(slot.error) from slot.error
                return slot.ids
        self._commit_waiting()
        if slot.error is not None:
            raise slot.error
        return slot.ids

    def _take_waiting(self) -> list[_Slot]:
        with self._lock:
            batch, self._waiting = self._waiting, []
        return batch

    def _commit_waiting(self) -> None:
        batch: list[_Slot] = []
        try:
            with self._db.write(priority=True) as conn:  # LINE waits for this one
                batch = self._take_waiting()
                owner: dict[tuple[int, str], _Slot] = {}
                rows = []
                for sl in batch:
                    for row in sl.rows:
                        key = (row["office_id"], row["webhook_event_id"])
                        if key not in owner:  # the same event in two deliveries at once: one of them stores it
                            owner[key] = sl
                            rows.append(row)
                for new in conn.execute(self._statement, rows):
                    if new is not None:
                        owner[(new.office_id, new.webhook_event_id)].ids.append(new.id)
        except BaseException as exc:
            batch = batch or self._take_waiting()
            for sl in batch:
                sl.error = exc
                sl.ids = []
        finally:
            with self._lock:
                if self._waiting:  # arrived while this group was written: the first of them leads next
                    self._waiting[0].lead = True
                    self._waiting[0].ready.set()
                else:
                    self._leading = False
            for sl in batch:
                sl.lead = False
                sl.ready.set()


@dataclass(frozen=True)
class Taken:
    event_id: int
    office_id: int
    payload: str | None
    source_key: str | None
    attempts: int


# The hot statements are built once; SQLAlchemy then also reuses their compiled SQL.
_ev = WebhookEvent.__table__
_earlier = _ev.alias("earlier")
_out = OutboxMessage.__table__
_PEEK = select(_ev.c.status, _ev.c.event_type).where(_ev.c.id == bindparam("eid"))
_PEEK_MANY = select(_ev.c.id, _ev.c.status, _ev.c.event_type).where(_ev.c.id.in_(bindparam("eids", expanding=True)))
_FIRST_OF_PERSON = ~exists().where(  # no earlier event of the same person still waiting
    _earlier.c.office_id == _ev.c.office_id,
    _earlier.c.source_key == _ev.c.source_key,
    _earlier.c.status == PENDING,
    or_(_earlier.c.event_ts < _ev.c.event_ts, and_(_earlier.c.event_ts == _ev.c.event_ts, _earlier.c.id < _ev.c.id)),
)
_NEXT_FOR_SOURCES = (
    select(_ev.c.id, _ev.c.source_key)
    .where(_ev.c.office_id == bindparam("office"), _ev.c.source_key.in_(bindparam("skeys", expanding=True)),
           _ev.c.status == PENDING, _FIRST_OF_PERSON)
    .order_by(_ev.c.event_ts, _ev.c.id)
)
# Whether an event may be taken now: pending, due, and nothing of its person before it.
_TAKEABLE = and_(
    _ev.c.status == PENDING,
    or_(_ev.c.next_attempt_at.is_(None), _ev.c.next_attempt_at <= bindparam("now")),
    or_(
        _ev.c.source_key.is_(None),
        and_(
            _FIRST_OF_PERSON,
            # and no reply of theirs still on its first way out, so replies arrive in order
            ~exists().where(
                _out.c.office_id == _ev.c.office_id,
                _out.c.source_key == _ev.c.source_key,
                _out.c.attempts == 0,
            ),
        ),
    ),
)
_TAKE = (
    select(_ev.c.id, _ev.c.office_id, _ev.c.payload, _ev.c.source_key, _ev.c.attempts)
    .where(_ev.c.id.in_(bindparam("eids", expanding=True)), _TAKEABLE)
    .with_for_update(of=_ev)
)
_FINISH = (
    update(_ev)
    .where(_ev.c.id.in_(bindparam("eids", expanding=True)), _ev.c.status == PENDING)
    .values(status=DONE, payload=None, source_key=None, processed_at=bindparam("now"), error=None,
            next_attempt_at=None)
)
_NEXT_FOR_SOURCE = (
    select(_ev.c.id)
    .where(_ev.c.office_id == bindparam("office"), _ev.c.source_key == bindparam("skey"), _ev.c.status == PENDING)
    .order_by(_ev.c.event_ts, _ev.c.id)
    .limit(1)
)


class Inbox:
    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self._key = key
        insert = sqlite_insert if db.is_sqlite else pg_insert
        # One statement shape for any number of rows, so SQLAlchemy compiles it once.
        self._group = GroupCommit(db, insert(_ev)
                                  .on_conflict_do_nothing(index_elements=["office_id", "webhook_event_id"])
                                  .returning(_ev.c.id, _ev.c.office_id, _ev.c.webhook_event_id))

    def _source_key(self, office_id: int, event: dict) -> str | None:
        src = source_id_of(event)
        if src is None:
            return None
        return hmac.new(self._key, f"{office_id}:{src}".encode(), hashlib.sha256).hexdigest()[:32]

    # -- webhook side ---------------------------------------------------------------------

    def store(self, office_id: int, events: Sequence[dict]) -> list[int]:
        """Insert new events in one transaction; return the ids of those not seen before."""
        if not events:
            return []
        now = utcnow()
        oldest_ms = int((now - MAX_EVENT_AGE).timestamp() * 1000)
        rows = []
        seen: set[str] = set()
        for ev in events:
            if 0 < _event_ts(ev) < oldest_ms:
                continue
            wid = event_id_of(ev)
            if wid in seen:  # the same event twice in one delivery
                continue
            seen.add(wid)
            rows.append(
                {
                    "office_id": office_id,
                    "webhook_event_id": wid,
                    "status": PENDING,
                    "event_type": event_kind(ev),
                    "payload": json.dumps(ev, ensure_ascii=False, separators=(",", ":")),
                    "source_key": self._source_key(office_id, ev),
                    "event_ts": _event_ts(ev),
                    "attempts": 0,
                    "received_at": now,
                }
            )
        if not rows:
            return []
        return self._group.submit(rows)

    # -- worker side ----------------------------------------------------------------------

    def peek(self, event_id: int) -> str | None:
        """The type of a pending event, or None: a cheap read before taking the write turn."""
        with self.db.engine.connect() as conn:
            row = conn.execute(_PEEK, {"eid": event_id}).first()
        return row.event_type or "" if row is not None and row.status == PENDING else None

    def peek_many(self, event_ids: Sequence[int]) -> dict[int, str]:
        """``peek`` for several events in one read: {id: type} of those still pending."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(_PEEK_MANY, {"eids": list(event_ids)})
            return {row.id: row.event_type or "" for row in rows if row.status == PENDING}

    @staticmethod
    def take(s: Session, event_id: int) -> Taken | None:
        """Lock and read one event inside the handling transaction, or None if it is not ours now."""
        return Inbox.take_many(s, [event_id]).get(event_id)

    @staticmethod
    def take_many(s: Session, event_ids: Sequence[int]) -> dict[int, Taken]:
        """``take`` for several events in one statement (a batch's): {id: Taken} of those that are ours now.
        A second event of one person is never among them while the first is pending."""
        rows = s.execute(_TAKE, {"eids": list(event_ids), "now": utcnow()})
        return {r.id: Taken(r.id, r.office_id, r.payload, r.source_key, r.attempts) for r in rows}

    @staticmethod
    def finish(s: Session, event_id: int) -> None:
        """Mark done and forget the content, in the handler's transaction."""
        Inbox.finish_many(s, [event_id])

    @staticmethod
    def finish_many(s: Session, event_ids: Sequence[int]) -> None:
        """``finish`` for a batch's events, in the batch's transaction."""
        if event_ids:
            s.execute(_FINISH, {"eids": list(event_ids), "now": utcnow()})

    def fail(self, event_id: int, error: str) -> str:
        """Count a failed attempt: retry later with backoff, or park as failed after MAX_ATTEMPTS."""
        now = utcnow()
        with self.db.session() as s:
            ev = s.get(WebhookEvent, event_id)
            if ev is None or ev.status != PENDING:
                return ev.status if ev is not None else FAILED
            ev.attempts += 1
            ev.error = error[:200]
            if ev.attempts >= MAX_ATTEMPTS:
                ev.status = FAILED
            else:
                ev.next_attempt_at = now + timedelta(seconds=min(300, 2**ev.attempts))
            return ev.status

    def next_for_source(self, office_id: int, source_key: str) -> int | None:
        with self.db.engine.connect() as conn:
            return conn.execute(_NEXT_FOR_SOURCE, {"office": office_id, "skey": source_key}).scalar()

    def next_for_sources(self, people: Iterable[tuple[int, str]]) -> list[int]:
        """``next_for_source`` for many people in one read per office: each one's first pending event."""
        by_office: dict[int, set[str]] = {}
        for office_id, source_key in people:
            by_office.setdefault(office_id, set()).add(source_key)
        found: list[int] = []
        with self.db.engine.connect() as conn:
            for office_id, keys in by_office.items():
                found += conn.execute(_NEXT_FOR_SOURCES, {"office": office_id, "skeys": sorted(keys)}).scalars()
        return found

    def due(self, limit: int = 200, now: datetime | None = None) -> list[int]:
        """Pending events nobody is working on: never picked up, or whose retry is due."""
        now = now or utcnow()
        with self.db.Session() as s:
            return list(
                s.scalars(
                    select(WebhookEvent.id)
                    .where(
                        WebhookEvent.status == PENDING,
                        or_(
                            and_(WebhookEvent.next_attempt_at.is_(None), WebhookEvent.received_at < now - SWEEP_GRACE),
                            WebhookEvent.next_attempt_at <= now,
                        ),
                    )
                    .order_by(WebhookEvent.event_ts, WebhookEvent.id)
                    .limit(limit)
                )
            )

    def backlog(self, now: datetime | None = None) -> tuple[dict[str, int], float | None]:
        """Events not done, by status, and the seconds since the oldest pending one arrived (None: none
        waits) — one query, for /healthz."""
        with self.db.Session() as s:
            rows = s.execute(
                select(WebhookEvent.status, func.count(), func.min(WebhookEvent.received_at))
                .where(WebhookEvent.status != DONE)
                .group_by(WebhookEvent.status)
            ).all()
        oldest = next((first for status, _, first in rows if status == PENDING), None)
        age = None if oldest is None else max(0.0, round(((now or utcnow()) - oldest).total_seconds(), 1))
        return {status: n for status, n, _ in rows}, age

    def prune(self, now: datetime | None = None) -> int:
        """Forget processed event ids once LINE can no longer redeliver them, and erase the content
        of events parked as failed once an operator has had a month to look at them."""
        now = now or utcnow()
        with self.db.session() as s:
            s.execute(
                update(WebhookEvent)
                .where(WebhookEvent.status == FAILED, WebhookEvent.received_at < now - KEEP_FAILED_PAYLOAD,
                       WebhookEvent.payload.is_not(None))
                .values(payload=None, source_key=None)
            )
            return s.execute(
                delete(WebhookEvent).where(WebhookEvent.status == DONE, WebhookEvent.processed_at < now - KEEP_DONE)
            ).rowcount
