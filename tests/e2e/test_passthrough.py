"""Pass-through fidelity of the real `forebay` process in front of a real origin."""

from __future__ import annotations

import hashlib
import http.client
import socket

import pytest
from support.gateway import Gateway
from support.origin import LoopbackOrigin


def test_methods_bodies_and_status_pass_through(gateway: Gateway) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        body = b'{"n": 1}' if method in ("POST", "PUT", "PATCH") else None
        resp = gateway.request(method, "/echo/things/7?b=2&a=1", body=body)
        assert resp.status == 200, resp.body
        seen = resp.json()
        assert seen["method"] == method
        assert seen["path"] == "/echo/things/7"
        assert seen["query"] == "b=2&a=1"
        assert seen["body_len"] == (len(body) if body else 0)
        assert resp.headers["x-origin"] == "test"
        assert resp.headers["x-request-id"]


@pytest.mark.parametrize("code", [200, 201, 204, 301, 304, 400, 404, 409, 418, 500, 503])
def test_status_codes_are_relayed(gateway: Gateway, code: int) -> None:
    resp = gateway.request("GET", f"/status/{code}")
    assert resp.status == code
    if code not in (204, 304):
        assert resp.body == f"status {code}".encode()


def test_redirects_are_not_followed(gateway: Gateway) -> None:
    resp = gateway.request("GET", "/status/302")
    assert resp.status == 302


def test_head_has_headers_but_no_body(gateway: Gateway) -> None:
    resp = gateway.request("HEAD", "/bytes/1000")
    assert resp.status == 200
    assert resp.headers["content-length"] == "1000"
    assert resp.body == b""


def test_large_upload_streams_to_origin(gateway: Gateway, origin: LoopbackOrigin) -> None:
    body = hashlib.sha256(b"seed").digest() * (6 * 1024 * 1024 // 32)  # 6 MiB
    resp = gateway.request("POST", "/echo/upload", body=body)
    assert resp.status == 200
    seen = resp.json()
    assert seen["body_len"] == len(body)
    assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()
    # A known length is passed on as a length, not re-chunked.
    assert dict((k.lower(), v) for k, v in seen["headers"])["content-length"] == str(len(body))


def test_chunked_upload_streams_to_origin(gateway: Gateway) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    chunks = [bytes([i]) * 100_000 for i in range(30)]
    conn.request(
        "POST",
        "/echo/chunked",
        body=iter(chunks),
        encode_chunked=True,
        headers={"Transfer-Encoding": "chunked"},
    )
    resp = conn.getresponse()
    seen = __import__("json").loads(resp.read())
    conn.close()
    assert resp.status == 200
    assert seen["body_len"] == 3_000_000
    assert seen["body_sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()


@pytest.mark.parametrize("chunked", [False, True])
def test_large_download_streams_back(gateway: Gateway, chunked: bool) -> None:
    n = 8 * 1024 * 1024 + 123
    resp = gateway.request("GET", f"/bytes/{n}" + ("?chunked=1" if chunked else ""))
    assert resp.status == 200
    block = bytes(range(256)) * 256
    assert len(resp.body) == n
    assert resp.body == (block * (n // len(block) + 1))[:n]
    if chunked:
        assert resp.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in resp.headers


def test_hop_by_hop_headers_are_removed_both_ways(gateway: Gateway) -> None:
    resp = gateway.request(
        "GET",
        "/echo/h",
        headers={
            "Connection": "keep-alive, X-Client-Hop",
            "X-Client-Hop": "drop me",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "X-Custom": "kept",
            "Proxy-Authorization": "Basic eA==",
        },
    )
    sent = {k.lower(): v for k, v in resp.json()["headers"]}
    assert sent["x-custom"] == "kept"
    for name in ("x-client-hop", "keep-alive", "te", "proxy-authorization"):
        assert name not in sent
    # The origin's Connection-listed header is hop-by-hop too.
    assert "x-hop" not in resp.headers


def test_forwarding_headers_and_traceparent(gateway: Gateway) -> None:
    resp = gateway.request(
        "GET", "/echo/f", headers={"X-Forwarded-For": "203.0.113.9", "Host": "api.example.com"}
    )
    sent = {k.lower(): v for k, v in resp.json()["headers"]}
    assert sent["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert sent["x-forwarded-proto"] == "http"
    assert sent["x-forwarded-host"] == "api.example.com"
    assert sent["forwarded"] == 'for=127.0.0.1;proto=http;host="api.example.com"'
    started = sent["traceparent"]
    assert started.startswith("00-") and len(started) == 55

    kept = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    resp = gateway.request("GET", "/echo/f", headers={"traceparent": kept})
    sent = {k.lower(): v for k, v in resp.json()["headers"]}
    assert sent["traceparent"] == kept


@pytest.mark.parametrize(
    ("path", "origin_path"),
    [
        ("/echo/caf%C3%A9/na%20me", "/echo/café/na me"),
        ("/echo/a%2Fb", "/echo/a/b"),
        ("/echo/%E6%97%A5%E6%9C%AC", "/echo/日本"),
    ],
)
def test_encoded_paths_reach_the_origin_unchanged(
    gateway: Gateway, path: str, origin_path: str
) -> None:
    seen = gateway.request("GET", path).json()
    assert seen["raw_path"] == path
    assert seen["path"] == origin_path


def test_raw_utf8_in_request_target_is_refused(gateway: Gateway, origin: LoopbackOrigin) -> None:
    # RFC 9112 allows only ASCII in the request target; such a request is not forwarded.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall("GET /echo/café HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400")
    assert not [r for r in origin.requests if "caf" in r.path]


def test_keep_alive_connection_serves_many_requests(gateway: Gateway) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    for i in range(50):
        conn.request("GET", f"/echo/k/{i}")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read()
    conn.close()
