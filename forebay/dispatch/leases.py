"""Who holds a delivery: lease owners, and taking over from a process that died.

An owner is `host:pid:random`, so a restarted process on the same host can tell which
leases belonged to a process that is gone and hand them back at once, rather than wait
for them to run out.
"""

from __future__ import annotations

import os
import random
import socket
import time

import structlog

from forebay.store.base import RequestStore

log = structlog.get_logger("forebay.dispatch")


def lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def release_dead_owners(requests: RequestStore) -> None:
    """Hand back leases of processes on this host that are gone (after a crash), so their
    deliveries restart now rather than when the leases run out."""
    host = socket.gethostname()
    for owner in await requests.lease_owners():
        owner_host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        mine = owner_host == host and pid.isdigit() and int(pid) != os.getpid()
        if mine and not _pid_alive(int(pid)):
            n = await requests.release(owner, time.time())
            log.warning("took over deliveries of a stopped process", owner=owner, requests=n)
