"""The `forebay` command: the group, and running the gateway or the demo. The other
subcommands are in the `cli_*.py` modules beside it."""

from __future__ import annotations

from typing import Any

import click

from forebay import __version__
from forebay.cli_cache import register as register_cache
from forebay.cli_common import config_option, fail, settings_for, store_option, with_store
from forebay.cli_consumers import register as register_consumers
from forebay.cli_endpoints import endpoints
from forebay.cli_import import import_
from forebay.cli_requests import register as register_requests
from forebay.errors import ConfigError, SpecError
from forebay.logging import configure_logging


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
    settings = settings_for(config, **overrides)
    configure_logging(settings.log.level, settings.log.format)
    if settings.origin is None:
        fail("no origin: pass --origin URL or set origin in the config file", 2)
    from forebay.server import run as serve

    try:
        serve(settings)
    except (SpecError, ConfigError) as e:
        fail(str(e), 2)
    except KeyboardInterrupt:
        pass


main.add_command(import_)
main.add_command(endpoints)
register_requests(main, with_store, settings_for, fail)
register_cache(main, settings_for, fail)
register_consumers(main, with_store, settings_for, fail)


@main.command()
@click.option("--port", type=int, default=8080, help="Data-plane port; admin is +1, origin +2.")
def demo(port: int) -> None:
    """Run a demo origin with the gateway and admin API in front of it."""
    from forebay.demo.run import run_demo

    run_demo(port)


if __name__ == "__main__":
    main()
