"""`forebay cache`: purge the response cache of a running gateway, through its admin API.

The cache lives in the gateway's memory, so unlike `forebay requests` (which reads the
store) these commands talk to the admin API: its address and token come from the config
file and `FOREBAY_ADMIN__*` variables, or from `--admin` and `--token`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import click


def _call(url: str, token: str | None, method: str, body: Any, fail: Any) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read()).get("detail")
        except ValueError:
            detail = e.reason
        fail(f"the admin API answered {e.code}: {detail}", 1)
    except OSError as e:
        fail(f"cannot reach the admin API at {url}: {e}", 1)


def register(main: click.Group, settings_for: Any, fail: Any) -> None:
    config_option = click.option("--config", "-c", type=click.Path(dir_okay=False))
    admin_option = click.option(
        "--admin", help="The admin API's base URL (default: from admin.listen in the config)."
    )
    token_option = click.option(
        "--token", help="The admin token (default: admin.token or FOREBAY_ADMIN__TOKEN)."
    )

    def base(config: str | None, admin: str | None, token: str | None) -> tuple[str, str | None]:
        settings = settings_for(config)
        if admin is None:
            host, port = settings.admin_address
            host = "127.0.0.1" if host in ("0.0.0.0", "") else host
            admin = f"http://{host}:{port}"
        return admin.rstrip("/"), token or settings.admin.token

    @main.group()
    def cache() -> None:
        """Inspect and purge the response cache of a running gateway."""

    @cache.command("purge")
    @click.option("--path", help="One path, with all its query strings.")
    @click.option("--pattern", help="Paths matching a pattern ('*' one segment, '**' any).")
    @click.option("--endpoint", help="An endpoint: its id (ep_...) or 'METHOD /template'.")
    @click.option("--all", "everything", is_flag=True, help="Everything.")
    @config_option
    @admin_option
    @token_option
    def purge(
        path: str | None,
        pattern: str | None,
        endpoint: str | None,
        everything: bool,
        config: str | None,
        admin: str | None,
        token: str | None,
    ) -> None:
        """Drop stored answers: give one of --path, --pattern, --endpoint or --all."""
        given = {"path": path, "pattern": pattern, "endpoint": endpoint}
        body: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if everything:
            body["all"] = True
        if len(body) != 1:
            fail("give exactly one of --path, --pattern, --endpoint or --all", 2)
        url, tok = base(config, admin, token)
        result = _call(f"{url}/api/cache/purge", tok, "POST", body, fail)
        click.echo(f"{result['purged']} cached answer(s) purged")

    @cache.command("stats")
    @config_option
    @admin_option
    @token_option
    def stats(config: str | None, admin: str | None, token: str | None) -> None:
        """Entries and memory in use, as JSON."""
        url, tok = base(config, admin, token)
        click.echo(json.dumps(_call(f"{url}/api/cache", tok, "GET", None, fail), indent=2))
