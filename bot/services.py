"""Everything a process needs, built once from Settings: database, offices, gateways, workers.

Both the web app and ``itabot worker`` build a ``Services``; nothing here needs Flask.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import threading
from collections.abc import Iterable

from bot.config import Settings
from bot.crypto import DataCipher
from bot.gateway import LineGateway
from bot.inbox import Inbox
from bot.offices import OfficeDirectory, ensure_default_office
from models import Delivery
from models.db import Database

log = logging.getLogger("itabot.services")

# Set by a caller that wants the send records of what it sends, to commit them together with
# its own bookkeeping (the outbox) in one transaction.
collected_deliveries: contextvars.ContextVar[list | None] = contextvars.ContextVar("collected_deliveries",
                                                                                  default=None)


class Services:
    def __init__(self, settings: Settings, *, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.database_url)
        self.cipher = DataCipher(settings.data_key)
        self.offices = OfficeDirectory(self.db, settings, self.cipher)
        self.inbox = Inbox(self.db, hashlib.sha256(b"source-key:" + settings.secret_key.encode()).digest())
        # office id -> ((simulated, access token), gateway); gateways replaced by a channel change are retired
        self._gateways: dict[int, tuple[tuple[bool, str], LineGateway]] = {}
        self._retired: list[LineGateway] = []
        self._lock = threading.Lock()
        self.simulator_app = None  # set by the app factory when the simulator serves LINE's API
        self.runner = None  # EmbeddedRunner: in the processing process (or, with threads, each web process)
        self.processing_host = None  # ProcessingHost in embedded web processes (bot.processing)
        self.queue = None  # RQ queue in scaled mode
        from bot.worker import Processor

        self.processor = Processor(self)

    def ensure_default_office(self, rename: bool = True) -> int:
        return ensure_default_office(self.db, self.settings, rename=rename)

    def gateway(self, office_id: int) -> LineGateway:
        """The office's LINE gateway, rebuilt when its channel changes (a new token in the console, or an office
        moved from the simulator to a real channel): the office directory's cache (a minute at most) says which
        credentials are current in every process."""
        office = self.offices.by_id(office_id)
        if office is None:
            raise LookupError(f"no office {office_id}")
        channel = (office.simulated, office.access_token)
        hit = self._gateways.get(office_id)
        if hit is not None and hit[0] == channel:
            return hit[1]
        pool = None
        api, data_api = self.settings.line_api_base_url, self.settings.line_data_api_base_url
        if office.simulated:
            from bot.simulator import WsgiPoolManager, simulator_base

            if self.simulator_app is None:
                raise RuntimeError("office has no LINE channel and the simulator is off")
            pool = WsgiPoolManager(self.simulator_app)
            api = data_api = simulator_base(office.slug)
        gw = LineGateway(
            office.access_token,
            api_base_url=api,
            data_api_base_url=data_api,
            recorder=self._recorder(office_id),
            pool_manager=pool,
            connections=self.settings.sender_threads + 4,  # senders, plus the processing and sweeper threads
        )
        with self._lock:
            current = self._gateways.get(office_id)
            if current is not None and current[0] == channel:  # another thread was first
                return current[1]
            if current is not None:  # sends in flight may still use it: closed with the process
                self._retired.append(current[1])
            self._gateways[office_id] = (channel, gw)
        return gw

    def all_gateways(self) -> list[LineGateway]:
        """Every gateway made in this process, the retired ones too (to close their connections)."""
        with self._lock:
            return [gw for _, gw in self._gateways.values()] + list(self._retired)

    def _recorder(self, office_id: int):
        def record(**fields) -> None:
            pending = collected_deliveries.get()
            if pending is not None:  # the caller writes these rows (Core) with its own transaction
                pending.append({"office_id": office_id, **fields})
                return
            with self.db.session() as s:
                s.add(Delivery(office_id=office_id, **fields))

        return record

    def quota_remaining(self, office_id: int) -> int | None:
        """Messages left this month on the office's plan (None: no limit), read from LINE."""
        q = self.gateway(office_id).quota()
        if q["type"] == "none" or q["limit"] is None:
            return None
        return max(0, int(q["limit"]) - int(q["used"]))

    # -- handing new events to workers ----------------------------------------------------

    def notify(self, event_ids: Iterable[int]) -> None:
        """Tell a worker about new events. Never raises: the sweeper is the safety net."""
        ids = list(event_ids)
        if not ids:
            return
        if self.runner is not None:
            self.runner.submit(ids)
            return
        if self.processing_host is not None:
            self.processing_host.wake(ids)
            return
        if self.queue is not None:
            try:
                for event_id in ids:
                    self.queue.enqueue(
                        "bot.jobs.process_event", event_id, job_timeout=120, result_ttl=0, failure_ttl=3600
                    )
            except Exception as exc:  # Redis down: the events are stored, workers will sweep them
                log.warning("queue unavailable; events left for the sweeper", extra={"error": exc.__class__.__name__})

    def start_embedded_worker(self, threads: int | None = None, warm: bool = True) -> None:
        """Processing threads in this process. ``warm=False``: the caller has built the matchers already."""
        from bot.worker import EmbeddedRunner

        if self.runner is None:
            self.runner = EmbeddedRunner(
                self.processor, threads=threads or self.settings.worker_threads, senders=self.settings.sender_threads
            )
            self.runner.start()
            if warm:
                from integrity.store import MATCHERS

                MATCHERS.warm_in_background(self.db)

    def start_processing_process(self) -> None:
        """Embedded mode: processing in a process of its own beside the web processes (bot.processing)."""
        from bot.processing import ProcessingHost

        if self.processing_host is None:
            self.processing_host = ProcessingHost(self.settings)
            self.processing_host.start()

    def connect_queue(self) -> None:
        """Scaled mode: new events go to RQ on Redis."""
        from redis import Redis
        from rq import Queue

        conn = Redis.from_url(self.settings.redis_url, socket_connect_timeout=1, socket_timeout=2)
        self.queue = Queue("itabot", connection=conn)

    def close(self) -> None:
        if self.processing_host is not None:
            self.processing_host.stop()
            self.processing_host = None
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        for gw in self.all_gateways():
            gw.close()
        self.db.dispose()
