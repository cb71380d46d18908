"""`--workers N`: several data-plane processes on one port, one admin listener."""

from __future__ import annotations

import re
import signal

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


def test_sigusr1_does_not_end_a_gateway_with_workers(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """The task dump is for one process; with workers, the signal is ignored, not fatal."""
    g: Gateway = gateway_factory("--workers", "2")
    assert g.proc is not None
    g.proc.send_signal(signal.SIGUSR1)
    # A signal is delivered before the process next runs; these answers come after it.
    for i in range(4):
        assert g.request("GET", f"/echo/u/{i}").status == 200
    assert g.proc.poll() is None
    assert g.stop() == 0
