"""What a running gateway is waiting on, on demand: `kill -USR1 PID` writes every
asyncio task's stack, and the connections and request tasks each listener still holds,
to standard error, and the gateway goes on.

For a gateway that will not stop or seems stuck: Python's fault handler (SIGABRT with
`PYTHONFAULTHANDLER` set) shows only the threads, and the event loop's thread is always
just waiting inside the loop; what it waits for is in the tasks.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import Any, TextIO

BEGIN = "--- forebay: asyncio tasks ---"
END = "--- forebay: end of tasks ---"
STACK_LIMIT = 12  # frames per task: enough to see what it awaits


def dump_tasks(servers: Mapping[str, Any], out: TextIO | None = None) -> None:
    """Write the tasks of the running loop and what each of `servers` (uvicorn servers,
    by name) still holds. Called from the loop, by its signal handler."""
    out = out or sys.stderr
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    print(BEGIN, file=out)
    for name, server in servers.items():
        state = server.server_state
        print(
            f"{name}: {len(state.connections)} connection(s) open, "
            f"{len(state.tasks)} request task(s), exiting: {server.should_exit}",
            file=out,
        )
    print(f"{len(tasks)} task(s)", file=out)
    for task in tasks:
        print(file=out)
        task.print_stack(limit=STACK_LIMIT, file=out)  # "Stack for <Task ...>", frames
    print(END, file=out, flush=True)
