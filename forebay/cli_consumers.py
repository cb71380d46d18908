"""`forebay consumers`: consumers and their API keys, on the store. A running gateway
picks changes up within half a second (a revoked key stops working then)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import ValidationError

from forebay.consumers import issue_key
from forebay.store.consumers import Consumer


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def register(main: click.Group, with_store: Any, settings_for: Any, fail: Any) -> None:
    config_option = click.option("--config", "-c", type=click.Path(dir_okay=False))
    store_option = click.option("--store", help="sqlite:///PATH (default) or memory://")

    @main.group()
    def consumers() -> None:
        """Create consumers, issue and revoke their API keys."""

    def _check(build: Any) -> Any:
        try:
            return build()
        except ValidationError as e:
            fail("; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors()), 2)

    @consumers.command("create")
    @click.argument("name")
    @click.option("--rate-limit", help="This consumer's limit: '100/s', '20/m burst 40'.")
    @click.option(
        "--endpoint",
        "endpoints",
        multiple=True,
        help="An endpoint pattern it may call ('GET /orders/**'); repeat. Default: all.",
    )
    @click.option("--label", help="A note stored with the key.")
    @config_option
    @store_option
    def create(
        name: str,
        rate_limit: str | None,
        endpoints: tuple[str, ...],
        label: str | None,
        config: str | None,
        store: str | None,
    ) -> None:
        """Create a consumer and print its API key. The key is shown only this once."""
        c = _check(
            lambda: Consumer(
                name=name,
                rate_limit=rate_limit,
                endpoints=list(endpoints) or None,
                created_at=time.time(),
            )
        )

        async def go(s: Any) -> str:
            if await s.consumers.get(name) is not None:
                fail(
                    f"a consumer {name!r} exists already; 'forebay consumers add-key' adds a key", 1
                )
            await s.consumers.save(c)
            key, _ = await issue_key(s.consumers, name, label)
            return key

        key = with_store(settings_for(config, store=store), go)
        click.echo(key)
        click.echo(f"consumer {name!r} created; store the key now, it is not shown again", err=True)

    @consumers.command("add-key")
    @click.argument("name")
    @click.option("--label", help="A note stored with the key.")
    @config_option
    @store_option
    def add_key(name: str, label: str | None, config: str | None, store: str | None) -> None:
        """Issue another key for a consumer (to rotate: add, move clients, revoke the old)."""

        async def go(s: Any) -> str:
            if await s.consumers.get(name) is None:
                fail(f"no consumer {name!r}; see 'forebay consumers list'", 1)
            key, _ = await issue_key(s.consumers, name, label)
            return key

        click.echo(with_store(settings_for(config, store=store), go))

    @consumers.command("list")
    @click.option("--json", "as_json", is_flag=True)
    @config_option
    @store_option
    def list_(as_json: bool, config: str | None, store: str | None) -> None:
        """Every consumer with its keys (ids only: keys are never stored)."""

        async def go(s: Any) -> list[tuple[Consumer, list[Any]]]:
            return [(c, await s.consumers.keys(c.name)) for c in await s.consumers.list()]

        rows = with_store(settings_for(config, store=store), go)
        if as_json:
            out = [
                {
                    **c.model_dump(),
                    "keys": [k.model_dump(exclude={"salt", "digest"}) for k in keys],
                }
                for c, keys in rows
            ]
            click.echo(json.dumps(out, indent=2))
            return
        for c, keys in rows:
            scope = ", ".join(c.endpoints) if c.endpoints is not None else "all endpoints"
            click.echo(f"{c.name:24} {c.rate_limit or 'no limit':16} {scope}  ({c.source})")
            for k in keys:
                state = f"revoked {_when(k.revoked_at)}" if k.revoked_at else "active"
                label = f"  {k.label}" if k.label else ""
                click.echo(f"    {k.shown:24} {state:24} created {_when(k.created_at)}{label}")

    @consumers.command("revoke")
    @click.argument("key_id")
    @config_option
    @store_option
    def revoke(key_id: str, config: str | None, store: str | None) -> None:
        """Revoke a key by its id (the 12 hex digits after fb_, as 'list' shows)."""
        kid = key_id.removeprefix("fb_").split("_", 1)[0] if key_id.startswith("fb_") else key_id

        async def go(s: Any) -> bool:
            return bool(await s.consumers.revoke_key(kid, time.time()))

        if not with_store(settings_for(config, store=store), go):
            fail(f"no active key {kid!r}; see 'forebay consumers list'", 1)
        click.echo(f"revoked {kid}")

    @consumers.command("delete")
    @click.argument("name")
    @config_option
    @store_option
    def delete(name: str, config: str | None, store: str | None) -> None:
        """Delete a consumer and all its keys."""

        async def go(s: Any) -> bool:
            return bool(await s.consumers.delete(name))

        if not with_store(settings_for(config, store=store), go):
            fail(f"no consumer {name!r}", 1)
        click.echo(f"deleted {name}")
