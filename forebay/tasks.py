"""Ending background tasks at a stop, even when a library swallowed the cancellation.

A Redis client may swallow a cancellation that races its own timeouts or its handling of a
connection (redis-py #2028, #2551): a loop cancelled once while it waited on Redis then
goes round again, and a stop that awaits it waits for ever. Seen as a gateway on Redis
that did not end on SIGTERM, its catalog watcher "cancelling" yet back in its sleep. So a
task is cancelled again, every `RECANCEL_EVERY` seconds, until it ends; the next
cancellation finds it in its own sleep, where nothing swallows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import structlog

log = structlog.get_logger("forebay")

# Seconds a cancelled task is given to end (its own clean-up included) before it is
# cancelled again: a second cancellation would cut that clean-up short.
RECANCEL_EVERY = 0.5
PATIENCE = 5.0  # seconds before a stop gives up on a task that will not end


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], patience: float = PATIENCE) -> None:
    """Cancel `tasks` and return once every one has ended (its outcome, an exception
    included, is dropped), or after `patience` seconds with an error logged naming those
    that did not."""
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY)
        if pending and loop.time() >= deadline:
            names = sorted(t.get_name() for t in pending)
            log.error("stopping: tasks did not end when cancelled; going on", tasks=names)
            break
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" at exit
