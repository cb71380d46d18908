"""`forebay endpoints`: list the catalog and change endpoints' policies, on the store."""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import ValidationError

from forebay.cli_common import config_option, fail, settings_for, store_option, with_store


@click.group()
def endpoints() -> None:
    """List endpoints and change their policies."""


def _state(e: Any) -> str:
    p = e.policy
    limits = ([f"limit {p.rate_limit}"] if p.rate_limit else []) + (
        [f"per consumer {p.consumer_rate_limit}"] if p.consumer_rate_limit else []
    )
    if not p.managed:
        return ", ".join(["unmanaged", *limits])
    flags = (
        ["managed"]
        + (["async"] if p.async_ else [])
        + ([f"cache {p.cache.ttl:g}s"] if p.cache else [])
    )
    return ", ".join(flags + limits)


@endpoints.command("list")
@config_option
@store_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--method", help="Only this method.")
def endpoints_list(
    config: str | None, store: str | None, as_json: bool, method: str | None
) -> None:
    """The catalog, one endpoint a line."""
    settings = settings_for(config, store=store)
    rows = with_store(settings, lambda s: s.endpoints.list())
    rows = sorted(
        (e for e in rows if method is None or e.method == method.upper()),
        key=lambda e: (e.path, e.method),
    )
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json", by_alias=True) for e in rows], indent=2))
        return
    for e in rows:
        vanished = "  (vanished)" if e.vanished else ""
        click.echo(f"{e.method:7} {e.path:50} {_state(e)}{vanished}")


@endpoints.command("set")
@click.argument("method")
@click.argument("path")
@click.option("--managed", type=click.Choice(["on", "off"]))
@click.option("--async", "async_", type=click.Choice(["on", "off"]))
@click.option("--cache", help="A TTL in seconds, or off.")
@click.option("--rate-limit", help="All consumers together: '50/s', '20/m burst 40', or off.")
@click.option("--consumer-rate-limit", help="Each consumer on this endpoint, or off.")
@config_option
@store_option
def endpoints_set(
    method: str,
    path: str,
    managed: str | None,
    async_: str | None,
    cache: str | None,
    rate_limit: str | None,
    consumer_rate_limit: str | None,
    config: str | None,
    store: str | None,
) -> None:
    """Change one endpoint's policy. Turning async or cache on also makes it managed;
    rate limits apply whether it is managed or not."""
    from forebay.admin.api import PolicyPatch
    from forebay.catalog.endpoint import CachePolicy, endpoint_id

    patch: dict[str, Any] = {}
    if managed:
        patch["managed"] = managed == "on"
    if async_:
        patch["async"] = async_ == "on"
    if cache == "off":
        patch["cache_off"] = True
    elif cache is not None:
        try:
            patch["cache"] = CachePolicy(ttl=float(cache))
        except ValueError:
            fail(f"--cache takes a TTL in seconds or off, not {cache!r}", 2)
    for field, rate in (("rate_limit", rate_limit), ("consumer_rate_limit", consumer_rate_limit)):
        if rate is not None:
            patch[field] = None if rate == "off" else rate
    if (async_ == "on" or (cache and cache != "off")) and managed is None:
        patch["managed"] = True
    try:
        PolicyPatch.model_validate(patch)
    except ValidationError as err:
        fail("; ".join(x["msg"].removeprefix("Value error, ") for x in err.errors()), 2)
    settings = settings_for(config, store=store)
    eid = endpoint_id(method.upper(), path)

    async def go(s: Any) -> Any:
        e = await s.endpoints.get(eid)
        if e is None:
            fail(f"no endpoint {method.upper()} {path}; see 'forebay endpoints list'", 1)
        e.policy = PolicyPatch.model_validate(patch).apply(e.policy)
        e.policy_source = "user"
        await s.endpoints.save([e])
        return e

    e = with_store(settings, go)
    click.echo(f"{e.method:7} {e.path:50} {_state(e)}")
