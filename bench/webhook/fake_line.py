"""A fast fake of LINE's Messaging API for the webhook bench (aiohttp, one process).

* ``POST /v2/bot/message/reply`` answers 200 ``{"sentMessages": [{"id", "quoteToken"}, ...]}``
  (one per message: line-bot-sdk 3.x rejects an empty list, min_items=1) and records
  (replyToken, arrival time.time(), number of messages);
* any other path answers 200 ``{}`` (counted per path);
* ``GET /_records`` returns what was recorded, ``POST /_reset`` forgets it,
  ``GET /_ping`` is for readiness.

Arrival times use ``time.time()`` so the bench (another process) can compare them with its
own send times. Run: ``python bench/webhook/fake_line.py --port 8099``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

from aiohttp import web

EMPTY_BODY = b"{}"


def build_app(latency_ms: float = 0.0) -> web.Application:
    records: list[tuple[str, float, int]] = []
    other: Counter[str] = Counter()
    bad = [0]
    seq = [10**17]

    async def reply(request: web.Request) -> web.Response:
        raw = await request.read()
        now = time.time()
        if latency_ms:  # LINE's servers are a network round trip away, not on this machine
            await asyncio.sleep(latency_ms / 1000)
        try:
            body = json.loads(raw)
            token = body["replyToken"]
            n = len(body.get("messages") or [])
        except (ValueError, KeyError, TypeError):
            bad[0] += 1
            return web.Response(status=400, body=b'{"message":"bad request"}', content_type="application/json")
        records.append((token, now, n))
        seq[0] += 1
        sent = ",".join(f'{{"id":"{seq[0]}{k}","quoteToken":"q{seq[0]}{k}"}}' for k in range(max(n, 1)))
        return web.Response(body=f'{{"sentMessages":[{sent}]}}'.encode(), content_type="application/json")

    async def get_records(_request: web.Request) -> web.Response:
        return web.json_response({"replies": records, "other": dict(other), "bad": bad[0]})

    async def reset(_request: web.Request) -> web.Response:
        records.clear()
        other.clear()
        bad[0] = 0
        return web.json_response({})

    async def ping(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def anything(request: web.Request) -> web.Response:
        await request.read()
        other[f"{request.method} {request.path}"] += 1
        return web.Response(body=EMPTY_BODY, content_type="application/json")

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/v2/bot/message/reply", reply)
    app.router.add_get("/_records", get_records)
    app.router.add_post("/_reset", reset)
    app.router.add_get("/_ping", ping)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="delay before answering a reply")
    args = ap.parse_args()
    try:
        import uvloop  # type: ignore

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(build_app(args.latency_ms), host=args.host, port=args.port, access_log=None, print=None, backlog=1024)


if __name__ == "__main__":
    main()
