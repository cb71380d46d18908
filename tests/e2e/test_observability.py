"""Access logs, error capture and gateway-made answers through the real process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.gateway import Gateway, assert_problem, wait_until
from support.origin import closed_port

KEY = "observer-key-0123456789"
CONFIG = f"""
auth: {{query: api_key}}
consumers: [{{name: watcher, key: "{KEY}"}}]
endpoints:
  "GET /echo/cached/{{x}}": {{managed: true, cache: {{ttl: 300}}}}
  "GET /status/{{code}}": {{}}
errors: {{keep: 2, body_bytes: 6}}
"""


def start(factory: Callable[..., Gateway], tmp_path: Path, **kw: Any) -> Gateway:
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(CONFIG)
    return factory(config=str(path), **kw)


def access_lines(g: Gateway) -> list[dict[str, Any]]:
    out = []
    for line in g.output().splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("event") == "request":
                out.append(doc)
    return out


def test_one_json_access_line_per_request_with_every_field(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    g = start(gateway_factory, tmp_path)
    path = f"/echo/cached/{uuid.uuid4().hex[:6]}"
    ids = [
        g.request("GET", path, headers={"X-API-Key": KEY}).headers["x-request-id"] for _ in range(2)
    ]

    def logged() -> list[dict[str, Any]]:
        return [d for d in access_lines(g) if d["request_id"] in ids]

    lines = wait_until(lambda: len(logged()) == 2 and logged(), what="two access lines")
    first, second = sorted(lines, key=lambda d: ids.index(d["request_id"]))
    for d in (first, second):
        assert d["consumer"] == "watcher" and d["endpoint"] == "GET /echo/cached/{x}"
        assert d["method"] == "GET" and d["path"] == path and d["status"] == 200
        assert d["bytes"] > 0 and d["latency_ms"] > 0 and d["level"] == "info"
        assert d["timestamp"].endswith("Z") and "async_id" in d
    assert first["cache"] == "miss" and first["origin_ms"] > 0
    assert second["cache"] == "hit" and second["origin_ms"] is None


def test_log_level_and_console_format_are_settings(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    quiet = start(gateway_factory, tmp_path, env={"FOREBAY_LOG__LEVEL": "warning"})
    rid = quiet.request("GET", "/echo/q").headers["x-request-id"]
    assert rid not in quiet.output()
    console = start(gateway_factory, tmp_path, env={"FOREBAY_LOG__FORMAT": "console"})
    rid = console.request("GET", "/echo/c").headers["x-request-id"]
    wait_until(lambda: rid in console.output(), what="the console access line")
    line = next(x for x in console.output().splitlines() if rid in x)
    assert not line.startswith("{") and "request" in line and "status=200" in line


def test_origin_errors_are_captured_redacted_and_capped_per_endpoint(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    g = start(gateway_factory, tmp_path)
    secret = {"Authorization": "Bearer origin-token-xyz", "Cookie": "session=abc", "X-Keep": "1"}
    for code in (500, 502, 503):
        resp = g.request("GET", f"/status/{code}?api_key={KEY}&n={code}", headers=secret)
        assert resp.status == code
    errors = g.admin("GET", "/api/errors?endpoint=GET%20/status/%7Bcode%7D")
    assert errors.status == 200, errors.body
    rows = errors.json()
    assert [r["status"] for r in rows] == [503, 502]  # keep: 2, newest first
    top = rows[0]
    assert top["kind"] == "origin-error" and top["consumer"] == "watcher"
    assert top["response_body"] == "status"  # body_bytes: 6
    assert top["query"] == "n=503"  # the key was stripped before the origin; never kept
    headers = {k.lower(): v for k, v in top["request_headers"]}
    assert headers["authorization"] == "[redacted]" and headers["cookie"] == "[redacted]"
    assert headers["x-keep"] == "1"
    assert top["request_id"] and top["origin_ms"] is not None
    text = errors.body.decode()
    assert KEY not in text and "origin-token-xyz" not in text and "session=abc" not in text
    by_id = g.admin("GET", f"/api/endpoints/{top['endpoint_id']}/errors").json()
    assert [r["request_id"] for r in by_id] == [r["request_id"] for r in rows]
    assert g.request("GET", "/status/404").status == 404  # client errors are not captured
    assert g.admin("GET", "/api/errors").json()[0]["status"] == 503
    assert g.admin("DELETE", "/api/errors").status == 204
    assert g.admin("GET", "/api/errors").json() == []


def test_origin_failures_are_captured_as_gateway_problems(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    g = start(gateway_factory, tmp_path, origin_url=f"http://127.0.0.1:{closed_port()}")
    resp = g.request("GET", "/echo/down", headers={"Cookie": "c=1"})
    body = assert_problem(resp, 502, "origin-unreachable")
    rows = g.admin("GET", "/api/errors?endpoint=unmatched").json()
    assert rows[0]["kind"] == "origin-unreachable" and rows[0]["status"] == 502
    assert rows[0]["request_id"] == body["request_id"] and rows[0]["endpoint"] == "unmatched"
    metrics = g.admin("GET", "/metrics").body.decode()
    assert 'forebay_errors_captured_total{kind="origin-unreachable"}' in metrics


def test_admin_api_errors_are_problems_with_a_request_id(gateway: Gateway) -> None:
    for resp in (
        gateway.admin("GET", "/api/consumers", token=None),
        gateway.admin("GET", "/api/consumers/nobody"),
        gateway.admin("POST", "/api/consumers", {"name": "bad name"}),
    ):
        assert resp.headers["content-type"] == "application/problem+json"
        body = resp.json()
        assert body["request_id"] == resp.headers["x-request-id"] and body["title"]
