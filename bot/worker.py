"""Processing stored events, and sending what the handlers decided to say.

The same ``Processor`` runs in both modes: in embedded mode threads inside the web process
call it (``EmbeddedRunner``); in scaled mode RQ jobs on ``itabot worker`` processes do
(``bot.jobs``). A ``Sweeper`` in each mode picks up what nobody is working on: events whose
notification was lost, whose worker died, or whose retry is due, and unsent outbox rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import OperationalError

from bot.gateway import LineError, new_retry_key
from bot.inbox import Inbox, Taken
from bot.services import collected_deliveries
from complaints import cases
from handlers import Context, Dispatcher
from handlers.dispatcher import PREPARE, prefetch
from models import ConversationState, Delivery, OutboxMessage, WebhookEvent, utcnow
from models.event import PENDING

log = logging.getLogger("itabot.worker")

OUTBOX_LEASE = timedelta(seconds=30)
FORGET_FOR = timedelta(seconds=20)  # how long a sent row's deletion is retried; shorter than the lease
_PEEK = select(WebhookEvent.__table__.c.office_id, WebhookEvent.__table__.c.payload).where(
    WebhookEvent.__table__.c.id == bindparam("eid")
)
OUTBOX_MAX_ATTEMPTS = 12
_SENT = object()  # in the runner's queue: sends to record (wakes the processing thread)
# How long sends LINE has taken wait for an event whose transaction can record them, before they are recorded on
# their own (seconds; the person's next event, if it waited for them, is queued then).
RECORD_WAIT = 0.02
# A batch gives up the write turn to a waiting webhook request once it has handled events this long (seconds,
# counted after its take and reads): short enough for LINE's answer, long enough that the batch is worth its
# transaction. Counted from the start of the turn instead, a loaded machine's take and reads alone used it up,
# and batches handled one event each (bench/README.md, 2026-12-07 second session). 3 ms, not 5: with 5 the webhook
# answer's p99 went over 50 ms in half the runs.
YIELD_AFTER = 0.003
# Each row's id comes back with its retry key (a fresh UUID per row), not by position: asked to return ids in
# the rows' order, SQLAlchemy cannot trust SQLite's RETURNING order and runs one INSERT per row.
_OUTBOX_INSERT = insert(OutboxMessage.__table__).returning(OutboxMessage.__table__.c.id,
                                                            OutboxMessage.__table__.c.retry_key)
_OUTBOX_DELETE = (delete(OutboxMessage.__table__)
                  .where(OutboxMessage.__table__.c.id.in_(bindparam("oids", expanding=True)))
                  .returning(OutboxMessage.__table__.c.id))
_DELIVERY_INSERT = insert(Delivery.__table__)


class Processor:
    def __init__(self, services) -> None:
        self.services = services
        self.db = services.db
        self.inbox: Inbox = services.inbox
        self.dispatcher = Dispatcher()
        # When set (embedded mode), sends are handed to a pool so the processing thread, which
        # holds the database's write turn, never waits on LINE. Called as submit(send, on_done).
        self.submit_send: Callable[[_Send, Callable[[], None]], None] | None = None
        # Called with (office_id, source_key) once a person's replies are out; the runner uses
        # it to queue that person's next waiting event.
        self.on_sent: Callable[[int, str], None] | None = None

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
            office_id, source_key, sent_later = result
            if sent_later or not source_key:
                break  # the person's next event waits for these replies; on_sent queues it
            next_id = self.inbox.next_for_source(office_id, source_key)
        return done_any

    def _process_one(self, event_id: int) -> tuple[int, str | None, bool] | None:
        event_type = self.inbox.peek(event_id)
        if event_type is None:
            return None
        prepared = self._prepare(event_id) if event_type in PREPARE else {}
        taken = None
        try:
            with self.db.session() as s:
                taken = self.inbox.take(s, event_id)
                if taken is None:
                    return None
                sends, after = self._handle(s, taken, prepared)
        except Exception as exc:
            if taken is None:  # the database itself failed; the sweeper will come back to it
                log.exception("event could not be taken", extra={"event_row": event_id})
                return None
            status = self.inbox.fail(event_id, exc.__class__.__name__)
            log.exception("event handling failed", extra={"event_row": event_id, "status": status})
            return None
        return self._after_commit(taken, sends, after)

    def process_batch(self, event_ids: list[int], sent: list[tuple[int, list]] = ()) -> list[int]:
        """Process several events of different people in one write transaction (embedded mode).

        SQLite lets one writer in at a time, and under load the wait for that turn, not the work, is
        what limits how many events a second get answered; a batch pays for the turn once. Events
        that need network calls first (``PREPARE``) go one by one. If any event of the batch fails,
        the whole transaction is rolled back and each event is processed on its own, so one bad
        event costs the others nothing but the retry, and is counted against itself only.

        Once it has handled events for ``YIELD_AFTER``, a batch ends early if a webhook request of any
        process waits for the turn (LINE is waiting for that one); the ids not reached are returned, for
        the next batch. Its replies go to the outbox in one statement at the end.

        ``sent``: (outbox id, send records) of replies LINE has taken since the last batch; they are recorded
        (``_forget``) in the batch's transaction, so recording them costs no write turn of its own.
        """
        event_ids = list(dict.fromkeys(event_ids))  # an id queued twice (webhook and on_sent) once
        kinds = self.inbox.peek_many(event_ids)
        batch = [eid for eid in event_ids if eid in kinds and kinds[eid] not in PREPARE]
        needs_line = [eid for eid in event_ids if eid in kinds and kinds[eid] in PREPARE]
        if sent and (needs_line or not batch):
            # On their own, first: a download before the batch may take seconds, and a sent row still in the outbox
            # when its lease runs out would be sent again.
            self._forget(sent)
            sent = ()
        for eid in needs_line:
            self.process(eid)
        if len(batch) <= 1 and not sent:  # one event, nothing to record with it: its own transaction
            for eid in batch:
                self.process(eid)
            return []
        done: list[tuple[Taken, list[_Send], list]] = []
        outbox: list[dict] = []
        reached = 0
        try:
            with self.db.session() as s:
                s.info["kb_signatures"] = {}  # nothing in a batch edits the knowledge base
                if sent:
                    _forget_in(s.connection(), sent)
                # The take skips a second event of the same person: the first one is pending, or its reply
                # still in the outbox (see Inbox.take); it is queued once that reply is out.
                taken_now = self.inbox.take_many(s, batch)
                events = {eid: json.loads(t.payload) for eid, t in taken_now.items() if t.payload is not None}
                for office_id in {t.office_id for t in taken_now.values()}:
                    prefetch(s, office_id, [events[eid] for eid, t in taken_now.items()
                                            if t.office_id == office_id and eid in events])
                started = time.monotonic()  # the take and the reads are done: from here each step handles an event
                for eid in batch:
                    if reached and time.monotonic() - started > YIELD_AFTER and self.db.urgent_waiting():
                        break  # the taken events not reached stay pending: they were only read
                    reached += 1
                    taken = taken_now.get(eid)
                    if taken is not None:
                        done.append((taken, *self._handle(s, taken, {}, finish=False, event=events.get(eid),
                                                          outbox=outbox)))
                _write_outbox(s, outbox)
                self.inbox.finish_many(s, [taken.event_id for taken, _, _ in done])
        except Exception as exc:
            log.warning("batch rolled back; processing its events one by one",
                        extra={"events": len(batch), "error": exc.__class__.__name__})
            if sent:
                self._forget(sent)  # on its own, retried: LINE has these
            for eid in batch:
                self.process(eid)
            return []
        for taken, sends, after in done:
            if not self._after_commit(taken, sends, after)[2] and taken.source_key and self.on_sent is not None:
                self.on_sent(taken.office_id, taken.source_key)  # nothing to send: the person's next event
        return batch[reached:]

    def _handle(self, s, taken: Taken, prepared: dict, finish: bool = True,
                event: dict | None = None, outbox: list[dict] | None = None) -> tuple[list[_Send], list]:
        """Dispatch a taken event in the caller's transaction; write its replies to the outbox and mark
        it done there too (unless ``finish`` is False: a batch marks its events done together). Returns
        the sends to make and the after-commit calls.

        ``outbox``: a batch's list that collects the outbox rows instead, for one insert of them all
        (``_write_outbox``); the sends' ids are filled in then."""
        sends: list[_Send] = []
        after: list = []
        office = self.services.offices.by_id(taken.office_id)
        if office is not None and taken.payload is not None:
            ctx = Context(
                session=s,
                office_id=office.id,
                office_name=office.name,
                event=event if event is not None else json.loads(taken.payload),
                user=None,
                line=self.services.gateway(office.id),
                cipher=self.services.cipher,
                prepared=prepared,
                public_base_url=self.services.settings.public_base_url,
            )
            self.dispatcher.dispatch(ctx)
            after = ctx.after
            outgoing = ctx.flush()
            lease = utcnow() + OUTBOX_LEASE
            rows = outbox if outbox is not None else []
            for out in outgoing:
                send = _Send(0, office.id, out.reply_token, out.to, out.messages, new_retry_key(), 0)
                sends.append(send)
                rows.append({
                    "office_id": office.id, "source_key": taken.source_key, "reply_token": out.reply_token,
                    "to": out.to, "messages": json.dumps(out.messages, ensure_ascii=False),
                    "retry_key": send.retry_key, "next_attempt_at": lease, "_send": send,
                })
            if outbox is None:
                _write_outbox(s, rows)
        if finish:
            self.inbox.finish(s, taken.event_id)
        return sends, after

    def _after_commit(self, taken: Taken, sends: list[_Send], after: list) -> tuple[int, str | None, bool]:
        """Run the after-commit calls and send (or hand the sends to the pool). The third value says
        whether sends were handed to the pool, whose last one calls ``on_sent``."""
        for call in after:
            try:
                call(self.services.gateway(taken.office_id))
            except Exception:
                log.warning("after-commit call failed", extra={"event_row": taken.event_id})
        if self.submit_send is not None and sends:
            remaining = [len(sends)]
            lock = threading.Lock()

            def done(office_id=taken.office_id, source_key=taken.source_key) -> None:
                with lock:
                    remaining[0] -= 1
                    last = remaining[0] == 0
                if last and source_key and self.on_sent is not None:
                    self.on_sent(office_id, source_key)

            for send in sends:
                self.submit_send(send, done)
            return taken.office_id, taken.source_key, True
        for send in sends:
            self._send(send)
        return taken.office_id, taken.source_key, False

    def _prepare(self, event_id: int) -> dict:
        """Network calls an event needs, made before taking the write turn (see Dispatcher.prepare)."""
        with self.db.Session() as s:
            row = s.execute(_PEEK, {"eid": event_id}).first()
            if row is None or row.payload is None:
                return {}
            event = json.loads(row.payload)
            try:
                return self.dispatcher.prepare(event, row.office_id, self.services.gateway(row.office_id), s)
            except Exception:
                log.warning("preparing the event failed", extra={"event_row": event_id})
                return {}

    # -- outbox ---------------------------------------------------------------------------

    def send_outbox(self, outbox_id: int) -> bool:
        """Send an outbox row nobody else is sending (the sweeper's path after a crash or failure)."""
        now = utcnow()
        with self.db.session() as s:
            got = s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == outbox_id, OutboxMessage.next_attempt_at <= now)
                .values(next_attempt_at=now + OUTBOX_LEASE)
                .execution_options(synchronize_session=False)
            ).rowcount
            if got != 1:
                return False
            row = s.get(OutboxMessage, outbox_id)
            send = _Send(row.id, row.office_id, row.reply_token, row.to, json.loads(row.messages), row.retry_key,
                         row.attempts)
        return self._send(send)

    def _send(self, row: _Send, sent: Callable[[int, list], None] | None = None) -> bool:
        """Send; on success the outbox row is deleted, on failure it is retried later.

        ``sent``: on success, called with (outbox id, send records) instead of deleting the row here,
        so that many can be recorded in one transaction (the embedded runner's next batch)."""
        gateway = self.services.gateway(row.office_id)
        records: list = []
        token = collected_deliveries.set(records)
        try:
            gateway.reply_or_push(row.reply_token, row.to, row.messages, retry_key=row.retry_key)
        except LineError as exc:
            self._send_failed(row, exc)
            return False
        finally:
            collected_deliveries.reset(token)
        self._sent(row, records, sent)
        return True

    async def send_async(self, row: _Send, sent: Callable[[int, list], None]) -> bool:
        """``_send`` on an asyncio event loop (``AsyncSender``); the database writes of a failure run on a
        thread, so the loop's other sends go on meanwhile."""
        gateway = self.services.gateway(row.office_id)
        records: list = []
        collected_deliveries.set(records)  # each task runs in a copy of the context: this is its own
        try:
            await gateway.reply_or_push_async(row.reply_token, row.to, row.messages, retry_key=row.retry_key)
        except LineError as exc:
            await asyncio.to_thread(self._send_failed, row, exc)
            return False
        self._sent(row, records, sent)
        return True

    def _sent(self, row: _Send, records: list, sent: Callable[[int, list], None] | None) -> None:
        if sent is not None:
            sent(row.id, records)
        else:
            self._forget([(row.id, records)])

    def _send_failed(self, row: _Send, exc: LineError) -> None:
        """LINE did not take it: try again later (with backoff, as a push: the reply token will be spent),
        or give up on what retrying cannot fix."""
        retryable = exc.status in (0, 429) or exc.status >= 500
        attempts = row.attempts + 1
        with self.db.session() as s:
            if retryable and attempts < OUTBOX_MAX_ATTEMPTS:
                s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id)
                    .values(
                        attempts=attempts,
                        reply_token=None,
                        next_attempt_at=utcnow() + timedelta(seconds=min(3600, 5 * 2**attempts)),
                    )
                    .execution_options(synchronize_session=False)
                )
                log.warning("send failed, will retry", extra={"status": exc.status, "attempts": attempts})
            else:
                s.execute(delete(OutboxMessage).where(OutboxMessage.id == row.id))
                log.error(
                    "send dropped",
                    extra={"status": exc.status, "attempts": attempts, "line_message": exc.message[:120]},
                )

    def _forget(self, sent: list[tuple[int, list]]) -> None:
        """Sent: delete the outbox rows and keep only the send records, in one transaction.

        LINE has the messages now, so a database that is briefly unavailable (a restart, a
        fail-over) must not make us give this up: a row left behind is sent again when its lease
        runs out — a reply, whose token is spent by then, as a push — and the person gets it
        twice. So it is retried, for less than the lease.
        """
        deadline = time.monotonic() + FORGET_FOR.total_seconds()
        delay = 0.1
        while True:
            try:
                with self.db.write() as conn:
                    _forget_in(conn, sent)
                return
            except OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("sent, but the outbox row could not be deleted; retrying",
                            extra={"error": exc.__class__.__name__})
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def outbox_size(self) -> int:
        """Replies and pushes not yet accepted by LINE (being sent, or waiting for a retry)."""
        with self.db.Session() as s:
            return s.scalar(select(func.count()).select_from(OutboxMessage)) or 0

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
            if self.send_outbox(oid):
                n += 1
        return n

    def send_due_reminders(self) -> None:
        """The in-process scheduler: what `itabot reminders run-due` does, every minute."""
        from surveys.reminders import dispatch, run_due

        queue = self.services.queue
        if queue is None:
            run_due(self.services)
            return
        # Scaled mode: each due reminder becomes a job, so a long send is shared out among the
        # workers; every worker's scheduler does this, and the chunk claims keep it exactly once.
        from bot import jobs

        def enqueue(reminder_id: int) -> None:
            try:
                queue.enqueue(jobs.send_reminder, reminder_id, job_timeout=3600)
            except Exception as exc:  # Redis down: the database has all we need, send from here
                log.warning("reminder not queued; sending it here", extra={"error": exc.__class__.__name__})
                dispatch(self.services, reminder_id)

        run_due(self.services, enqueue=enqueue)

    def maintain(self) -> None:
        """Hourly: forget old event ids, erase parked payloads, delete drafts nobody finished."""
        self.inbox.prune()
        with self.db.session() as s:
            expired = ConversationState.expires_at < utcnow() - timedelta(hours=1)
            for data in s.scalars(select(ConversationState.data).where(expired,
                                                                        ConversationState.conversation == "complaint")):
                cases.discard_draft(s, (data or {}).get("draft_token"))  # a report's evidence goes with its draft
            s.execute(delete(ConversationState).where(expired))

    def drain(self, rounds: int = 50) -> None:
        """Process everything pending now (tests and `itabot worker --burst`)."""
        for _ in range(rounds):
            with self.db.Session() as s:
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


def _forget_in(conn, sent: list[tuple[int, list]]) -> None:
    """Delete sent outbox rows and keep their send records, in the caller's transaction."""
    # a row not found: an earlier try did commit, only its answer was lost
    gone = set(conn.execute(_OUTBOX_DELETE, {"oids": [oid for oid, _ in sent]}).scalars())
    records = [r for oid, recs in sent if oid in gone for r in recs]
    if records:
        conn.execute(_DELIVERY_INSERT, records)


def _records(sent: list[tuple[int, list, Callable[[], None]]]) -> list[tuple[int, list]]:
    """(outbox id, send records) of the runner's sends, as ``Processor._forget`` takes them."""
    return [(outbox_id, records) for outbox_id, records, _ in sent]


def _write_outbox(s, rows: list[dict]) -> None:
    """Insert outbox rows in one statement (a batch's replies: one round through SQLAlchemy, not one each) and
    give each row's ``_send`` its id."""
    if not rows:
        return
    sends = {row["retry_key"]: row.pop("_send") for row in rows}  # fresh UUIDs: one row each
    for oid, retry_key in s.execute(_OUTBOX_INSERT, rows):
        sends.pop(retry_key).id = oid  # a key returned twice raises here
    if sends:
        raise RuntimeError("the outbox insert did not return every row")


@dataclass
class _Send:
    """An outbox row as the sender needs it (kept in memory after the commit that wrote it; its id is set
    when the row is inserted)."""

    id: int
    office_id: int
    reply_token: str | None
    to: str | None
    messages: list[dict]
    retry_key: str
    attempts: int


class Sweeper:
    """A background thread that runs ``Processor.sweep`` every few seconds."""

    def __init__(self, processor: Processor, interval: float = 2.0) -> None:
        self.processor = processor
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Due at once on start (monotonic time counts from the host's boot, not from 0).
        self._last_prune = float("-inf")
        self._last_reminders = float("-inf")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="itabot-sweeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.processor.sweep()
                if time.monotonic() - self._last_reminders > 60:
                    self._last_reminders = time.monotonic()
                    self._complaints("digest")  # once per office per day from 08:30, claimed exactly once
                    self.processor.send_due_reminders()
                if time.monotonic() - self._last_prune > 3600:
                    self._last_prune = time.monotonic()
                    self._complaints("purge")  # retention: evidence and identity of long-closed cases
                    self.processor.maintain()
            except Exception:
                log.exception("sweep failed")

    def _complaints(self, job: str) -> None:
        """The complaints' scheduled work; its failure must not hold up the rest of the sweep."""
        from complaints.digest import run_digest
        from complaints.retention import run_purge

        try:
            if job == "digest":
                run_digest(self.processor.services)
            else:
                run_purge(self.processor.services)
        except Exception:
            log.exception("complaints %s failed", job)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _next_batch(q: queue.Queue, items: list, limit: int, timeout: float | None = None) -> tuple[list, bool]:
    """``items`` (waiting for a first one from ``q`` if there are none, for ``timeout`` seconds at most) plus what
    else is waiting in ``q``, up to ``limit`` in all; and True if the stop sign (None) was met. The ``_SENT``
    wake-ups are left out: woken only by one, the batch is empty."""
    if not items:
        try:
            first = q.get(timeout=timeout)
        except queue.Empty:
            return [], False
        if first is None:
            return [], True
        items = [] if first is _SENT else [first]
    while len(items) < limit:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return items, False
        if item is None:
            return items, True
        if item is not _SENT:
            items.append(item)
    return items, False


class AsyncSender:
    """Embedded mode: the sends to LINE, on one thread running an asyncio event loop.

    Each send is a task (``Processor.send_async``, through the SDK's aiohttp client); at most ``limit`` are in
    flight, the rest wait their turn in the order they came. One loop costs about a fifth of the CPU per send
    of a pool of threads each blocking on its own request, and leaves the interpreter to the processing
    thread, which holds the database's write turn meanwhile (bench/README.md, 2026-12-07 third session).
    """

    def __init__(self, processor: Processor, limit: int = 32) -> None:
        self.processor = processor
        self.limit = max(1, limit)
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()
        self._slots: asyncio.Semaphore | None = None
        self._lock = threading.Lock()
        self._waiting: list[tuple[_Send, Callable[[int, list], None], Callable[[], None]]] = []

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self._slots = asyncio.Semaphore(self.limit)
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="itabot-send", daemon=True)
        self._thread.start()
        ready.wait()

    def submit(self, send: _Send, sent: Callable[[int, list], None], done: Callable[[], None]) -> None:
        """From any thread: send, then ``sent(outbox id, records)``; if it was not sent, ``done()``.

        A batch's sends wake the loop once: the first one submitted while none waits schedules the start of all."""
        with self._lock:
            self._waiting.append((send, sent, done))
            if len(self._waiting) > 1:
                return
        self.loop.call_soon_threadsafe(self._start_waiting)

    def _start_waiting(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for send, sent, done in waiting:
            task = self.loop.create_task(self._run(send, sent, done))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, send: _Send, sent: Callable[[int, list], None], done: Callable[[], None]) -> None:
        handed_over = False

        def hand_over(outbox_id: int, records: list) -> None:
            nonlocal handed_over
            sent(outbox_id, records)
            handed_over = True

        try:
            async with self._slots:
                await self.processor.send_async(send, hand_over)
        except Exception:  # left in the outbox; the sweeper retries it
            log.exception("send failed")
        finally:
            if not handed_over:
                try:
                    await asyncio.to_thread(done)  # it may read the database
                except Exception:
                    log.exception("after-send callback failed")

    def stop(self) -> None:
        """Finish every send submitted so far, close the connections to LINE, end the thread."""
        if self._thread is None:
            return
        if self._thread.is_alive():  # (a loop that died would never answer: its sends are the sweeper's)
            asyncio.run_coroutine_threadsafe(self._finish(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self._thread = None
        self.loop.close()

    async def _finish(self) -> None:
        while self._tasks:  # sends submitted before stop() are tasks by now (call_soon keeps the order)
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for gw in self.processor.services.all_gateways():
            try:
                await gw.aclose()
            except Exception:
                log.warning("connection to LINE not closed cleanly")


class EmbeddedRunner:
    """Embedded mode: threads in the web process work through new events.

    SQLite takes one writer at a time, so a single processing thread per process is enough
    (more only queue for the lock, and slow the webhook down); it takes up to ``batch`` waiting
    events at a time into one transaction (``Processor.process_batch``). Sending to LINE, which is
    network-bound, happens on the ``AsyncSender``'s thread (an asyncio loop). What LINE has taken is
    recorded by the processing thread in its next batch's transaction (the outbox rows deleted, the send
    records kept), and only then are those people's next events queued: a person's replies go out in
    order, and recording sends costs no write turn of its own. (A thread of its own did this until
    2026-12-07; with both waiting for the one write turn, the events fell behind: bench/README.md.) When
    no event is waiting, the thread waits up to ``RECORD_WAIT`` for one to carry them (even a single event
    takes the batch's path then), and records them on their own only if none comes.
    """

    def __init__(self, processor: Processor, threads: int = 1, senders: int = 32, sweep_interval: float = 2.0,
                 batch: int = 32) -> None:
        self.processor = processor
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.threads = threads
        self.batch = max(1, batch)
        self.senders = AsyncSender(processor, senders) if senders else None
        self._sent: list[tuple[int, list, Callable[[], None]]] = []  # taken by LINE, not yet recorded
        self._sent_lock = threading.Lock()
        self._gather = threading.local()  # a thread's people whose next event is looked up together
        self.sweeper = Sweeper(processor, sweep_interval)
        self._workers: list[threading.Thread] = []
        if self.senders is not None:
            processor.submit_send = self._submit_send
            processor.on_sent = self._queue_next

    def start(self) -> None:
        if self.senders is not None:
            self.senders.start()
        for i in range(self.threads):
            t = threading.Thread(target=self._run, name=f"itabot-worker-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        self.sweeper.start()

    def submit(self, event_ids: Iterable[int]) -> None:
        for event_id in event_ids:
            self.queue.put(event_id)

    def _submit_send(self, send: _Send, done: Callable[[], None]) -> None:
        self.senders.submit(send, lambda outbox_id, records: self._add_sent(outbox_id, records, done), done)

    def _add_sent(self, outbox_id: int, records: list, done: Callable[[], None]) -> None:
        """LINE took it: to be recorded by the processing thread (woken for it if idle), then ``done``."""
        with self._sent_lock:
            self._sent.append((outbox_id, records, done))
            first = len(self._sent) == 1
        if first:
            self.queue.put(_SENT)

    def _take_sent(self) -> list[tuple[int, list, Callable[[], None]]]:
        with self._sent_lock:
            sent, self._sent = self._sent, []
        return sent

    def _record_alone(self, sent: list[tuple[int, list, Callable[[], None]]]) -> None:
        """Sends with no batch to carry them: recorded in a transaction of their own, then their ``done`` calls."""
        if not sent:
            return
        try:
            self.processor._forget(_records(sent))
        except Exception:  # left in the outbox: sent again when the lease runs out
            log.exception("sent, but the outbox rows could not be deleted", extra={"rows": len(sent)})
        self._sent_done(sent)

    def _sent_done(self, sent: list[tuple[int, list, Callable[[], None]]]) -> None:
        """After the sends are recorded: their ``done`` calls, whose people's next events are found in one read."""
        if not sent:
            return
        with self._gathered():
            for _, _, done in sent:
                try:
                    done()
                except Exception:
                    log.exception("after-send callback failed")

    def _queue_next(self, office_id: int, source_key: str) -> None:
        """A person's replies are out: queue their next waiting event (inside ``_gathered``, later, with others')."""
        people = getattr(self._gather, "people", None)
        if people is not None:
            people.add((office_id, source_key))
            return
        next_id = self.processor.inbox.next_for_source(office_id, source_key)
        if next_id is not None:
            self.queue.put(next_id)

    @contextmanager
    def _gathered(self) -> Iterator[None]:
        """``_queue_next`` calls made inside look up their people's next events in one read at the end (the
        sends one batch recorded)."""
        self._gather.people = people = set()
        try:
            yield
        finally:
            self._gather.people = None
            try:
                for next_id in self.processor.inbox.next_for_sources(people) if people else ():
                    self.queue.put(next_id)
            except Exception:  # the sweeper finds those events (SWEEP_GRACE)
                log.exception("next events could not be looked up", extra={"people": len(people)})

    def _run(self) -> None:
        left: list[int] = []  # ids a batch did not reach, first in the next one
        while True:
            ids, stop = _next_batch(self.queue, left, self.batch)
            if not ids and not stop and self._sent:
                # Woken only to record sends: an event arriving within RECORD_WAIT carries them in its transaction
                # (at an office's usual rate, one write turn per event instead of two).
                ids, stop = _next_batch(self.queue, [], self.batch, timeout=RECORD_WAIT)
            sent = self._take_sent()
            if not ids:  # woken only to record sends
                self._record_alone(sent)
                left = []
            else:
                try:
                    left = self.processor.process_batch(ids, _records(sent))
                except Exception:  # the sweeper will retry the events; the rows left are sent again (a lease later)
                    log.exception("processing failed")
                    left = []
                self._sent_done(sent)
            if stop:
                for eid in left:
                    self.processor.process(eid)
                return

    def stopped_threads(self) -> list[str]:
        """Names of this runner's threads that have ended although it was not stopped (for /healthz)."""
        threads = [*self._workers, self.sweeper._thread]
        if self.senders is not None:
            threads.append(self.senders._thread)
        return [t.name for t in threads if t is not None and not t.is_alive()]

    def stop(self) -> None:
        for _ in self._workers:
            self.queue.put(None)
        for t in self._workers:
            t.join(timeout=5)
        if self.senders is not None:
            self.senders.stop()
        self._record_alone(self._take_sent())  # taken by LINE after the processing thread's last batch
        self.sweeper.stop()
        self.processor.submit_send = None
        self.processor.on_sent = None
