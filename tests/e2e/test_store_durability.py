"""The dashboard and `GET /api/status` say what a crash of the store could cost: a loud
alert when a Redis may lose acknowledged requests or will not say, a mild notice for the
memory store, nothing for SQLite or a Redis with `appendfsync always`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import redis
from support.gateway import ADMIN_TOKEN, Gateway, request
from support.redis import RedisServer, start_redis

from forebay.admin.session import COOKIE

PAGES = ["/endpoints", "/requests", "/live", "/errors", "/consumers", "/requests/some-id"]
DOCS = "https://forebay.dev/redis/#running-redis-so-that-a-202-is-a-promise"
SECRET = "s3cret-store-password"


@pytest.fixture
def redis_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RedisServer]]:
    """Starts private redis-servers for one test and stops them after it."""
    started: list[RedisServer] = []

    def start(aof: bool) -> RedisServer:
        server = start_redis(tmp_path_factory.mktemp("redis"), aof=aof)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def log_in(g: Gateway) -> str:
    """A dashboard session, as the login page gets it; the Cookie header to send."""
    body = json.dumps({"token": ADMIN_TOKEN}).encode()
    headers = {"content-type": "application/json"}
    resp = request(g.admin_port, "POST", "/api/session", body, headers)
    assert resp.status == 200, (resp.status, resp.body)
    cookie: SimpleCookie = SimpleCookie(resp.headers["set-cookie"])
    return f"{COOKIE}={cookie[COOKIE].value}"


def pages(g: Gateway) -> dict[str, str]:
    """Every dashboard page's HTML, fetched with a session cookie."""
    cookie = log_in(g)
    found = {}
    for path in PAGES:
        resp = request(g.admin_port, "GET", path, headers={"Cookie": cookie})
        assert resp.status == 200, (path, resp.status, resp.body)
        found[path] = resp.body.decode()
    return found


def store_of(g: Gateway) -> dict[str, Any]:
    resp = g.admin("GET", "/api/status")
    assert resp.status == 200, (resp.status, resp.body)
    store: dict[str, Any] = resp.json()["store"]
    return store


def test_redis_without_aof_puts_an_alert_on_every_page(
    gateway_factory: Callable[..., Gateway], redis_factory: Callable[..., RedisServer]
) -> None:
    server = redis_factory(aof=False)
    redis.Redis(port=server.port).config_set("requirepass", SECRET)
    url = f"redis://:{SECRET}@127.0.0.1:{server.port}/0?prefix=lossy:"
    shown = f"redis://:***@127.0.0.1:{server.port}/0?prefix=lossy:"
    g = gateway_factory(store=url)

    for path, text in pages(g).items():
        assert 'role="alert"' in text, path
        assert "Acknowledged requests may be lost if Redis crashes" in text, path
        assert "appendonly is no: a Redis crash loses everything since the last snapshot" in text
        assert "<code>appendonly yes</code> and <code>appendfsync always</code>" in text
        assert f'href="{DOCS}"' in text
        assert shown in text
        assert SECRET not in text, path
    # Before the token is given, the page says nothing of the store.
    login = request(g.admin_port, "GET", "/login").body.decode()
    assert "store-alert" not in login and "appendonly" not in login

    store = store_of(g)
    assert store["url"] == shown
    assert store["durable"] is False
    assert store["detail"].startswith("appendonly is no")
    # Scripts read it with the admin token, as everything else.
    assert g.admin("GET", "/api/status", token=None).status == 401


def test_redis_that_will_not_say_gets_a_cannot_tell_alert(
    gateway_factory: Callable[..., Gateway], redis_factory: Callable[..., RedisServer]
) -> None:
    # What managed services do: the gateway's user may not run CONFIG.
    server = redis_factory(aof=True)
    redis.Redis(port=server.port).acl_setuser(
        "gateway",
        enabled=True,
        passwords=["+gateway-password"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-config"],
    )
    g = gateway_factory(store=f"redis://gateway:gateway-password@127.0.0.1:{server.port}/0")

    for path, text in pages(g).items():
        assert 'role="alert"' in text, path
        assert "Cannot tell whether acknowledged requests survive a Redis crash" in text
        assert "CONFIG GET is not allowed" in text, path
        assert "gateway-password" not in text, path
    store = store_of(g)
    assert store["durable"] is None
    assert store["detail"].startswith("CONFIG GET is not allowed")
    assert store["url"] == f"redis://gateway:***@127.0.0.1:{server.port}/0"


def test_redis_with_appendfsync_always_has_no_alert(
    gateway_factory: Callable[..., Gateway], redis_factory: Callable[..., RedisServer]
) -> None:
    server = redis_factory(aof=True)
    g = gateway_factory(store=server.url)

    for path, text in pages(g).items():
        assert "store-alert" not in text and 'role="alert"' not in text, path
        assert "store-notice" not in text, path
    assert store_of(g) == {
        "url": server.url,
        "durable": True,
        "detail": "appendonly yes, appendfsync always",
    }


def test_memory_store_gets_a_notice_and_sqlite_nothing(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    memory = gateway_factory(store="memory://")
    for path, text in pages(memory).items():
        assert 'class="store-notice" role="note"' in text, path
        assert "is lost when the gateway stops" in text, path
        assert "store-alert" not in text, path
    assert store_of(memory) == {
        "url": "memory://",
        "durable": False,
        "detail": "the memory store forgets everything when the process ends",
    }

    sqlite = gateway_factory()
    for path, text in pages(sqlite).items():
        assert "store-notice" not in text and "store-alert" not in text, path
    store = store_of(sqlite)
    assert store["durable"] is True
    assert store["url"] == f"sqlite:///{tmp_path}/forebay.db"
