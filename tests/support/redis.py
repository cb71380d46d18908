"""A private `redis-server` on a free port, for tests of the shared counters.

Outside CI a machine without redis-server skips those tests; in CI (`CI=true`) that is
a failure, so a broken CI image cannot pass silently."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.gateway import wait_until
from support.origin import free_port


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        return self.command("PING").startswith(b"+PONG")

    def command(self, *words: str) -> bytes:
        """One inline command; its reply's first line, as Redis sent it (`:0`, `+OK`)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(" ".join(words).encode() + b"\r\n")
            return s.recv(4096).split(b"\r\n", 1)[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def start_redis(workdir: Path, aof: bool = False, port: int | None = None) -> RedisServer:
    """A redis-server in `workdir`. With `aof`, every write reaches the disk before Redis
    answers (`appendfsync always`), as docs/redis.md asks for in production; started again
    with the same `workdir` and `port`, it comes back with everything it acknowledged."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed; the Redis tests need it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    port = port or free_port()
    persistence = (
        ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
    )
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, proc, workdir)
    try:
        wait_until(server.ping, 10, "redis-server to answer PING")
    except AssertionError:
        server.stop()
        raise
    return server
