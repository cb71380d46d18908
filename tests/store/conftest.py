from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.redis import RedisServer

from forebay.store import Store, open_store


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Every backend, so the same behaviour tests hold for all of them. The Redis one
    gets an empty database per test."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        s = await open_store(server.url)
        await s.client.flushdb()  # type: ignore[attr-defined]
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/forebay.db"
        s = await open_store(url)
    yield s
    await s.close()
