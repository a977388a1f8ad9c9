"""The LINE gateway: the only code that talks to LINE.

Built on the official ``line-bot-sdk`` v3 (``MessagingApi``, ``MessagingApiBlob``). One path
for every send: reply first and fall back to push when the reply token is spent; every
push-type call carries an ``X-Line-Retry-Key`` that is kept across its retries; 429 and 5xx
are retried with backoff honouring ``Retry-After``; a 409 on a retry key means LINE already
accepted the request, so it counts as delivered. Each send is reported to ``recorder`` so the
quota can be accounted for without keeping who received what.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from linebot.v3.messaging import (
    ApiClient,
    Configuration,
    MessagingApi,
    MessagingApiBlob,
    NarrowcastRequest,
    RichMenuRequest,
    ShowLoadingAnimationRequest,
)
from linebot.v3.messaging.exceptions import ApiException

log = logging.getLogger("itabot.gateway")

MAX_MESSAGES_PER_REQUEST = 5
MULTICAST_MAX = 500
RETRYABLE = {429, 500, 502, 503, 504}

Recorder = Callable[..., None]


class LineError(Exception):
    """LINE refused a request (after retries, or for a reason retrying cannot fix)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"LINE API {status}: {message}")
        self.status = status
        self.message = message


class InvalidReplyToken(LineError):
    """The reply token expired or was used already: push instead."""


class ContentTooLarge(Exception):
    """A user's file is larger than the caller allows; nothing was kept."""


@dataclass(frozen=True)
class SendResult:
    kind: str
    status: str  # "sent" | "duplicate"
    http_status: int
    retry_key: str | None = None


def new_retry_key() -> str:
    return str(uuid.uuid4())


def as_dicts(messages: Iterable[Any]) -> list[dict]:
    """Accept SDK message models or plain dicts (as stored in the outbox)."""
    out = [m if isinstance(m, dict) else m.to_dict() for m in messages]
    if not 1 <= len(out) <= MAX_MESSAGES_PER_REQUEST:
        raise ValueError(f"LINE takes 1 to {MAX_MESSAGES_PER_REQUEST} messages per request, got {len(out)}")
    return out


def _error_message(exc: ApiException) -> str:
    body = exc.body or b""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        import json

        return str(json.loads(body).get("message", ""))[:200]
    except (ValueError, AttributeError):
        return str(body)[:200]


def _retry_after(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class LineGateway:
    """Sends to one office's LINE channel."""

    def __init__(
        self,
        access_token: str,
        *,
        api_base_url: str,
        data_api_base_url: str,
        recorder: Recorder | None = None,
        pool_manager: Any = None,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = (3.0, 15.0),
        connections: int = 16,
    ) -> None:
        def config(host: str) -> Configuration:
            c = Configuration(host=host, access_token=access_token)
            # One kept-alive connection per sending thread: the SDK's default (5 per CPU) made
            # the 16 sender threads open and discard connections — a TLS handshake each, at LINE.
            c.connection_pool_maxsize = max(connections, c.connection_pool_maxsize)
            return c

        self._client = ApiClient(config(api_base_url))
        self._blob_client = ApiClient(config(data_api_base_url))
        if pool_manager is not None:  # the simulator routes requests into the app itself
            self._client.rest_client.pool_manager = pool_manager
            self._blob_client.rest_client.pool_manager = pool_manager
        self.api = MessagingApi(self._client)
        self.blob = MessagingApiBlob(self._blob_client)
        self.recorder = recorder
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.timeout = timeout

    # -- the retry loop -------------------------------------------------------------------

    def _call(
        self, fn: Callable[..., Any], *args: Any, retry_key: str | None = None, **kwargs: Any
    ) -> tuple[Any, int, bool]:
        """Call an SDK method (or ``_post_messages``); return (response, status, duplicate)."""
        kwargs.setdefault("_request_timeout", self.timeout)
        if retry_key is not None:
            kwargs["x_line_retry_key"] = retry_key
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = fn(*args, **kwargs)
                return resp, getattr(resp, "status_code", None) or resp.status, False
            except ApiException as exc:
                status = int(exc.status or 0)
                if status == 409 and retry_key is not None:
                    # The same retry key was accepted before: LINE sent it already.
                    return None, 409, True
                if status in RETRYABLE and attempt < self.max_attempts:
                    self.sleep(self._delay(attempt, _retry_after(exc)))
                    continue
                message = _error_message(exc)
                if status == 400 and "reply token" in message.lower():
                    raise InvalidReplyToken(status, message) from None
                raise LineError(status, message) from None
            except Exception as exc:  # network errors: urllib3 MaxRetryError, timeouts
                if attempt < self.max_attempts:
                    log.warning("line request failed, retrying", extra={"error": exc.__class__.__name__})
                    self.sleep(self._delay(attempt, None))
                    continue
                raise LineError(0, exc.__class__.__name__) from None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        base = self.backoff_base * (2 ** (attempt - 1))
        return min(self.backoff_max, base * (0.5 + random.random() / 2))  # nosec B311 # retry jitter, not a secret

    def _post_messages(self, path: str, body: dict, *, x_line_retry_key: str | None = None, **kwargs: Any):
        """POST a message request through the SDK's HTTP client, skipping its model round trip.

        The messages were built as SDK models by the handlers and serialised once (to the
        outbox); re-parsing them into models and back for every send cost more CPU than the rest
        of the send. Authentication, connection pool, timeouts and error classes are the SDK's.
        """
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self._client.configuration.access_token}",
            "User-Agent": self._client.user_agent,
        }
        if x_line_retry_key is not None:  # named like the SDK's own parameter, so _call treats both alike
            headers["X-Line-Retry-Key"] = x_line_retry_key
        return self._client.rest_client.request(
            "POST", self._client.configuration.host + path, headers=headers, body=body,
            _request_timeout=kwargs.get("_request_timeout", self.timeout),
        )

    def _record(self, kind: str, recipients: int, messages: int, result: SendResult) -> None:
        if self.recorder is not None:
            self.recorder(
                kind=kind,
                recipients=recipients,
                messages=messages,
                status=result.status,
                http_status=result.http_status,
                retry_key=result.retry_key,
            )

    # -- sends ----------------------------------------------------------------------------

    def reply(self, reply_token: str, messages: Sequence[Any]) -> SendResult:
        msgs = as_dicts(messages)
        _, status, _ = self._call(self._post_messages, "/v2/bot/message/reply",
                                  {"replyToken": reply_token, "messages": msgs})
        result = SendResult("reply", "sent", status)
        self._record("reply", 1, len(msgs), result)
        return result

    def push(self, to: str, messages: Sequence[Any], retry_key: str | None = None) -> SendResult:
        key = retry_key or new_retry_key()
        msgs = as_dicts(messages)
        _, status, dup = self._call(self._post_messages, "/v2/bot/message/push", {"to": to, "messages": msgs},
                                    retry_key=key)
        result = SendResult("push", "duplicate" if dup else "sent", status, key)
        self._record("push", 1, len(msgs), result)
        return result

    def reply_or_push(
        self, reply_token: str | None, to: str | None, messages: Sequence[Any], retry_key: str | None = None
    ) -> SendResult:
        """Replies are free; push only when the token is gone and we know who to push to."""
        if reply_token:
            try:
                return self.reply(reply_token, messages)
            except InvalidReplyToken:
                if not to:
                    raise
                log.info("reply token spent, falling back to push")
        if not to:  # nothing could ever deliver it: not retried (status 0 means a network error)
            raise LineError(-1, "no reply token and no recipient")
        return self.push(to, messages, retry_key=retry_key)

    def multicast(self, user_ids: Sequence[str], messages: Sequence[Any], retry_key: str | None = None) -> SendResult:
        """One multicast call (≤500 IDs). Callers that fan out keep one key per chunk."""
        if not 1 <= len(user_ids) <= MULTICAST_MAX:
            raise ValueError(f"multicast takes 1 to {MULTICAST_MAX} user IDs, got {len(user_ids)}")
        key = retry_key or new_retry_key()
        msgs = as_dicts(messages)
        _, status, dup = self._call(self._post_messages, "/v2/bot/message/multicast",
                                    {"to": list(user_ids), "messages": msgs}, retry_key=key)
        result = SendResult("multicast", "duplicate" if dup else "sent", status, key)
        self._record("multicast", len(user_ids), len(msgs), result)
        return result

    def broadcast(self, messages: Sequence[Any], retry_key: str | None = None) -> SendResult:
        key = retry_key or new_retry_key()
        msgs = as_dicts(messages)
        _, status, dup = self._call(self._post_messages, "/v2/bot/message/broadcast", {"messages": msgs},
                                    retry_key=key)
        result = SendResult("broadcast", "duplicate" if dup else "sent", status, key)
        self._record("broadcast", 0, len(msgs), result)
        return result

    def narrowcast(self, request: dict, retry_key: str | None = None) -> SendResult:
        key = retry_key or new_retry_key()
        body = NarrowcastRequest.from_dict({**request, "messages": as_dicts(request["messages"])})
        _, status, dup = self._call(self.api.narrowcast_with_http_info, body, retry_key=key)
        result = SendResult("narrowcast", "duplicate" if dup else "sent", status, key)
        self._record("narrowcast", 0, len(body.messages), result)
        return result

    # -- other calls ----------------------------------------------------------------------

    def get_content(self, message_id: str, max_bytes: int) -> tuple[bytes, str]:
        """Download what a user sent (image, video, file); LINE keeps it only for a while."""
        resp, _, _ = self._call(self.blob.get_message_content_with_http_info, message_id)
        headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
        content_type = headers.get("content-type")
        data = bytes(resp.data or b"")
        if len(data) > max_bytes:
            raise ContentTooLarge(f"more than {max_bytes} bytes")
        return data, content_type or "application/octet-stream"

    def show_loading(self, chat_id: str, seconds: int = 5) -> None:
        """The typing indicator; purely cosmetic, so failures are only logged."""
        seconds = max(5, min(60, seconds - seconds % 5 or 5))
        try:
            self._call(
                self.api.show_loading_animation_with_http_info,
                ShowLoadingAnimationRequest(chatId=chat_id, loadingSeconds=seconds),
            )
        except LineError as exc:
            log.info("loading animation refused", extra={"status": exc.status})

    def link_rich_menu(self, user_id: str, rich_menu_id: str) -> None:
        self._call(self.api.link_rich_menu_id_to_user_with_http_info, user_id, rich_menu_id)

    def create_rich_menu(self, menu: dict) -> str:
        resp, _, _ = self._call(self.api.create_rich_menu_with_http_info, RichMenuRequest.from_dict(menu))
        return resp.data.rich_menu_id

    def upload_rich_menu_image(self, rich_menu_id: str, png: bytes) -> None:
        self._call(
            self.blob.set_rich_menu_image_with_http_info,
            rich_menu_id,
            body=png,
            _headers={"Content-Type": "image/png"},
        )

    def set_default_rich_menu(self, rich_menu_id: str) -> None:
        self._call(self.api.set_default_rich_menu_with_http_info, rich_menu_id)

    def delete_rich_menu(self, rich_menu_id: str) -> None:
        self._call(self.api.delete_rich_menu_with_http_info, rich_menu_id)

    def followers(self, start: str | None = None, limit: int = 1000) -> tuple[list[str], str | None]:
        """One page of follower IDs and the token of the next (verified/premium accounts only)."""
        kwargs = {"limit": limit}
        if start:
            kwargs["start"] = start
        resp, _, _ = self._call(self.api.get_followers_with_http_info, **kwargs)
        return list(resp.data.user_ids or []), resp.data.next

    def member_count(self, chat_id: str, kind: str = "group") -> int:
        """How many people are in a group or room: what a push to it costs in quota."""
        call = self.api.get_room_member_count_with_http_info if kind == "room" else \
            self.api.get_group_member_count_with_http_info
        resp, _, _ = self._call(call, chat_id)
        return int(resp.data.count)

    def quota(self) -> dict:
        quota, _, _ = self._call(self.api.get_message_quota_with_http_info)
        used, _, _ = self._call(self.api.get_message_quota_consumption_with_http_info)
        return {"type": quota.data.type, "limit": quota.data.value, "used": used.data.total_usage}

    def close(self) -> None:
        for c in (self._client, self._blob_client):
            with contextlib.suppress(AttributeError):
                c.rest_client.pool_manager.clear()
