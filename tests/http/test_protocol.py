"""The data plane's HTTP/1.1 protocol, on uvicorn's server, spoken to over raw sockets."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn

from forebay.http import HttpProtocol
from forebay.http.deadlines import ConnectionLimits

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the method, path, query and the whole request body."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = b"%s %s ?%s %d:" % (
        scope["method"].encode(),
        scope["path"].encode(),
        scope["query_string"],
        len(body),
    )
    answer = text + body
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(answer)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer})


class Server:
    def __init__(self, app: App, limits: ConnectionLimits | None = None, **options: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            http=functools.partial(HttpProtocol, limits=limits),
            lifespan="off",
            log_config=None,
            access_log=False,
            **options,
        )
        config.load()
        self.server = uvicorn.Server(config)
        self.server.lifespan = config.lifespan_class(config)  # as serve() sets it

    async def __aenter__(self) -> Server:
        await self.server.startup(sockets=[self.sock])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.shutdown(sockets=[self.sock])

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    pairs = (line.split(b":", 1) for line in lines[1:] if line)
    headers = {n.strip().lower(): v.strip() for n, v in pairs}
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = b""
    return status, headers, body


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with Server(echo) as s:
        yield s


async def test_keep_alive_serves_many_requests_on_one_connection(server: Server) -> None:
    reader, writer = await server.connect()
    for i in range(20):
        writer.write(b"POST /items/%d?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" % i)
        status, headers, body = await read_response(reader)
        assert (status, body) == (200, b"POST /items/%d ?x=1 3:abc" % i)
        assert b"connection" not in headers
    writer.close()


async def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(
        b"".join(
            b"POST /p/%d HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n%d" % (i, i % 10)
            for i in range(10)
        )
    )
    for i in range(10):
        _, _, body = await read_response(reader)
        assert body == b"POST /p/%d ? 1:%d" % (i, i % 10)
    writer.close()


async def test_chunked_request_body_is_reassembled(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(
        b"PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )
    _, _, body = await read_response(reader)
    assert body == b"PUT /c ? 7:abcdefg"
    writer.close()


async def test_large_body_arrives_whole_through_flow_control(server: Server) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, far over the read-pause mark
    reader, writer = await server.connect()
    writer.write(b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(payload))
    writer.write(payload)
    _, _, body = await read_response(reader)
    assert body == b"POST /big ? %d:" % len(payload) + payload
    writer.close()


async def test_expect_100_continue_is_answered_before_the_body(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(
        b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ok")
    _, _, body = await read_response(reader)
    assert body == b"POST /e ? 2:ok"
    writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",  # raw non-ASCII target
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",  # both framings: a smuggling attempt
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"G\x00T / HTTP/1.1\r\n\r\n",
    ],
)
async def test_malformed_requests_get_400_and_reach_no_app(
    server: Server, request_bytes: bytes
) -> None:
    reader, writer = await server.connect()
    writer.write(request_bytes)
    status, headers, body = await read_response(reader)
    assert status == 400
    assert headers[b"content-type"] == b"application/problem+json"
    problem = json.loads(body)
    assert problem["type"].endswith("/bad-request") and problem["status"] == 400
    assert problem["request_id"] == headers[b"x-request-id"].decode()
    assert b"/echo" not in body and b"POST /x" not in body
    assert await reader.read() == b""  # and the connection is closed
    writer.close()


async def test_connection_close_and_http_10_close_after_the_answer(server: Server) -> None:
    for request in (
        b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET /a HTTP/1.0\r\n\r\n",
    ):
        reader, writer = await server.connect()
        writer.write(request)
        status, headers, _ = await read_response(reader)
        assert status == 200 and headers[b"connection"] == b"close"
        assert await reader.read() == b""
        writer.close()


async def test_upgrade_is_served_as_plain_http_then_closed(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    status, headers, body = await read_response(reader)
    assert (status, body) == (200, b"GET /ws ? 0:")
    assert headers[b"connection"] == b"close"
    assert await reader.read() == b""
    writer.close()


async def test_head_answers_carry_no_body() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b"hello"})

    async with Server(app) as s:
        reader, writer = await s.connect()
        writer.write(b"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /h HTTP/1.1\r\nHost: a\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 5" in head
        status, _, body = await read_response(reader)  # the next answer follows at once
        assert (status, body) == (200, b"hello")
        writer.close()


async def test_streamed_answer_without_length_is_chunked() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async with Server(app) as s:
        reader, writer = await s.connect()
        writer.write(b"GET /s HTTP/1.1\r\nHost: a\r\n\r\n")
        _, headers, body = await read_response(reader)
        assert headers[b"transfer-encoding"] == b"chunked"
        assert body == b"one two three"
        writer.close()


async def test_header_with_a_line_break_is_never_written() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"x-injected", b"a\r\nset-cookie: evil=1")],
            }
        )

    async with Server(app) as s:
        reader, writer = await s.connect()
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert status == 500 and b"evil" not in body
        assert json.loads(body)["request_id"] == headers[b"x-request-id"].decode()
        writer.close()


async def test_app_error_before_the_answer_is_a_500_and_the_server_stays_up() -> None:
    calls = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        await echo(scope, receive, send)

    async with Server(app) as s:
        reader, writer = await s.connect()
        writer.write(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, _ = await read_response(reader)
        assert status == 500 and headers[b"connection"] == b"close"
        reader, writer = await s.connect()
        writer.write(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert (await read_response(reader))[0] == 200
        writer.close()


async def test_app_listening_for_disconnect_hears_it() -> None:
    got_request, heard = asyncio.Event(), asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.request"
        got_request.set()
        assert (await receive())["type"] == "http.disconnect"  # waits until the client leaves
        heard.set()

    async with Server(app) as s:
        _, writer = await s.connect()
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await asyncio.wait_for(got_request.wait(), 10)
        writer.close()
        await asyncio.wait_for(heard.wait(), 10)


async def test_idle_keep_alive_connection_is_closed_after_the_timeout() -> None:
    async with Server(echo, timeout_keep_alive=0.2) as s:
        reader, writer = await s.connect()
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert (await read_response(reader))[0] == 200
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        writer.close()


async def test_graceful_shutdown_finishes_the_answer_in_progress() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await echo(scope, receive, send)

    s = Server(app)
    await s.__aenter__()
    reader, writer = await s.connect()
    writer.write(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    await asyncio.wait_for(entered.wait(), 10)
    stopping = asyncio.create_task(s.__aexit__())  # asks every connection to finish up
    release.set()
    status, headers, body = await read_response(reader)
    assert (status, body) == (200, b"GET /slow ? 0:")
    assert headers[b"connection"] == b"close"
    await asyncio.wait_for(stopping, 10)


async def test_slow_headers_get_408_and_the_connection_closed() -> None:
    async with Server(echo, ConnectionLimits(header_timeout=0.2)) as s:
        reader, writer = await s.connect()
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")  # and never the rest
        status, headers, body = await asyncio.wait_for(read_response(reader), 10)
        assert status == 408 and headers[b"content-type"] == b"application/problem+json"
        assert b"request-timeout" in body
        assert await reader.read() == b""
        writer.close()


async def test_a_stalled_body_gets_408() -> None:
    async with Server(echo, ConnectionLimits(body_timeout=0.2)) as s:
        reader, writer = await s.connect()
        writer.write(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        status, _, _ = await asyncio.wait_for(read_response(reader), 10)
        assert status == 408
        writer.close()


async def test_connections_past_the_cap_get_503() -> None:
    async with Server(echo, ConnectionLimits(max_connections=2)) as s:
        held = [await s.connect() for _ in range(2)]
        reader, writer = await s.connect()
        status, headers, _ = await asyncio.wait_for(read_response(reader), 10)
        assert status == 503 and headers[b"retry-after"] == b"1"
        writer.close()
        r0, w0 = held[0]  # the ones inside are served as usual
        w0.write(b"GET /in HTTP/1.1\r\nHost: a\r\n\r\n")
        assert (await read_response(r0))[0] == 200
        for _, w in held:
            w.close()
