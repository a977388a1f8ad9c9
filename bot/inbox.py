"""The inbox of webhook events: store once, claim, finish, retry, sweep.

Correctness lives here, in the database, so it holds in both deployment modes:

* ``store`` inserts each event keyed by (office, webhookEventId) and ignores duplicates;
* ``claim`` hands an event to exactly one worker, and only when no earlier event from the
  same person is still waiting, so a conversation is processed in the order it was typed;
* a claim is a lease: a worker that dies leaves the event to be claimed again after
  ``LEASE``; a worker that finishes after losing its lease cannot mark it done (its
  transaction is rolled back), so an event's effects are committed once;
* ``finish`` erases the payload and the source key in the same transaction as the
  handler's effects.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from models import OutboxMessage, WebhookEvent, utcnow
from models.db import Database
from models.event import DONE, FAILED, PENDING, PROCESSING

LEASE = timedelta(seconds=60)
SWEEP_GRACE = timedelta(seconds=5)
MAX_ATTEMPTS = 6
KEEP_DONE = timedelta(days=7)  # LINE redelivers for a limited time; after that ids can go


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


def _event_ts(event: dict) -> int:
    ts = event.get("timestamp")
    return ts if isinstance(ts, int) and 0 <= ts < 2**62 else 0


class Inbox:
    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self._key = key

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
        rows = []
        seen: set[str] = set()
        for ev in events:
            wid = event_id_of(ev)
            if wid in seen:  # the same event twice in one delivery
                continue
            seen.add(wid)
            rows.append(
                {
                    "office_id": office_id,
                    "webhook_event_id": wid,
                    "status": PENDING,
                    "payload": json.dumps(ev, ensure_ascii=False, separators=(",", ":")),
                    "source_key": self._source_key(office_id, ev),
                    "event_ts": _event_ts(ev),
                    "attempts": 0,
                    "received_at": now,
                }
            )
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        # One statement shape for any number of rows, so SQLAlchemy compiles it once.
        stmt = (
            insert(WebhookEvent.__table__)
            .on_conflict_do_nothing(index_elements=["office_id", "webhook_event_id"])
            .returning(WebhookEvent.id)
        )
        with self.db.session() as s:
            return [row[0] for row in s.execute(stmt, rows) if row is not None]

    # -- worker side ----------------------------------------------------------------------

    def claim(self, event_id: int) -> tuple[str, WebhookEvent] | None:
        """Lease one event to this worker, or return None if it is not ours to process now."""
        now = utcnow()
        token = secrets.token_hex(8)
        earlier = aliased(WebhookEvent)
        blocked = exists().where(
            earlier.office_id == WebhookEvent.office_id,
            earlier.source_key == WebhookEvent.source_key,
            earlier.status.in_((PENDING, PROCESSING)),
            or_(
                earlier.event_ts < WebhookEvent.event_ts,
                and_(earlier.event_ts == WebhookEvent.event_ts, earlier.id < WebhookEvent.id),
            ),
        )
        # Replies to the earlier event still being sent for the first time: wait for them too.
        unsent = exists().where(
            OutboxMessage.office_id == WebhookEvent.office_id,
            OutboxMessage.source_key == WebhookEvent.source_key,
            OutboxMessage.attempts == 0,
        )
        stmt = (
            update(WebhookEvent)
            .where(
                WebhookEvent.id == event_id,
                or_(
                    WebhookEvent.status == PENDING,
                    and_(WebhookEvent.status == PROCESSING, WebhookEvent.claimed_at < now - LEASE),
                ),
                or_(WebhookEvent.next_attempt_at.is_(None), WebhookEvent.next_attempt_at <= now),
                or_(WebhookEvent.source_key.is_(None), and_(~blocked, ~unsent)),
            )
            .values(
                status=PROCESSING,
                claim_token=token,
                claimed_at=now,
                attempts=WebhookEvent.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        with self.db.session() as s:
            if s.execute(stmt).rowcount != 1:
                return None
            ev = s.get(WebhookEvent, event_id)
            s.expunge(ev)
            return token, ev

    @staticmethod
    def finish(s: Session, event_id: int, token: str) -> bool:
        """Mark done inside the handler's transaction; False means we lost the lease."""
        stmt = (
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id, WebhookEvent.claim_token == token, WebhookEvent.status == PROCESSING)
            .values(
                status=DONE,
                payload=None,
                source_key=None,
                claim_token=None,
                processed_at=utcnow(),
                error=None,
                next_attempt_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        return s.execute(stmt).rowcount == 1

    def fail(self, event_id: int, token: str, attempts: int, error: str) -> str:
        """Put the event back with a backoff, or park it as failed after MAX_ATTEMPTS."""
        now = utcnow()
        final = attempts >= MAX_ATTEMPTS
        values: dict = {"claim_token": None, "error": error[:200]}
        if final:
            values.update(status=FAILED)
        else:
            values.update(status=PENDING, next_attempt_at=now + timedelta(seconds=min(300, 2**attempts)))
        with self.db.session() as s:
            s.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id == event_id, WebhookEvent.claim_token == token)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return FAILED if final else PENDING

    def next_for_source(self, office_id: int, source_key: str) -> int | None:
        with self.db.Session() as s:
            return s.scalar(
                select(WebhookEvent.id)
                .where(
                    WebhookEvent.office_id == office_id,
                    WebhookEvent.source_key == source_key,
                    WebhookEvent.status == PENDING,
                )
                .order_by(WebhookEvent.event_ts, WebhookEvent.id)
                .limit(1)
            )

    def due(self, limit: int = 200, now: datetime | None = None) -> list[int]:
        """Events nobody is working on: never picked up, backed off and due, or lease expired."""
        now = now or utcnow()
        with self.db.Session() as s:
            return list(
                s.scalars(
                    select(WebhookEvent.id)
                    .where(
                        or_(
                            and_(
                                WebhookEvent.status == PENDING,
                                or_(
                                    and_(
                                        WebhookEvent.next_attempt_at.is_(None),
                                        WebhookEvent.received_at < now - SWEEP_GRACE,
                                    ),
                                    WebhookEvent.next_attempt_at <= now,
                                ),
                            ),
                            and_(WebhookEvent.status == PROCESSING, WebhookEvent.claimed_at < now - LEASE),
                        )
                    )
                    .order_by(WebhookEvent.event_ts, WebhookEvent.id)
                    .limit(limit)
                )
            )

    def counts(self) -> dict[str, int]:
        with self.db.Session() as s:
            rows = s.execute(
                select(WebhookEvent.status, func.count())
                .where(WebhookEvent.status != DONE)
                .group_by(WebhookEvent.status)
            ).all()
        return {status: n for status, n in rows}

    def prune(self, now: datetime | None = None) -> int:
        """Forget processed event ids once LINE can no longer redeliver them."""
        now = now or utcnow()
        with self.db.session() as s:
            return s.execute(
                delete(WebhookEvent).where(WebhookEvent.status == DONE, WebhookEvent.processed_at < now - KEEP_DONE)
            ).rowcount
