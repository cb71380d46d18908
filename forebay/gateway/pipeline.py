"""The data plane, built in one place. Requests flow through the stages top to bottom:

    ErrorBoundary   no exception reaches the client as anything but a problem body
    Observe         metrics for every exchange
    RequestLimits   header count and size, declared body size
    Routing         which endpoint; strict mode's 404/405
    Forward         the origin exchange itself

Later stages (auth, rate limits, cache, async accept) slot in between Routing and
Forward; this file is the only one that changes when they do.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from forebay.gateway.errors import ErrorBoundary
from forebay.gateway.forward import Forward
from forebay.gateway.limits import RequestLimits
from forebay.gateway.observe import Observe
from forebay.gateway.routing import CatalogRef, Routing
from forebay.settings import Settings


def build_pipeline(settings: Settings, catalog: CatalogRef, session: aiohttp.ClientSession) -> Any:
    assert settings.origin is not None
    limits = settings.limits
    request_limits = RequestLimits(
        None, int(limits.max_body), limits.max_header_bytes, limits.max_headers
    )
    app: Any = Forward(settings.origin, session, request_limits, settings.timeouts.read)
    app = Routing(app, catalog, settings.strict)
    request_limits.app = app
    app = Observe(request_limits)
    return ErrorBoundary(app)
