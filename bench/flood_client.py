"""bench.flood's clients: the live reads (own process), the writes, /metrics sampling, the
origin's /stats and the drain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import multiprocessing.connection
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.common import (
    BenchError,
    Service,
    wait_until,
)

SAMPLE_EVERY = 0.1  # seconds between /metrics samples
POLL_EVERY = 0.1  # seconds between looks at the origin's progress during the drain
STALL = 10.0  # seconds without progress (and an empty gateway queue) that end a drain
SETTLE_TIMEOUT = 60.0  # seconds to wait for the origin to empty between runs

METRICS = {
    "limit": "forebay_governor_limit",
    "inflight": "forebay_origin_inflight",
    "queue": "forebay_queue_depth",
    "accepted": "forebay_accepted_total",
    "min_rtt": "forebay_origin_min_rtt_seconds",
    "breaker": "forebay_breaker_state",
}
DELIVERED = re.compile(r'^forebay_delivered_total\{outcome="(\w+)"\} (\S+)$', re.M)


# --- results -----------------------------------------------------------------------------------


@dataclass
class Reads:
    """Live-read latencies (seconds; None for a failed read), with when each was sent."""

    sent_at: list[float] = field(default_factory=list)
    latency: list[float | None] = field(default_factory=list)

    def between(self, start: float, end: float) -> Reads:
        out = Reads()
        for at, lat in zip(self.sent_at, self.latency, strict=True):
            if start <= at <= end:
                out.sent_at.append(at)
                out.latency.append(lat)
        return out

    def percentile(self, pct: float, failed_as: float) -> float | None:
        values = sorted(failed_as if v is None else v for v in self.latency)
        if not values:
            return None
        rank = max(1, math.ceil(pct / 100.0 * len(values)))
        return values[rank - 1]

    @property
    def errors(self) -> int:
        return sum(1 for v in self.latency if v is None)


# --- the live-read stream, in its own process --------------------------------------------------


async def _read_stream(
    base: str,
    rate: float,
    count: int,
    wait_s: float,
    conn: multiprocessing.connection.Connection,
    stop: Any,
) -> Reads:
    reads = Reads()
    connector = aiohttp.TCPConnector(limit=0)
    client_timeout = aiohttp.ClientTimeout(total=wait_s)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def one(i: int) -> None:
            sent = time.monotonic()
            t0 = time.perf_counter()
            latency: float | None = None
            try:
                async with session.get(f"{base}/items/{i}") as resp:
                    await resp.read()
                    if resp.status == 200:
                        latency = time.perf_counter() - t0
            except (aiohttp.ClientError, TimeoutError, OSError):
                latency = None
            reads.sent_at.append(sent)
            reads.latency.append(latency)

        conn.send("ready")
        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if stop.is_set():
                break
            tasks.append(asyncio.create_task(one(i)))
        if tasks:
            await asyncio.wait(tasks, timeout=wait_s + 5.0)
    return reads


def _reader_main(
    base: str,
    rate: float,
    count: int,
    timeout: float,
    conn: multiprocessing.connection.Connection,
    stop: Any,
) -> None:
    reads = asyncio.run(_read_stream(base, rate, count, timeout, conn, stop))
    conn.send((reads.sent_at, reads.latency))
    conn.close()


class Reader:
    """Live reads at a steady rate from a separate process, so the flood's client work does
    not delay them (or their timing)."""

    def __init__(self, base: str, rate: float, count: int, timeout: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.stop_event = ctx.Event()
        self.conn, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=_reader_main,
            args=(base, rate, count, timeout, child, self.stop_event),
            daemon=True,
        )
        self.proc.start()
        child.close()
        if not self.conn.poll(30.0) or self.conn.recv() != "ready":
            self.close()
            raise BenchError("the live-read process did not start")
        self.expected = count / rate + timeout + 10.0

    def finish(self, stop: bool = True) -> Reads:
        """Stop sending (or, with `stop` false, let it send all its reads); the results."""
        if stop:
            self.stop_event.set()
        try:
            if not self.conn.poll(self.expected):
                raise BenchError("the live-read process did not report")
            sent_at, latency = self.conn.recv()
        except EOFError:
            raise BenchError("the live-read process died") from None
        finally:
            self.close()
        return Reads(list(sent_at), list(latency))

    def close(self) -> None:
        self.proc.join(5.0)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5.0)
        self.conn.close()


# --- the origin, the gateway's metrics and log ---------------------------------------------------


def parse_metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, name in METRICS.items():
        match = re.search(rf"^{name} (\S+)$", text, re.M)
        if match:
            out[key] = float(match.group(1))
    for outcome, value in DELIVERED.findall(text):
        out[f"delivered_{outcome}"] = float(value)
    return out


async def _get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        if resp.status != 200:
            raise BenchError(f"GET {url}: {resp.status}")
        return await resp.json()


def origin_stats(base: str, query: str = "series=0") -> dict[str, Any]:
    async def get() -> Any:
        timeout = aiohttp.ClientTimeout(total=10.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await _get_json(session, f"{base}/stats?{query}")

    result: dict[str, Any] = asyncio.run(get())
    return result


def origin_reset(base: str) -> None:
    async def post() -> None:
        timeout = aiohttp.ClientTimeout(total=10.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            resp = await session.post(f"{base}/reset")
            resp.release()
            if resp.status != 200:
                raise BenchError(f"POST {base}/reset: {resp.status}")

    asyncio.run(post())


def settle(base: str) -> None:
    """Wait until nothing is inside the origin (a previous run's requests finished)."""
    wait_until(
        lambda: origin_stats(base)["inflight"] == 0,
        SETTLE_TIMEOUT,
        "the origin to empty",
        interval=0.1,
    )


def log_problems(service: Service, limit: int = 8) -> dict[str, Any]:
    """Warnings and errors in a gateway's log: how many, and the first few (deduplicated)."""
    try:
        lines = service.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return {"count": 0, "first": []}
    found: list[str] = []
    count = 0
    for line in lines:
        text = line.strip()
        if not text:
            continue
        level = ""
        with contextlib.suppress(ValueError):
            doc = json.loads(text)
            if isinstance(doc, dict):
                level = str(doc.get("level", ""))
                text = f"{level}: {doc.get('event', '')} " + ", ".join(
                    f"{k}={v}"
                    for k, v in doc.items()
                    if k not in ("level", "event", "timestamp", "logger")
                )
        if level in ("warning", "error", "critical") or re.search(
            r"\b(error|exception|traceback|warning)\b", text, re.I
        ):
            count += 1
            short = text[:300]
            if short not in found and len(found) < limit:
                found.append(short)
    return {"count": count, "first": found}


# --- one measured run --------------------------------------------------------------------------


@dataclass
class Flood:
    sent_at: dict[int, float] = field(default_factory=dict)
    acked: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    first: float = 0.0
    last_sent: float = 0.0
    last_answer: float = 0.0


async def _write(
    session: aiohttp.ClientSession, base: str, tag: str, i: int, flood: Flood, ok: int
) -> None:
    body = json.dumps({"id": str(i), "item": "widget", "qty": 1}).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"flood-{tag}-{i}"}
    flood.sent_at[i] = flood.last_sent = time.monotonic()
    try:
        async with session.post(f"{base}/orders/{i}", data=body, headers=headers) as resp:
            await resp.read()
            if resp.status == ok:
                flood.acked.add(i)
            else:
                flood.failed.add(i)
    except (aiohttp.ClientError, TimeoutError, OSError):
        flood.failed.add(i)
    flood.last_answer = max(flood.last_answer, time.monotonic())


async def closed_loop(
    base: str | Sequence[str], n: int, clients: int, wait_s: float, tag: str
) -> Flood:
    """`clients` tasks, each sending its next write when the previous one is answered.

    With several bases (gateways sharing one store), client k sends to base k mod their
    number, so the writes are split evenly whichever answers faster.
    """
    bases = [base] if isinstance(base, str) else list(base)
    flood = Flood()
    connector = aiohttp.TCPConnector(limit=clients)
    client_timeout = aiohttp.ClientTimeout(total=wait_s)
    counter = iter(range(n))
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def client(target: str) -> None:
            for i in counter:  # shared: bounded by n in all
                await _write(session, target, tag, i, flood, 202)

        flood.first = time.monotonic()
        await asyncio.gather(*(client(bases[k % len(bases)]) for k in range(clients)))
    return flood


async def open_loop(base: str, n: int, rate: float, wait_s: float, tag: str) -> Flood:
    """Each write its own request, sent on a fixed schedule whatever happened to the others."""
    flood = Flood()
    connector = aiohttp.TCPConnector(limit=0)
    client_timeout = aiohttp.ClientTimeout(total=wait_s)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        tasks: list[asyncio.Task[None]] = []
        flood.first = start = time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_write(session, base, tag, i, flood, 201)))
        await asyncio.wait(tasks, timeout=wait_s + 10.0)
        for task in tasks:
            task.cancel()
    for i in range(n):
        if i not in flood.acked:
            flood.failed.add(i)
    return flood


async def sample_metrics(
    admin: str, token: str, samples: list[dict[str, float]], stop: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=2.0)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        while not stop.is_set():  # bounded: the run sets `stop` when its drain ends
            at = time.monotonic()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                async with session.get(f"{admin}/metrics") as resp:
                    if resp.status == 200:
                        sample = parse_metrics(await resp.text())
                        sample["t"] = at
                        samples.append(sample)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, at + SAMPLE_EVERY - time.monotonic()))


async def drain(
    origin: str,
    acked: set[int],
    deadline: float,
    samples: list[dict[str, float]] | None,
) -> bool:
    """Wait until every acknowledged write is applied and no write is inside the origin,
    progress stalls (gateway runs: with the gateway's queue empty; direct: with no write
    inside the origin), or `deadline`. True when every acknowledged write was applied."""
    want = {str(i) for i in acked}
    timeout = aiohttp.ClientTimeout(total=5.0)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        last_applied, last_progress = -1, time.monotonic()
        while time.monotonic() < deadline:
            stats = await _get_json(session, f"{origin}/stats?series=0")
            applied, inside = int(stats["applied"]), int(stats["writes_inflight"])
            now = time.monotonic()
            if applied != last_applied:
                last_applied, last_progress = applied, now
            if applied >= len(want) and inside == 0:
                doc = await _get_json(session, f"{origin}/stats?series=0&ids=1")
                if want <= set(doc["applied_ids"]):
                    return True
            if samples is None:  # direct: nothing more will come once no write is inside
                if inside == 0 and now - last_progress > 1.0:
                    return False
            elif now - last_progress > STALL and samples and samples[-1].get("queue", 1) == 0:
                return False
            await asyncio.sleep(POLL_EVERY)
    return False
