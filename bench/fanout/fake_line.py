"""A fast fake LINE Messaging API for the fan-out bench (aiohttp, one process, 127.0.0.1 only).

* ``POST /v2/bot/message/multicast`` answers 200 ``{}`` and records its ``to`` list and retry key;
* ``POST /v2/bot/message/push`` answers 200 ``{"sentMessages": [...]}`` and records its ``to``;
* ``GET /v2/bot/message/quota`` → ``{"type": "none"}`` (no limit), ``.../quota/consumption`` → ``{"totalUsage": 0}``;
* ``GET /_stats`` gives calls per path, recipients delivered, distinct recipients, duplicates
  (recipient deliveries beyond the first) and repeated retry keys; ``POST /_reset`` forgets everything.

Run: ``python bench/fanout/fake_line.py --port 8098``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from aiohttp import web


def build_app() -> web.Application:
    st = {"calls": Counter(), "delivered": Counter(), "keys": Counter(), "bad": 0, "seq": 10**17}

    async def multicast(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        st["calls"]["multicast"] += 1
        st["delivered"].update(body["to"])
        st["keys"][request.headers.get("X-Line-Retry-Key", "")] += 1
        return web.Response(body=b"{}", content_type="application/json")

    async def push(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        st["calls"]["push"] += 1
        st["delivered"][body["to"]] += 1
        st["seq"] += 1
        n = max(1, len(body.get("messages") or []))
        sent = ",".join(f'{{"id":"{st["seq"]}{k}","quoteToken":"q{st["seq"]}{k}"}}' for k in range(n))
        return web.Response(body=f'{{"sentMessages":[{sent}]}}'.encode(), content_type="application/json")

    async def quota(_r: web.Request) -> web.Response:
        return web.json_response({"type": "none"})

    async def consumption(_r: web.Request) -> web.Response:
        return web.json_response({"totalUsage": 0})

    async def stats(_r: web.Request) -> web.Response:
        d = st["delivered"]
        keys = st["keys"]
        return web.json_response({
            "calls": dict(st["calls"]),
            "delivered": sum(d.values()),
            "distinct": len(d),
            "duplicates": sum(v - 1 for v in d.values() if v > 1),
            "repeated_retry_keys": sum(v - 1 for k, v in keys.items() if v > 1 and k),
            "calls_without_retry_key": keys.get("", 0),
            "other": st["bad"],
        })

    async def reset(_r: web.Request) -> web.Response:
        for k in ("calls", "delivered", "keys"):
            st[k].clear()
        st["bad"] = 0
        return web.json_response({})

    async def anything(request: web.Request) -> web.Response:
        await request.read()
        st["bad"] += 1
        return web.Response(body=b"{}", content_type="application/json")

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/v2/bot/message/multicast", multicast)
    app.router.add_post("/v2/bot/message/push", push)
    app.router.add_get("/v2/bot/message/quota", quota)
    app.router.add_get("/v2/bot/message/quota/consumption", consumption)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_get("/_ping", quota)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8098)
    args = ap.parse_args()
    web.run_app(build_app(), host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=1024)


if __name__ == "__main__":
    main()
