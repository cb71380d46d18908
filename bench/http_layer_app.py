"""The servers `bench.http_layer` measures: `python -m bench.http_layer_app KIND PORT`.

KIND is `httptools` (uvicorn's protocol), `forebay` (the data plane's) or `raw` (no ASGI:
a constant 202 straight from the parser's callback).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httptools
import uvicorn
import uvloop

from forebay.http import HttpProtocol

BODY = b'{"id":"06h2oll8p7gm5ro1aunmuvn1inag8ce16f50","status":"queued"}'
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
    (b"location", b"/_forebay/requests/06h2oll8p7gm5ro1aunmuvn1inag8ce16f50"),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


RAW_ANSWER = (
    b"HTTP/1.1 202 Accepted\r\n" + b"".join(b"%s: %s\r\n" % h for h in HEADERS) + b"\r\n" + BODY
)


class RawProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.transport.write(RAW_ANSWER)


async def serve_raw(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(RawProtocol, "127.0.0.1", port)
    await server.serve_forever()


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "raw":
        uvloop.run(serve_raw(port))
        return
    http: Any = HttpProtocol if kind == "forebay" else "httptools"
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=http,
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
