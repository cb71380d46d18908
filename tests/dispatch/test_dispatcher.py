"""The dispatcher against a real origin (aiohttp, in this loop) and a real store: the next
delivery starts while the last outcome is still being recorded, lanes keep their order,
and claimed requests not yet sent go back to the queue on stop."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from forebay.dispatch.dispatcher import Dispatcher
from forebay.dispatch.limits import FixedLimit
from forebay.dispatch.model import AcceptedRequest, Finish
from forebay.policy.backoff import RetryPolicy
from forebay.policy.request_states import State
from forebay.settings import AsyncSettings
from forebay.store.memory_requests import MemoryRequestStore

DEADLINE = 10.0


async def until(what: str, predicate: Callable[[], bool]) -> None:
    """Poll `predicate` until true, failing after a deadline."""
    end = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)  # polling interval, not synchronisation


class GatedStore(MemoryRequestStore):
    """The memory store, whose recording of outcomes waits for `gate`: what the
    dispatcher does while outcomes are being written."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.recorded: list[tuple[str, float]] = []  # (request id, when it was written)

    async def finish_many(
        self, results: Sequence[tuple[str, Finish]], owner: str, now: float
    ) -> list[bool]:
        await self.gate.wait()
        done = await super().finish_many(results, owner, now)
        self.recorded.extend((rid, time.monotonic()) for rid, _ in results)
        return done


@dataclass
class Origin:
    arrivals: list[tuple[str, float]] = field(default_factory=list)  # (path, when)
    hold: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append((request.path, time.monotonic()))
        if request.path.startswith("/held"):
            await self.hold.wait()
        return web.Response(status=200, text="ok")


@pytest.fixture
async def origin() -> AsyncIterator[tuple[Origin, str]]:
    o = Origin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", o.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield o, f"http://127.0.0.1:{port}"
    o.hold.set()
    await runner.cleanup()


def request(n: int, path: str, key: str) -> AcceptedRequest:
    return AcceptedRequest(
        id=f"r{n:05d}",
        consumer="",
        endpoint_id=None,
        endpoint="POST /x",
        method="POST",
        target=path,
        headers=[],
        body=b"{}",
        ordering_key=key,
        fingerprint=f"f{n}",
        accepted_at=time.time(),
    )


Run = Callable[[MemoryRequestStore, int], Awaitable[Dispatcher]]


@pytest.fixture
async def dispatcher(origin: tuple[Origin, str]) -> AsyncIterator[Run]:
    session = aiohttp.ClientSession()
    started: list[Dispatcher] = []

    async def run(store: MemoryRequestStore, concurrency: int) -> Dispatcher:
        d = Dispatcher(
            store,
            session,
            origin[1],
            AsyncSettings(),
            FixedLimit(concurrency),
            lambda _: RetryPolicy(),
        )
        d.start()
        started.append(d)
        return d

    yield run
    for d in started:
        await d.stop(grace=0.1)
    await session.close()


async def test_the_next_delivery_starts_before_the_last_outcome_is_recorded(
    origin: tuple[Origin, str], dispatcher: Run
) -> None:
    o, _ = origin
    store = GatedStore()
    await store.accept([request(n, f"/a{n}", f"k{n}") for n in range(3)], 60)
    await dispatcher(store, 1)  # one at a time
    # All three reach the origin while not one outcome has been written.
    await until("three deliveries", lambda: len(o.arrivals) == 3)
    assert store.recorded == []
    store.gate.set()
    await until("three outcomes", lambda: len(store.recorded) == 3)
    assert (await store.counts())["succeeded"] == 3


async def test_a_lane_waits_for_its_head_to_be_recorded(
    origin: tuple[Origin, str], dispatcher: Run
) -> None:
    o, _ = origin
    store = GatedStore()
    await store.accept([request(n, f"/b{n}", "one-lane") for n in range(3)], 60)
    await store.accept([request(9, "/other", "other-lane")], 60)
    await dispatcher(store, 4)
    # The other lane goes ahead; this lane's second request waits for the first's record.
    await until("the heads of both lanes", lambda: len(o.arrivals) == 2)
    assert sorted(p for p, _ in o.arrivals) == ["/b0", "/other"]
    store.gate.set()
    await until("every delivery", lambda: len(o.arrivals) == 4 and len(store.recorded) == 4)
    lane = [(p, t) for p, t in o.arrivals if p.startswith("/b")]
    assert [p for p, _ in lane] == ["/b0", "/b1", "/b2"]
    recorded = dict(store.recorded)
    assert lane[1][1] >= recorded["r00000"] and lane[2][1] >= recorded["r00001"]


async def test_stop_hands_back_what_was_claimed_but_not_sent(
    origin: tuple[Origin, str], dispatcher: Run
) -> None:
    o, _ = origin
    store = MemoryRequestStore()
    await store.accept([request(n, f"/held{n}", f"h{n}") for n in range(6)], 60)
    d = await dispatcher(store, 1)
    await until("one delivery at the origin and some claimed ahead", lambda: bool(o.arrivals))
    await until("requests claimed ahead", lambda: bool(d.ready))
    await d.stop(grace=0.1)  # the held delivery does not finish in time
    assert len(o.arrivals) == 1
    counts = await store.counts()
    assert counts["queued"] == 6 and counts["in_flight"] == 0


async def test_claimed_requests_go_back_while_the_origin_refuses() -> None:
    """Requests claimed ahead do not sit under a lease while nothing can be sent: once the
    origin refuses connections they return to the queue, unattempted, where anyone can
    deliver or cancel them."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = MemoryRequestStore()
    await store.accept([request(n, f"/c{n}", f"c{n}") for n in range(30)], 60)
    async with aiohttp.ClientSession() as session:
        d = Dispatcher(
            store,
            session,
            f"http://127.0.0.1:{port}",
            AsyncSettings(),
            FixedLimit(10),
            lambda _: RetryPolicy(),
        )
        d.start()
        try:
            await until("requests claimed ahead", lambda: len(d.ready) >= 3)
            claimed = [r.id for _, r in d.ready]
            # The first ten are refused, one more now and then as a probe; the rest of
            # those claimed ahead wait a second and go back without an attempt.
            end = time.monotonic() + DEADLINE
            while True:
                back = [await store.get(rid) for rid in claimed]
                if all(r is not None and r.state is State.QUEUED for r in back):
                    break
                assert time.monotonic() < end, await store.counts()
                await asyncio.sleep(0.01)  # polling interval, not synchronisation
            assert any(r is not None and r.history == [] for r in back)
        finally:
            await d.stop(grace=0.1)
