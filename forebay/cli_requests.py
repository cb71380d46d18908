"""`forebay requests`: the operator's view of asynchronous requests, on the store."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from forebay.admin.requests_api import detail, summary
from forebay.dispatch.model import RequestFilter
from forebay.policy.request_states import State


def register(main: click.Group, with_store: Any, settings_for: Any, fail: Any) -> None:
    config_option = click.option("--config", "-c", type=click.Path(dir_okay=False))
    store_option = click.option("--store", help="sqlite:///PATH (default) or memory://")

    @main.group()
    def requests() -> None:
        """List, inspect, cancel and replay asynchronous requests."""

    @requests.command("list")
    @click.option("--state", type=click.Choice([s.value for s in State]))
    @click.option("--endpoint", "endpoint_id", help="An endpoint id (ep_...).")
    @click.option("--limit", type=int, default=50, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @config_option
    @store_option
    def list_(
        state: str | None,
        endpoint_id: str | None,
        limit: int,
        as_json: bool,
        config: str | None,
        store: str | None,
    ) -> None:
        """Newest first."""
        where = RequestFilter(State(state) if state else None, endpoint_id, None, limit)
        rows = with_store(settings_for(config, store=store), lambda s: s.requests.find(where))
        if as_json:
            click.echo(json.dumps([summary(r).model_dump(mode="json") for r in rows], indent=2))
            return
        for r in rows:
            click.echo(f"{r.id}  {r.state.value:9}  {r.attempts:3}  {r.method:6} {r.target}")

    @requests.command("show")
    @click.argument("request_id")
    @config_option
    @store_option
    def show(request_id: str, config: str | None, store: str | None) -> None:
        """Everything about one request, as JSON."""
        r = with_store(settings_for(config, store=store), lambda s: s.requests.get(request_id))
        if r is None:
            fail(f"no request {request_id}", 1)
        click.echo(json.dumps(detail(r).model_dump(mode="json"), indent=2))

    @requests.command("cancel")
    @click.argument("request_id")
    @config_option
    @store_option
    def cancel(request_id: str, config: str | None, store: str | None) -> None:
        """Cancel a queued request."""
        r = with_store(
            settings_for(config, store=store),
            lambda s: s.requests.cancel(request_id, time.time()),
        )
        if r is None:
            fail(f"no request {request_id}", 1)
        if r.state != State.CANCELLED:
            fail(f"{request_id} is {r.state.value}; only queued requests can be cancelled", 1)
        click.echo(f"{request_id} cancelled")

    @requests.command("replay")
    @click.argument("request_id", required=False)
    @click.option("--dead", "all_dead", is_flag=True, help="Replay every dead request.")
    @click.option("--endpoint", "endpoint_id", help="With --dead: only this endpoint's.")
    @config_option
    @store_option
    def replay(
        request_id: str | None,
        all_dead: bool,
        endpoint_id: str | None,
        config: str | None,
        store: str | None,
    ) -> None:
        """Queue a dead request again (or all of them with --dead)."""
        if bool(request_id) == all_dead:
            fail("give a request id, or --dead for every dead request", 2)

        async def go(s: Any) -> int:
            if request_id:
                return int(await s.requests.replay([request_id], time.time()))
            total = 0
            while page := await s.requests.find(RequestFilter(State.DEAD, endpoint_id, None, 500)):
                total += await s.requests.replay([r.id for r in page], time.time())
            return total

        n = with_store(settings_for(config, store=store), go)
        if request_id and not n:
            fail(f"{request_id} is not a dead request", 1)
        click.echo(f"{n} request(s) queued again")
