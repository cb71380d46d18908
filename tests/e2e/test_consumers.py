"""Consumers and API keys through the real process: 401/403, where keys come from, what
the origin sees of them, isolation of one consumer's requests and cached answers from
another's, and keys managed from the CLI, the admin API and the config file."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from support.gateway import Gateway, assert_problem, wait_until
from support.origin import LoopbackOrigin

ALPHA = "alpha-key-0123456789"
BETA = "beta-key-0123456789ab"

CONFIG = f"""
auth: {{required: true, forward: consumer, header: x-token, query: api_key}}
consumers:
  - {{name: alpha, key: "{ALPHA}"}}
  - {{name: beta, key: "{BETA}", endpoints: ["GET /echo/{{a}}", "* /rec/**"]}}
endpoints:
  "GET /echo/{{a}}": {{managed: true, cache: {{ttl: 300}}}}
  "POST /rec/{{a}}": {{managed: true, async: true}}
async:
  retry: {{base: 0.05, cap: 0.2}}
"""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def g(
    module_gateway_factory: Callable[..., Gateway], tmp_path_factory: pytest.TempPathFactory
) -> Gateway:
    config: Path = tmp_path_factory.mktemp("config") / "forebay.yaml"
    config.write_text(CONFIG)
    return module_gateway_factory(config=str(config))


def seen_headers(resp_body: bytes) -> dict[str, str]:
    return {k.lower(): v for k, v in json.loads(resp_body)["headers"]}


def test_missing_and_unknown_keys_get_401_with_a_challenge(g: Gateway) -> None:
    resp = g.request("GET", "/echo/x")
    assert_problem(resp, 401, "missing-api-key")
    assert resp.headers["www-authenticate"].startswith("Bearer")
    for headers in (bearer("not-a-known-key-at-all"), {"X-API-Key": "fb_000000000000_nope"}):
        resp = g.request("GET", "/echo/x", headers=headers)
        assert_problem(resp, 401, "invalid-api-key")
        assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    # Not a bearer credential: no key.
    assert g.request("GET", "/echo/x", headers={"Authorization": f"Basic {ALPHA}"}).status == 401


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        (bearer(ALPHA), ""),
        ({"X-API-Key": ALPHA}, ""),
        ({"X-Token": ALPHA}, ""),
        ({}, f"?api_key={ALPHA}&keep=1"),
    ],
)
def test_keys_from_every_place_and_the_origin_sees_the_consumer_not_the_key(
    g: Gateway, headers: dict[str, str], query: str
) -> None:
    forged = {"X-Forebay-Consumer": "beta"}
    resp = g.request("POST", f"/echo/keys{query}", body=b"{}", headers=headers | forged)
    assert resp.status == 200, resp.body
    seen = seen_headers(resp.body)
    assert seen["x-forebay-consumer"] == "alpha"  # the forged one is gone
    assert "authorization" not in seen and "x-api-key" not in seen and "x-token" not in seen
    body = json.loads(resp.body)
    assert ALPHA not in json.dumps(body)
    if query:
        assert body["query"] == "keep=1"


def test_a_consumer_limited_to_endpoints_gets_403_elsewhere(g: Gateway) -> None:
    assert g.request("GET", "/echo/b1", headers=bearer(BETA)).status == 200
    resp = g.request("POST", "/echo/b1", body=b"{}", headers=bearer(BETA))
    body = assert_problem(resp, 403, "consumer-forbidden")
    assert "beta" in body["detail"]
    assert_problem(g.request("GET", "/status/200", headers=bearer(BETA)), 403, "consumer-forbidden")
    assert g.request("GET", "/status/200", headers=bearer(ALPHA)).status == 200


def test_one_consumer_cannot_read_cancel_or_replay_anothers_requests(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    origin = module_origin
    path = f"/rec/iso-{uuid.uuid4().hex[:8]}"
    headers = {**bearer(ALPHA), "Idempotency-Key": "k-" + path}
    first = g.request("POST", path, body=b'{"n": 1}', headers=headers)
    assert first.status == 202, first.body
    rid = first.json()["id"]
    status_url = f"/_forebay/requests/{rid}"
    for method, url in (
        ("GET", status_url),
        ("DELETE", status_url),
        ("GET", status_url + "/response"),
    ):
        assert_problem(g.request(method, url, headers=bearer(BETA)), 404, "no-such-request")
        assert_problem(g.request(method, url), 401, "missing-api-key")
    # Beta's request with alpha's idempotency key is beta's own, not a replay of alpha's.
    other = g.request("POST", path, body=b'{"n": 1}', headers={**headers, **bearer(BETA)})
    assert other.status == 202 and other.json()["id"] != rid
    # Alpha's repeat is the replay.
    again = g.request("POST", path, body=b'{"n": 1}', headers=headers)
    assert again.headers["idempotency-replayed"] == "true"
    assert rid in (again.headers["location"] or again.headers["content-location"])
    assert "idempotency-replayed" not in other.headers

    def done() -> bool:
        doc = g.request("GET", status_url, headers=bearer(ALPHA)).json()
        return bool(doc["status"] == "succeeded")

    wait_until(done, what="alpha's request to be delivered")
    assert g.request("GET", status_url + "/response", headers=bearer(ALPHA)).status == 200
    assert g.request("GET", status_url + "/response", headers=bearer(BETA)).status == 404
    delivered = [d for d in origin.recorded(path)]
    assert {d.headers["x-forebay-consumer"] for d in delivered} == {"alpha", "beta"}
    assert all("authorization" not in d.headers for d in delivered)


def test_a_private_cached_answer_is_never_served_to_another_consumer(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    origin = module_origin
    path = f"/echo/c{uuid.uuid4().hex[:8]}"
    a1 = g.request("GET", path, headers=bearer(ALPHA))
    a2 = g.request("GET", path, headers=bearer(ALPHA))
    assert "hit" in a2.headers["cache-status"] and a2.body == a1.body
    b1 = g.request("GET", path, headers=bearer(BETA))
    assert b1.status == 200 and "hit" not in b1.headers["cache-status"]
    assert seen_headers(b1.body)["x-forebay-consumer"] == "beta"
    b2 = g.request("GET", path, headers=bearer(BETA))
    assert "hit" in b2.headers["cache-status"]
    assert seen_headers(b2.body)["x-forebay-consumer"] == "beta"
    assert len([r for r in origin.requests if r.path == path]) == 2


def test_keys_made_and_revoked_from_the_cli_take_effect_at_once(g: Gateway) -> None:
    name = "cli-" + uuid.uuid4().hex[:6]
    made = g.cli("consumers", "create", name, "--label", "laptop")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("fb_") and "not shown again" in made.stderr
    wait_until(
        lambda: g.request("GET", "/echo/k", headers=bearer(key)).status == 200,
        what="the new key to work",
    )
    listed = g.cli("consumers", "list", "--json")
    assert key not in listed.stdout and key[16:] not in listed.stdout
    record = next(c for c in json.loads(listed.stdout) if c["name"] == name)
    assert record["keys"][0]["label"] == "laptop" and "digest" not in record["keys"][0]
    revoked = g.cli("consumers", "revoke", record["keys"][0]["id"])
    assert revoked.returncode == 0, revoked.stderr
    wait_until(
        lambda: g.request("GET", "/echo/k", headers=bearer(key)).status == 401,
        what="the revoked key to be refused",
    )
    assert g.cli("consumers", "revoke", record["keys"][0]["id"]).returncode == 1


def test_keys_made_and_revoked_through_the_admin_api(g: Gateway) -> None:
    name = "api-" + uuid.uuid4().hex[:6]
    made = g.admin("POST", "/api/consumers", {"name": name, "rate_limit": "100/s"})
    assert made.status == 201, made.body
    key = made.json()["key"]
    assert g.request("GET", "/echo/a", headers=bearer(key)).status == 200
    assert g.admin("POST", "/api/consumers", {"name": name}).status == 409
    second = g.admin("POST", f"/api/consumers/{name}/keys", {"label": "rotation"}).json()
    listed = g.admin("GET", f"/api/consumers/{name}")
    assert key not in listed.body.decode() and b"digest" not in listed.body
    assert [k["id"] for k in listed.json()["keys"]] == [made.json()["key_id"], second["key_id"]]
    assert g.admin("DELETE", f"/api/consumers/{name}/keys/{made.json()['key_id']}").status == 204
    assert_problem(g.request("GET", "/echo/a", headers=bearer(key)), 401, "invalid-api-key")
    assert g.request("GET", "/echo/a", headers=bearer(second["key"])).status == 200
    patched = g.admin("PATCH", f"/api/consumers/{name}", {"endpoints": ["GET /echo/{a}"]})
    assert patched.json()["endpoints"] == ["GET /echo/{a}"]
    forbidden = g.request("GET", "/status/204", headers=bearer(second["key"]))
    assert_problem(forbidden, 403, "consumer-forbidden")
    assert g.admin("PATCH", f"/api/consumers/{name}", {"rate_limit": "lots"}).status == 422
    assert g.admin("DELETE", f"/api/consumers/{name}").status == 204
    assert g.request("GET", "/echo/a", headers=bearer(second["key"])).status == 401


def test_keys_never_reach_the_log_or_the_store_file(g: Gateway) -> None:
    g.request("GET", "/echo/logged", headers=bearer(ALPHA))
    g.request("GET", "/echo/logged", headers=bearer("wrong-key-value-123456"))
    out = g.output()
    assert '"consumer": "alpha"' in out or '"consumer":"alpha"' in out
    assert ALPHA not in out and BETA not in out and "wrong-key-value-123456" not in out
    db = (g.workdir / "forebay.db").read_bytes()
    wal = g.workdir / "forebay.db-wal"
    data = db + (wal.read_bytes() if wal.exists() else b"")
    assert ALPHA.encode() not in data and BETA.encode() not in data


def test_without_required_auth_unknown_credentials_pass_to_the_origin(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    config = tmp_path / "open.yaml"
    config.write_text(f'consumers: [{{name: alpha, key: "{ALPHA}"}}]\n')
    g = gateway_factory(config=str(config))
    anonymous = g.request("GET", "/echo/o", headers=bearer("the-origins-own-token"))
    assert anonymous.status == 200
    assert seen_headers(anonymous.body)["authorization"] == "Bearer the-origins-own-token"
    known = g.request("GET", "/echo/o", headers=bearer(ALPHA))
    assert known.status == 200 and "authorization" not in seen_headers(known.body)
    assert g.request("GET", "/echo/o").status == 200
