"""Wiring: the runtime a process holds (store, catalog, origin pool) and the ASGI apps."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import structlog

from forebay.admin import metrics
from forebay.catalog.catalog import Catalog
from forebay.dispatch.callbacks import CallbackSender
from forebay.dispatch.dispatcher import Dispatcher, lease_owner, release_dead_owners
from forebay.dispatch.limits import ConcurrencyLimit, FixedLimit, OriginGovernor
from forebay.dispatch.model import AcceptedRequest
from forebay.dispatch.report import GovernorReport
from forebay.dispatch.sharing import SharedGovernor
from forebay.dispatch.writer import GroupCommitWriter
from forebay.gateway.cache import Cache
from forebay.gateway.capture import ErrorCapture
from forebay.gateway.keyring import Keyring, KeyringRef
from forebay.gateway.origin import origin_session
from forebay.gateway.routing import CatalogRef
from forebay.policy.backoff import RetryPolicy
from forebay.settings import Settings
from forebay.startup import make_limiter
from forebay.store import Store, open_store, report_durability
from forebay.store.cache import MemoryResponseCache, forget_uncached
from forebay.store.limiter import Limiter
from forebay.store.redis_cache import BroadcastCache
from forebay.store.redis_conn import Durability
from forebay.tasks import cancel_and_wait

log = structlog.get_logger("forebay")

STOP_SLACK = 5.0  # seconds, beyond the grace period, that stopping may take

CATALOG_POLL_SECONDS = 0.5


class Runtime:
    """What one process holds: the store, the routing snapshot and, for the data plane,
    the origin connection pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog = CatalogRef()
        self.store: Store | None = None
        self.durability: Durability | None = None  # what a crash of the store could cost
        self.session: aiohttp.ClientSession | None = None
        self.writer: GroupCommitWriter | None = None
        self.dispatcher: Dispatcher | None = None
        self.callbacks: CallbackSender | None = None
        self.limit: ConcurrencyLimit = (
            OriginGovernor(settings.governor.policy())
            if settings.governor.enabled
            else FixedLimit(settings.async_.concurrency)
        )
        # The response cache lives in the data-plane process. With several workers on a
        # local store it is off: a write through one worker must reach the others'
        # caches before it is acknowledged, and only the Redis store carries that.
        self.cache: MemoryResponseCache | None = None
        if settings.store.startswith(("redis://", "rediss://")):
            self.cache = BroadcastCache(int(settings.cache.max_bytes))
        elif settings.workers == 1:
            self.cache = MemoryResponseCache(int(settings.cache.max_bytes))
        self.cache_stage: Cache | None = None
        self.keyring = KeyringRef()
        self.limiter: Limiter | None = None
        self.capture: ErrorCapture | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.governor_report = GovernorReport()
        self._started = False

    async def start(self, data_plane: bool = True) -> None:
        if self._started:
            return
        self._started = True
        self.store = await open_store(self.settings.store)
        self.durability = await report_durability(self.store)
        await self.refresh_catalog(force=True)
        await self.refresh_keyring(force=True)
        self._tasks.append(asyncio.create_task(self._watch_catalog(), name="catalog-watcher"))
        if data_plane:
            assert self.settings.origin is not None
            self.session = origin_session(self.settings.timeouts)
            self.limiter = make_limiter(self.settings)
            self.capture = ErrorCapture(self.store.errors, self.settings)
            self.capture.start()
            self.writer = GroupCommitWriter(
                self.store.requests, self.settings.async_.idempotency_ttl
            )
            await release_dead_owners(self.store.requests)
            await self._share_governor(self.store)
            if isinstance(self.cache, BroadcastCache):
                await self._share_cache(self.cache)
            self.dispatcher = Dispatcher(
                self.store.requests,
                self.session,
                self.settings.origin,
                self.settings.async_,
                self.limit,
                self.retry_policy_for,
            )
            self.callbacks = CallbackSender(
                self.settings.callbacks,
                self.store.requests.set_callback_state,
                self.store.requests.get,
            )
            self.dispatcher.on_done.append(self._completed)
            self.dispatcher.start()
            if isinstance(self.limit, SharedGovernor):
                self.limit.on_more = self.dispatcher.notify
                self.limit.start()
            self._tasks.append(asyncio.create_task(self._upkeep(), name="queue-upkeep"))

    async def _share_governor(self, store: Store) -> None:
        """Several processes on one store (`--workers`, instances on one Redis) share
        one in-flight limit to the origin (docs/governor.md)."""
        shared = self.settings.workers > 1 or self.settings.store.startswith(
            ("redis://", "rediss://")
        )
        if not (shared and self.settings.governor.enabled):
            return
        self.limit = SharedGovernor(self.settings.governor.policy(), store.governor, lease_owner())
        try:
            await self.limit.sync()
        except Exception:
            log.warning("governor: no share yet; syncing in the background", exc_info=True)

    async def _share_cache(self, cache: BroadcastCache) -> None:
        """Invalidations go through Redis pub/sub; serve once subscribed if Redis allows."""
        store: Any = self.store
        cache.stage = lambda: self.cache_stage
        await cache.connect(store.client, store.prefix)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(cache.subscribed.wait(), 5)

    def _completed(self, r: AcceptedRequest) -> None:
        if self.cache_stage is not None:
            self.cache_stage.delivered(r, self.catalog.current.route(r.endpoint_id))
        if r.callback and self.callbacks is not None and self.settings.callbacks.secret:
            self.callbacks.send_later(r)

    def breaker_open(self) -> bool:
        """Whether the governor's breaker keeps requests from the origin now."""
        return isinstance(self.limit, OriginGovernor) and self.limit.breaker_holds()

    async def stop(self, grace: float = 10.0) -> None:
        # Each step runs even if an earlier one failed: a store error must not keep the
        # connection pool or the store open, nor turn a clean stop into a crash.
        steps = []
        if self.dispatcher:
            steps.append(self.dispatcher.stop(grace))
        if isinstance(self.limit, SharedGovernor):
            steps.append(self.limit.stop())
        if self.callbacks:
            steps.append(self.callbacks.close())
        if self.writer:
            steps.append(self.writer.close())
        if self.capture:
            steps.append(self.capture.stop())
        if self.limiter:
            steps.append(self.limiter.close())
        if isinstance(self.cache, BroadcastCache):
            steps.append(self.cache.close())
        # A step that hangs (a store that stopped answering) must not keep the process
        # from ending: after the grace period and a little more, the rest get a second.
        deadline = time.monotonic() + grace + STOP_SLACK
        for step in steps:
            try:
                await asyncio.wait_for(step, max(1.0, deadline - time.monotonic()))
            except TimeoutError:
                log.error("stopping: a step took too long; going on")
            except Exception:
                log.exception("stopping: a step failed; going on")
        await cancel_and_wait(self._tasks)
        if self.session:
            await self.session.close()
        if self.store:
            await self.store.close()

    def retry_policy_for(self, r: AcceptedRequest) -> RetryPolicy:
        retry = self.settings.async_.retry
        route = self.catalog.current.route(r.endpoint_id)
        policy = route.policy if route else None
        return RetryPolicy(
            max_attempts=(policy and policy.max_attempts) or retry.max_attempts,
            max_age=(policy and policy.max_age) or retry.max_age,
            base=retry.base,
            cap=retry.cap,
        )

    async def _upkeep(self) -> None:
        """Queue depth for the metrics every second; old records swept every minute."""
        assert self.store is not None
        ticks = 0
        while True:
            try:
                counts = await self.store.requests.counts()
                metrics.QUEUE_DEPTH.set(counts["queued"] + counts["in_flight"])
                self.governor_report.observe(self.limit)
                if ticks % 60 == 0:
                    await self.store.requests.sweep(time.time(), self.settings.async_.keep_done)
                    await self._resend_callbacks()
            except Exception:
                log.exception("queue upkeep failed")
            ticks += 1
            await asyncio.sleep(1.0)

    async def _resend_callbacks(self) -> None:
        """Callbacks of requests finished by a process that stopped before sending them."""
        assert self.store is not None and self.callbacks is not None
        if not self.settings.callbacks.secret:
            return
        for r in await self.store.requests.pending_callbacks(100):
            if r.id not in self.callbacks.sending:
                self.callbacks.send_later(r)

    async def refresh_catalog(self, force: bool = False) -> None:
        assert self.store is not None
        version = await self.store.endpoints.version()
        if force or version != self.catalog.current.version:
            endpoints = await self.store.endpoints.list()
            before, self.catalog.current = self.catalog.current, Catalog(endpoints, version)
            if self.cache is not None:
                forget_uncached(self.cache, before, self.catalog.current)

    async def refresh_keyring(self, force: bool = False) -> None:
        assert self.store is not None
        consumers = self.store.consumers
        version = await consumers.version()
        if force or version != self.keyring.current.version:
            self.keyring.current = Keyring(
                await consumers.list(),
                await consumers.keys(),
                version,
                self.settings.auth.cache_seconds,
            )

    async def _watch_catalog(self) -> None:
        """The catalog and the consumers' keys, reloaded when the store's versions move."""
        assert self.store is not None
        while True:
            await asyncio.sleep(CATALOG_POLL_SECONDS)
            try:
                if await self.store.endpoints.version() != self.catalog.current.version:
                    await self.refresh_catalog()
                    log.info("catalog reloaded", endpoints=len(self.catalog.current))
            except Exception:
                log.exception("catalog refresh failed; keeping the current one")
            try:
                if await self.store.consumers.version() != self.keyring.current.version:
                    await self.refresh_keyring()
                    log.info("consumers reloaded", consumers=len(self.keyring.current.consumers))
            except Exception:
                log.exception("consumer refresh failed; keeping the current keys")
