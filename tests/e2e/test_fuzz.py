"""A fuzz pass of the data plane over raw sockets: malformed and hostile requests.

Each gets a 4xx or a closed connection, the gateway stays up, and nothing ambiguous
reaches the origin: every hostile request targets a `/echo/fuzz-...` path, and the
origin's record must not hold any of them."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.gateway import Gateway
from support.origin import LoopbackOrigin

H = b"Host: fuzz\r\n"
CRLF2 = b"\r\n\r\n"


def exchange(port: int, data: bytes, shut: bool = False, timeout: float = 5.0) -> bytes:
    """Send raw bytes; everything the gateway answers until it closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-send: what it said is still readable, or nothing
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def statuses(answer: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]


CASES: dict[str, bytes] = {
    "bad-method": b"FOO /echo/fuzz-method HTTP/1.1\r\n" + H + b"\r\n",
    "lowercase-method": b"get /echo/fuzz-lower HTTP/1.1\r\n" + H + b"\r\n",
    "garbage": b"\x00\x01\x02\xffnot http at all\r\n\r\n",
    "bad-version": b"GET /echo/fuzz-version HTTP/9.9\r\n" + H + b"\r\n",
    "many-headers": b"GET /echo/fuzz-many HTTP/1.1\r\n"
    + H
    + b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
    + b"\r\n",
    "huge-header": b"GET /echo/fuzz-huge HTTP/1.1\r\n"
    + H
    + b"X-Big: "
    + b"a" * 200_000
    + b"\r\n\r\n",
    "huge-target": b"GET /echo/fuzz-target" + b"/a" * 100_000 + b" HTTP/1.1\r\n" + H + b"\r\n",
    "huge-content-length": b"POST /echo/fuzz-cl-huge HTTP/1.1\r\n"
    + H
    + b"Content-Length: 99999999999999999999999999\r\n\r\nabc",
    "negative-content-length": b"POST /echo/fuzz-cl-neg HTTP/1.1\r\n"
    + H
    + b"Content-Length: -1\r\n\r\n",
    "non-numeric-content-length": b"POST /echo/fuzz-cl-nan HTTP/1.1\r\n"
    + H
    + b"Content-Length: 1e3\r\n\r\n",
    "cl-cl-different": b"POST /echo/fuzz-clcl HTTP/1.1\r\n"
    + H
    + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl-te": b"POST /echo/fuzz-clte HTTP/1.1\r\n"
    + H
    + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"0\r\n\r\nGET /echo/fuzz-smuggled HTTP/1.1\r\n"
    + H
    + b"\r\n",
    "te-cl": b"POST /echo/fuzz-tecl HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    + b"8\r\nSMUGGLED\r\n0\r\n\r\n",
    "te-obfuscated": b"POST /echo/fuzz-te-x HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-space-before-colon": b"POST /echo/fuzz-te-sp HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te-chunked-not-last": b"POST /echo/fuzz-te-order HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "bad-chunk-size": b"POST /echo/fuzz-chunk HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": b"POST /echo/fuzz-chunk-big HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n",
    "chunk-without-crlf": b"POST /echo/fuzz-chunk-crlf HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "non-utf8-path": b"GET /echo/fuzz-\xff\xfe\xfd HTTP/1.1\r\n" + H + b"\r\n",
    "nul-in-header": b"GET /echo/fuzz-nul HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
    "space-in-header-name": b"GET /echo/fuzz-name HTTP/1.1\r\n" + H + b"X Foo: bar\r\n\r\n",
    "bare-lf-and-cr": b"GET /echo/fuzz-cr HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n",
    "obs-fold": b"GET /echo/fuzz-fold HTTP/1.1\r\n" + H + b"X-Fold: a\r\n  b\r\n\r\n",
}


@pytest.fixture(scope="module")
def g(module_gateway_factory: Callable[..., Gateway]) -> Iterator[Gateway]:
    # Short header and keep-alive timeouts: the slow-loris case is cut off, and the raw
    # exchanges (which read until the gateway closes) end, in seconds rather than ten.
    gw = module_gateway_factory(
        env={"FOREBAY_LIMITS__HEADER_TIMEOUT": "2", "FOREBAY_LIMITS__KEEP_ALIVE": "1"}
    )
    yield gw
    assert gw.proc is not None and gw.proc.poll() is None, "the gateway died"


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_requests_get_a_4xx_or_a_close_and_are_never_forwarded(
    g: Gateway, module_origin: LoopbackOrigin, name: str
) -> None:
    answer = exchange(g.port, CASES[name])
    got = statuses(answer)
    assert all(400 <= s < 500 for s in got), (name, answer[:300])
    assert len(got) <= 1, (name, answer[:300])  # nothing smuggled behind it was answered
    leaked = [r.path for r in module_origin.requests if r.path.startswith("/echo/fuzz")]
    assert leaked == [], (name, leaked)
    assert g.request("GET", "/echo/alive").status == 200


def test_a_body_shorter_than_its_content_length_is_never_forwarded(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    for size, sent in ((100, 10), (1_000_000, 300_000)):
        head = b"POST /echo/fuzz-short-%d HTTP/1.1\r\n" % size + H
        answer = exchange(g.port, head + b"Content-Length: %d\r\n\r\n" % size + b"x" * sent, True)
        assert all(400 <= s < 500 for s in statuses(answer)), answer[:300]
        seen = [r for r in module_origin.requests if r.path == f"/echo/fuzz-short-{size}"]
        assert all(r.body_len == size for r in seen), [r.body_len for r in seen]
    assert g.request("GET", "/echo/alive").status == 200


def test_a_broken_chunked_body_is_never_forwarded_whole(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    head = b"POST /echo/fuzz-chunk-cut HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
    answer = exchange(g.port, head + b"5\r\nhello\r\n5\r\nwor", shut=True)
    assert all(400 <= s < 500 for s in statuses(answer)), answer[:300]
    # The origin may have seen the start of a stream, never a complete request.
    seen = [r for r in module_origin.requests if r.path == "/echo/fuzz-chunk-cut"]
    assert seen == [], seen
    assert g.request("GET", "/echo/alive").status == 200


_token = st.text(st.sampled_from("GETPOSTabc/ -:\t\x00\x7f\xff%?#"), max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=_token,
    target=_token,
    version=st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.", "HTTP/2.0", "", "http/1.1"]),
    headers=st.lists(st.tuples(_token, _token), max_size=8),
)
def test_random_request_heads_never_crash_the_gateway(
    g: Gateway,
    module_origin: LoopbackOrigin,
    method: str,
    target: str,
    version: str,
    headers: list[tuple[str, str]],
) -> None:
    line = f"{method} /echo/fuzz-r{target} {version}\r\n".encode("latin-1", "replace")
    head = line + H + b"".join(f"{n}: {v}\r\n".encode("latin-1", "replace") for n, v in headers)
    answer = exchange(g.port, head + b"\r\n", timeout=3.0)
    for status in statuses(answer):
        assert status < 500, answer[:300]
    assert g.request("GET", "/echo/alive").status == 200


def test_a_client_that_never_finishes_its_headers_is_cut_off(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    started = time.monotonic()
    answer = exchange(g.port, b"GET /echo/fuzz-slowloris HTTP/1.1\r\n" + H + b"X-A: ", timeout=30)
    assert time.monotonic() - started < 29, "never cut off"
    assert statuses(answer) in ([], [408]), answer[:300]
    if answer:
        assert b"application/problem+json" in answer and b"request-timeout" in answer
    assert not [r for r in module_origin.requests if r.path == "/echo/fuzz-slowloris"]
