"""The usual Python alternative to a durable accept: FastAPI that pushes each write to Redis.

`POST /orders` reads the body, `LPUSH`es a JSON record with a fresh id onto the Redis list
`orders` (redis.asyncio, hiredis parser) and answers 202 with the id. `GET /healthz` answers
200 once Redis answers PING. Served by uvicorn, one worker, uvloop and httptools, access log
off. How durable an acknowledged write is depends entirely on the Redis server's settings
(`appendonly`, `appendfsync`), not on this app.

Run: `python -m bench.fastapi_enqueue --port N --redis redis://127.0.0.1:PORT/0`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request, Response
from redis import asyncio as aioredis
from redis.utils import HIREDIS_AVAILABLE

QUEUE = "orders"


def create_app(redis_url: str) -> FastAPI:
    client: aioredis.Redis = aioredis.Redis.from_url(redis_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> Response:
        ok = bool(await client.ping())
        return Response(status_code=200 if ok else 503)

    @app.post("/orders", status_code=202)
    async def orders(request: Request) -> Response:
        body = await request.body()
        order_id = uuid.uuid4().hex
        record = {
            "id": order_id,
            "received_at": time.time(),
            "content_type": request.headers.get("content-type"),
            "body": body.decode("utf-8", errors="replace"),
        }
        await client.lpush(QUEUE, json.dumps(record))
        answer = json.dumps({"id": order_id, "status": "queued"})
        return Response(answer, status_code=202, media_type="application/json")

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fastapi_enqueue",
        description="FastAPI app that answers POST /orders with 202 after an LPUSH to Redis.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True, help="redis://HOST:PORT/DB")
    args = parser.parse_args(argv)
    if not HIREDIS_AVAILABLE:
        print("error: hiredis is not installed; the baseline needs it", file=sys.stderr)
        return 1
    uvicorn.run(
        create_app(args.redis),
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
