from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.gateway import Gateway
from support.origin import LoopbackOrigin


@pytest.fixture
def origin() -> Iterator[LoopbackOrigin]:
    o = LoopbackOrigin().start()
    yield o
    o.stop()


@pytest.fixture
def gateway_factory(tmp_path: Path, origin: LoopbackOrigin) -> Iterator[type]:
    started: list[Gateway] = []

    def make(
        *args: str,
        config: str | None = None,
        origin_url: str | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
    ) -> Gateway:
        g = Gateway(tmp_path, origin_url or origin.url, list(args), config, env=env or {})
        started.append(g)
        return g.start(wait=wait)

    yield make  # type: ignore[misc]
    for g in started:
        if g.proc and g.proc.poll() is None:
            g.stop()


@pytest.fixture
def gateway(gateway_factory: type) -> Gateway:
    return gateway_factory()  # type: ignore[call-arg, no-any-return]
