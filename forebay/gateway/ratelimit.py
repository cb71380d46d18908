"""Admission after routing: may this consumer call this endpoint (403), and is it within
its rate limits (429)?

Up to three GCRA limits apply to a request, each with its own counter:
  consumer           the consumer's limit (its own, or `rate_limits.consumer`) over
                     every endpoint; anonymous clients: `rate_limits.anonymous`, counted
                     per client address
  endpoint           the endpoint's `rate_limit`, all consumers together
  consumer-endpoint  the endpoint's `consumer_rate_limit`, per consumer (or address)
A request is admitted only if every one admits it; a refused one is charged to none.
Answers carry `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers);
a refusal is a 429 problem with `Retry-After`. With no limit for a request, the stage
costs a few attribute reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from forebay.admin import metrics
from forebay.gateway.exchange import exchange_of
from forebay.gateway.keyring import compiled_rate
from forebay.gateway.problem import send_problem
from forebay.policy.gcra import Decision, Limit, policy_item, retry_after_seconds, state_item
from forebay.settings_protections import RateLimitSettings
from forebay.store.limiter import Limiter, LimiterUnavailable

log = structlog.get_logger("forebay.gateway")

WARN_EVERY = 10.0  # seconds between log lines about an unreachable Redis


class Admission:
    def __init__(
        self,
        app: Any,
        limiter: Limiter,
        settings: RateLimitSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.default = compiled_rate(settings.consumer) if settings.consumer else None
        self.anonymous = compiled_rate(settings.anonymous) if settings.anonymous else None
        self.fail_open = settings.fail == "open"
        self.clock = clock
        self._warned = 0.0
        self.forbidden = metrics.AUTH_FAILURES.labels("forbidden")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        ex = exchange_of(scope)
        entry = ex.consumer_entry
        route = ex.route
        if entry is not None and entry.patterns is not None and not entry.may_call(route):
            self.forbidden.inc()
            return await send_problem(
                send,
                ex,
                403,
                "consumer-forbidden",
                "Not allowed for this consumer",
                f"The consumer {entry.name!r} may not call {scope['method']} {scope['path']}. "
                "Ask the operator to add the endpoint to the consumer's endpoints.",
            )
        checks: list[tuple[str, str, Limit]] = []
        if entry is not None:
            who = "c:" + entry.name
            limit = entry.limit or self.default
        else:
            client = scope.get("client")
            who = "a:" + (client[0] if client else "-")
            limit = self.anonymous
        if limit is not None:
            checks.append(("consumer", who, limit))
        if route is not None:
            policy = route.policy
            if policy.rate_limit:
                checks.append(
                    ("endpoint", "e:" + route.endpoint_id, compiled_rate(policy.rate_limit))
                )
            if policy.consumer_rate_limit:
                checks.append(
                    (
                        "consumer-endpoint",
                        f"{who}:{route.endpoint_id}",
                        compiled_rate(policy.consumer_rate_limit),
                    )
                )
        if not checks:
            await self.app(scope, receive, send)
            return
        try:
            decisions = await self.limiter.acquire([(k, lim) for _, k, lim in checks], self.clock())
        except LimiterUnavailable as e:
            metrics.RATE_LIMIT_BACKEND_ERRORS.inc()
            self._warn(e)
            if self.fail_open:
                await self.app(scope, receive, send)
                return
            return await send_problem(
                send,
                ex,
                503,
                "rate-limit-unavailable",
                "Rate limits unavailable",
                "The shared rate-limit counters cannot be reached, and the gateway is set to "
                "refuse requests then (rate_limits.fail: closed). Retry shortly.",
                headers=[(b"retry-after", b"1")],
            )
        headers = _headers(checks, decisions)
        refused = [c[0] for c, d in zip(checks, decisions, strict=True) if not d.allowed]
        if refused:
            metrics.RATE_LIMITED.labels(refused[0]).inc()
            wait = retry_after_seconds(decisions)
            return await send_problem(
                send,
                ex,
                429,
                "rate-limited",
                "Too many requests",
                f"The {refused[0]} rate limit is used up; retry after {wait} s. "
                "RateLimit-Policy says what the limits are.",
                headers=[(b"retry-after", str(wait).encode()), *headers],
                limit=refused[0],
            )

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _warn(self, e: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning(
                "rate-limit counters unreachable",
                error=str(e),
                fail="open" if self.fail_open else "closed",
            )


def _headers(
    checks: list[tuple[str, str, Limit]], decisions: list[Decision]
) -> list[tuple[bytes, bytes]]:
    policies = ", ".join(policy_item(name, limit) for name, _, limit in checks)
    states = ", ".join(
        state_item(name, d) for (name, _, _), d in zip(checks, decisions, strict=True)
    )
    return [(b"ratelimit-policy", policies.encode()), (b"ratelimit", states.encode())]
