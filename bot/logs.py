"""Structured (JSON) logs with a request id, and nothing personal in them.

Log calls pass only counts, ids of our own rows, types and error class names. Message text,
LINE user IDs and secrets never reach a log record in our code; as a second guard, the
formatter drops any ``extra`` field whose name suggests such content.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_FORBIDDEN = ("text", "user", "secret", "token", "password", "payload", "body")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if any(word in key.lower() for word in _FORBIDDEN):
                continue
            out[key] = value if isinstance(value, (int, float, bool, type(None))) else str(value)[:200]
        if record.exc_info and record.exc_info[0] is not None:
            # The exception class and where it happened, not its message (it may quote data).
            out["error"] = record.exc_info[0].__name__
            out["where"] = _where(record.exc_info[2])
        return json.dumps(out, ensure_ascii=False)


def _where(tb) -> str:
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return ""
    code = last.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 2)[-1]}:{last.tb_lineno}:{code.co_name}"


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(getattr(h, "_itabot", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._itabot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that would log request bodies or URLs with user IDs at debug level.
    for name in ("urllib3", "linebot", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
