"""What the `forebay` subcommands share: the exit codes (0 clean stop, 2 bad config or
spec, 1 otherwise), loading settings, running a coroutine on an open store, and the
`--config` and `--store` options."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click

from forebay.errors import ConfigError, ForebayError, SpecError
from forebay.settings import Settings
from forebay.settings_load import load_settings

T = TypeVar("T")

config_option = click.option(
    "--config", "-c", type=click.Path(dir_okay=False), help="YAML config file."
)
store_option = click.option("--store", help="sqlite:///PATH (default), memory:// or redis://…")


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"forebay: {message}", err=True)
    sys.exit(code)


def settings_for(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, overrides)
    except ConfigError as e:
        fail(str(e), 2)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except SpecError as e:
        fail(str(e), 2)
    except ConfigError as e:
        fail(str(e), 2)
    except ForebayError as e:
        fail(str(e), 1)


def with_store(settings: Settings, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    from forebay.store import open_store

    async def go() -> T:
        store = await open_store(settings.store)
        try:
            return await fn(store)
        finally:
            await store.close()

    return run_async(go())
