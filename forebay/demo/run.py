"""`forebay demo`: the demo origin, the gateway in front of it, and what to try."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
import uvloop

from forebay.demo.origin import start_origin
from forebay.logging import configure_logging
from forebay.settings import Settings

SPEC = Path(__file__).with_name("openapi.yaml")
DEMO_TOKEN = "demo-admin-token"


def demo_settings(port: int, store_dir: str) -> Settings:
    return Settings.model_validate(
        {
            "origin": f"http://127.0.0.1:{port + 2}",
            "listen": f"127.0.0.1:{port}",
            "admin": {"listen": f"127.0.0.1:{port + 1}", "token": DEMO_TOKEN},
            "store": f"sqlite:///{store_dir}/forebay-demo.db",
            "import": [str(SPEC)],
            # The headline feature, on from the start: orders are taken at once (202).
            "endpoints": {"POST /orders": {"managed": True, "async": True}},
            "log": {"format": "console"},
        }
    )


def banner(settings: Settings) -> str:
    data = f"http://{settings.listen}"
    admin = f"http://{settings.admin.listen}"
    return f"""
  Forebay demo
  ------------
  origin      {settings.origin}   (a demo shop: /items, /orders, /users, /reports/summary)
  gateway     {data}
  dashboard   {admin}/   (token: {DEMO_TOKEN})
  admin API   {admin}/api/openapi.json

  Try:
    curl -s {data}/items
    curl -si -X POST {data}/orders -H 'content-type: application/json' -d '{{"item": 1}}'
        (POST /orders is asynchronous: 202 at once; follow its Location for the result)
    curl -s {data}/_forebay/requests/ID
    curl -s -H 'Authorization: Bearer {DEMO_TOKEN}' {admin}/api/endpoints
    curl -s -H 'Authorization: Bearer {DEMO_TOKEN}' {admin}/metrics | grep forebay_requests

  Ctrl-C stops everything.
"""


def run_demo(port: int) -> None:
    from forebay.server import serve_one

    configure_logging("info", "console")

    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="forebay-demo-") as store_dir:
            settings = demo_settings(port, store_dir)
            origin = await start_origin("127.0.0.1", port + 2)
            click.echo(banner(settings))
            try:
                await serve_one(settings)
            finally:
                await origin.cleanup()

    uvloop.run(main())
