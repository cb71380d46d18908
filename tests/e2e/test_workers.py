"""`--workers N`: several data-plane processes on one port, one admin listener."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

from support.gateway import Gateway, wait_until


def test_workers_share_the_port_and_metrics_add_up(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    g: Gateway = gateway_factory("--workers", "2")
    for i in range(40):
        assert g.request("GET", f"/echo/w/{i}").status == 200

    def total() -> float:
        text = g.admin("GET", "/metrics").body.decode()
        found = re.search(
            r'forebay_requests_total\{endpoint="unmatched",method="GET",status="200"\} (\S+)', text
        )
        return float(found.group(1)) if found else 0.0

    wait_until(lambda: total() >= 40, what="metrics from every worker")
    assert total() == 40
    assert g.stop() == 0


def _children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(stat.parent.name))
    return found


def test_sigusr1_ends_no_process_of_a_gateway_with_workers(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """The task dump is for one process; with workers, every process ignores the signal
    (`pkill -USR1 forebay` must not take the admin API down or restart the workers)."""
    g: Gateway = gateway_factory("--workers", "2")
    assert g.proc is not None
    for i in range(4):
        assert g.request("GET", f"/echo/u/{i}").status == 200
    children = _children(g.proc.pid)
    assert len(children) >= 3  # the admin process and two workers
    for pid in (g.proc.pid, *children):
        os.kill(pid, signal.SIGUSR1)
    # A signal is acted on before its process next runs; these answers come after it.
    for i in range(8):
        assert g.request("GET", f"/echo/u/{i}").status == 200
    assert g.admin("GET", "/api/endpoints").status == 200
    assert _children(g.proc.pid) == children
    assert g.proc.poll() is None
    assert g.stop() == 0
