"""Completion callbacks: POST the outcome to the request's callback URL, signed the
Standard Webhooks way, with retries of their own.

The target is checked when the request is accepted (allowlist) and again on every send,
against the addresses the name resolves to at that moment, inside the connector's
resolver: a name that later resolves to a private address (DNS rebinding) is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from forebay.dispatch.model import AcceptedRequest
from forebay.gateway.replies import status_document
from forebay.policy import webhooks
from forebay.policy.backoff import RetryPolicy, backoff_delay
from forebay.policy.callback_targets import RefusedTarget, check_addresses, parse_target
from forebay.settings import CallbackSettings
from forebay.tasks import cancel_and_wait

log = structlog.get_logger("forebay.callbacks")

EVENT_TYPE = "request.completed"


class GuardedResolver(AbstractResolver):
    """Resolves names, refusing any that lead to loopback, private or link-local
    addresses the operator has not listed."""

    def __init__(self, allow: list[str]) -> None:
        self._inner = DefaultResolver()
        self._allow = allow

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        check_addresses(host, [r["host"] for r in results], self._allow)
        return results

    async def close(self) -> None:
        await self._inner.close()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def callback_body(r: AcceptedRequest, now: float) -> bytes:
    return json.dumps(
        {
            "type": EVENT_TYPE,
            "timestamp": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            "data": status_document(r),
        }
    ).encode()


class CallbackSender:
    def __init__(
        self,
        settings: CallbackSettings,
        record: Callable[[str, str], Awaitable[None]],
        load: Callable[[str], Awaitable[AcceptedRequest | None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.record = record  # (request id, final callback state) -> stored
        self.load = load  # the request as stored now, attempts and all
        self.clock = clock
        self.rng = random.Random()
        self.policy = RetryPolicy(max_attempts=settings.max_attempts, base=1.0, cap=60.0)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[str]] = set()
        self.sending: set[str] = set()

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.settings.allow))
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def send_later(self, r: AcceptedRequest) -> None:
        self.sending.add(r.id)
        task = asyncio.create_task(self.send(r), name=f"callback-{r.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self.sending.discard(r.id))

    async def send(self, r: AcceptedRequest) -> str:
        assert r.callback is not None
        r = await self.load(r.id) or r
        state = await self._attempts(r)
        try:
            await self.record(r.id, state)
        except Exception:
            log.exception("recording a callback outcome failed", request=r.id)
        return state

    async def _attempts(self, r: AcceptedRequest) -> str:
        assert r.callback is not None and self.settings.secret is not None
        try:
            _, host, _ = parse_target(r.callback)
            if _is_ip(host):  # literal addresses never reach the resolver
                check_addresses(host, [host], self.settings.allow)
        except RefusedTarget as e:
            log.warning("callback refused", request=r.id, url=r.callback, reason=str(e))
            return "refused"
        for attempt in range(1, self.settings.max_attempts + 1):
            now = self.clock()
            body = callback_body(r, now)
            headers = webhooks.headers(self.settings.secret, f"msg_{r.id}", int(now), body)
            headers["content-type"] = "application/json"
            try:
                async with self.session().post(
                    r.callback, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        return "delivered"
                    error = f"status {resp.status}"
            except RefusedTarget as e:
                log.warning("callback refused", request=r.id, url=r.callback, reason=str(e))
                return "refused"
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                if isinstance(e.__cause__, RefusedTarget) or "resolves to" in str(e):
                    log.warning("callback refused", request=r.id, url=r.callback, reason=str(e))
                    return "refused"
                error = repr(e)
            log.info("callback attempt failed", request=r.id, attempt=attempt, error=error)
            if attempt < self.settings.max_attempts:
                await asyncio.sleep(
                    backoff_delay(attempt, self.policy, lambda x: self.rng.uniform(0, x))
                )
        return "failed"

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        if self._session is not None:
            await self._session.close()
