"""The admin listener and the catalog's life across restarts, through the real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.gateway import Gateway, wait_until

SPEC = """openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /echo/orders:
    post: {responses: {"202": {description: ok}}}
    get: {responses: {"200": {description: ok}}}
  /echo/orders/{id}:
    get: {responses: {"200": {description: ok}}}
"""


def write_spec(tmp_path: Path, text: str = SPEC) -> Path:
    spec = tmp_path / "openapi.yaml"
    spec.write_text(text)
    return spec


def test_health_metrics_and_auth(gateway: Gateway) -> None:
    assert gateway.admin("GET", "/healthz", token=None).json()["status"] == "ok"
    for path in ("/metrics", "/api/endpoints", "/api/openapi.json"):
        denied = gateway.admin("GET", path, token=None)
        assert denied.status == 401, path
        assert denied.headers["content-type"] == "application/problem+json"
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert gateway.admin("GET", path, token="wrong").status == 401
    gateway.request("GET", "/echo/counted")
    text = gateway.admin("GET", "/metrics").body.decode()
    assert 'forebay_requests_total{endpoint="unmatched",method="GET",status="200"} 1.0' in text
    assert "forebay_origin_latency_seconds_bucket" in text
    doc = gateway.admin("GET", "/api/openapi.json").json()
    assert "/api/endpoints" in doc["paths"] and "/api/endpoints/{endpoint_id}" in doc["paths"]


def test_toggle_through_admin_api_survives_restart(gateway_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(tmp_path)
    g: Gateway = gateway_factory("--import", str(spec))
    rows = g.admin("GET", "/api/endpoints?method=POST").json()
    assert [r["path"] for r in rows] == ["/echo/orders"]
    changed = g.admin("PATCH", f"/api/endpoints/{rows[0]['id']}", {"managed": True, "async": True})
    assert changed.status == 200 and changed.json()["policy"]["async"] is True
    assert g.admin("PATCH", f"/api/endpoints/{rows[0]['id']}", {"asink": True}).status == 422
    assert g.admin("GET", "/api/endpoints/ep_nope").status == 404
    # Requests are labelled with the endpoint they matched.
    g.request("GET", "/echo/orders/5")
    metrics = g.admin("GET", "/metrics").body.decode()
    assert 'endpoint="GET /echo/orders/{id}"' in metrics
    assert g.stop() == 0

    # Restarted with the same store and a re-import of the same spec: the choice stands.
    g2: Gateway = gateway_factory("--import", str(spec))
    async_ = g2.admin("GET", "/api/endpoints?state=async").json()
    assert [(r["method"], r["path"], r["policy_source"]) for r in async_] == [
        ("POST", "/echo/orders", "user")
    ]


def test_bulk_update_filters(gateway_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g: Gateway = gateway_factory("--import", str(write_spec(tmp_path)))
    resp = g.admin(
        "PATCH", "/api/endpoints?method=GET&q=orders", {"managed": True, "cache": {"ttl": 5}}
    )
    assert resp.json()["changed"] == 2
    cached = g.admin("GET", "/api/endpoints?state=cached").json()
    assert sorted(r["path"] for r in cached) == ["/echo/orders", "/echo/orders/{id}"]
    assert g.admin("GET", "/api/endpoints?state=unmanaged").json()[0]["method"] == "POST"


def test_cli_change_reaches_running_gateway(gateway_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g: Gateway = gateway_factory("--import", str(write_spec(tmp_path)))
    store = f"sqlite:///{tmp_path}/forebay.db"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "forebay",
            "endpoints",
            "set",
            "GET",
            "/echo/orders/{id}",
            "--cache",
            "30",
            "--store",
            store,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "managed, cache 30s" in out

    def seen() -> bool:
        rows = g.admin("GET", "/api/endpoints?state=cached").json()
        return [r["path"] for r in rows] == ["/echo/orders/{id}"]

    wait_until(seen, what="the CLI change to show in the admin API")
    listing = subprocess.run(
        [sys.executable, "-m", "forebay", "endpoints", "list", "--json", "--store", store],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {(e["method"], e["path"]) for e in json.loads(listing)} == {
        ("GET", "/echo/orders"),
        ("POST", "/echo/orders"),
        ("GET", "/echo/orders/{id}"),
    }


def test_reimport_of_changed_spec_marks_vanished(gateway_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(tmp_path)
    g: Gateway = gateway_factory("--import", str(spec))
    assert len(g.admin("GET", "/api/endpoints").json()) == 3
    g.stop()
    write_spec(
        tmp_path,
        SPEC.replace(
            '  /echo/orders/{id}:\n    get: {responses: {"200": {description: ok}}}\n',
            '  /echo/new:\n    delete: {responses: {"204": {description: ok}}}\n',
        ),
    )
    g2: Gateway = gateway_factory("--import", str(spec))
    rows = {f"{r['method']} {r['path']}": r for r in g2.admin("GET", "/api/endpoints").json()}
    assert rows["GET /echo/orders/{id}"]["vanished"] is True
    assert rows["DELETE /echo/new"]["vanished"] is False
