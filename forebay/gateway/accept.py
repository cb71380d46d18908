"""Asynchronous accept: store the request durably, answer 202, deliver later.

Runs for managed endpoints with `async` on, and for any managed endpoint when the
client sends `Prefer: respond-async`. The body is read whole (within the size limit),
committed through the group-commit writer, and only then answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import structlog

from forebay.admin import metrics
from forebay.dispatch.dispatcher import Dispatcher
from forebay.dispatch.model import AcceptedRequest
from forebay.dispatch.writer import GroupCommitWriter
from forebay.gateway.accept_headers import delivery_headers, own_headers, text
from forebay.gateway.entropy import urandom
from forebay.gateway.exchange import Exchange, exchange_of
from forebay.gateway.limits import ClientGone, RequestLimits
from forebay.gateway.problem import send_body, send_problem
from forebay.gateway.replies import accepted_body, response_messages, status_url
from forebay.policy import idempotency
from forebay.policy.callback_targets import RefusedTarget, host_allowed, parse_target
from forebay.policy.ids import new_request_id
from forebay.policy.prefer import NONE, Preferences, parse_prefer
from forebay.policy.request_states import DONE
from forebay.settings import Settings
from forebay.store.base import RequestStore

log = structlog.get_logger("forebay.gateway")

STATUS_POLL = 0.1  # seconds, when waiting on a delivery made by another process


class AsyncAccept:
    def __init__(
        self,
        app: Any,
        settings: Settings,
        requests: RequestStore,
        writer: GroupCommitWriter,
        dispatcher: Dispatcher | None,
        limits: RequestLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.settings = settings
        self.requests = requests
        self.writer = writer
        self.dispatcher = dispatcher
        self.limits = limits
        self.clock = clock
        self.accepting: set[tuple[str, str]] = set()  # idempotency keys being committed here

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        ex = exchange_of(scope)
        route = ex.route
        if route is None or not route.policy.managed:
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        own = own_headers(headers)
        prefs = NONE
        if b"prefer" in own:
            values = [v.decode("latin-1") for n, v in headers if n == b"prefer"]
            prefs = parse_prefer(values, self.settings.async_.max_wait)
        if not (route.policy.async_ or prefs.respond_async):
            await self.app(scope, receive, send)
            return
        await self._accept(scope, receive, send, ex, prefs, own)

    async def _accept(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        ex: Exchange,
        prefs: Preferences,
        own: dict[bytes, bytes],
    ) -> None:
        assert ex.route is not None
        body = await self._read_body(receive)
        if body is None:
            return await self.limits.too_large(scope, send)
        target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        now = self.clock()
        rid = new_request_id(now, urandom)
        # Only a key is ever compared with a fingerprint: a request without one stores "".
        fingerprint = ""

        key = text(own.get(b"idempotency-key"))
        if key is not None:
            key = key.strip().strip('"')
            if not idempotency.valid_key(key):
                return await send_problem(
                    send,
                    ex,
                    400,
                    "bad-idempotency-key",
                    "Invalid Idempotency-Key",
                    f"An Idempotency-Key is 1 to {idempotency.MAX_KEY_LENGTH} printable "
                    "characters.",
                )
            fingerprint = idempotency.fingerprint(scope["method"], target, body)
            try:
                held = await self.requests.key(ex.consumer, key, now)
            except Exception as e:
                return await self._store_unavailable(send, ex, e)
            verdict = idempotency.verdict(
                held, fingerprint, (ex.consumer, key) in self.accepting, now
            )
            if verdict is not idempotency.Verdict.NEW:
                return await self._repeat(send, ex, verdict, held.request_id if held else None)

        client_callback = text(own.get(b"forebay-callback"))
        callback = client_callback or ex.route.policy.callback
        if callback is not None:
            refused = self._refuse_callback(callback, from_client=client_callback is not None)
            if refused:
                return await send_problem(
                    send, ex, 400, "callback-refused", "Callback URL refused", refused
                )

        ordering = text(own.get(b"forebay-ordering-key")) or (
            scope["path"] if ex.route.policy.ordering == "path" else rid
        )
        record = AcceptedRequest(
            id=rid,
            consumer=ex.consumer,
            endpoint_id=ex.route.endpoint_id,
            endpoint=ex.route.name,
            method=scope["method"],
            target=target,
            headers=delivery_headers(scope, own, key or rid),
            body=body,
            ordering_key=ordering,
            fingerprint=fingerprint,
            accepted_at=now,
            idempotency_key=key,
            callback=callback,
        )
        scoped = (ex.consumer, key) if key is not None else None
        if scoped:
            self.accepting.add(scoped)
        try:
            holder = await self.writer.submit(record)
        except Exception as e:
            return await self._store_unavailable(send, ex, e)
        finally:
            if scoped:
                self.accepting.discard(scoped)
        if holder is not None:  # another process committed the same key first
            return await self._repeat(send, ex, idempotency.Verdict.REPLAY, holder)
        metrics.ACCEPTED.inc()
        ex.async_id = rid
        if self.dispatcher is not None:
            self.dispatcher.notify()
        if prefs.wait:
            done = await self._wait(rid, prefs.wait)
            if done is not None and done.response is not None:
                applied = f"wait={prefs.wait:g}".encode()
                return await self._send_stored(send, ex, done, [(b"preference-applied", applied)])
        await self._send_accepted(send, ex, record, prefs, replayed=False)

    async def _store_unavailable(self, send: Any, ex: Exchange, error: Exception) -> None:
        log.error(
            "could not store an accepted request", request_id=ex.request_id, error=repr(error)
        )
        await send_problem(
            send,
            ex,
            503,
            "store-unavailable",
            "Cannot accept the request now",
            "The gateway could not store the request durably, so it did not accept it. "
            "Nothing was queued; retry later.",
            headers=[(b"retry-after", b"5")],
        )

    async def _read_body(self, receive: Any) -> bytes | None:
        parts, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()  # nothing was stored; nobody is left to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body:
                return None
            parts.append(chunk)
            more = message.get("more_body", False)
        return b"".join(parts)

    def _refuse_callback(self, url: str, from_client: bool) -> str | None:
        if self.settings.callbacks.secret is None:
            return (
                "This gateway has no callbacks.secret to sign callbacks with, so it takes "
                "none. The operator can set one (whsec_ and base64) to turn callbacks on."
            )
        try:
            _, host, _ = parse_target(url)
        except RefusedTarget as e:
            return str(e)
        if from_client and not host_allowed(host, self.settings.callbacks.allow):
            return (
                f"Callbacks to {host} are not allowed. The operator lists the hosts "
                "clients may use in callbacks.allow."
            )
        return None

    async def _wait(self, rid: str, seconds: float) -> AcceptedRequest | None:
        deadline = time.monotonic() + seconds
        event = None
        if self.dispatcher is not None:
            event = self.dispatcher.completed.setdefault(rid, asyncio.Event())
        try:
            while (left := deadline - time.monotonic()) > 0:
                if event is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), min(left, 1.0))
                else:
                    await asyncio.sleep(min(left, STATUS_POLL))
                r = await self.requests.get(rid)
                if r is not None and r.state in DONE:
                    return r
        finally:
            if self.dispatcher is not None:
                self.dispatcher.completed.pop(rid, None)
        return None

    async def _repeat(
        self, send: Any, ex: Exchange, verdict: idempotency.Verdict, request_id: str | None
    ) -> None:
        if verdict is idempotency.Verdict.MISMATCH:
            return await send_problem(
                send,
                ex,
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "This Idempotency-Key was used with another request (method, path or body "
                "differ). Use a new key for a new request.",
            )
        original = None
        if verdict is not idempotency.Verdict.IN_PROGRESS and request_id:
            original = await self.requests.get(request_id)
        if original is None:  # still being accepted here, or not yet readable elsewhere
            return await send_problem(
                send,
                ex,
                409,
                "idempotency-key-in-progress",
                "Request with this key in progress",
                "A request with this Idempotency-Key is still being accepted. Retry shortly.",
                headers=[(b"retry-after", b"1")],
            )
        ex.async_id = original.id
        replayed = [(b"idempotency-replayed", b"true")]
        if original.state in DONE and original.response is not None:
            return await self._send_stored(send, ex, original, replayed)
        await self._send_accepted(send, ex, original, NONE, replayed=True)

    async def _send_accepted(
        self, send: Any, ex: Exchange, r: AcceptedRequest, prefs: Preferences, replayed: bool
    ) -> None:
        headers = [
            (b"location", status_url(r.id).encode()),
            (b"retry-after", str(self.settings.async_.retry_after).encode()),
        ]
        if prefs.respond_async:
            headers.append((b"preference-applied", b"respond-async"))
        if replayed:
            headers.append((b"idempotency-replayed", b"true"))
        await send_body(send, ex, 202, b"application/json", accepted_body(r), headers)

    async def _send_stored(
        self, send: Any, ex: Exchange, r: AcceptedRequest, extra: list[tuple[bytes, bytes]]
    ) -> None:
        assert r.response is not None
        extra = [
            *extra,
            (b"x-request-id", ex.request_id.encode()),
            (b"content-location", status_url(r.id).encode() + b"/response"),
        ]
        ex.status, ex.response_started = r.response.status, True
        for message in response_messages(r.response, extra):
            await send(message)
