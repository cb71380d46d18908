from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.gateway import Gateway
from support.origin import LoopbackOrigin
from support.redis import RedisServer, start_redis


def _launcher(
    workdir: Callable[[], Path], default_origin: LoopbackOrigin, started: list[Gateway]
) -> Callable[..., Gateway]:
    def make(
        *args: str,
        config: str | None = None,
        origin_url: str | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
        store: str | None = None,
    ) -> Gateway:
        g = Gateway(workdir(), origin_url or default_origin.url, list(args), config, env=env or {})
        g.store = store
        started.append(g)
        return g.start(wait=wait)

    return make


def _stop_all(started: list[Gateway]) -> None:
    """Every gateway the test started ends, whatever happened: one that does not stop
    within the timeout is killed (and the test fails), rather than left running."""
    hung: list[str] = []
    for g in started:
        if g.proc and g.proc.poll() is None:
            try:
                g.stop()
            except subprocess.TimeoutExpired:
                hung.append(f"gateway {g.port}, the end of its log:\n{g.dump_stacks()}")
    assert not hung, "gateways that did not stop on SIGTERM:\n" + "\n\n".join(hung)


@pytest.fixture
def origin() -> Iterator[LoopbackOrigin]:
    o = LoopbackOrigin().start()
    yield o
    o.stop()


@pytest.fixture
def gateway_factory(tmp_path: Path, origin: LoopbackOrigin) -> Iterator[type]:
    """Starts gateways for one test; they share `tmp_path`, so the same store file."""
    started: list[Gateway] = []
    yield _launcher(lambda: tmp_path, origin, started)  # type: ignore[misc]
    _stop_all(started)


@pytest.fixture
def gateway(gateway_factory: type) -> Gateway:
    return gateway_factory()  # type: ignore[call-arg, no-any-return]


@pytest.fixture(scope="module")
def module_origin() -> Iterator[LoopbackOrigin]:
    """One origin for a whole test module (tests keep apart by using their own paths)."""
    o = LoopbackOrigin().start()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def module_gateway_factory(
    tmp_path_factory: pytest.TempPathFactory, module_origin: LoopbackOrigin
) -> Iterator[Callable[..., Gateway]]:
    """Starts gateways that live for the whole module, each in a directory of its own."""
    started: list[Gateway] = []
    yield _launcher(lambda: tmp_path_factory.mktemp("gateway"), module_origin, started)
    _stop_all(started)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server on a free port for the module."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()
