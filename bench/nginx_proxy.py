"""The setup `bench.proxy` and `bench.cache` share: an nginx origin answering every path with
the same small JSON body, and an nginx reverse proxy in front of it (a keep-alive upstream pool,
HTTP/1.1 to the origin), each scenario adding its own lines to the proxy's location.

The proxy under test gets CPU 0 to itself; the origin and wrk share CPU 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import LOOPBACK, Service, Services, free_port, start_nginx

PROXY_CPU = 0  # the proxy under test, alone
LOAD_CPU = 1  # the origin and wrk

PATH = "/v1/items/42"
BODY = '{"id":42,"name":"widget","price":9.99,"in_stock":true,"qty":7}'

ORIGIN_HTTP = """
server {{
    listen {host}:{port} backlog=4096;
    location / {{
        default_type application/json;
        return 200 '{body}';
    }}
}}
"""

PROXY_HTTP = """
{preamble}upstream origin {{
    server {host}:{origin_port};
    keepalive 128;
    keepalive_requests 1000000;
}}
server {{
    listen {host}:{port} backlog=4096;
    location / {{
        proxy_pass http://origin;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
{location}
    }}
}}
"""


def proxy_http(port: int, origin_port: int, location: Sequence[str], preamble: str = "") -> str:
    """The proxy's `http` block: `preamble` before the upstream, `location` lines appended to
    the proxying location."""
    return PROXY_HTTP.format(
        host=LOOPBACK,
        port=port,
        origin_port=origin_port,
        preamble=preamble,
        location="\n".join(" " * 8 + line for line in location),
    )


def start_origin(services: Services) -> tuple[int, Service]:
    """The origin (nginx on the load CPU); its port and its service."""
    port = free_port()
    server = start_nginx(
        services,
        "origin",
        ORIGIN_HTTP.format(host=LOOPBACK, port=port, body=BODY),
        port=port,
        cpu=LOAD_CPU,
    )
    return port, server


def start_proxy(
    services: Services,
    name: str,
    origin_port: int,
    location: Sequence[str],
    preamble: str = "",
) -> tuple[int, Service]:
    """An nginx proxy in front of the origin, on the proxy CPU; its port and its service."""
    port = free_port()
    server = start_nginx(
        services,
        name,
        proxy_http(port, origin_port, location, preamble),
        port=port,
        cpu=PROXY_CPU,
    )
    return port, server
