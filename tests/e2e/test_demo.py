"""`forebay demo` (what `make demo` runs) serves the demo shop through the gateway."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.gateway import request, wait_until


def three_free_ports() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base > 65000:
            continue
        try:
            for p in (base, base + 1, base + 2):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", p))
        except OSError:
            continue
        return int(base)
    raise RuntimeError("no three free ports in a row")


def start_demo(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Any]:
    """`forebay demo` on three free ports in a row, up and answering. Another test may
    take one of the ports between the check and the demo's bind: then it starts again on
    others (the demo exits at once, saying so)."""
    for _ in range(5):
        port = three_free_ports()
        log = open(tmp_path / "demo.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "forebay", "demo", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=dict(os.environ),
        )

        def up(proc: subprocess.Popen[bytes] = proc, port: int = port) -> bool:
            if proc.poll() is not None:
                return True  # exited: see below
            return request(port + 1, "GET", "/healthz", timeout=2).status == 200

        wait_until(up, what="the demo to start")
        if proc.poll() is None:
            return proc, port, log
        log.close()
        if "address already in use" not in (tmp_path / "demo.log").read_text():
            raise AssertionError((tmp_path / "demo.log").read_text()[-2000:])
    raise AssertionError("the demo found no free ports in five tries")


def test_demo_serves_the_shop(tmp_path: Path) -> None:
    proc, port, log = start_demo(tmp_path)
    try:
        items = request(port, "GET", "/items")
        assert items.status == 200 and len(items.json()) == 5
        made = request(
            port,
            "POST",
            "/orders",
            body=b'{"item": 1}',
            headers={"Content-Type": "application/json"},
        )
        assert made.status == 202, made.body
        status_url = made.headers["location"]

        def delivered() -> bool:
            return bool(request(port, "GET", status_url).json()["status"] == "succeeded")

        wait_until(delivered, what="the demo order to be delivered")
        created = request(port, "GET", status_url + "/response")
        assert created.status == 201 and created.headers["location"].startswith("/orders/")
        token = {"Authorization": "Bearer demo-admin-token"}
        endpoints = request(port + 1, "GET", "/api/endpoints", headers=token).json()
        assert len(endpoints) == 16
        banner = (tmp_path / "demo.log").read_text()
        assert f"curl -s http://127.0.0.1:{port}/items" in banner
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        log.close()
    # The demo keeps its store in a temporary folder: nothing is left behind.
    assert not list(tmp_path.glob("*.db"))
