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
        ["managed"] + (["async"] if p.async_ else []) + ([_cache_state(p.cache)] if p.cache else [])
    )
    return ", ".join(flags + limits)


def _cache_state(c: Any) -> str:
    extras = (
        (
            [f"stale-while-revalidate {c.stale_while_revalidate:g}s"]
            if c.stale_while_revalidate
            else []
        )
        + ([f"stale-if-error {c.stale_if_error:g}s"] if c.stale_if_error else [])
        + (["respects origin"] if c.respect_origin else [])
    )
    return " ".join([f"cache {c.ttl:g}s", *(f"({x})" for x in extras)])


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
@click.option(
    "--stale-while-revalidate",
    "swr",
    type=float,
    help="Seconds a stale answer is served while refreshed.",
)
@click.option(
    "--stale-if-error",
    "sie",
    type=float,
    help="Seconds a stale answer stands in for an origin error.",
)
@click.option(
    "--respect-origin",
    type=click.Choice(["on", "off"]),
    help="Take the TTL from the origin's s-maxage / max-age when it sends one.",
)
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
    swr: float | None,
    sie: float | None,
    respect_origin: str | None,
    rate_limit: str | None,
    consumer_rate_limit: str | None,
    config: str | None,
    store: str | None,
) -> None:
    """Change one endpoint's policy. Turning async or cache on also makes it managed;
    rate limits apply whether it is managed or not. The stale and respect-origin options
    change the cache settings given with --cache, or the endpoint's own."""
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
    extras: dict[str, Any] = {}
    if swr is not None:
        extras["stale_while_revalidate"] = swr
    if sie is not None:
        extras["stale_if_error"] = sie
    if respect_origin is not None:
        extras["respect_origin"] = respect_origin == "on"
    if extras and cache == "off":
        fail("--cache off takes no other cache option", 2)
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
        if extras:
            base = patch.get("cache") or e.policy.cache
            if base is None:
                fail(f"{method.upper()} {path} does not cache; give it a TTL with --cache", 2)
            try:
                patch["cache"] = CachePolicy.model_validate({**base.model_dump(), **extras})
            except ValidationError as err:
                fail("; ".join(f"{x['loc'][0]}: {x['msg']}" for x in err.errors()), 2)
            patch.setdefault("managed", True)
        e.policy = PolicyPatch.model_validate(patch).apply(e.policy)
        e.policy_source = "user"
        await s.endpoints.save([e])
        return e

    e = with_store(settings, go)
    click.echo(f"{e.method:7} {e.path:50} {_state(e)}")
