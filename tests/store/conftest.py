from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forebay.store import Store, open_store


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Every backend, so the same behaviour tests hold for all of them."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/forebay.db"
    s = await open_store(url)
    yield s
    await s.close()
