"""A real CRUD origin on loopback, with an in-memory table per collection, run on its own
thread: what a cached API looks like from behind the gateway.

Routes (any collection name; ids are strings):
  GET    /{coll}                 the collection as a JSON list, sorted by id
  POST   /{coll}                 create from the JSON body: 201, Location: /{coll}/{id}
  GET    /{coll}/{id}            the item, or 404
  PUT    /{coll}/{id}            replace (or create) it: 200
  PATCH  /{coll}/{id}            merge the JSON body into it: 200, or 404
  DELETE /{coll}/{id}            remove it: 204, or 404
  GET    /{coll}/{id}/{sub}      a sub-collection (`/users/7/orders`); POST adds to it,
                                 and GET /{coll}/{id} counts its sub-items
  GET    /stream/{name}          a chunked, `no-store` answer whose body waits for
                                 `stream_gate` to open
Every GET answer has an ETag (the body's hash) and Last-Modified, honours If-None-Match
(304), and carries `Cache-Control` from `cache_control` (by collection). Reads are
counted per path in `reads`; writes wait for `write_gate` and item reads for `read_gate`
(both open by default).
What a test controls per request path: `extra_headers` are set on every answer to it
(a write's `Location`, a GET's `Vary` or own `Cache-Control`), and a GET of a path in
`failing` is answered with that status (counted as a read).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from aiohttp import web

from support.loopback import LoopbackServer
from support.origin import free_port


class Gate:
    """An open/closed gate that handlers on the origin's loop wait on."""

    def __init__(self, origin: CrudOrigin, is_open: bool = True) -> None:
        self.origin = origin
        self.is_open = is_open
        self._event: asyncio.Event | None = None

    def _ev(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
            if self.is_open:
                self._event.set()
        return self._event

    async def wait(self) -> None:
        await self._ev().wait()

    def _set(self, value: bool) -> None:
        self.is_open = value
        loop = self.origin.loop
        assert loop is not None
        ev = self._ev
        loop.call_soon_threadsafe(lambda: ev().set() if value else ev().clear())

    def open(self) -> None:
        self._set(True)

    def close(self) -> None:
        self._set(False)


@dataclass
class CrudOrigin(LoopbackServer):
    thread_name = "crud-origin"
    what = "CRUD origin"

    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    modified: dict[str, float] = field(default_factory=dict)
    cache_control: dict[str, str] = field(default_factory=dict)
    reads: Counter[str] = field(default_factory=Counter)
    not_modified: Counter[str] = field(default_factory=Counter)
    writes: list[tuple[str, str]] = field(default_factory=list)
    extra_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 100

    def __post_init__(self) -> None:
        self.write_gate = Gate(self)
        self.read_gate = Gate(self)
        self.stream_gate = Gate(self, is_open=False)

    def put(self, coll: str, item_id: str, value: Any) -> None:
        """Set a row directly, as another client of the origin would (no gateway)."""
        with self._lock:
            self.tables.setdefault(coll, {})[item_id] = value
            self._touch(coll, item_id)

    def reads_of(self, path: str) -> int:
        with self._lock:
            return self.reads[path]

    def _touch(self, coll: str, item_id: str | None = None) -> None:
        now = time.time()
        self.modified[coll] = now
        if item_id is not None:
            self.modified[f"{coll}/{item_id}"] = now

    def _answer(self, request: web.Request, value: Any, key: str, coll: str) -> web.Response:
        body = json.dumps(value, sort_keys=True).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(self.modified.get(key, 0.0), usegmt=True),
            "Content-Type": "application/json",
        }
        if coll in self.cache_control:
            headers["Cache-Control"] = self.cache_control[coll]
        if request.headers.get("If-None-Match") == etag:
            self.not_modified[request.path] += 1
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers)

    async def _collection(self, request: web.Request) -> web.Response:
        coll = request.match_info["coll"]
        if request.method == "GET":
            with self._lock:
                self.reads[request.path] += 1
                rows = self.tables.get(coll, {})
                value = [{"id": k, **v} for k, v in sorted(rows.items())]
            return self._answer(request, value, coll, coll)
        return await self._write(request, coll, None)

    async def _item(self, request: web.Request) -> web.Response:
        coll, item_id = request.match_info["coll"], request.match_info["id"]
        if request.method == "GET":
            await self.read_gate.wait()
            with self._lock:
                self.reads[request.path] += 1
                row = self.tables.get(coll, {}).get(item_id)
                subs = {
                    name.split("/", 2)[2]: len(rows)
                    for name, rows in self.tables.items()
                    if name.startswith(f"{coll}/{item_id}/")
                }
            if row is None:
                return web.json_response({"missing": item_id}, status=404)
            return self._answer(request, {"id": item_id, **row, **subs}, f"{coll}/{item_id}", coll)
        return await self._write(request, coll, item_id)

    async def _sub(self, request: web.Request) -> web.Response:
        m = request.match_info
        coll = f"{m['coll']}/{m['id']}/{m['sub']}"
        if request.method == "GET":
            with self._lock:
                self.reads[request.path] += 1
                value = [{"id": k, **v} for k, v in sorted(self.tables.get(coll, {}).items())]
            return self._answer(request, value, coll, m["coll"])
        return await self._write(request, coll, None)

    async def _write(self, request: web.Request, coll: str, item_id: str | None) -> web.Response:
        data = await request.json() if request.can_read_body else None
        await self.write_gate.wait()
        with self._lock:
            self.writes.append((request.method, request.path))
            rows = self.tables.setdefault(coll, {})
            if item_id is None:
                if request.method != "POST":
                    return web.Response(status=405)
                self._next_id += 1
                new_id = str(self._next_id)
                rows[new_id] = data or {}
                self._touch(coll, new_id)
                return web.json_response(
                    {"id": new_id, **rows[new_id]},
                    status=201,
                    headers={"Location": f"/{coll}/{new_id}"},
                )
            if request.method == "PUT":
                rows[item_id] = data or {}
            elif request.method == "PATCH":
                if item_id not in rows:
                    return web.Response(status=404)
                rows[item_id] = {**rows[item_id], **(data or {})}
            elif request.method == "DELETE":
                if rows.pop(item_id, None) is None:
                    return web.Response(status=404)
                self._touch(coll, item_id)
                return web.Response(status=204)
            else:
                return web.Response(status=405)
            self._touch(coll, item_id)
            return web.json_response({"id": item_id, **rows[item_id]})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.reads[request.path] += 1
        resp = web.StreamResponse(headers={"Cache-Control": "no-store"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b"first part;")
        await self.stream_gate.wait()
        await resp.write(b"last part")
        await resp.write_eof()
        return resp

    @web.middleware
    async def _per_path(self, request: web.Request, handler: Any) -> web.StreamResponse:
        failing = self.failing.get(request.path)
        if failing is not None and request.method == "GET":
            with self._lock:
                self.reads[request.path] += 1
            return web.Response(status=failing, text="origin failure")
        resp: web.StreamResponse = await handler(request)
        extra = self.extra_headers.get(request.path)
        if extra:
            resp.headers.update(extra)
        return resp

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._per_path])
        app.router.add_get("/stream/{name}", self._stream)
        app.router.add_route("*", "/{coll}", self._collection)
        app.router.add_route("*", "/{coll}/{id}", self._item)
        app.router.add_route("*", "/{coll}/{id}/{sub}", self._sub)
        return app

    def _bind(self) -> None:
        self.port = self.port or free_port()

    def stop(self) -> None:
        if self.loop and self._thread:
            self.stream_gate.open()
            self.write_gate.open()
        super().stop()
