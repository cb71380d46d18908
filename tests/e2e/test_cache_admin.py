"""The cache from the operator's side, through the real process: purging by path,
pattern, endpoint and everything (admin API and CLI), turning caching on and off at run
time, stale-while-revalidate."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest
from support.crud import CrudOrigin
from support.gateway import ADMIN_TOKEN, Gateway, wait_until

CONFIG = """
endpoints:
  "GET /{coll}/{id}": {managed: true, cache: {ttl: 300}}
  "GET /plain/{id}": {managed: true}
  "GET /swr/{id}": {managed: true, cache: {ttl: 1, stale_while_revalidate: 300}}
"""


@pytest.fixture(scope="module")
def g(crud_gateway: Callable[[str], Gateway]) -> Gateway:
    return crud_gateway(CONFIG)


def cached(g: Gateway, path: str) -> bool:
    return g.request("GET", path).headers.get("cache-status") == "forebay; hit"


def warm(g: Gateway, crud: CrudOrigin, *paths: str) -> None:
    for path in paths:
        _, c, i = path.split("/")
        crud.put(c, i, {"at": path})
        g.request("GET", path)
        assert cached(g, path), path


def purge(g: Gateway, body: object) -> int:
    resp = g.admin("POST", "/api/cache/purge", body)
    assert resp.status == 200, resp.body
    purged: int = resp.json()["purged"]
    return purged


def test_purge_by_path_pattern_endpoint_and_all(g: Gateway, crud: CrudOrigin) -> None:
    a, b = "a" + uuid.uuid4().hex[:6], "b" + uuid.uuid4().hex[:6]
    warm(g, crud, f"/{a}/1", f"/{a}/2", f"/{b}/1")
    assert purge(g, {"path": f"/{a}/1"}) == 1
    assert not cached(g, f"/{a}/1")  # fetched again, and stored again
    assert cached(g, f"/{a}/2") and cached(g, f"/{b}/1")
    assert purge(g, {"pattern": f"/{a}/*"}) == 2
    assert not cached(g, f"/{a}/2")
    assert cached(g, f"/{b}/1")
    assert purge(g, {"endpoint": "GET /{coll}/{id}"}) == 2  # /a/2 (fetched again), /b/1
    assert not cached(g, f"/{b}/1")
    stats = g.admin("GET", "/api/cache").json()
    assert stats["entries"] >= 1 and stats["size_bytes"] > 0
    assert purge(g, {"all": True}) == stats["entries"]
    assert g.admin("GET", "/api/cache").json()["entries"] == 0


def test_purge_rejects_bad_requests(g: Gateway) -> None:
    for body in ({}, {"path": "/a", "all": True}, {"path": "relative"}, {"nope": 1}):
        resp = g.admin("POST", "/api/cache/purge", body)
        assert resp.status == 422, (body, resp.body)
        assert resp.headers["content-type"] == "application/problem+json"
    assert g.admin("POST", "/api/cache/purge", {"all": True}, token=None).status == 401
    paths = g.admin("GET", "/api/openapi.json").json()["paths"]
    assert "/api/cache/purge" in paths and "/api/cache" in paths


def forebay(g: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it next to the gateway (it talks to the admin API)."""
    return subprocess.run(
        [sys.executable, "-m", "forebay", *args],
        capture_output=True,
        text=True,
        cwd=g.workdir,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("FOREBAY_")},
    )


def test_cli_purge(g: Gateway, crud: CrudOrigin) -> None:
    c = "c" + uuid.uuid4().hex[:6]
    warm(g, crud, f"/{c}/1", f"/{c}/2")
    admin = ["--admin", f"http://127.0.0.1:{g.admin_port}", "--token", ADMIN_TOKEN]
    run = forebay(g, "cache", "purge", "--path", f"/{c}/1", *admin)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1 cached answer(s) purged"
    assert not cached(g, f"/{c}/1") and cached(g, f"/{c}/2")
    run = forebay(g, "cache", "purge", "--all", *admin)
    assert run.returncode == 0, run.stderr
    assert not cached(g, f"/{c}/2")
    bad = forebay(g, "cache", "purge", *admin)
    assert bad.returncode == 2 and "exactly one" in bad.stderr
    wrong = forebay(g, "cache", "purge", "--all", "--admin", f"http://127.0.0.1:{g.admin_port}")
    assert wrong.returncode == 1 and "401" in wrong.stderr


def test_cli_purge_by_pattern_and_endpoint(g: Gateway, crud: CrudOrigin) -> None:
    a, b = "a" + uuid.uuid4().hex[:6], "b" + uuid.uuid4().hex[:6]
    swr = "/swr/" + uuid.uuid4().hex[:8]
    crud.put("swr", swr.rsplit("/", 1)[1], {"v": 1})
    g.request("GET", swr)
    warm(g, crud, f"/{a}/1", f"/{a}/2", f"/{b}/1")
    admin = ["--admin", f"http://127.0.0.1:{g.admin_port}", "--token", ADMIN_TOKEN]
    run = forebay(g, "cache", "purge", "--pattern", f"/{a}/*", *admin)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "2 cached answer(s) purged"
    assert cached(g, f"/{b}/1")
    assert not cached(g, f"/{a}/1") and not cached(g, f"/{a}/2")  # and stored again
    # By endpoint, as 'METHOD /template' and by id: only that endpoint's entries go.
    swr_id = next(
        e["id"] for e in g.admin("GET", "/api/endpoints").json() if e["path"] == "/swr/{id}"
    )
    run = forebay(g, "cache", "purge", "--endpoint", swr_id, *admin)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.split()[0]) >= 1  # with whatever other tests left there
    assert cached(g, f"/{b}/1")
    assert g.request("GET", swr).headers["cache-status"] == "forebay; fwd=uri-miss; stored"
    run = forebay(g, "cache", "purge", "--endpoint", "GET /{coll}/{id}", *admin)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.split()[0]) >= 3  # /a/1, /a/2, /b/1 at least
    assert not cached(g, f"/{a}/1") and not cached(g, f"/{b}/1")
    # Served from the cache still (fresh, or stale while revalidating: its TTL is 1 s).
    assert g.request("GET", swr).headers["cache-status"].startswith("forebay; hit")


def test_cache_turned_on_and_off_at_run_time(g: Gateway, crud: CrudOrigin) -> None:
    crud.put("plain", "1", {"n": 1})
    assert "cache-status" not in g.request("GET", "/plain/1").headers
    eid = next(
        e["id"] for e in g.admin("GET", "/api/endpoints").json() if e["path"] == "/plain/{id}"
    )
    patched = g.admin(
        "PATCH", f"/api/endpoints/{eid}", {"cache": {"ttl": 60, "stale_if_error": 30}}
    )
    assert patched.status == 200, patched.body
    assert patched.json()["policy"]["cache"] == {
        "ttl": 60.0,
        "respect_origin": False,
        "stale_while_revalidate": 0.0,
        "stale_if_error": 30.0,
    }
    g.request("GET", "/plain/1")
    assert cached(g, "/plain/1")
    run = g.cli("endpoints", "set", "GET", "/plain/{id}", "--cache", "off")
    assert run.returncode == 0, run.stderr
    wait_until(
        lambda: "cache-status" not in g.request("GET", "/plain/1").headers,
        what="the catalog change to reach the data plane",
    )
    # Switched on again: what was cached before is forgotten, not served (writes made
    # while caching was off did not invalidate it).
    crud.put("plain", "1", {"n": 2})
    patched = g.admin("PATCH", f"/api/endpoints/{eid}", {"cache": {"ttl": 60}})
    assert patched.status == 200, patched.body
    first = wait_until(
        lambda: (r := g.request("GET", "/plain/1")).headers.get("cache-status") and r,
        what="caching to be on again",
    )
    assert first.json()["n"] == 2, first.body


def test_stale_while_revalidate_answers_at_once_and_refreshes(g: Gateway, crud: CrudOrigin) -> None:
    item = uuid.uuid4().hex[:8]
    path = f"/swr/{item}"
    crud.put("swr", item, {"v": "old"})
    assert g.request("GET", path).json() == {"id": item, "v": "old"}
    crud.put("swr", item, {"v": "new"})  # changed behind the gateway's back
    # The origin cannot answer now: a stale answer comes without waiting for it.
    crud.read_gate.close()
    try:
        stale = wait_until(
            lambda: (
                (r := g.request("GET", path))
                and "stale-while-revalidate" in r.headers.get("cache-status", "")
                and r
            ),
            what="a stale answer",
        )
        assert stale.json()["v"] == "old"
        assert int(stale.headers["age"]) >= 1
        assert g.request("GET", path).json()["v"] == "old"  # the refresh is still waiting
    finally:
        crud.read_gate.open()
    # The background refresh stores the new answer; readers get it without waiting.
    fresh = wait_until(
        lambda: (r := g.request("GET", path)) and r.json()["v"] == "new" and r,
        what="the refreshed answer",
    )
    assert fresh.headers["cache-status"] in ("forebay; hit", "forebay; fwd=uri-miss; stored")
