"""The fake LINE of ``tests/fakeline.py`` with the faults these tests inject, over real HTTP.

On top of what ``FakeLine`` already does as LINE does (single-use reply tokens; a retry key that
was accepted answers 409 and delivers nothing; faults queued by count), ``FaultyLine`` can:

* **hold** the n-th request to a path until the test releases it, so a process can be killed
  while that request is in flight; on release the request is either delivered (LINE got it
  before the connection died) or lost (it never reached LINE);
* run an **outage** per path: from the first request to that path, answer every request with a
  status (and ``Retry-After``) for a while, phase after phase — nothing is delivered meanwhile;
* **deliver, then fail**: the next n requests to a path are delivered but answered 500, as when
  LINE took the request and the answer was lost — a retry with the same key must then be a 409;
* keep a log of what was really **delivered** (2xx from LINE's own logic), which is what a person
  would see on their phone; the request log still has every attempt with its status and time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fakeline import FakeLine
from werkzeug.serving import make_server

MESSAGE_PATHS = ("/v2/bot/message/reply", "/v2/bot/message/push", "/v2/bot/message/multicast")


@dataclass(frozen=True)
class Phase:
    """Until ``until`` seconds after the first request to the path, answer ``status``."""

    until: float
    status: int
    retry_after: float | None = None


@dataclass(frozen=True)
class Delivered:
    path: str
    to: list[str]  # push: [to]; multicast: the IDs; reply: [the token's owner]
    texts: list[str]
    retry_key: str | None
    reply_token: str | None
    at: float


class FaultyLine(FakeLine):
    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[Delivered] = []
        self.outages: dict[str, list[Phase]] = {}
        self._outage_start: dict[str, float] = {}
        self.deliver_then_fail: dict[str, int] = {}
        self.delays: dict[str, float] = {}  # path -> seconds LINE takes to answer it
        self.hold_at: tuple[str, int] | None = None  # (path prefix, n-th request to it, 1-based)
        self.deliver_held = True
        self.held = threading.Event()  # set once the held request has arrived
        self.release = threading.Event()
        self._seen: dict[str, int] = {}

    # -- what tests look at ----------------------------------------------------------------

    def delivered_to(self, user_id: str) -> list[str]:
        """Texts that reached a person, however they were sent."""
        with self.lock:
            return [t for d in self.delivered if user_id in d.to for t in d.texts]

    def delivered_by(self, path_part: str) -> list[Delivered]:
        with self.lock:
            return [d for d in self.delivered if path_part in d.path]

    # -- the faults ------------------------------------------------------------------------

    def _handle(self, req, body: bytes):
        path = req.path
        now = time.time()
        with self.lock:
            if self.hold_at is not None and path.startswith(self.hold_at[0]):
                self._seen[self.hold_at[0]] = n = self._seen.get(self.hold_at[0], 0) + 1
                hold = n == self.hold_at[1]
            else:
                hold = False
            phases = self.outages.get(path)
            phase = None
            if phases:
                start = self._outage_start.setdefault(path, now)
                phase = next((p for p in phases if now - start < p.until), None)
            fail_after = self.deliver_then_fail.get(path, 0) > 0
            if fail_after:
                self.deliver_then_fail[path] -= 1
        if self.delays.get(path):
            time.sleep(self.delays[path])
        if hold:
            self.held.set()
            self.release.wait(120)
            if not self.deliver_held:  # the connection died before LINE had the request
                return 502, {"message": "connection lost (injected)"}, {}
        if fail_after:
            status, payload, headers = self._deliver(req, body)
            if 200 <= status < 300:  # LINE took it; the answer never came back
                return 500, {"message": "delivered, then failed (injected)"}, {}
            return status, payload, headers
        if phase is not None:
            headers = {"Retry-After": f"{phase.retry_after:g}"} if phase.retry_after is not None else {}
            return phase.status, {"message": "outage (injected)"}, headers
        return self._deliver(req, body)

    def _deliver(self, req, body: bytes):
        status, payload, headers = super()._handle(req, body)
        if req.path in MESSAGE_PATHS and 200 <= status < 300:
            data = req.get_json(silent=True) or {}
            if req.path.endswith("/reply"):
                owner = self.token_owner.get(data.get("replyToken"))
                to = [owner] if owner else []
            elif req.path.endswith("/push"):
                to = [data.get("to")]
            else:
                to = list(data.get("to") or [])
            texts = [m.get("text", m.get("altText", "")) for m in data.get("messages", [])]
            with self.lock:
                self.delivered.append(Delivered(req.path, to, texts, req.headers.get("X-Line-Retry-Key"),
                                                data.get("replyToken"), time.time()))
        return status, payload, headers


class FaultyLineServer:
    """A ``FaultyLine`` on 127.0.0.1 in background threads (one per request, so a held request
    blocks nobody else)."""

    def __init__(self) -> None:
        self.fake = FaultyLine()
        self.server = make_server("127.0.0.1", 0, self.fake, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.fake.url = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyLine:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc) -> None:
        self.fake.release.set()
        self.server.shutdown()
        self.server.server_close()
