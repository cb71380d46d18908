"""The `forebay` command. Exit codes: 0 clean stop, 2 bad config or spec, 1 otherwise."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from forebay import __version__
from forebay.cli_cache import register as register_cache
from forebay.cli_consumers import register as register_consumers
from forebay.cli_requests import register as register_requests
from forebay.errors import ConfigError, ForebayError, SpecError
from forebay.logging import configure_logging
from forebay.settings import Settings, load_settings

T = TypeVar("T")


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"forebay: {message}", err=True)
    sys.exit(code)


def _settings(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, overrides)
    except ConfigError as e:
        _fail(str(e), 2)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except SpecError as e:
        _fail(str(e), 2)
    except ConfigError as e:
        _fail(str(e), 2)
    except ForebayError as e:
        _fail(str(e), 1)


config_option = click.option(
    "--config", "-c", type=click.Path(dir_okay=False), help="YAML config file."
)
store_option = click.option("--store", help="sqlite:///PATH (default), memory:// or redis://…")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forebay")
def main() -> None:
    """Forebay: an API gateway that keeps one origin API fast and whole under load."""


@main.command()
@config_option
@click.option("--origin", help="The origin API's base URL, e.g. http://127.0.0.1:9000.")
@click.option("--import", "imports", multiple=True, help="OpenAPI/Swagger/Postman file.")
@click.option("--listen", help="HOST:PORT for the data plane (default 127.0.0.1:8080).")
@click.option("--admin-listen", help="HOST:PORT for the admin API (default 127.0.0.1:8081).")
@store_option
@click.option("--workers", type=int, help="Data-plane processes sharing the port.")
@click.option("--strict/--no-strict", default=None, help="404 for paths matching no endpoint.")
def run(
    config: str | None,
    origin: str | None,
    imports: tuple[str, ...],
    listen: str | None,
    admin_listen: str | None,
    store: str | None,
    workers: int | None,
    strict: bool | None,
) -> None:
    """Run the gateway in front of an origin."""
    overrides: dict[str, Any] = {
        "origin": origin,
        "listen": listen,
        "store": store,
        "workers": workers,
        "strict": strict,
    }
    if imports:
        overrides["import"] = list(imports)
    if admin_listen:
        overrides["admin"] = {"listen": admin_listen}
    settings = _settings(config, **overrides)
    configure_logging(settings.log.level, settings.log.format)
    if settings.origin is None:
        _fail("no origin: pass --origin URL or set origin in the config file", 2)
    from forebay.server import run as serve

    try:
        serve(settings)
    except (SpecError, ConfigError) as e:
        _fail(str(e), 2)
    except KeyboardInterrupt:
        pass


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Parse and print; store nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoints as JSON.")
@config_option
@store_option
def import_(
    files: tuple[str, ...], dry_run: bool, as_json: bool, config: str | None, store: str | None
) -> None:
    """Import endpoints from OpenAPI, Swagger or Postman files into the catalog."""
    from forebay.app import source_name
    from forebay.catalog.importer import import_files

    try:
        results = import_files([source_name(f) if not dry_run else f for f in files])
    except SpecError as e:
        _fail(str(e), 2)
    for result in results:
        for problem in result.problems:
            click.echo(f"skipped: {problem}", err=True)
    if dry_run:
        endpoints = [
            {
                "method": ep.method,
                "path": ep.path,
                "operation_id": ep.operation_id,
                "summary": ep.summary,
                "source": ep.source,
            }
            for r in results
            for ep in r.endpoints
        ]
        if as_json:
            click.echo(json.dumps(endpoints, indent=2))
        else:
            for row in endpoints:
                click.echo(f"{row['method']:7} {row['path']}")
        return
    settings = _settings(config, store=store)
    report = _run(_import(settings, results))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for line in report:
            click.echo(
                f"{line['file']}: {line['endpoints']} endpoints, {line['added']} added, "
                f"{line['vanished']} vanished, {line['skipped']} skipped"
            )


async def _import(settings: Settings, results: list[Any]) -> list[dict[str, Any]]:
    from forebay.catalog.merge import merge_import
    from forebay.store import open_store

    store = await open_store(settings.store)
    out = []
    try:
        for result in results:
            report = merge_import(await store.endpoints.list(), result)
            if report.changed:
                await store.endpoints.save(report.changed)
            out.append(
                {
                    "file": result.source,
                    "format": result.format,
                    "endpoints": len(result.endpoints),
                    "added": len(report.added),
                    "vanished": len(report.vanished),
                    "skipped": len(result.problems),
                }
            )
    finally:
        await store.close()
    return out


@main.group()
def endpoints() -> None:
    """List endpoints and change their policies."""


def _with_store(settings: Settings, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    from forebay.store import open_store

    async def go() -> T:
        store = await open_store(settings.store)
        try:
            return await fn(store)
        finally:
            await store.close()

    return _run(go())


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
    settings = _settings(config, store=store)
    rows = _with_store(settings, lambda s: s.endpoints.list())
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


def _on_off(value: str | None) -> bool | None:
    return None if value is None else value == "on"


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
            _fail(f"--cache takes a TTL in seconds or off, not {cache!r}", 2)
    for field, rate in (("rate_limit", rate_limit), ("consumer_rate_limit", consumer_rate_limit)):
        if rate is not None:
            patch[field] = None if rate == "off" else rate
    if (async_ == "on" or (cache and cache != "off")) and managed is None:
        patch["managed"] = True
    try:
        PolicyPatch.model_validate(patch)
    except ValidationError as err:
        _fail("; ".join(x["msg"].removeprefix("Value error, ") for x in err.errors()), 2)
    settings = _settings(config, store=store)
    eid = endpoint_id(method.upper(), path)

    async def go(s: Any) -> Any:
        e = await s.endpoints.get(eid)
        if e is None:
            _fail(f"no endpoint {method.upper()} {path}; see 'forebay endpoints list'", 1)
        e.policy = PolicyPatch.model_validate(patch).apply(e.policy)
        e.policy_source = "user"
        await s.endpoints.save([e])
        return e

    e = _with_store(settings, go)
    click.echo(f"{e.method:7} {e.path:50} {_state(e)}")


def _settings_for(config: str | None, store: str | None = None) -> Settings:
    return _settings(config, store=store)


register_requests(main, _with_store, _settings_for, _fail)
register_cache(main, _settings_for, _fail)
register_consumers(main, _with_store, _settings_for, _fail)


@main.command()
@click.option("--port", type=int, default=8080, help="Data-plane port; admin is +1, origin +2.")
def demo(port: int) -> None:
    """Run a demo origin with the gateway and admin API in front of it."""
    from forebay.demo.run import run_demo

    run_demo(port)


if __name__ == "__main__":
    main()
