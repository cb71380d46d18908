"""What a process does once at start, before serving: import the specs into the catalog,
seed the config file's policies and consumers, pick the rate limiter."""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from forebay.catalog.importer import import_files
from forebay.catalog.merge import merge_import, seed_policies
from forebay.consumers import seed_consumers
from forebay.settings import Settings
from forebay.store import Store
from forebay.store.limiter import Limiter, MemoryLimiter

log = structlog.get_logger("forebay")


async def prepare_catalog(store: Store, settings: Settings) -> None:
    """Import the configured specs and seed the config file's policies, once per start."""
    results = import_files(settings.import_)
    for result in results:
        for problem in result.problems:
            log.warning(
                "skipped an operation",
                file=problem.file,
                place=problem.place,
                problem=problem.problem,
            )
        report = merge_import(await store.endpoints.list(), result)
        if report.changed:
            await store.endpoints.save(report.changed)
        log.info(
            "imported",
            file=result.source,
            format=result.format,
            endpoints=len(result.endpoints),
            added=len(report.added),
            vanished=len(report.vanished),
            skipped=len(result.problems),
        )
    seeded = seed_policies(await store.endpoints.list(), settings.endpoints)
    if seeded:
        await store.endpoints.save(seeded)
    await seed_consumers(store.consumers, settings.consumers, os.environ)


def make_limiter(settings: Settings) -> Limiter:
    """Redis when one is configured (or is the store), so every instance shares the
    counters; this process's memory otherwise."""
    url = settings.rate_limits.redis
    if url is None and settings.store.startswith(("redis://", "rediss://")):
        url = settings.store
    if url is not None:
        from forebay.store.redis_limiter import RedisLimiter

        return RedisLimiter(url, settings.rate_limits.timeout)
    if settings.workers > 1:
        log.warning(
            "rate limits are counted per worker process; set rate_limits.redis to share them",
            workers=settings.workers,
        )
    return MemoryLimiter()


def source_name(path: str) -> str:
    return str(Path(path).resolve())
