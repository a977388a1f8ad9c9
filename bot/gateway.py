"""The LINE gateway: the only code that talks to LINE.

Built on the official ``line-bot-sdk`` v3 (``MessagingApi``, ``MessagingApiBlob``). One path
for every send: reply first and fall back to push when the reply token is spent; every
push-type call carries an ``X-Line-Retry-Key`` that is kept across its retries; 429 and 5xx
are retried with backoff honouring ``Retry-After``; a 409 on a retry key means LINE already
accepted the request, so it counts as delivered. Each send is reported to ``recorder`` so the
quota can be accounted for without keeping who received what.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from linebot.v3.messaging import (
    ApiClient,
    AsyncApiClient,
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


# A send's requests, apart from how they are made (see LineGateway._pushing).
Steps = Generator[tuple[str, dict, str | None], tuple[int, bool], SendResult]


def _carry_out(steps: Steps, post: Callable[[str, dict, str | None], tuple[int, bool]]) -> SendResult:
    """Make a send's requests (``LineGateway._pushing`` and the like) with a blocking ``post``."""
    try:
        request = next(steps)
        while True:
            try:
                answer = post(*request)
            except InvalidReplyToken as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(answer)
    except StopIteration as done:
        return done.value


async def _carry_out_async(steps: Steps,
                           post: Callable[[str, dict, str | None], Awaitable[tuple[int, bool]]]) -> SendResult:
    """``_carry_out`` with a ``post`` to await."""
    try:
        request = next(steps)
        while True:
            try:
                answer = await post(*request)
            except InvalidReplyToken as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(answer)
    except StopIteration as done:
        return done.value


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
        self._routed = pool_manager is not None  # the simulator routes requests into the app itself
        if self._routed:
            self._client.rest_client.pool_manager = pool_manager
            self._blob_client.rest_client.pool_manager = pool_manager
        self._async_clients: dict[asyncio.AbstractEventLoop, AsyncApiClient] = {}
        self.api = MessagingApi(self._client)
        self.blob = MessagingApiBlob(self._blob_client)
        self.recorder = recorder
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.timeout = timeout
        self._async_timeout = aiohttp.ClientTimeout(sock_connect=timeout[0], sock_read=timeout[1])

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
            except Exception as exc:
                delay = self._after_failure(exc, attempt, retry_key)
                if delay is None:
                    return None, 409, True
                self.sleep(delay)

    def _after_failure(self, exc: Exception, attempt: int, retry_key: str | None) -> float | None:
        """A request failed: the seconds to wait before trying again, or None when a 409 on the retry key says
        LINE accepted it before. Raises ``LineError`` (or ``InvalidReplyToken``) when it is given up."""
        if isinstance(exc, ApiException):
            status = int(exc.status or 0)
            if status == 409 and retry_key is not None:
                # The same retry key was accepted before: LINE sent it already.
                return None
            if status in RETRYABLE and attempt < self.max_attempts:
                return self._delay(attempt, _retry_after(exc))
            message = _error_message(exc)
            if status == 400 and "reply token" in message.lower():
                raise InvalidReplyToken(status, message) from None
            raise LineError(status, message) from None
        # network errors: urllib3 MaxRetryError, aiohttp ClientError, timeouts
        if attempt < self.max_attempts:
            log.warning("line request failed, retrying", extra={"error": exc.__class__.__name__})
            return self._delay(attempt, None)
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
        # x_line_retry_key: named like the SDK's own parameter, so _call treats both alike
        return self._client.rest_client.request(
            "POST", self._client.configuration.host + path, headers=self._headers(x_line_retry_key), body=body,
            _request_timeout=kwargs.get("_request_timeout", self.timeout),
        )

    def _headers(self, retry_key: str | None) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self._client.configuration.access_token}",
            "User-Agent": self._client.user_agent,
        }
        if retry_key is not None:
            headers["X-Line-Retry-Key"] = retry_key
        return headers

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

    def _sent(self, kind: str, recipients: int, messages: int, status: int, duplicate: bool,
              retry_key: str | None) -> SendResult:
        result = SendResult(kind, "duplicate" if duplicate else "sent", status, retry_key)
        self._record(kind, recipients, messages, result)
        return result

    def push(self, to: str, messages: Sequence[Any], retry_key: str | None = None) -> SendResult:
        return _carry_out(self._pushing(to, messages, retry_key), self._post)

    def reply_or_push(
        self, reply_token: str | None, to: str | None, messages: Sequence[Any], retry_key: str | None = None
    ) -> SendResult:
        """Replies are free; push only when the token is gone and we know who to push to."""
        return _carry_out(self._replying_or_pushing(reply_token, to, messages, retry_key), self._post)

    async def reply_or_push_async(
        self, reply_token: str | None, to: str | None, messages: Sequence[Any], retry_key: str | None = None
    ) -> SendResult:
        """``reply_or_push`` for an asyncio event loop: the same requests, retries, fallback and records, sent
        through the SDK's aiohttp client (``AsyncApiClient``). One loop keeps many sends in flight on one
        thread; a blocking send on a thread of its own cost about five times the CPU (bench/README.md).
        The simulator's routing into the app is a urllib3 pool manager: for a simulated office the blocking
        send runs on a thread."""
        if self._routed:
            return await asyncio.to_thread(self.reply_or_push, reply_token, to, messages, retry_key)
        return await _carry_out_async(self._replying_or_pushing(reply_token, to, messages, retry_key), self._apost)

    # The requests of a send, apart from how they are made: each step yields (path, body, retry key) and is
    # sent back (status, duplicate), or has InvalidReplyToken thrown in; it returns the SendResult. The blocking
    # path (``_carry_out`` with ``_post``) and the event loop's (``_carry_out_async`` with ``_apost``) share
    # them, so reply-then-push is decided in one place.

    def _pushing(self, to: str, messages: Sequence[Any], retry_key: str | None) -> Steps:
        key = retry_key or new_retry_key()
        msgs = as_dicts(messages)
        status, dup = yield "/v2/bot/message/push", {"to": to, "messages": msgs}, key
        return self._sent("push", 1, len(msgs), status, dup, key)

    def _replying_or_pushing(self, reply_token: str | None, to: str | None, messages: Sequence[Any],
                             retry_key: str | None) -> Steps:
        if reply_token:
            msgs = as_dicts(messages)
            try:
                status, _ = yield "/v2/bot/message/reply", {"replyToken": reply_token, "messages": msgs}, None
                return self._sent("reply", 1, len(msgs), status, False, None)
            except InvalidReplyToken:
                if not to:
                    raise
                log.info("reply token spent, falling back to push")
        if not to:  # nothing could ever deliver it: not retried (status 0 means a network error)
            raise LineError(-1, "no reply token and no recipient")
        return (yield from self._pushing(to, messages, retry_key))

    def _post(self, path: str, body: dict, retry_key: str | None) -> tuple[int, bool]:
        _, status, dup = self._call(self._post_messages, path, body, retry_key=retry_key)
        return status, dup

    async def _apost(self, path: str, body: dict, retry_key: str | None) -> tuple[int, bool]:
        """``_post`` on the running loop's ``AsyncApiClient``, with ``_call``'s retries."""
        client = await self._async_client()
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await client.rest_client.request(
                    "POST", client.configuration.host + path, headers=self._headers(retry_key), body=body,
                    _request_timeout=self._async_timeout,
                )
                return resp.status, False
            except Exception as exc:
                delay = self._after_failure(exc, attempt, retry_key)
                if delay is None:
                    return 409, True
                if self.sleep is time.sleep:
                    await asyncio.sleep(delay)
                else:  # a test's stand-in
                    self.sleep(delay)

    async def _async_client(self) -> AsyncApiClient:
        """The running loop's client: aiohttp sessions belong to the loop they were made in.

        Its session is ours, not the SDK's: the SDK's reads proxy settings from the environment and
        ``~/.netrc`` on a thread for every request (``trust_env``), which cost more than the request itself.
        ``Configuration.proxy`` is honoured still, as on the blocking path."""
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = AsyncApiClient(self._client.configuration)
            cfg = client.configuration
            sdk_session = client.rest_client.pool_manager
            client.rest_client.pool_manager = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=cfg.connection_pool_maxsize,
                                               ssl=ssl.create_default_context(cafile=cfg.ssl_ca_cert)),
                trust_env=False,
            )
            self._async_clients[loop] = client  # before the await: the loop's other sends find it
            await sdk_session.close()  # it never connected
        return client

    async def aclose(self) -> None:
        """Close the running loop's client (its connections to LINE)."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

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
