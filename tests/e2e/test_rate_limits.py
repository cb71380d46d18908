"""Rate limits through the real process: per consumer, per endpoint, per consumer and
endpoint, per anonymous address; 429 with Retry-After and the RateLimit headers; the
origin never sees a refused request; counters shared through Redis by two gateways;
Redis unreachable, failing open or closed."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

from support.gateway import Gateway, assert_problem, wait_until
from support.origin import LoopbackOrigin, closed_port
from support.redis import RedisServer

A = "alpha-key-0123456789"
B = "beta-key-0123456789ab"


def config(tmp_path: Path, rate_limits: str = '{anonymous: "2/m"}') -> str:
    path = tmp_path / f"forebay-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(
        f"""
consumers:
  - {{name: alpha, key: "{A}", rate_limit: "3/m"}}
  - {{name: beta, key: "{B}"}}
endpoints:
  "GET /echo/shared/{{x}}": {{rate_limit: "2/m"}}
  "GET /echo/each/{{x}}": {{consumer_rate_limit: "1/m"}}
rate_limits: {rate_limits}
"""
    )
    return str(path)


def key(k: str) -> dict[str, str]:
    return {"X-API-Key": k}


def test_a_consumer_limit_with_headers_then_429(
    gateway_factory: Callable[..., Gateway], tmp_path: Path, origin: LoopbackOrigin
) -> None:
    g = gateway_factory(config=config(tmp_path))
    ok = [g.request("GET", f"/echo/c/{i}", headers=key(A)) for i in range(3)]
    assert [r.status for r in ok] == [200, 200, 200]
    assert ok[0].headers["ratelimit-policy"] == '"consumer";q=3;w=60'
    assert [r.headers["ratelimit"].split(";")[1] for r in ok] == ["r=2", "r=1", "r=0"]
    refused = g.request("GET", "/echo/c/3", headers=key(A))
    body = assert_problem(refused, 429, "rate-limited")
    assert body["limit"] == "consumer"
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert re.fullmatch(r'"consumer";r=0;t=\d+', refused.headers["ratelimit"])
    assert "/echo/c/3" not in [r.path for r in origin.requests]
    # Another consumer has its own counter (and no limit at all).
    assert g.request("GET", "/echo/c/4", headers=key(B)).status == 200


def test_endpoint_limits_shared_and_per_consumer(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    g = gateway_factory(config=config(tmp_path))
    assert g.request("GET", "/echo/shared/1", headers=key(A)).status == 200
    assert g.request("GET", "/echo/shared/2", headers=key(B)).status == 200
    refused = g.request("GET", "/echo/shared/3", headers=key(B))
    assert assert_problem(refused, 429, "rate-limited")["limit"] == "endpoint"
    assert '"endpoint";q=2;w=60' in refused.headers["ratelimit-policy"]
    # Per consumer on the endpoint: each gets one.
    assert g.request("GET", "/echo/each/1", headers=key(A)).status == 200
    assert g.request("GET", "/echo/each/2", headers=key(B)).status == 200
    again = g.request("GET", "/echo/each/3", headers=key(B))
    assert assert_problem(again, 429, "rate-limited")["limit"] == "consumer-endpoint"
    # Anonymous clients: counted per address (the readiness probe was one of them).
    statuses = [g.request("GET", f"/echo/anon/{i}").status for i in range(3)]
    assert statuses in ([200, 429, 429], [429, 429, 429]), statuses
    assert_problem(g.request("GET", "/echo/anon/3"), 429, "rate-limited")
    assert g.request("GET", "/echo/anon/4", headers=key(B)).status == 200
    metrics = g.admin("GET", "/metrics").body.decode()
    assert 'forebay_rate_limited_total{limit="endpoint"} 1.0' in metrics
    assert 'forebay_rate_limited_total{limit="consumer-endpoint"} 1.0' in metrics


def test_two_gateways_share_the_counters_in_redis(
    gateway_factory: Callable[..., Gateway], tmp_path: Path, redis_server: RedisServer
) -> None:
    path = config(tmp_path, f"{{redis: '{redis_server.url}'}}")
    first = gateway_factory(config=path)
    second = gateway_factory(config=path, store=f"sqlite:///{tmp_path}/second.db")
    assert first.request("GET", "/echo/r/1", headers=key(A)).status == 200
    assert second.request("GET", "/echo/r/2", headers=key(A)).status == 200
    assert first.request("GET", "/echo/r/3", headers=key(A)).status == 200
    assert_problem(second.request("GET", "/echo/r/4", headers=key(A)), 429, "rate-limited")
    assert_problem(first.request("GET", "/echo/r/5", headers=key(A)), 429, "rate-limited")


def test_an_unreachable_redis_fails_open_by_default_and_closed_when_asked(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    open_ = gateway_factory(config=config(tmp_path), env={"FOREBAY_RATE_LIMITS__REDIS": dead})
    for i in range(5):  # past alpha's 3/m: nothing counts while Redis is away
        assert open_.request("GET", f"/echo/o/{i}", headers=key(A)).status == 200
    assert "rate-limit counters unreachable" in open_.output()
    metrics = open_.admin("GET", "/metrics").body.decode()
    assert re.search(r"forebay_rate_limit_backend_errors_total [1-9]", metrics)
    closed = gateway_factory(
        config=config(tmp_path),
        env={"FOREBAY_RATE_LIMITS__REDIS": dead, "FOREBAY_RATE_LIMITS__FAIL": "closed"},
    )
    refused = closed.request("GET", "/echo/x", headers=key(A))
    assert_problem(refused, 503, "rate-limit-unavailable")
    assert refused.headers["retry-after"] == "1"


def test_endpoint_limits_set_from_the_cli_and_the_admin_api(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    g = gateway_factory(config=config(tmp_path, "{}"))
    bad = g.cli("endpoints", "set", "GET", "/echo/each/{x}", "--rate-limit", "lots")
    assert bad.returncode == 2 and "is not a rate" in bad.stderr
    done = g.cli("endpoints", "set", "GET", "/echo/each/{x}", "--consumer-rate-limit", "off")
    assert done.returncode == 0, done.stderr
    done = g.cli("endpoints", "set", "GET", "/echo/each/{x}", "--rate-limit", "1/h")
    assert done.returncode == 0 and "limit 1/h" in done.stdout, done.stdout

    def limited() -> bool:
        return g.request("GET", "/echo/each/1", headers=key(B)).status == 429

    wait_until(limited, what="the new endpoint limit")
    eid = g.admin("GET", "/api/endpoints?q=/echo/each").json()[0]["id"]
    assert g.admin("PATCH", f"/api/endpoints/{eid}", {"rate_limit": "x"}).status == 422
    assert g.admin("PATCH", f"/api/endpoints/{eid}", {"rate_limit": None}).status == 200
    wait_until(
        lambda: g.request("GET", "/echo/each/2", headers=key(B)).status == 200,
        what="the limit to be gone",
    )
