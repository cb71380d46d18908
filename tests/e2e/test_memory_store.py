"""`--store memory://`: the config file's policies reach the running gateway."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support.gateway import Gateway

CONFIG = """
endpoints:
  "POST /echo/mem/{id}": {managed: true, async: true}
"""


def test_memory_store_gateway_applies_the_config_files_policies(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    config = tmp_path / "forebay.yaml"
    config.write_text(CONFIG)
    g = gateway_factory(config=str(config), store="memory://")
    resp = g.request("POST", "/echo/mem/1", body=b"{}")
    assert resp.status == 202, (resp.status, resp.body)
    doc = g.wait_status(resp.json()["id"], ("succeeded", "failed", "dead"))
    assert doc["status"] == "succeeded", doc
