"""Slow clients and too many connections, through the real process and its settings."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from support.gateway import Gateway
from support.origin import LoopbackOrigin

CONFIG = """
limits: {header_timeout: 0.5, body_timeout: 0.5, keep_alive: 0.5, max_connections: 3}
"""


@pytest.fixture
def g(gateway_factory: Callable[..., Gateway], tmp_path: Path) -> Gateway:
    config = tmp_path / "forebay.yaml"
    config.write_text(CONFIG)
    return gateway_factory(config=str(config))


def read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_a_stalled_body_gets_408_and_is_not_forwarded(g: Gateway, origin: LoopbackOrigin) -> None:
    with socket.create_connection(("127.0.0.1", g.port), timeout=10) as s:
        s.sendall(b"POST /echo/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        answer = read_all(s)  # the server closes after its answer
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request-timeout" in answer
    assert not [r for r in origin.requests if r.path == "/echo/stalled"]


def test_idle_connections_are_closed_after_the_keep_alive_setting(g: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", g.port), timeout=10) as s:
        s.sendall(b"GET /echo/idle HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_all(s)  # one answer, then the close after 0.5 s of silence
    assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"HTTP/1.1") == 1


def test_connections_past_the_cap_get_503_while_the_others_are_served(g: Gateway) -> None:
    held = []
    try:
        # The readiness probe's connection may still be closing: fill the cap until refused.
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
            s.sendall(b"GET /echo/held HTTP/1.1\r\nHost: x\r\n\r\n")
            first = s.recv(65536)
            if first.startswith(b"HTTP/1.1 503"):
                assert b"too-many-connections" in first + read_all(s)
                s.close()
                break
            assert first.startswith(b"HTTP/1.1 200"), first[:100]
            held.append(s)
        else:
            raise AssertionError("four connections were all let in with a cap of three")
        held[0].sendall(b"GET /echo/again HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held[0].recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for s in held:
            s.close()
