"""What a client sees when the origin fails or the request breaks a limit."""

from __future__ import annotations

from pathlib import Path

from support.gateway import Gateway
from support.origin import closed_port


def assert_problem(resp, status: int, slug: str) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status == status, resp.body
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + slug)
    assert body["title"] and body["detail"]
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


def test_refused_origin_is_502(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    g: Gateway = gateway_factory(origin_url=f"http://127.0.0.1:{closed_port()}")
    body = assert_problem(g.request("GET", "/anything"), 502, "origin-unreachable")
    assert "Could not connect" in body["detail"]


def test_slow_origin_is_504(gateway_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g: Gateway = gateway_factory(env={"FOREBAY_TIMEOUTS__READ": "0.3"})
    body = assert_problem(g.request("GET", "/slow/5"), 504, "origin-timeout")
    assert "0.3" in body["detail"]


def test_origin_dropping_the_connection_is_502(gateway: Gateway) -> None:
    assert_problem(gateway.request("GET", "/drop"), 502, "origin-bad-response")


def test_declared_body_over_the_limit_is_413(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    g: Gateway = gateway_factory(env={"FOREBAY_LIMITS__MAX_BODY": "1000"})
    body = assert_problem(g.request("POST", "/echo/x", body=b"x" * 1001), 413, "body-too-large")
    assert body["max_body"] == 1000
    assert g.request("POST", "/echo/x", body=b"x" * 1000).status == 200


def test_chunked_body_over_the_limit_is_413(gateway_factory, origin) -> None:  # type: ignore[no-untyped-def]
    import http.client

    g: Gateway = gateway_factory(env={"FOREBAY_LIMITS__MAX_BODY": "300000"})
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=30)
    conn.request(
        "POST",
        "/echo/big",
        body=iter([b"y" * 100_000] * 5),
        encode_chunked=True,
        headers={"Transfer-Encoding": "chunked"},
    )
    resp = conn.getresponse()
    assert resp.status == 413
    assert resp.headers["content-type"] == "application/problem+json"
    conn.close()


def test_too_many_headers_is_431(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    g: Gateway = gateway_factory(env={"FOREBAY_LIMITS__MAX_HEADERS": "20"})
    headers = {f"X-H{i}": "v" for i in range(30)}
    assert_problem(g.request("GET", "/echo/h", headers=headers), 431, "headers-too-large")


def test_strict_mode_rejects_unknown_paths(gateway_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "forebay.yaml"
    config.write_text('strict: true\nendpoints:\n  "GET /echo/known": {managed: true}\n')
    g: Gateway = gateway_factory(config=str(config))
    assert g.request("GET", "/echo/known").status == 200
    assert_problem(g.request("GET", "/echo/unknown"), 404, "no-such-endpoint")
    resp = g.request("POST", "/echo/known")
    assert_problem(resp, 405, "method-not-allowed")
    assert resp.headers["allow"] == "GET"
