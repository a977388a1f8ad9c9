"""Processing stored events, and sending what the handlers decided to say.

The same ``Processor`` runs in both modes: in embedded mode threads inside the web process
call it (``EmbeddedRunner``); in scaled mode RQ jobs on ``itabot worker`` processes do
(``bot.jobs``). A ``Sweeper`` in each mode picks up what nobody is working on: events whose
notification was lost, whose worker died, or whose retry is due, and unsent outbox rows.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select, update

from bot.gateway import LineError, new_retry_key
from bot.inbox import Inbox
from bot.services import collected_deliveries
from handlers import Context, Dispatcher
from models import OutboxMessage, utcnow

log = logging.getLogger("itabot.worker")

OUTBOX_LEASE = timedelta(seconds=30)
OUTBOX_MAX_ATTEMPTS = 12


class Processor:
    def __init__(self, services) -> None:
        self.services = services
        self.db = services.db
        self.inbox: Inbox = services.inbox
        self.dispatcher = Dispatcher()

    # -- events ---------------------------------------------------------------------------

    def process(self, event_id: int) -> bool:
        """Process one event and then any later events of the same person that were waiting."""
        done_any = False
        next_id: int | None = event_id
        while next_id is not None:
            result = self._process_one(next_id)
            if result is None:
                break
            done_any = True
            office_id, source_key = result
            next_id = self.inbox.next_for_source(office_id, source_key) if source_key else None
        return done_any

    def _process_one(self, event_id: int) -> tuple[int, str | None] | None:
        claimed = self.inbox.claim(event_id)
        if claimed is None:
            return None
        token, row = claimed
        office = self.services.offices.by_id(row.office_id)
        if office is None or row.payload is None:
            with self.db.session() as s:
                self.inbox.finish(s, event_id, token)
            return row.office_id, row.source_key
        event = json.loads(row.payload)
        outbox_ids: list[int] = []
        try:
            with self.db.session() as s:
                ctx = Context(
                    session=s,
                    office_id=office.id,
                    office_name=office.name,
                    event=event,
                    user=None,
                    line=self.services.gateway(office.id),
                )
                self.dispatcher.dispatch(ctx)
                rows = [
                    OutboxMessage(
                        office_id=office.id,
                        source_key=row.source_key,
                        reply_token=out.reply_token,
                        to=out.to,
                        messages=json.dumps(out.messages, ensure_ascii=False),
                        retry_key=new_retry_key(),
                        next_attempt_at=utcnow() + OUTBOX_LEASE,
                    )
                    for out in ctx.flush()
                ]
                s.add_all(rows)
                if not self.inbox.finish(s, event_id, token):
                    # Another worker took the event over after our lease ran out: undo ours.
                    raise _LeaseLost()
                s.flush()
                outbox_ids = [r.id for r in rows]
        except _LeaseLost:
            log.warning("event lease lost; effects rolled back", extra={"event_row": event_id})
            return None
        except Exception as exc:
            status = self.inbox.fail(event_id, token, row.attempts, exc.__class__.__name__)
            log.exception(
                "event handling failed",
                extra={"event_row": event_id, "status": status, "event_type": str(event.get("type"))[:32]},
            )
            return None
        for oid in outbox_ids:
            self.send_outbox(oid)
        return row.office_id, row.source_key

    # -- outbox ---------------------------------------------------------------------------

    def send_outbox(self, outbox_id: int, *, claim: bool = False) -> bool:
        """Send one outbox row; on success it is deleted, on failure retried later."""
        with self.db.session() as s:
            if claim:
                now = utcnow()
                got = s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == outbox_id, OutboxMessage.next_attempt_at <= now)
                    .values(next_attempt_at=now + OUTBOX_LEASE)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if got != 1:
                    return False
            row = s.get(OutboxMessage, outbox_id)
            if row is None:
                return False
            s.expunge(row)
        messages = json.loads(row.messages)
        gateway = self.services.gateway(row.office_id)
        records: list = []
        token = collected_deliveries.set(records)
        try:
            gateway.reply_or_push(row.reply_token, row.to, messages, retry_key=row.retry_key)
        except LineError as exc:
            retryable = exc.status in (0, 429) or exc.status >= 500
            attempts = row.attempts + 1
            with self.db.session() as s:
                if retryable and attempts < OUTBOX_MAX_ATTEMPTS:
                    s.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id == outbox_id)
                        .values(
                            attempts=attempts,
                            reply_token=None,
                            next_attempt_at=utcnow() + timedelta(seconds=min(3600, 5 * 2**attempts)),
                        )
                        .execution_options(synchronize_session=False)
                    )
                    log.warning("send failed, will retry", extra={"status": exc.status, "attempts": attempts})
                else:
                    s.execute(delete(OutboxMessage).where(OutboxMessage.id == outbox_id))
                    log.error(
                        "send dropped",
                        extra={"status": exc.status, "attempts": attempts, "line_message": exc.message[:120]},
                    )
            return False
        finally:
            collected_deliveries.reset(token)
        with self.db.session() as s:  # sent: forget the message, keep only the send record
            s.execute(delete(OutboxMessage).where(OutboxMessage.id == outbox_id))
            s.add_all(records)
        return True

    def due_outbox(self, limit: int = 200) -> list[int]:
        with self.db.Session() as s:
            return list(
                s.scalars(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.next_attempt_at <= utcnow())
                    .order_by(OutboxMessage.id)
                    .limit(limit)
                )
            )

    # -- sweeping -------------------------------------------------------------------------

    def sweep(self) -> int:
        """One pass over forgotten work; returns how many items it handled."""
        n = 0
        for event_id in self.inbox.due():
            if self.process(event_id):
                n += 1
        for oid in self.due_outbox():
            if self.send_outbox(oid, claim=True):
                n += 1
        return n

    def drain(self, rounds: int = 50) -> None:
        """Process everything pending now (tests and `itabot events process`)."""
        for _ in range(rounds):
            with self.db.Session() as s:
                from models import WebhookEvent
                from models.event import PENDING

                ids = list(
                    s.scalars(
                        select(WebhookEvent.id)
                        .where(WebhookEvent.status == PENDING)
                        .order_by(WebhookEvent.event_ts, WebhookEvent.id)
                    )
                )
            if not ids:
                return
            progressed = False
            for event_id in ids:
                progressed |= self.process(event_id)
            if not progressed:
                return


class _LeaseLost(Exception):
    pass


class Sweeper:
    """A background thread that runs ``Processor.sweep`` every few seconds."""

    def __init__(self, processor: Processor, interval: float = 2.0) -> None:
        self.processor = processor
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="itabot-sweeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.processor.sweep()
                if time.monotonic() - self._last_prune > 3600:
                    self._last_prune = time.monotonic()
                    self.processor.inbox.prune()
            except Exception:
                log.exception("sweep failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class EmbeddedRunner:
    """Embedded mode: a few threads in the web process work through new events."""

    def __init__(self, processor: Processor, threads: int = 4, sweep_interval: float = 2.0) -> None:
        self.processor = processor
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.threads = threads
        self.sweeper = Sweeper(processor, sweep_interval)
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, name=f"itabot-worker-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        self.sweeper.start()

    def submit(self, event_ids: Iterable[int]) -> None:
        for event_id in event_ids:
            self.queue.put(event_id)

    def _run(self) -> None:
        while True:
            event_id = self.queue.get()
            if event_id is None:
                return
            try:
                self.processor.process(event_id)
            except Exception:  # the sweeper will retry it
                log.exception("processing failed")

    def stop(self) -> None:
        for _ in self._workers:
            self.queue.put(None)
        for t in self._workers:
            t.join(timeout=5)
        self.sweeper.stop()
