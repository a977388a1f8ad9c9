"""A fake LINE Messaging API over real HTTP that records every request.

It behaves like LINE where our bot depends on it: reply tokens are single-use, a retry key
that was accepted answers 409 the second time, content is served from the data API paths,
and faults (500, 429 with Retry-After) can be queued so tests see the bot's retries.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def retry_key(self) -> str | None:
        return self.headers.get("X-Line-Retry-Key")


@dataclass
class Fault:
    path: str  # prefix
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class FakeLine:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.used_tokens: set[str] = set()
        self.expired_tokens: set[str] = set()
        self.accepted_keys: set[str] = set()
        self.faults: list[Fault] = []
        self.contents: dict[str, tuple[bytes, str]] = {}
        self.profiles: dict[str, dict] = {}
        self.followers: list[str] = []
        self.group_sizes: dict[str, int] = {}  # group/room ID -> members (default 3)
        self.send_delay = 0.0  # seconds each push/multicast takes (to make concurrent senders overlap)
        self.quota = 500
        self.used = 0
        self.token = "test-token"
        self.token_owner: dict[str, str] = {}  # reply token -> user, filled by the test's sender
        self._menus = 0

    def reset(self) -> None:
        with self.lock:
            self.__init__()

    # -- what tests look at --------------------------------------------------------------

    def calls(self, path_part: str = "", method: str | None = None, ok_only: bool = True) -> list[Recorded]:
        with self.lock:
            return [
                r for r in self.requests
                if path_part in r.path and (method is None or r.method == method)
                and (not ok_only or 200 <= r.status < 300)
            ]

    def sent_to(self, user_id: str) -> list[dict]:
        """Message objects that reached a user, in order; replies are matched by token owner."""
        out: list[dict] = []
        for r in self.calls("/v2/bot/message/"):
            body = r.json or {}
            to = body.get("to")
            reached = (
                (r.path.endswith("/push") and to == user_id)
                or (r.path.endswith("/multicast") and user_id in (to or []))
                or (r.path.endswith("/reply") and self.token_owner.get(body.get("replyToken")) == user_id)
            )
            if reached:
                out.extend(body["messages"])
        return out

    def texts_to(self, user_id: str) -> list[str]:
        return [m.get("text", m.get("altText", "")) for m in self.sent_to(user_id)]

    # -- the WSGI app --------------------------------------------------------------------

    def __call__(self, environ, start_response):
        req = Request(environ)
        body = req.get_data()
        status, payload, headers = self._handle(req, body)
        with self.lock:
            self.requests.append(
                Recorded(req.method, req.path, dict(req.headers), body, status, time.time())
            )
        if isinstance(payload, bytes):
            resp = Response(payload, status=status, headers=headers)
        else:
            resp = Response(json.dumps(payload), status=status, headers=headers, mimetype="application/json")
        return resp(environ, start_response)

    def _fault(self, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if path.startswith(f.path) and f.times > 0:
                    f.times -= 1
                    return f
        return None

    def _handle(self, req: Request, body: bytes):
        path = req.path
        if req.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "Authentication failed"}, {}
        fault = self._fault(path)
        if fault is not None:
            return fault.status, {"message": "fault injected"}, fault.headers
        data = json.loads(body) if body and req.mimetype == "application/json" else None
        if path == "/v2/bot/message/reply":
            token = (data or {}).get("replyToken")
            with self.lock:
                if token in self.used_tokens or token in self.expired_tokens or not token:
                    return 400, {"message": "Invalid reply token"}, {}
                self.used_tokens.add(token)
            return 200, {"sentMessages": [{"id": "1", "quoteToken": "q"} for _ in data["messages"]]}, {}
        if path in ("/v2/bot/message/push", "/v2/bot/message/multicast", "/v2/bot/message/broadcast",
                    "/v2/bot/message/narrowcast"):
            key = req.headers.get("X-Line-Retry-Key")
            if self.send_delay:
                time.sleep(self.send_delay)
            with self.lock:
                if key and key in self.accepted_keys:
                    return 409, {"message": "The retry key is already accepted"}, {
                        "x-line-accepted-request-id": "abc"}
                if key:
                    self.accepted_keys.add(key)
            if path.endswith("/push"):
                return 200, {"sentMessages": [{"id": "1"} for _ in data["messages"]]}, {}
            return 200, {}, {}
        if path.startswith("/v2/bot/profile/"):
            uid = path.rsplit("/", 1)[-1]
            prof = self.profiles.get(uid, {"language": "th"})
            return 200, {"userId": uid, "displayName": "Test", **prof}, {}
        if path.startswith("/v2/bot/message/") and path.endswith("/content"):
            mid = path.split("/")[4]
            if mid not in self.contents:
                return 404, {"message": "Not found"}, {}
            data_bytes, ctype = self.contents[mid]
            return 200, data_bytes, {"Content-Type": ctype}
        if path == "/v2/bot/chat/loading/start":
            return 202, {}, {}
        if path == "/v2/bot/followers/ids":
            start = int(req.args.get("start") or 0)
            limit = int(req.args.get("limit") or 300)
            page = self.followers[start:start + limit]
            body = {"userIds": page}
            if start + limit < len(self.followers):
                body["next"] = str(start + limit)
            return 200, body, {}
        if path.endswith("/members/count") and path.startswith(("/v2/bot/group/", "/v2/bot/room/")):
            return 200, {"count": self.group_sizes.get(path.split("/")[4], 3)}, {}
        if path == "/v2/bot/message/quota":
            return 200, {"type": "limited", "value": self.quota}, {}
        if path == "/v2/bot/message/quota/consumption":
            return 200, {"totalUsage": self.used}, {}
        if path == "/v2/bot/richmenu" and req.method == "POST":
            with self.lock:
                self._menus += 1
                n = self._menus
            return 200, {"richMenuId": f"richmenu-{n:032x}"}, {}
        return 200, {}, {}


class FakeLineServer:
    """Runs a FakeLine on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.fake = FakeLine()
        self.server = make_server("127.0.0.1", 0, self.fake, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLine:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
