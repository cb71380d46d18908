"""Running the listeners: the data plane and the admin API.

One worker: both servers share one event loop and one `Runtime`. Several workers: the
data-plane socket is bound here and handed to N worker processes (uvicorn's supervisor),
and the admin listener runs in a process of its own; all of them meet in the store.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import multiprocessing
import os
import secrets
import signal
import tempfile
from typing import Any

import structlog
import uvicorn

from forebay.diagnostics import dump_tasks
from forebay.http import HttpProtocol
from forebay.http.deadlines import ConnectionLimits
from forebay.logging import configure_logging
from forebay.settings import Settings
from forebay.store.redis_conn import public_url

log = structlog.get_logger("forebay")

SETTINGS_ENV = "FOREBAY_RUNTIME_SETTINGS"
GC_YOUNG_THRESHOLD = 10_000


def settle_collector() -> None:
    """What start-up built lives as long as the process: take it out of the collector's
    sight, so full collections under load walk only what requests create. And collect the
    youngest generation every 10 000 allocations rather than 700: a request allocates a
    few hundred objects, nearly all freed by reference counting, and the default ran a
    collection every few requests for almost nothing (about 5% of the event loop's time
    on the accept path)."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled by us, so two can share one loop."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass

    def capture_signals(self) -> Any:  # uvicorn >= 0.29
        import contextlib

        return contextlib.nullcontext()


def _data_plane_protocol(settings: Settings) -> Any:
    """The data plane's HTTP protocol with the configured client limits (picklable, so
    `--workers` can hand it to the worker processes)."""
    limits = settings.limits
    return functools.partial(
        HttpProtocol,
        limits=ConnectionLimits(
            header_timeout=limits.header_timeout,
            body_timeout=limits.body_timeout,
            max_connections=limits.max_connections,
        ),
    )


def _uvicorn_config(
    app: Any, host: str, port: int, http: Any = "httptools", **extra: Any
) -> uvicorn.Config:
    """The admin API runs on uvicorn's own protocol; the data plane on ours (`http=`)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=http,
        access_log=False,
        server_header=False,
        date_header=False,
        log_config=None,
        proxy_headers=False,  # Forwarded headers are ours to write, not to trust
        timeout_graceful_shutdown=30,
        **extra,
    )


def ensure_admin_token(settings: Settings) -> Settings:
    if settings.admin.token:
        return settings
    token = secrets.token_urlsafe(24)
    log.warning("no admin token configured; made one for this run", admin_token=token)
    return settings.model_copy(update={"admin": settings.admin.model_copy(update={"token": token})})


async def prepare(settings: Settings) -> None:
    """Create the store and import the configured specs before any listener opens."""
    from forebay.startup import prepare_catalog
    from forebay.store import open_store

    if _in_memory(settings):
        return  # nothing outlives this store: the runtime's own is prepared in serve_one
    store = await open_store(settings.store)
    try:
        await prepare_catalog(store, settings)
    finally:
        await store.close()


def _in_memory(settings: Settings) -> bool:
    return settings.store.startswith("memory://")


async def serve_one(settings: Settings, ready: asyncio.Event | None = None) -> None:
    from forebay.admin.api import create_admin_app
    from forebay.app import Runtime
    from forebay.data_plane import DataPlane

    await prepare(settings)
    runtime = Runtime(settings)
    await runtime.start()
    if _in_memory(settings):
        from forebay.startup import prepare_catalog

        assert runtime.store is not None
        await prepare_catalog(runtime.store, settings)
        await runtime.refresh_catalog(force=True)
    host, port = settings.listen_address
    ahost, aport = settings.admin_address
    assert settings.admin.token is not None
    data = _Server(
        _uvicorn_config(
            DataPlane(runtime, owns_runtime=False),
            host,
            port,
            http=_data_plane_protocol(settings),
            timeout_keep_alive=settings.limits.keep_alive,
        )
    )
    admin = _Server(
        _uvicorn_config(
            create_admin_app(runtime, settings.admin.token), ahost, aport, lifespan="off"
        )
    )
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if not data.should_exit:
            log.info(
                "stopping",
                connections=len(data.server_state.connections),
                admin_connections=len(admin.server_state.connections),
            )
        data.should_exit = admin.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks, {"data plane": data, "admin": admin})
    log.info(
        "forebay listening",
        data=f"http://{host}:{port}",
        admin=f"http://{ahost}:{aport}",
        origin=settings.origin,
        store=public_url(settings.store),
        endpoints=len(runtime.catalog.current),
    )
    settle_collector()
    try:
        await asyncio.gather(data.serve(), admin.serve())
    finally:
        await runtime.stop()
    if not (data.started and admin.started):
        raise SystemExit(1)


def worker_app() -> Any:
    """The data-plane app factory each worker process imports (`factory=True`)."""
    from forebay.app import Runtime
    from forebay.data_plane import DataPlane
    from forebay.settings import Settings

    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.log.level, settings.log.format)
    app = DataPlane(Runtime(settings))
    settle_collector()
    return app


def _admin_process(settings_json: str) -> None:
    from forebay.admin.api import create_admin_app
    from forebay.app import Runtime

    settings = Settings.model_validate_json(settings_json)
    configure_logging(settings.log.level, settings.log.format)
    runtime = Runtime(settings)
    host, port = settings.admin_address

    async def main() -> None:
        await runtime.start(data_plane=False)
        assert settings.admin.token is not None
        server = uvicorn.Server(
            _uvicorn_config(
                create_admin_app(runtime, settings.admin.token), host, port, lifespan="off"
            )
        )
        try:
            await server.serve()
        finally:
            await runtime.stop()

    asyncio.run(main())


def serve_many(settings: Settings) -> None:
    from uvicorn.supervisors import Multiprocess

    # The task dump (`diagnostics.py`) is for one process. Here SIGUSR1 is ignored, by
    # this process and, through exec, by the admin process and the workers it starts.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    asyncio.run(prepare(settings))
    settings_json = settings.model_dump_json(by_alias=True)
    os.environ[SETTINGS_ENV] = settings_json
    ctx = multiprocessing.get_context("spawn")
    admin = ctx.Process(target=_admin_process, args=(settings_json,), name="forebay-admin")
    admin.start()
    host, port = settings.listen_address
    config = _uvicorn_config(
        "forebay.server:worker_app",
        host,
        port,
        http=_data_plane_protocol(settings),
        timeout_keep_alive=settings.limits.keep_alive,
        factory=True,
        workers=settings.workers,
    )
    sock = config.bind_socket()
    log.info(
        "forebay listening",
        data=f"http://{host}:{port}",
        workers=settings.workers,
        admin=settings.admin.listen,
        origin=settings.origin,
        store=settings.store,
    )
    try:
        supervisor = Multiprocess(config, sockets=[sock])
        # It catches SIGUSR1 (and does nothing with it); workers it starts would then get
        # the default action, the end of the process, so ignore it again before they start.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        supervisor.run()
    finally:
        admin.terminate()
        admin.join(10)


def run(settings: Settings) -> None:
    settings = ensure_admin_token(settings)
    if settings.workers > 1:
        # Set before any metric exists, in this process and (inherited) in the workers.
        os.environ.setdefault(
            "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="forebay-metrics-")
        )
        serve_many(settings)
    else:
        import uvloop

        uvloop.run(serve_one(settings))
