from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.crud import CrudOrigin
from support.gateway import Gateway


@pytest.fixture(scope="module")
def crud() -> Iterator[CrudOrigin]:
    """One CRUD origin for a whole test module."""
    o = CrudOrigin().start()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def crud_gateway(
    module_gateway_factory: Callable[..., Gateway],
    tmp_path_factory: pytest.TempPathFactory,
    crud: CrudOrigin,
) -> Callable[[str], Gateway]:
    """Starts a gateway for the module in front of `crud`, with the config file given."""

    def start(config_text: str) -> Gateway:
        config: Path = tmp_path_factory.mktemp("config") / "forebay.yaml"
        config.write_text(config_text)
        return module_gateway_factory(config=str(config), origin_url=crud.url)

    return start
