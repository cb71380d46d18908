"""The demo origin: a small shop API with an in-memory table per resource and the
latency of a real service (a few milliseconds, more for writes and reports)."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

from aiohttp import web

COLLECTIONS = ("items", "orders", "users")


class ShopOrigin:
    def __init__(self, latency: float = 0.005, seed: int | None = None) -> None:
        self.latency = latency
        self.rng = random.Random(seed)
        self.tables: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in COLLECTIONS}
        self.ids = itertools.count(1)
        for n in range(1, 6):
            self.tables["items"][n] = {"id": n, "name": f"item {n}", "price": 10 * n}
        self.ids = itertools.count(6)

    async def _think(self, factor: float = 1.0) -> None:
        # Exponential-ish service time around the mean, like a real backend.
        await asyncio.sleep(self.rng.expovariate(1 / (self.latency * factor)))

    def _table(self, request: web.Request) -> dict[int, dict[str, Any]]:
        name = request.match_info["collection"]
        if name not in self.tables:
            raise web.HTTPNotFound(text=f"no collection {name}")
        return self.tables[name]

    def _id(self, request: web.Request) -> int:
        try:
            return int(request.match_info["id"])
        except ValueError:
            raise web.HTTPNotFound(text="ids are numbers") from None

    async def list(self, request: web.Request) -> web.Response:
        await self._think()
        return web.json_response(list(self._table(request).values()))

    async def get(self, request: web.Request) -> web.Response:
        await self._think()
        row = self._table(request).get(self._id(request))
        if row is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(row)

    async def create(self, request: web.Request) -> web.Response:
        await self._think(3)
        body = await request.json()
        row = {**body, "id": next(self.ids)}
        self._table(request)[row["id"]] = row
        location = f"/{request.match_info['collection']}/{row['id']}"
        return web.json_response(row, status=201, headers={"Location": location})

    async def replace(self, request: web.Request) -> web.Response:
        await self._think(3)
        row = {**(await request.json()), "id": self._id(request)}
        self._table(request)[row["id"]] = row
        return web.json_response(row)

    async def delete(self, request: web.Request) -> web.Response:
        await self._think(2)
        self._table(request).pop(self._id(request), None)
        return web.Response(status=204)

    async def report(self, request: web.Request) -> web.Response:
        await self._think(20)
        return web.json_response({c: len(t) for c, t in self.tables.items()})

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/reports/summary", self.report),
                web.get("/{collection}", self.list),
                web.post("/{collection}", self.create),
                web.get("/{collection}/{id}", self.get),
                web.put("/{collection}/{id}", self.replace),
                web.delete("/{collection}/{id}", self.delete),
            ]
        )
        return app


async def start_origin(host: str, port: int, latency: float = 0.005) -> web.AppRunner:
    runner = web.AppRunner(ShopOrigin(latency).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
