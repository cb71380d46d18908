"""The real `forebay` process, started the way a user starts it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forebay.diagnostics import BEGIN as TASKS_BEGIN
from forebay.diagnostics import END as TASKS_END
from support.origin import free_port

ADMIN_TOKEN = "test-admin-token"


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def wait_until(
    predicate: Any, timeout: float = 20, what: str = "condition", detail: Any = None
) -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout`
    (naming `what`, and what `detail()` returns then, if given)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, http.client.HTTPException) as e:
            last = e
        time.sleep(0.02)  # polling interval, not synchronisation
    extra = f"; {detail()}" if detail is not None else ""
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}{extra}")


def assert_problem(resp: Response, status: int, slug: str) -> dict[str, Any]:
    """`resp` is an RFC 9457 problem of this status and type; its body."""
    assert resp.status == status, (resp.status, resp.body)
    assert resp.headers["content-type"] == "application/problem+json", resp.headers
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + slug), body
    assert body["title"] and body["detail"]
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


@dataclass
class Gateway:
    workdir: Path
    origin: str
    args: list[str] = field(default_factory=list)
    config: str | None = None
    port: int = 0
    admin_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    store: str | None = None  # the store URL; by default a SQLite file in `workdir`

    def start(self, wait: bool = True) -> Gateway:
        # Ports chosen here may be taken by another process before the gateway binds them
        # (tests run in parallel): then new ones are chosen. Given ones are kept.
        chosen = not (self.port or self.admin_port)
        for attempt in range(3):
            self._launch()
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except AssertionError as e:
                if not chosen or "address already in use" not in str(e) or attempt == 2:
                    raise
                self.log.close()
                self.port = self.admin_port = 0
        return self

    def _launch(self) -> None:
        self.port = self.port or free_port()
        # The kernel may hand out a port just released again: never the same for both.
        while not self.admin_port or self.admin_port == self.port:
            self.admin_port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "forebay",
            "run",
            "--origin",
            self.origin,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--admin-listen",
            f"127.0.0.1:{self.admin_port}",
            "--store",
            self.store_url,
            *self.args,
        ]
        if self.config:
            cmd += ["--config", self.config]
        # PYTHONFAULTHANDLER: a gateway that hangs on SIGTERM is sent SIGABRT by the
        # fixtures, and its threads' stacks land in its log (`dump_stacks`).
        env = {
            **os.environ,
            "FOREBAY_ADMIN__TOKEN": ADMIN_TOKEN,
            "PYTHONFAULTHANDLER": "1",
            **self.env,
        }
        # Appended to, so a gateway restarted on the same port keeps its earlier runs' log.
        self.log = open(self.workdir / f"gateway-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
        )

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{self.workdir}/forebay.db"

    def restart(self, wait: bool = True) -> Gateway:
        """Start again after `stop`, with the same ports, store and settings."""
        assert self.proc is None or self.proc.poll() is not None, "still running"
        return self.start(wait=wait)

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(
                    f"forebay exited with {self.proc.returncode}:\n{self.output()}"
                )
            return (
                request(self.admin_port, "GET", "/healthz", timeout=2).status == 200
                and request(self.port, "GET", "/__ready_probe__", timeout=2).status > 0
            )

        wait_until(ready, what="the gateway to listen")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.workdir / f"gateway-{self.port}.log").read_text(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Response:
        return request(self.port, method, path, body, headers, timeout)

    def admin(
        self, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN
    ) -> Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return request(self.admin_port, method, path, data, headers)

    def status_of(self, request_id: str) -> Any:
        """The status document of an accepted request (`/_forebay/requests/{id}`)."""
        resp = self.request("GET", f"/_forebay/requests/{request_id}", timeout=10)
        assert resp.status == 200, (resp.status, resp.body)
        return resp.json()

    def wait_status(
        self, request_id: str, states: tuple[str, ...] = ("succeeded",), timeout: float = 20
    ) -> Any:
        """Poll the status URL until the request is in one of `states`; its document."""

        def reached() -> Any:
            doc = self.status_of(request_id)
            return doc if doc["status"] in states else None

        return wait_until(reached, timeout, f"request {request_id} to be {'/'.join(states)}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`forebay ARGS --store <this gateway's store>`, as an operator runs it."""
        return subprocess.run(
            [sys.executable, "-m", "forebay", *args, "--store", self.store_url],
            capture_output=True,
            text=True,
            cwd=self.workdir,
            timeout=60,
        )

    def dump_stacks(self) -> str:
        """For a gateway that will not stop: have it write its asyncio tasks (SIGUSR1),
        then abort it, so the fault handler writes every thread's stack to its log, and
        return the end of that log: its last lines before the tasks, the tasks, the
        threads."""
        assert self.proc is not None
        path = self.workdir / f"gateway-{self.port}.log"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
            with contextlib.suppress(AssertionError):  # a loop too stuck to answer
                wait_until(lambda: TASKS_END in path.read_text(errors="replace"), 5)
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        text = path.read_text(errors="replace")
        at = text.rfind(TASKS_BEGIN)
        if at < 0:
            return "\n".join(text.splitlines()[-80:])
        return "\n".join(text[:at].splitlines()[-40:] + text[at:].splitlines()[:400])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.log.close()
        return code
