#!/usr/bin/env python
"""Coverage-guided fuzzing of the webhook and the handlers behind it (atheris / libFuzzer), issue #8.

    nice -n 10 python bench/fuzz/webhook_atheris.py -max_total_time=300
    python bench/fuzz/webhook_atheris.py --replay bench/fuzz/work/findings/<id>.json

The app is built once, in embedded mode, on a fresh SQLite database (``work/app/``), with the fake LINE of
``tests/fakeline.py`` answering in-process (no socket, nothing reaches LINE). Each fuzz input is turned
into webhook deliveries with ``atheris.FuzzedDataProvider`` — one, or for a fifth of the inputs a
conversation of 2–14 from one person (someone new, or one of the regulars):

* mostly structurally valid LINE webhook bodies, built from the spec-checked samples of
  ``tests/line_samples.py``, with fuzzed fields: known and unknown event and message types, text with
  emoji, zero-width, RTL and Thai combining marks, lone surrogates (sent as ``\\ud800`` escapes), texts
  up to LINE's 5,000 characters and huge strings in other fields, postback data with odd query strings
  and date-picker params, numbers/lists/null where strings are expected, evidence files whose bytes come
  from the fuzzer;
* what the bot itself offered that person in its last message (quick replies and buttons; receipt and
  invite codes it sent), so conversations — complaints, the gift helper and gift register, surveys,
  following a case — go deep and odd input also arrives in their later steps; four users, a group and a
  room keep their state from one input to the next;
* sometimes raw bytes, arbitrary JSON, deep nesting, a body over 1 MB, a bad signature.

Every body is signed with the channel secret. Per delivery it checks: the webhook answered 200, 400 or
413 (the database does not fail here, so never 5xx); after ``Processor.drain()`` no event of this
delivery was counted as failed by ``Inbox.fail`` (a handler raised; the harness sets
``bot.inbox.MAX_ATTEMPTS`` to 1 so such an event is parked at once instead of coming back under later
inputs), none is left pending, nothing was logged by the worker's ``except`` blocks (event handling,
preparing, after-commit calls, sending); what the bot sent stays within LINE's message limits; no
delivery takes over 2 s; every 100 deliveries ``/healthz`` answers 200 and a person nobody fuzzes gets
an answer to "เมนู".

A finding is written once per distinct place (``work/findings/<id>.json``: the traceback, the delivery
and the 40 deliveries before it, since state carries over) and the run goes on; ``--stop-on-finding``
turns it into a libFuzzer crash instead. ``--replay`` feeds a finding's deliveries to a fresh app.
Counters go to ``work/stats.json`` every few seconds (libFuzzer exits without running ``atexit``).
Other arguments go to libFuzzer; without a corpus directory the script uses ``work/corpus`` (where
libFuzzer writes what it finds) plus the committed seeds in ``corpus/``.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import hmac
import importlib
import io
import json
import logging
import os
import pkgutil
import re
import shutil
import sys
import tempfile
import time
import traceback
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = HERE / "work"
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import atheris  # noqa: E402

PACKAGES = ("bot", "handlers", "complaints", "integrity", "surveys", "models")
NOT_INSTRUMENTED: list[str] = []


def _import_our_packages() -> None:
    """Import every module of our packages now, inside the instrumenting import hook (modules our code
    imports lazily would otherwise be loaded later without coverage feedback)."""
    for name in PACKAGES:
        pkg = importlib.import_module(name)
        for info in pkgutil.walk_packages(pkg.__path__, name + "."):
            if ".migrations" in info.name:  # Alembic revision scripts: only run by `alembic upgrade`
                continue
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # e.g. an optional dependency of scaled mode
                NOT_INSTRUMENTED.append(f"{info.name} ({exc.__class__.__name__})")


with atheris.instrument_imports(include=list(PACKAGES)):
    _import_our_packages()

import line_samples  # noqa: E402
from fakeline import FakeLine  # noqa: E402
from werkzeug.test import Client  # noqa: E402

CHANNEL_SECRET = "0123456789abcdef0123456789abcdef"  # the tests' secret (tests/conftest.py)
DATA_KEY = "hLl3K0t0ZyW8Mhq8cYqmDq9m2oG7xq0m3JKQm6m0c2E="
MAX_BODY = 1024 * 1024
HEALTH_EVERY = 100
HISTORY = 40
TEXT_MAX = 5000  # LINE delivers text messages of at most 5,000 characters
SLOW_S = 2.0  # an input that takes longer (instrumented) is reported

USERS = ["U" + c * 32 for c in "abcd"]  # a, b: enrolled staff; c: public; d: a linked complaint officer
GROUP = "C" + "e" * 32
ROOM = "R" + "f" * 32
CANARY = "U" + "0" * 26 + "c0ffee"  # never fuzzed: checks the bot still answers

SPECIALS = [
    "🙏🏽", "👨‍👩‍👧‍👦", "🇹🇭", "😀", "\u2764\ufe0f", "\U0010ffff", "\ufffd", "\ufeff",
    "\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\u180e",
    "\u202e", "\u202b", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c", "مرحبا", "שלום",
    "\u0e31", "\u0e34", "\u0e35", "\u0e36", "\u0e37", "\u0e38", "\u0e39", "\u0e47", "\u0e48", "\u0e49",
    "\u0e4a", "\u0e4b", "\u0e4c", "\u0e4d", "ก\u0e48\u0e49\u0e4a\u0e4b\u0e4c", "\u0e49\u0e49\u0e49", "เเ", "ำ",
    "ๆ", "ฯลฯ", "๏", "๑๒๓", "๐", "ร้องเรียน", "แจ้งเบาะแส", "ของขวัญ", "เมนู", "ยกเลิก", "ค่ะ", "ครับ", "นะคะ",
    "e\u0301", "İ", "ß", "ﬃ", "Ⅻ", "ｍｅｎｕ", "𝐦𝐞𝐧𝐮", "ǅ", "ｶ", "ﷺ",
    "\x00", "\x07", "\r\n", "\t", "\n\n\n", " ", "\u3000", "\u00a0",
    "\ud800", "\udfff", "\udbff\udfff"[0], "%00", "%ff", "&", "=", "?", "#", "\\", "\"", "'",
    "<script>alert(1)</script>", "'; DROP TABLE complaints; --", "{{7*7}}", "${jndi:ldap://x}", "../../etc/passwd",
    "action=menu", "action=", "1e309", "-0", "NaN", "9" * 30,
    "²", "①", "፪", "٣", "𝟗", "Ⅷ", "½",  # digits and numbers beyond 0-9 (str.isdigit() is true for some)
]
AMOUNTS = ["500", "๕๐๐", "3000 บาท", "3,000", "2,999.99", "0", "-1", "1e309", "99999999999999999999999", "ห้าร้อย",
           "ไม่ทราบ", "unknown", "ประมาณ 1000", "¥3000", "3000.", ".5", "∞", "²", "5⁰⁰", "①", "٣٠٠٠",
         "9" * 4301, "9" * 4301 + "ร้อย"]  # past int()'s 4,300-digit limit, within LINE's 5,000 characters
DATES = ["2026-11-10", "10/11/2569", "๑๐/๑๑/๒๕๖๙", "31/02/2569", "29/02/2567", "2026-13-45", "0001-01-01",
         "9999-12-31", "เมื่อวาน", "วันนี้", "today", "yesterday", "1 ม.ค. 2570", "32 ธันวาคม", "10/11", "2569",
         "00:00", "2026-11-10T25:61"]
ODD_QUERY = ["%", "%zz", "%ff%fe", "%00", "%E0%B8", "a=b=c", "&&&", ";", "==", "action", "action=&action=menu",
             "action=c_cat&v=999999999999999999999", "action=qa&id=-1", "action=survey_done&c=abc",
             "action=c_place&v=99", "action=c_editpart&v=nope", "action=c_status&code=", "action=lang&lang=xx",
             "action=g_val&v=" + "9" * 400, "action=%61%63%74", "ACTION=MENU", " action=menu", "action=menu#x",
             "action=r_value&v=NaN", "action=qa&id=%F0%9F%99%8F"]
PARAM_KEYS = ["v", "id", "c", "code", "lang", "n", "p", "q"]
EXTRA_ACTIONS = ["cancel", "menu", "lang", "answered", "reminders_off", "nosuch", "", "c_", "qa_intro"]
UNKNOWN_TYPES = ["somethingNew", "", "MESSAGE", "message ", "postback\u200b", "ข้อความ", "things", "x" * 300]
MESSAGE_TYPES = ["text", "image", "video", "audio", "file", "location", "sticker", "imagemap", "flex", "", "TEXT"]
MEDIA = ["image", "video", "audio", "file"]
ENTRY_WORDS = ["ร้องเรียน", "แจ้งเบาะแส", "complaint", "ของขวัญ", "i received a gift", "ติดตาม", "แบบประเมิน", "เมนู"]
SEND_PATHS = {f"/v2/bot/message/{k}" for k in ("reply", "push", "multicast", "broadcast", "narrowcast")}


# -- signing, the fake LINE in-process -------------------------------------------------------------------


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(CHANNEL_SECRET.encode(), body, hashlib.sha256).digest()).decode()


class InProcessLine:
    """Stands in for urllib3's PoolManager inside line-bot-sdk: requests go to the FakeLine WSGI app
    (like ``bot.simulator.WsgiPoolManager`` does for the simulator), never to the network."""

    def __init__(self, fake: FakeLine) -> None:
        self.client = Client(fake)

    def request(self, method, url, body=None, fields=None, headers=None, preload_content=True, timeout=None, **_kw):
        import urllib3

        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        resp = self.client.open(path, method=method, data=body, headers=dict(headers or {}))
        return urllib3.HTTPResponse(body=resp.get_data(), headers=dict(resp.headers), status=resp.status_code,
                                    reason=resp.status, preload_content=True)

    def clear(self) -> None:
        pass


# -- capturing what the worker logs from its except blocks ------------------------------------------------

# Messages logged by the worker when something it called raised (bot/worker.py, bot/app.py via Flask).
RAISED = {
    "event handling failed": "handler raised (event counted as failed)",
    "event could not be taken": "processor raised before taking the event",
    "processing failed": "processor raised",
    "preparing the event failed": "prepare step raised (swallowed)",
    "after-commit call failed": "after-commit call raised (swallowed)",
    "send failed": "sender raised",
}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[str, str, str, str | None, int | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        tb = None
        if record.exc_info and record.exc_info[0] is not None:
            tb = "".join(traceback.format_exception(*record.exc_info))
        elif sys.exc_info()[0] is not None:  # log.warning inside an except block: the exception is live
            tb = traceback.format_exc()
        msg = record.getMessage()
        if isinstance(getattr(record, "status", None), int):  # the gateway's HTTP status, for the counters
            msg += f" (status {record.status})"
        self.records.append((record.name, record.levelname, msg, tb, getattr(record, "event_row", None)))


# -- findings ---------------------------------------------------------------------------------------------


class Finding(Exception):
    def __init__(self, kind: str, detail: str, tb: str | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.tb = kind, detail, tb

    def signature(self) -> str:
        where = ""
        if self.tb:
            frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', self.tb)
            ours = [f for f in frames if str(REPO) in f[0] and "/bench/fuzz/" not in f[0]] or frames
            if ours:
                path, line, fn = ours[-1]
                where = f"{Path(path).relative_to(REPO) if str(REPO) in path else path}:{line}:{fn}"
            where += " " + exception_line(self.tb)
        return f"{self.kind} | {where or re.sub(r'[0-9.]+', 'N', self.detail)[:80]}"


# -- the harness ------------------------------------------------------------------------------------------


def write_json(path: Path, value) -> None:
    """Readable UTF-8 (lone surrogates as \\udXXX), replaced atomically: libFuzzer may end the process
    at any moment."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8", "backslashreplace"))
    os.replace(tmp, path)


def exception_line(tb: str) -> str:
    """The last exception's "Class: message" line of a formatted traceback, with numbers and escaped
    characters masked (SQLAlchemy's autoflush note is replaced by the database's own message)."""
    all_lines = tb.splitlines()
    found = [i for i, ln in enumerate(all_lines) if re.match(r"^[A-Za-z_][\w.]*(: |$)", ln)]
    i = found[-1] if found else len(all_lines) - 1
    line = all_lines[i]
    if "(raised as a result of" in line and i + 1 < len(all_lines):
        line = line.split(":", 1)[0] + ": " + all_lines[i + 1]
    line = re.sub(r"\\[ux][0-9a-fA-F]+", r"\\uXXXX", line)
    return re.sub(r"[0-9]+", "N", line)[:110]


def walk_actions(node, out: list) -> None:
    """Every action object (quick reply, button) in an outgoing message."""
    if isinstance(node, dict):
        action = node.get("action")
        if isinstance(action, dict) and action.get("type") in ("postback", "message", "datetimepicker"):
            out.append(action)
        for value in node.values():
            walk_actions(value, out)
    elif isinstance(node, list):
        for value in node:
            walk_actions(value, out)


def _fields(node, out: list) -> None:
    """Every (object, key) pair in a JSON value."""
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((node, key))
            _fields(value, out)
    elif isinstance(node, list):
        for value in node:
            _fields(value, out)


CODE_RE = re.compile(r"\b[A-Z2-9]{4}(?:-[A-Z2-9]{4}){1,4}\b")


class Harness:
    def __init__(self, workdir: Path) -> None:
        from bot.app import create_app
        from bot.config import load_settings
        from models.db import Database

        db_url = f"sqlite:///{workdir / 'itabot.sqlite3'}"
        db = Database(db_url)
        db.upgrade()
        db.dispose()
        env = {
            "ITABOT_INSTANCE_PATH": str(workdir / "instance"),
            "LINE_CHANNEL_SECRET": CHANNEL_SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": "test-token",
            "LINE_API_BASE_URL": "http://fake-line.invalid",
            "LINE_DATA_API_BASE_URL": "http://fake-line-data.invalid",
            "DATABASE_URL": db_url,
            "PUBLIC_BASE_URL": "https://bot.example.go.th",
            "SECRET_KEY": "fuzz-secret-key-that-is-long-enough",
            "ITABOT_DATA_KEY": DATA_KEY,
            "OFFICE_NAME": "สำนักงานเขตทดสอบ",
            "ITABOT_SENDER_THREADS": "0",
        }
        # Embedded mode (no REDIS_URL); the processor is drained after each delivery instead of running
        # in a background thread, so every exception is tied to the input that caused it. An event whose
        # handler raises is parked as failed at once rather than retried with backoff over the next
        # minute, where its retries would show up under later inputs.
        import bot.inbox

        bot.inbox.MAX_ATTEMPTS = 1
        self.app = create_app(load_settings(env), start_worker=False)
        self.services = self.app.extensions["itabot"]
        self.office_id = self.services.offices.by_slug(None).id
        self.fake = FakeLine()
        gw = self.services.gateway(self.office_id)
        pool = InProcessLine(self.fake)
        gw._client.rest_client.pool_manager = pool
        gw._blob_client.rest_client.pool_manager = pool
        gw.sleep = lambda s: None
        self.client = self.app.test_client()

        root = logging.getLogger()
        for h in list(root.handlers):
            if getattr(h, "_itabot", False):
                root.removeHandler(h)
        self.capture = Capture()
        root.addHandler(self.capture)
        root.setLevel(logging.WARNING)

        self.offers: dict[str, list[dict]] = {}  # person -> the actions of the bot's last message to them
        self.codes: collections.deque[str] = collections.deque(maxlen=40)
        self.token_owner: dict[str, str] = {}
        self.seq = 0
        self.last_ids: collections.deque[str] = collections.deque(maxlen=20)
        self.history: collections.deque[dict] = collections.deque(maxlen=HISTORY)
        self.current_contents: dict[str, tuple[bytes, str]] = {}
        self.stats: collections.Counter = collections.Counter()
        self.statuses: collections.Counter = collections.Counter()
        self.event_types: collections.Counter = collections.Counter()
        self.logged: collections.Counter = collections.Counter()
        self.findings: dict[str, dict] = {}
        self.slowest: list[tuple[float, str]] = []
        self.states: set[str] = set()  # conversation.state pairs people were left in
        self.started = time.time()
        self._last_stats = 0.0
        self.keywords, self.actions = self._vocabulary()
        self.questions = self._questions()
        self._seed()

    # -- vocabulary and state --------------------------------------------------------------------------

    def _vocabulary(self) -> tuple[list[str], list[str]]:
        from handlers.conversation import Keyword, Postback

        engine = self.services.processor.dispatcher.engine
        routes = list(engine.routes)
        for conv in engine.conversations:
            routes += list(conv.entry_points) + list(conv.fallbacks)
            for state_routes in conv.states.values():
                routes += list(state_routes)
        words, actions = set(), set(EXTRA_ACTIONS)
        for matcher, _step in routes:
            if isinstance(matcher, Keyword):
                words |= matcher.words
            elif isinstance(matcher, Postback):
                actions |= matcher.actions
        words |= {"ยกเลิก", "cancel", "เมนู", "menu", "english", "ภาษาไทย", "help"}
        return sorted(words), sorted(actions)

    @staticmethod
    def _questions() -> list[str]:
        out = []
        for name in ("questions.jsonl", "dev.jsonl"):
            path = REPO / "bench" / "qa" / name
            if path.exists():
                out += [json.loads(line)["q"] for line in path.read_text(encoding="utf-8").splitlines()[::7] if line]
        return out or ["รับของขวัญได้ไหม"]

    def _seed(self) -> None:
        """Open EIT and IIT campaigns, rich menus, staff invite codes (two users enrolled), an officer's link
        code (user d linked), an alert group, evidence files; and the Q&A matcher trained (once)."""
        from sqlalchemy import select

        from bot.richmenu import deploy
        from complaints import officers
        from models import LineGroup, StaffOffice, StaffUser
        from surveys import campaigns

        today = campaigns.today_bangkok()
        oid = self.office_id
        with self.services.db.session() as s:
            campaigns.add_campaign(s, oid, "EIT", "https://itas.nacc.go.th/eit/fuzz", today - timedelta(days=10),
                                   today + timedelta(days=40), target=50)
            campaigns.add_campaign(s, oid, "IIT", "https://itas.nacc.go.th/iit/fuzz", today - timedelta(days=10),
                                   today + timedelta(days=40))
            invites = [campaigns.invite_staff(s, oid, f"เจ้าหน้าที่ {i}", "ฝ่ายปกครอง", today - timedelta(days=800))
                       for i in range(4)]
            invites.append(campaigns.invite_staff(s, oid, "พนักงานใหม่", "ฝ่ายทะเบียน", today - timedelta(days=30)))
            staff = s.scalar(select(StaffUser).where(StaffUser.email == "officer@fuzz.example"))
            if staff is None:
                staff = StaffUser(email="officer@fuzz.example", role="complaint_officer", active=True)
                s.add(staff)
                s.flush()
                s.add(StaffOffice(user_id=staff.id, office_id=oid))
            link = officers.new_link_code(s, staff, oid, self.services.cipher)
            s.add(LineGroup(office_id=oid, group_id=GROUP, kind="group", complaint_alerts=True, active=True))
        deploy(self.services, oid)
        self.codes.extend(invites[2:])
        self._content_pool()
        script = [(USERS[0], f"รหัส {invites[0]}"), (USERS[1], invites[1].lower().replace("-", " ")),
                  (USERS[3], f"เชื่อมบัญชี {link}"), (USERS[2], "รับของขวัญจากผู้รับบริการได้ไหม")]
        for user in USERS:
            self._deliver_events([self._base_event("follow", user)])
        for user, text in script:
            ev = self._base_event("message", user)
            ev["message"] = {"type": "text", "id": self._id(), "text": text, "quoteToken": "q"}
            self._deliver_events([ev])
        self.capture.records.clear()

    def _content_pool(self) -> None:
        from PIL import Image

        def img(fmt: str, size=(64, 48), mode="RGB") -> bytes:
            out = io.BytesIO()
            Image.new(mode, size, "blue" if mode == "RGB" else 1).save(out, fmt)
            return out.getvalue()

        jpeg = img("JPEG")
        self.pool = {
            "9000": (jpeg, "image/jpeg"),
            "9001": (img("PNG"), "image/png"),
            "9002": (jpeg[: len(jpeg) // 2], "image/jpeg"),  # truncated
            "9003": (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "application/pdf"),
            "9004": (b"MZ\x90\x00 not a document", "application/octet-stream"),
            "9005": (b"", "image/jpeg"),
            "9006": (img("PNG", (8000, 8000), "1"), "image/png"),  # 64 Mpx: over the pixel limit
            "9007": (img("GIF"), "image/gif"),
            "9008": (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, "video/mp4"),
            "9009": (b"ID3\x03\x00" + b"\x00" * 64, "audio/mpeg"),
            "9010": (b"\xff\xd8\xff" + b"A" * 3000, "image/jpeg"),  # a JPEG header and nothing else
        }
        self.fake.contents.update(self.pool)

    def _id(self) -> str:
        self.seq += 1
        return f"{self.seq:017d}"

    def _base_event(self, kind: str, user: str | None, source: dict | None = None) -> dict:
        self.seq += 1
        ev = {"type": kind, "webhookEventId": f"01FUZZ{self.seq:020d}", "deliveryContext": {"isRedelivery": False},
              "timestamp": int(time.time() * 1000), "mode": "active",
              "source": source if source is not None else {"type": "user", "userId": user}}
        token = f"tok{self.seq:029d}"
        ev["replyToken"] = token
        if user:
            self.token_owner[token] = user
        return ev

    def _deliver_events(self, events: list[dict]) -> int:
        body = json.dumps({"destination": line_samples.BOT_USER_ID, "events": events}, ensure_ascii=False).encode()
        status = self.post(body, sign(body))
        self.services.processor.drain()
        self.harvest()
        return status

    def post(self, body: bytes, signature: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Line-Signature"] = signature
        return self.client.post("/callback", data=body, headers=headers).status_code

    # -- what the bot said, as material for the next inputs -----------------------------------------------

    def harvest(self) -> list[Finding]:
        found: list[Finding] = []
        with self.fake.lock:
            requests, self.fake.requests = self.fake.requests, []
        for r in requests:
            if r.path not in SEND_PATHS or r.status >= 300:
                continue
            try:
                body = json.loads(r.body)
            except ValueError as exc:
                found.append(Finding("outgoing body is not JSON", f"{r.path}: {exc}"))
                continue
            if r.path.endswith("/reply"):
                user = self.token_owner.pop(body.get("replyToken"), None)
            else:
                to = body.get("to")
                user = to if isinstance(to, str) else None
            messages = body.get("messages") or []
            found += self._line_limits(r.path, messages)
            actions: list = []
            walk_actions(messages, actions)
            for m in messages:
                for code in CODE_RE.findall(json.dumps(m, ensure_ascii=False)):
                    self.codes.append(code)
            if user is not None:
                self.offers[user] = actions
        if len(self.token_owner) > 5000:
            self.token_owner.clear()
        if len(self.fake.used_tokens) > 20000:
            self.fake.used_tokens.clear()
            self.fake.accepted_keys.clear()
        return found

    @staticmethod
    def _line_limits(path: str, messages: list) -> list[Finding]:
        """The limits LINE's Messaging API refuses a send for (400), checked on what the bot sent."""
        bad = []
        if not 1 <= len(messages) <= 5:
            bad.append(f"{len(messages)} messages in one request (1–5)")
        for m in messages:
            if not isinstance(m, dict):
                bad.append("a message that is not an object")
                continue
            if m.get("type") == "text" and not 0 < len(m.get("text") or "") <= 5000:
                bad.append(f"text of {len(m.get('text') or '')} characters (1–5000)")
            if m.get("type") in ("flex", "template") and not 0 < len(m.get("altText") or "") <= 1500:
                bad.append(f"altText of {len(m.get('altText') or '')} characters (1–1500)")
            items = ((m.get("quickReply") or {}).get("items")) or []
            if len(items) > 13:
                bad.append(f"{len(items)} quick reply items (≤13)")
            actions: list = []
            walk_actions(m, actions)
            for a in actions:
                if len(a.get("label") or "") > 20 and a in [i.get("action") for i in items]:
                    bad.append(f"quick reply label of {len(a['label'])} characters (≤20)")
                if a.get("type") == "postback" and len(a.get("data") or "") > 300:
                    bad.append(f"postback data of {len(a['data'])} characters (≤300)")
                if a.get("type") == "message" and not 0 < len(a.get("text") or "") <= 300:
                    bad.append(f"message action text of {len(a.get('text') or '')} characters (1–300)")
                if len(a.get("displayText") or "") > 300:
                    bad.append(f"displayText of {len(a['displayText'])} characters (≤300)")
        return [Finding("LINE would refuse this send", f"{path}: {b}") for b in bad]

    # -- building one delivery from the fuzzer's bytes ---------------------------------------------------

    def pick(self, fdp, items):
        return items[fdp.ConsumeIntInRange(0, len(items) - 1)] if items else None

    def garbage(self, fdp, depth: int = 0):
        k = fdp.ConsumeIntInRange(0, 12 if depth < 4 else 8)
        if k == 0:
            return None
        if k == 1:
            return fdp.ConsumeBool()
        if k == 2:
            return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 12))
        if k == 3:
            return self.pick(fdp, [2**63, -(2**63) - 1, 10**30, 0, -1, 1.5, 1e308, -0.0, float("inf"), float("nan")])
        if k == 4:
            return fdp.ConsumeFloat()
        if k in (5, 6):
            return self.text(fdp, USERS[0], allow_huge=False)
        if k == 7:
            return self.pick(fdp, SPECIALS)
        if k == 8:
            return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40))
        if k in (9, 10):
            return [self.garbage(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
        return {self.pick(fdp, ["type", "text", "id", "data", "userId", "params", "message", "source", "x", ""])
                if fdp.ConsumeBool() else fdp.ConsumeUnicode(8): self.garbage(fdp, depth + 1)
                for _ in range(fdp.ConsumeIntInRange(0, 4))}

    def decorate(self, fdp, word: str) -> str:
        k = fdp.ConsumeIntInRange(0, 9)
        if k == 0 and word:
            i = fdp.ConsumeIntInRange(0, len(word))
            return word[:i] + self.pick(fdp, ["\u200b", "\u200d", "\ufeff", "\u202e", "\u0e49", " ", "\u00ad"]) + word[i:]
        if k == 1:
            return word.upper() if fdp.ConsumeBool() else word.title()
        if k == 2:
            return f"  {word}{self.pick(fdp, ['ค่ะ', 'ครับ', 'นะ', 'จ้า', '!', '?', '...', '🙏'])}  "
        if k == 3:
            return word.translate(str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙"))
        if k == 4:
            return self.pick(fdp, ["\u202b", "\u200f", "\u2066"]) + word + "\u202c"
        if k == 5:
            return word + self.pick(fdp, SPECIALS)
        return word

    def code_text(self, fdp, code: str) -> str:
        fmt = fdp.ConsumeIntInRange(0, 7)
        variants = [code, code.lower(), code.replace("-", " "), code.replace("-", ""), f"ติดตาม {code}",
                    f"สถานะ {code.lower()}", f"ตอบ {code} {self.pick(fdp, SPECIALS)}", f"รหัส {code}"]
        return variants[fmt]

    def text(self, fdp, user: str, allow_huge: bool = True) -> str:
        k = fdp.ConsumeIntInRange(0, 99)
        if k < 30:
            return self.decorate(fdp, self.pick(fdp, self.keywords))
        if k < 40 and self.codes:
            return self.code_text(fdp, self.pick(fdp, list(self.codes)))
        if k < 55:
            return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 200))  # may hold lone surrogates
        if k < 72:
            return "".join(self.pick(fdp, SPECIALS + self.keywords[:40]) for _ in range(fdp.ConsumeIntInRange(1, 8)))
        if k < 82:
            return self.decorate(fdp, self.pick(fdp, AMOUNTS + DATES))
        if k < 92:
            return self.decorate(fdp, self.pick(fdp, self.questions))
        piece = self.pick(fdp, SPECIALS) or "ก"
        if allow_huge:  # up to LINE's limit for a text message: it never delivers more
            return piece * fdp.ConsumeIntInRange(1, TEXT_MAX // len(piece))
        return piece * fdp.ConsumeIntInRange(1, 300 // len(piece))

    def huge(self, fdp) -> str:
        """A huge string for fields LINE does not limit as tightly (the body's 1 MB limit holds)."""
        piece = self.pick(fdp, SPECIALS) or "ก"
        return piece * fdp.ConsumeIntInRange(1, 200_000 // len(piece.encode("utf-8", "replace")))

    def postback_data(self, fdp) -> str:
        k = fdp.ConsumeIntInRange(0, 9)
        if k == 0:
            return self.pick(fdp, ODD_QUERY)
        if k == 1:
            return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 80))
        parts = [f"action={self.pick(fdp, self.actions)}"]
        for _ in range(fdp.ConsumeIntInRange(0, 3)):
            key = self.pick(fdp, PARAM_KEYS)
            v = fdp.ConsumeIntInRange(0, 6)
            value = [str(fdp.ConsumeIntInRange(-2, 30)), str(fdp.ConsumeInt(8)), self.pick(fdp, ODD_QUERY),
                     self.pick(fdp, SPECIALS), self.pick(fdp, list(self.codes) or ["ABCD-EFGH"]),
                     self.pick(fdp, ["anonymous", "named", "confidential", "corruption", "general", "unsure", "date",
                                     "unknown", "th", "en", "yes", "no"]), fdp.ConsumeUnicode(10)][v]
            parts.append(f"{key}={value}")
        return self.pick(fdp, ["&", "&", "&", ";", "&&"]).join(parts)

    def pb_params(self, fdp):
        k = fdp.ConsumeIntInRange(0, 6)
        today = date.today()
        value = self.pick(fdp, [today.isoformat(), (today - timedelta(days=3)).isoformat(),
                                (today + timedelta(days=400)).isoformat()] + DATES) if fdp.ConsumeBool() \
            else self.garbage(fdp)
        if k == 0:
            return {"date": value}
        if k == 1:
            return {"time": self.pick(fdp, ["10:00", "23:59", "24:00", "9:7"]) if fdp.ConsumeBool() else value}
        if k == 2:
            return {"datetime": f"{value}T10:00" if isinstance(value, str) else value}
        if k == 3:
            return {"newRichMenuAliasId": fdp.ConsumeUnicode(8), "status": self.pick(fdp, ["SUCCESS", "FAILED", ""])}
        if k == 4:
            return self.garbage(fdp)
        return None

    def source(self, fdp) -> tuple[dict, str | None]:
        k = fdp.ConsumeIntInRange(0, 19)
        if k < 14:
            user = USERS[k % len(USERS)]
            return {"type": "user", "userId": user}, user
        if k < 16:
            return {"type": "group", "groupId": GROUP, "userId": USERS[k % 2]}, GROUP
        if k == 16:
            return {"type": "room", "roomId": ROOM, "userId": USERS[2]}, ROOM
        if k == 17:
            user = "U" + fdp.ConsumeBytes(16).hex().ljust(32, "0")  # someone new
            return {"type": "user", "userId": user}, user
        if k == 18:
            return {"type": "user", "userId": self.garbage(fdp)}, None
        src = self.garbage(fdp)
        return (src if isinstance(src, dict) else {"type": src}), None

    def event(self, fdp, user: str | None = None, offer_pct: int = 45) -> dict:
        if user is not None:
            src, who = {"type": "user", "userId": user}, user
        else:
            src, who = self.source(fdp)
            user = who if who is not None and who.startswith("U") else None
        k = fdp.ConsumeIntInRange(0, 99)
        offers = self.offers.get(who or "", [])
        if k < offer_pct and offers:
            onward = [a for a in offers if not re.search(r"action=(cancel|menu)\b", str(a.get("data")))]
            action = self.pick(fdp, onward if onward and fdp.ConsumeIntInRange(0, 9) < 8 else offers)
            if action.get("type") == "message":
                ev = self._base_event("message", user, src)
                ev["message"] = {"type": "text", "id": self._id(), "text": str(action.get("text")), "quoteToken": "q"}
            else:
                ev = self._base_event("postback", user, src)
                ev["postback"] = {"data": str(action.get("data"))}
                if action.get("type") == "datetimepicker":
                    mode = action.get("mode", "date")
                    today = date.today() - timedelta(days=fdp.ConsumeIntInRange(-3, 60))
                    ev["postback"]["params"] = {mode: today.isoformat() if mode == "date" else
                                                f"{today.isoformat()}T10:00" if mode == "datetime" else "10:00"}
                    if fdp.ConsumeIntInRange(0, 4) == 0:
                        ev["postback"]["params"] = self.pb_params(fdp)
            self.stats["offers followed"] += 1
        elif k < 68:
            ev = self._base_event("message", user, src)
            ev["message"] = {"type": "text", "id": self._id(), "text": self.text(fdp, who or ""), "quoteToken": "q"}
            if fdp.ConsumeIntInRange(0, 9) == 0:
                ev["message"]["emojis"] = [{"index": fdp.ConsumeIntInRange(-1, 10), "length": fdp.ConsumeIntInRange(0, 9),
                                            "productId": "5ac1bfd5040ab15980c9b435", "emojiId": "001"}]
            if fdp.ConsumeIntInRange(0, 9) == 0:
                ev["message"]["mention"] = {"mentionees": [{"index": 0, "length": 4, "type": "user",
                                                            "userId": line_samples.BOT_USER_ID, "isSelf": True}]}
        elif k < 80:
            ev = self._base_event("postback", user, src)
            ev["postback"] = {"data": self.postback_data(fdp)}
            params = self.pb_params(fdp)
            if params is not None:
                ev["postback"]["params"] = params
        elif k < 89:
            mtype = self.pick(fdp, MESSAGE_TYPES)
            ev = self._base_event("message", user, src)
            if mtype in MEDIA:
                mid = self._id()
                j = fdp.ConsumeIntInRange(0, 4)
                if j == 0:  # the file's bytes come from the fuzzer
                    content = (fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2048)),
                               self.pick(fdp, ["image/jpeg", "image/png", "application/pdf", "video/mp4", "text/plain"]))
                    self.fake.contents[mid] = content
                    self.current_contents[mid] = content
                elif j < 4:
                    mid = self.pick(fdp, sorted(self.pool))
                ev["message"] = {"type": mtype, "id": mid, "contentProvider": {"type": "line"}, "quoteToken": "q"}
                if mtype == "file":
                    ev["message"].update(fileName=self.text(fdp, "", allow_huge=False), fileSize=fdp.ConsumeInt(4))
                if mtype in ("video", "audio"):
                    ev["message"]["duration"] = fdp.ConsumeInt(4)
            elif mtype == "location":
                ev["message"] = {"type": "location", "id": self._id(), "title": self.text(fdp, "", allow_huge=False),
                                 "address": self.pick(fdp, SPECIALS), "latitude": fdp.ConsumeFloat(),
                                 "longitude": fdp.ConsumeFloat()}
            elif mtype == "sticker":
                ev["message"] = {"type": "sticker", "id": self._id(), "packageId": "446", "stickerId": "1988",
                                 "stickerResourceType": "STATIC", "keywords": [self.pick(fdp, SPECIALS)],
                                 "quoteToken": "q"}
            else:
                ev["message"] = {"type": mtype, "id": self._id(), "text": self.pick(fdp, SPECIALS)}
        else:
            name, template = self.pick(fdp, self.templates)
            if fdp.ConsumeIntInRange(0, 4) == 0:
                template = dict(template, type=self.pick(fdp, UNKNOWN_TYPES) if fdp.ConsumeBool() else self.garbage(fdp))
            ev = json.loads(json.dumps(template))
            base = self._base_event("x", user, src)
            ev.update(webhookEventId=base["webhookEventId"], source=src, timestamp=base["timestamp"])
            if "replyToken" in ev:
                ev["replyToken"] = base["replyToken"]
            if "unsend" in ev and self.last_ids and fdp.ConsumeBool():
                ev["unsend"] = {"messageId": self.pick(fdp, list(self.last_ids))}
        if isinstance(ev.get("message"), dict) and "id" in ev["message"]:
            self.last_ids.append(ev["message"]["id"])
        self.mutate(fdp, ev)
        self.event_types[str(ev.get("type"))[:24]] += 1
        return ev

    def mutate(self, fdp, ev: dict) -> None:
        """Type confusion: a few fields replaced by other JSON, or removed; odd ids and timestamps."""
        k = fdp.ConsumeIntInRange(0, 9)
        if k == 0:
            ev["webhookEventId"] = self.pick(fdp, [None, 7, "", "x" * 65, ev["webhookEventId"]] + list(self.recent_ids()))
        elif k == 1:
            ev["timestamp"] = self.pick(fdp, [0, -1, 2**62, 2**63, "now", 1.5, None,
                                              int((time.time() - 8 * 86400) * 1000),  # older than redelivery
                                              int((time.time() + 86400 * 365) * 1000)])
        for _ in range(fdp.ConsumeIntInRange(0, 3) if fdp.ConsumeIntInRange(0, 3) == 0 else 0):
            paths: list[tuple[dict, str]] = []
            _fields(ev, paths)
            if not paths:
                return
            node, key = self.pick(fdp, paths)
            j = fdp.ConsumeIntInRange(0, 7)
            if j == 0:
                node.pop(key, None)
            elif j == 1 and key != "text":
                node[key] = self.huge(fdp)
            else:
                node[key] = self.garbage(fdp)

    def recent_ids(self):
        return [h["event_ids"][0] for h in list(self.history)[-5:] if h.get("event_ids")]

    def delivery(self, fdp, mode: int) -> tuple[bytes, str | None, str]:
        """(body, signature or None, expectation)."""
        if mode < 4:
            body = fdp.ConsumeBytes(fdp.remaining_bytes())
            return body, sign(body), "any"
        if mode < 8:
            return self.serialize(fdp, self.garbage(fdp)), None, "any"
        if mode < 10:
            n = fdp.ConsumeIntInRange(1, 200_000)
            nest = "[" * n + "]" * n if fdp.ConsumeBool() else '{"a":' * n + "1" + "}" * n
            inner = nest if fdp.ConsumeBool() else json.dumps(
                {"events": [{"type": "message", "source": {"type": "user", "userId": USERS[2]}, "message": "X"}]}
            ).replace('"X"', nest)
            return inner.encode(), None, "any"
        if mode < 12:
            body = self.serialize(fdp, {"events": [self.event(fdp)]})
            sig = self.pick(fdp, ["", sign(body).lower(), sign(body + b" "), "x" * 44, sign(body)[:-2]])
            return body, sig, "400"
        if mode == 12:
            return self.serialize(fdp, {"destination": line_samples.BOT_USER_ID, "events": []}), None, "200"
        if mode == 13:
            body = self.serialize(fdp, {"events": [self.event(fdp)]})
            return body + b" " * (MAX_BODY + 1 - len(body)), None, "413"
        events = [self.event(fdp) for _ in range(fdp.ConsumeIntInRange(1, 4) if fdp.ConsumeIntInRange(0, 4) == 0 else 1)]
        if fdp.ConsumeIntInRange(0, 19) == 0:
            events.append(json.loads(json.dumps(events[0])))  # the same event twice in one delivery
        payload: dict = {"destination": line_samples.BOT_USER_ID, "events": events}
        if fdp.ConsumeIntInRange(0, 9) == 0:
            payload[self.pick(fdp, ["destination", "extra", ""])] = self.garbage(fdp)
        body = self.serialize(fdp, payload)
        return body, None, ("413" if len(body) > MAX_BODY else "200")

    def serialize(self, fdp, value) -> bytes:
        ascii_only = fdp.ConsumeBool()
        try:
            text = json.dumps(value, ensure_ascii=ascii_only)
            return text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: only expressible as \\ud800 escapes
            return json.dumps(value, ensure_ascii=True).encode()
        except (ValueError, RecursionError):
            return b"{}"

    # -- one input ------------------------------------------------------------------------------------------

    def one(self, data: bytes) -> list[Finding]:
        fdp = atheris.FuzzedDataProvider(data)
        self.stats["inputs"] += 1
        mode = fdp.ConsumeIntInRange(0, 99)
        if 14 <= mode < 34:
            return self.walk(fdp)
        self.current_contents = {}
        return self.send(*self.delivery(fdp, mode))

    def walk(self, fdp) -> list[Finding]:
        """A conversation: one person sends several deliveries in a row, mostly tapping what the bot
        offered, with odd input in between — so odd input also arrives deep inside the flows."""
        self.stats["walks"] += 1
        first = None
        if fdp.ConsumeBool():
            self.seq += 1
            user = f"U{self.seq:032x}"  # someone new: the flow starts from its beginning
            first = self.pick(fdp, ENTRY_WORDS)
        else:
            user = self.pick(fdp, USERS)
        findings: list[Finding] = []
        for i in range(fdp.ConsumeIntInRange(2, 14)):
            self.current_contents = {}
            if i == 0 and first is not None:
                ev = self._base_event("message", user)
                ev["message"] = {"type": "text", "id": self._id(), "text": first, "quoteToken": "q"}
            else:
                ev = self.event(fdp, user=user, offer_pct=85)
            body = self.serialize(fdp, {"destination": line_samples.BOT_USER_ID, "events": [ev]})
            findings += self.send(body, None, "413" if len(body) > MAX_BODY else "200")
            if fdp.remaining_bytes() == 0:
                break
        return findings

    def send(self, body: bytes, signature: str | None, expect: str) -> list[Finding]:
        """Deliver one body, process what it stored, and check everything."""
        from sqlalchemy import text as sql

        if signature is None:
            signature = sign(body)
        with self.services.db.engine.connect() as c:
            before = c.execute(sql("select coalesce(max(id), 0) from webhook_events")).scalar()
        ids = re.findall(rb'"webhookEventId": ?"([^"]{1,64})"', body[:20000])
        self.history.append({"body": base64.b64encode(body).decode(), "signature": signature,
                             "event_ids": [i.decode("utf-8", "replace") for i in ids],
                             "contents": {k: [base64.b64encode(v[0]).decode(), v[1]]
                                          for k, v in self.current_contents.items()}})
        self.capture.records.clear()
        t0 = time.perf_counter()
        findings = self.check(body, signature, expect, before)
        elapsed = time.perf_counter() - t0
        self.stats["deliveries"] += 1
        if elapsed > SLOW_S:
            findings.append(Finding(f"slow input (> {SLOW_S:g} s)", f"{elapsed:.1f} s; body of {len(body)} bytes"))
        if len(self.slowest) < 5 or elapsed > self.slowest[-1][0]:
            self.slowest = sorted([*self.slowest, (elapsed, f"{len(body)} bytes, {expect}")], reverse=True)[:5]
        return findings

    def check(self, body: bytes, signature: str, expect: str, before: int) -> list[Finding]:
        from sqlalchemy import text as sql

        findings: list[Finding] = []
        resp = self.client.post("/callback", data=body, headers={"X-Line-Signature": signature,
                                                                 "Content-Type": "application/json"})
        status = resp.status_code
        self.statuses[status] += 1
        webhook_tb = next((r[3] for r in self.capture.records if r[3]), None)
        if status not in (200, 400, 413):
            findings.append(Finding(f"webhook answered {status}", resp.get_data(as_text=True)[:200], webhook_tb))
        elif expect in ("200", "400", "413") and str(status) != expect:
            findings.append(Finding(f"webhook answered {status}, expected {expect}",
                                    resp.get_data(as_text=True)[:200]))
        self.services.processor.drain()
        findings += self.harvest()
        with self.services.db.engine.connect() as c:
            rows = c.execute(sql("select id, status, attempts, error, event_type from webhook_events where id > :b"),
                             {"b": before}).all()
        self.stats["events stored"] += len(rows)
        with self.services.db.engine.connect() as c:
            self.states.update(f"{conv}.{state}" for conv, state in
                               c.execute(sql("select conversation, state from conversation_states")).all())
        raised = {r[2]: r[3] for r in self.capture.records if r[2] in RAISED}
        for name, level, msg, _tb, _row in self.capture.records:
            self.logged[f"{level.lower()} {name}: {msg}"] += 1
        for _name, _level, msg, tb, row in self.capture.records:
            if msg in RAISED:
                where = f"event row {row} ({'this delivery' if row is None or row > before else 'an earlier one'})"
                findings.append(Finding(RAISED[msg], f"{msg}: {where}", tb))
        for rid, st, attempts, error, etype in rows:
            if (attempts or st == "failed") and "event handling failed" not in raised:
                findings.append(Finding("event counted as failed", f"row {rid} {etype}: {error}"))
            elif st == "pending" and not attempts:
                findings.append(Finding("event left pending after drain", f"row {rid} {etype}"))
            if st == "done":
                self.stats["events processed"] += 1
        if self.stats["deliveries"] % HEALTH_EVERY == 0:
            findings += self.healthy()
        return findings

    def healthy(self) -> list[Finding]:
        """``/healthz`` answers 200, and a person nobody fuzzes still gets the menu when they ask for it."""
        found = []
        self.stats["health checks"] += 1
        health = self.client.get("/healthz")
        if health.status_code != 200:
            found.append(Finding("healthz not 200", health.get_data(as_text=True)[:300]))
        ev = self._base_event("message", CANARY)
        ev["message"] = {"type": "text", "id": self._id(), "text": "เมนู", "quoteToken": "q"}
        body = json.dumps({"destination": line_samples.BOT_USER_ID, "events": [ev]}, ensure_ascii=False).encode()
        status = self.post(body, sign(body))
        self.services.processor.drain()
        with self.fake.lock:
            replied = any(r.path == "/v2/bot/message/reply" and r.status == 200
                          and json.loads(r.body).get("replyToken") == ev["replyToken"] for r in self.fake.requests)
        self.harvest()
        if status != 200 or not replied:
            found.append(Finding("canary not answered", f"webhook {status}, reply sent: {replied}"))
        return found

    # -- findings and counters ------------------------------------------------------------------------------

    def record(self, finding: Finding, stop: bool) -> None:
        sig = finding.signature()
        entry = self.findings.get(sig)
        if entry is not None:
            entry["count"] += 1
            return
        fid = hashlib.sha256(sig.encode()).hexdigest()[:12]
        entry = {"id": fid, "signature": sig, "kind": finding.kind, "detail": finding.detail,
                 "traceback": finding.tb, "count": 1, "at_input": self.stats["inputs"],
                 "found_after_s": round(time.time() - self.started, 1), "delivery": self.history[-1],
                 "history": list(self.history)}
        self.findings[sig] = entry
        (WORK / "findings").mkdir(parents=True, exist_ok=True)
        write_json(WORK / "findings" / f"{fid}.json", entry)
        print(f"\n== FINDING {fid}: {sig}\n   {finding.detail[:300]}\n{finding.tb or ''}", file=sys.stderr, flush=True)
        self.write_stats()
        if stop:
            raise AssertionError(f"{sig}: {finding.detail}\n{finding.tb or ''}")

    def write_stats(self) -> None:
        self._last_stats = time.time()
        out = {
            "started": datetime.fromtimestamp(self.started).isoformat(timespec="seconds"),
            "seconds": round(time.time() - self.started, 1),
            **self.stats,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "event types sent (top 20)": dict(self.event_types.most_common(20)),
            "logged (warning and above)": dict(self.logged.most_common(30)),
            "slowest inputs s": [[round(t, 3), what] for t, what in self.slowest],
            "conversation states reached": sorted(self.states),
            "rows": self.rows(),
            "findings": [{k: f[k] for k in ("id", "signature", "detail", "count", "at_input")}
                         for f in self.findings.values()],
            "not instrumented": NOT_INSTRUMENTED,
        }
        WORK.mkdir(exist_ok=True)
        write_json(WORK / "stats.json", out)

    def rows(self) -> dict[str, int]:
        """How far the flows got: what the handlers wrote."""
        from sqlalchemy import text as sql

        out = {}
        with self.services.db.engine.connect() as c:
            for table in ("complaints", "complaint_evidence", "complaint_events", "receipt_attempts", "gift_reports",
                          "unanswered_questions", "survey_answered", "survey_asked", "link_clicks", "code_attempts",
                          "line_users", "line_groups", "deliveries", "outbox"):
                out[table] = c.execute(sql(f"select count(*) from {table}")).scalar()  # noqa: S608 - fixed names
            for status, n in c.execute(sql("select status, count(*) from webhook_events group by status")).all():
                out[f"webhook_events {status}"] = n
            out["staff_members enrolled"] = c.execute(
                sql("select count(*) from staff_members where line_user_id is not null")).scalar()
        return out

    @property
    def templates(self) -> list[tuple[str, dict]]:
        if not hasattr(self, "_templates"):
            self._templates = line_samples.sample_events(USERS[2], group_id=GROUP, room_id=ROOM)
        return self._templates


# -- entry points -----------------------------------------------------------------------------------------


def replay(path: Path) -> int:
    """Feed a finding's deliveries (its history, ending with the one that failed) to a fresh app."""
    entry = json.loads(path.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="itabot-fuzz-") as tmp:
        h = Harness(Path(tmp))
        found = []
        for i, d in enumerate(entry["history"]):
            for mid, (b64, ctype) in d.get("contents", {}).items():
                h.fake.contents[mid] = (base64.b64decode(b64), ctype)
            body = base64.b64decode(d["body"])
            with h.services.db.engine.connect() as c:
                from sqlalchemy import text as sql

                before = c.execute(sql("select coalesce(max(id), 0) from webhook_events")).scalar()
            h.capture.records.clear()
            for f in h.check(body, d["signature"], "any", before):
                found.append(f)
                print(f"delivery {i}: {f.signature()}\n  {f.detail[:300]}\n{f.tb or ''}")
        print(f"replayed {len(entry['history'])} deliveries: {len(found)} findings")
        return 1 if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     add_help=False)
    parser.add_argument("--replay", type=Path)
    parser.add_argument("--stop-on-finding", action="store_true")
    parser.add_argument("--help", action="store_true")
    ours, rest = parser.parse_known_args()
    if ours.help:
        parser.print_help()
        print("\nlibFuzzer flags (e.g. -max_total_time=300, -runs=N, -seed=1) are passed through.")
        return
    if ours.replay:
        sys.exit(replay(ours.replay))
    WORK.mkdir(exist_ok=True)
    if not any(not a.startswith("-") for a in rest):  # no corpus directory given
        (WORK / "corpus").mkdir(exist_ok=True)
        rest += [str(WORK / "corpus"), str(HERE / "corpus")]
    if not any(a.startswith("-artifact_prefix") for a in rest):
        rest.append(f"-artifact_prefix={WORK}/")
    if not any(a.startswith("-timeout") for a in rest):
        rest.append("-timeout=600")
    if not any(a.startswith("-max_len") for a in rest):
        rest.append("-max_len=4096")
    limit = next((float(a.split("=", 1)[1]) for a in rest if a.startswith("-max_total_time=")), None)

    tmp = WORK / "app"  # the database of this run (replaced by the next run; libFuzzer never cleans up)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    harness = Harness(tmp)
    print(f"fuzz: app on {tmp}; {len(harness.keywords)} keywords, {len(harness.actions)} postback actions; "
          f"not instrumented: {NOT_INSTRUMENTED or 'none'}", file=sys.stderr, flush=True)

    def test_one_input(data: bytes) -> None:
        for finding in harness.one(data):
            harness.record(finding, ours.stop_on_finding)
        now = time.time()
        # libFuzzer ends the process without atexit: keep the counters current, and at the very end
        # of a timed run write them after every input.
        if now - harness._last_stats > 5 or (limit is not None and now - started > limit - 3):
            harness.write_stats()

    started = time.time()
    atheris.Setup([sys.argv[0], *rest], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
