"""The dispatcher: claims due requests, delivers them to the origin, records the outcome.

It holds leases on what it delivers and renews them while the origin works; if this
process dies, the leases run out and another dispatcher delivers the same requests
again, with the same `Idempotency-Key`, so the origin can recognise the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
from yarl import URL

from forebay.admin import metrics
from forebay.dispatch.leases import lease_owner, release_dead_owners
from forebay.dispatch.limits import ConcurrencyLimit
from forebay.dispatch.model import AcceptedRequest, DeliveryAttempt, Finish, StoredResponse
from forebay.dispatch.recorder import OutcomeRecorder
from forebay.policy.backoff import Outcome, RetryPolicy, decide, parse_retry_after
from forebay.policy.forwarding import end_to_end
from forebay.policy.request_states import State
from forebay.settings import AsyncSettings
from forebay.store.base import RequestStore
from forebay.tasks import cancel_and_wait

__all__ = ["Dispatcher", "lease_owner", "release_dead_owners"]

log = structlog.get_logger("forebay.dispatch")

IDLE_POLL = 0.05  # seconds between claims when idle: other processes may have accepted
MAX_IDLE_POLL = 0.5
# Claimed ahead of need, as a share of the limit: a claim's round trip through the store
# (some milliseconds, more while accepts are being committed) is covered at the origin's
# pace, and few enough stay unsendable by other processes.
PREFETCH_SHARE = 0.5
MAX_PREFETCH = 64
READY_MAX_WAIT = 1.0  # seconds a claimed request may wait unsent before it goes back
ORIGIN_DOWN_PAUSE = (0.25, 5.0)  # first and largest pause while the origin refuses

_OUTCOME_STATE = {
    Outcome.SUCCEEDED: State.SUCCEEDED,
    Outcome.FAILED: State.FAILED,
    Outcome.DEAD: State.DEAD,
    Outcome.RETRY: State.QUEUED,
}


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, or its first `cap` bytes: what is kept for replay is bounded."""
    parts, size = [], 0
    async for chunk in resp.content.iter_any():
        parts.append(chunk[: cap - size])
        size += len(chunk)
        if size >= cap:
            break
    return b"".join(parts)


class Dispatcher:
    """Claims a little ahead of need and starts the next delivery the moment the origin
    answers one, before that answer is recorded: with a claim and a commit between an
    answer and the next send, a 50 ms origin stood idle some 15% of the time.

    The claimed requests not yet sent (`ready`) are leased like the ones in flight, and
    handed back if they wait too long (the origin is paused or refusing), so a request
    cannot sit unsent under a lease nor be cancelled out from under a sender. Only a
    lane's head is ever claimed, so at most one request per ordering key is here at a
    time, and order within a key holds.
    """

    def __init__(
        self,
        requests: RequestStore,
        session: aiohttp.ClientSession,
        origin: str,
        settings: AsyncSettings,
        limit: ConcurrencyLimit,
        retry_policy_for: Callable[[AcceptedRequest], RetryPolicy],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.requests = requests
        self.session = session
        self.origin = origin.rstrip("/")
        self.settings = settings
        self.limit = limit
        self.retry_policy_for = retry_policy_for
        self.clock = clock
        self.owner = lease_owner()
        self.rng = random.Random()
        self.wake = asyncio.Event()
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self.ready: deque[tuple[float, AcceptedRequest]] = deque()  # (claimed at, request)
        self.completed: dict[str, asyncio.Event] = {}
        self.on_done: list[Callable[[AcceptedRequest], Any]] = []
        self.recorder = OutcomeRecorder(requests, self.owner)
        self._stopping = False
        self._paused_until = 0.0
        self._probing = False
        self._pause = ORIGIN_DOWN_PAUSE[0]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="dispatch-claim"),
            asyncio.create_task(self._renew_loop(), name="dispatch-renew"),
        ]

    def notify(self) -> None:
        """Something was accepted here: claim without waiting for the next poll."""
        self.wake.set()

    async def stop(self, grace: float) -> None:
        """Stop claiming; let deliveries in flight finish within `grace`, hand back the rest."""
        self._stopping = True
        self.wake.set()
        if self.in_flight:
            await asyncio.wait(list(self.in_flight.values()), timeout=grace)
        await cancel_and_wait([*self._tasks, *self.in_flight.values()])
        with contextlib.suppress(Exception):  # outcomes already handed in are written first
            await self.recorder.close()
        self.ready.clear()
        returned = await self.requests.release(self.owner, self.clock())
        if returned:
            log.info("handed back deliveries in flight", requests=returned)

    def _prefetch(self) -> int:
        """How many claimed requests to keep ready beyond the free slots: enough to
        cover one claim's round trip through the store at the origin's pace."""
        return min(MAX_PREFETCH, max(1, math.ceil(self.limit.allowed() * PREFETCH_SHARE)))

    def _send_ready(self) -> None:
        """Start as many ready requests as the limit allows, now."""
        if self._stopping or self.clock() < self._paused_until:
            return
        free = self.limit.available()
        if self._probing:  # the origin was refusing: one request finds out if it is back
            free = 1 if not self.in_flight else 0
        while free > 0 and self.ready:
            _, request = self.ready.popleft()
            self.limit.started()
            self.in_flight[request.id] = asyncio.create_task(self._deliver(request))
            free -= 1

    async def _hand_back_stale(self, now: float) -> None:
        """Ready requests that could not be sent for a while (the origin is paused or
        refusing) go back to the queue: cancellable, and deliverable by anyone."""
        if not self.ready or now - self.ready[0][0] < READY_MAX_WAIT:
            return
        ids = [r.id for _, r in self.ready]
        self.ready.clear()
        with contextlib.suppress(Exception):
            await self.requests.release(self.owner, now, ids)

    async def _claim_loop(self) -> None:
        idle = IDLE_POLL
        while not self._stopping:
            now = self.clock()
            self._send_ready()
            await self._hand_back_stale(now)
            want = 0
            if self.limit.allowed() == 0:
                pass  # paused (Retry-After) or the breaker is open: claim nothing
            elif now >= self._paused_until and not self._probing:
                prefetch = self._prefetch()
                if len(self.ready) <= prefetch // 2:  # refill in batches, not one by one
                    want = self.limit.available() + prefetch - len(self.ready)
            elif not self.in_flight and not self.ready and now >= self._paused_until:
                want = 1  # the probe
            claimed: list[AcceptedRequest] = []
            if want > 0:
                try:
                    claimed = await self.requests.claim(
                        now, want, self.owner, now + self.settings.lease
                    )
                except Exception:
                    log.exception("claiming deliveries failed; trying again")
            self.ready.extend((now, request) for request in claimed)
            self._send_ready()
            if len(claimed) == want > 0:
                idle = IDLE_POLL
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), idle)
            idle = IDLE_POLL if claimed else min(idle * 2, MAX_IDLE_POLL)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease / 3)
            ids = [*self.in_flight, *(r.id for _, r in self.ready)]
            if ids:
                with contextlib.suppress(Exception):
                    await self.requests.renew(ids, self.owner, self.clock() + self.settings.lease)

    async def _deliver(self, r: AcceptedRequest) -> None:
        started = self.clock()
        t0 = time.perf_counter()
        status: int | None = None
        response: StoredResponse | None = None
        error: str | None = None
        retry_after: float | None = None
        reached = True
        try:
            async with self.session.request(
                r.method,
                URL(self.origin + r.target, encoded=True),
                headers=r.headers,
                data=r.body,
                allow_redirects=False,
            ) as resp:
                body = await _read_capped(resp, int(self.settings.max_response_body))
                status = resp.status
                headers = [
                    (n.decode("latin-1"), v.decode("latin-1"))
                    for n, v in end_to_end([(n.lower(), v) for n, v in resp.raw_headers])
                ]
                response = StoredResponse(status, headers, body)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), self.clock())
        except aiohttp.ClientConnectorError as e:
            error, reached = f"could not connect to the origin: {e.os_error}", False
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        latency = time.perf_counter() - t0
        self.limit.finished(latency if reached else None, status, retry_after, r.endpoint)
        now = self.clock()
        if reached:
            self._pause = ORIGIN_DOWN_PAUSE[0]
            self._probing = False
        elif now >= self._paused_until:
            # The origin refuses connections: pause all delivery rather than burn attempts,
            # then probe with one request. Refusals of one round extend the pause once.
            self._paused_until = now + self._pause
            self._pause = min(self._pause * 2, ORIGIN_DOWN_PAUSE[1])
            self._probing = True
        # The origin is done with it: its slot goes to the next request straight away,
        # while this outcome is being recorded.
        self._send_ready()
        self.wake.set()
        policy = self.retry_policy_for(r)
        attempts = r.attempts + 1 if reached else r.attempts
        outcome, due = decide(
            status,
            max(attempts, 1),
            r.accepted_at,
            now,
            policy,
            lambda x: self.rng.uniform(0, x),
            retry_after,
        )
        if not reached and (outcome is Outcome.RETRY or now - r.accepted_at <= policy.max_age):
            outcome, due = Outcome.RETRY, self._paused_until
        state = _OUTCOME_STATE[outcome]
        attempt = DeliveryAttempt(0, started, status, latency if reached else None, error)
        result = Finish(attempt, state, due, response if state != State.QUEUED else None, reached)
        try:
            recorded = await self.recorder.record(r.id, result, now)
        except Exception:
            log.exception("recording a delivery failed; the lease will expire", request=r.id)
            recorded = False
        finally:
            self.in_flight.pop(r.id, None)
            self.wake.set()
        if not recorded:
            return
        metrics.DELIVERED.labels(outcome.value).inc()
        if state != State.QUEUED:
            r.state, r.response = state, response
            event = self.completed.pop(r.id, None)
            if event is not None:
                event.set()
            for hook in self.on_done:
                hook(r)
        log.info(
            "delivery",
            request=r.id,
            endpoint=r.endpoint,
            status=status,
            outcome=outcome.value,
            attempt=attempts,
            error=error,
            latency_ms=round(latency * 1000, 2),
        )
