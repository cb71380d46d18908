"""The data plane, built in one place. Requests flow through the stages top to bottom:

    Observe         the Exchange; metrics, access log and error capture once it is over
    ErrorBoundary   no exception reaches the client as anything but a problem body
    RequestLimits   header count and size, declared body size
    Authenticate    which consumer, from the API key; 401 when auth is required
    RequestStatus   /_forebay/requests/{id}: state, stored response, cancel
    Routing         which endpoint; strict mode's 404/405
    Admission       the consumer may call the endpoint (403); rate limits (429)
    Cache           cached GETs answered from memory; writes invalidate
    AsyncAccept     async endpoints: store durably, answer 202
    Forward         the origin exchange itself

This file is the only one that changes when a stage is added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forebay.gateway.accept import AsyncAccept
from forebay.gateway.auth import Authenticate
from forebay.gateway.cache import Cache
from forebay.gateway.errors import ErrorBoundary
from forebay.gateway.forward import Forward
from forebay.gateway.limits import RequestLimits
from forebay.gateway.observe import Observe
from forebay.gateway.ratelimit import Admission
from forebay.gateway.routing import Routing
from forebay.gateway.status import RequestStatus

if TYPE_CHECKING:
    from forebay.app import Runtime


def build_pipeline(runtime: Runtime) -> Any:
    settings = runtime.settings
    assert settings.origin is not None
    assert runtime.session is not None and runtime.store is not None
    assert runtime.writer is not None and runtime.limiter is not None
    limits = settings.limits
    request_limits = RequestLimits(
        None, int(limits.max_body), limits.max_header_bytes, limits.max_headers
    )
    app: Any = Forward(
        settings.origin, runtime.session, request_limits, settings.timeouts.read, runtime.limit
    )
    app = AsyncAccept(
        app,
        settings,
        runtime.store.requests,
        runtime.writer,
        runtime.dispatcher,
        request_limits,
    )
    if runtime.cache is not None:
        app = runtime.cache_stage = Cache(
            app,
            runtime.cache,
            int(settings.cache.max_entry),
            settings.async_.retry.max_age,
            runtime.breaker_open,
            catalog=runtime.catalog,
        )
    app = Admission(app, runtime.limiter, settings.rate_limits)
    app = Routing(app, runtime.catalog, settings.strict)
    app = RequestStatus(app, runtime.store.requests)
    app = Authenticate(app, runtime.keyring, settings.auth)
    request_limits.app = app
    app = ErrorBoundary(request_limits)
    # An access line is written at info: below that level, do not even build it.
    access = settings.log.access and settings.log.level in ("debug", "info")
    return Observe(app, runtime.capture, access)
