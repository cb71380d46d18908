"""Helpers shared by the benchmark scenarios.

Processes: `Service` starts a command in its own process group (optionally pinned to one CPU
with `taskset`), logs to a file, polls a readiness check against a deadline and is stopped with
SIGTERM, then SIGKILL. `Services` is a context manager that stops everything it started, in
reverse order, however the block is left (exception, Ctrl-C or SIGTERM via `exit_on_sigterm`).

nginx: `start_nginx` renders a config into a temporary directory with its own pid, error-log
and temp paths, so no root-owned path is touched.

wrk: `run_wrk` runs one measurement and `parse_wrk` reads its requests/s, latency percentiles
(`--latency`), socket errors and non-2xx/3xx count.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

LOOPBACK = "127.0.0.1"
WRK = "wrk"
NGINX = "nginx"


class BenchError(RuntimeError):
    """A benchmark could not run (a tool missing, a process that did not start, bad output)."""


# --- small utilities -------------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BenchError(f"{name} is not installed (not found on PATH)")
    return path


def can_pin(cpus: Iterable[int] = (0, 1)) -> bool:
    """Whether `taskset` exists and we may run on each of `cpus`."""
    allowed = os.sched_getaffinity(0)
    return shutil.which("taskset") is not None and all(cpu in allowed for cpu in cpus)


def pinned(argv: Sequence[str], cpu: int | None) -> list[str]:
    """`argv` prefixed with `taskset -c CPU` when pinning to `cpu` is possible, else unchanged."""
    if cpu is None or not can_pin((cpu,)):
        return list(argv)
    return ["taskset", "-c", str(cpu), *argv]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "interpreter": os.path.basename(sys.executable),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "pinning": can_pin(),
        "platform": platform.platform(terse=True),
    }


def tool_version(argv: Sequence[str]) -> str:
    """First line of a tool's version output (nginx and wrk print it on stderr)."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0].strip() if text else "unknown"


def bench_command(module: str, args: Sequence[str]) -> str:
    """How this run was started, without local paths: `python -m bench.x --flag ...`."""
    return shlex.join([os.path.basename(sys.executable), "-m", module, *args])


def _group_stats(pgid: int) -> dict[int, list[str]]:
    """pid -> /proc/PID/stat fields (after the command name) of each process in group `pgid`."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            found[int(entry.name)] = fields
    return found


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of process group `pgid`."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = sum(int(f[11]) + int(f[12]) for f in _group_stats(pgid).values())
    return total / ticks


def machine_busy_seconds() -> float:
    """CPU time spent by the whole machine so far, all CPUs (everything but idle and iowait)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    at: float  # time.monotonic()
    machine: float  # busy CPU seconds, whole machine
    ours: float  # CPU seconds of this process, its reaped children and the given services


def cpu_snapshot(services: Iterable[Service]) -> CpuSnapshot:
    """A reading to tell our CPU use from other people's (see `others_cores`).

    wrk runs are counted once reaped (RUSAGE_CHILDREN); long-running services through /proc.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    ours += sum(service.cpu_seconds() for service in services if service.alive())
    return CpuSnapshot(time.monotonic(), machine_busy_seconds(), ours)


def others_cores(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """CPU used by processes that are not ours between two snapshots, in cores (1.0 = one).

    Accurate to about 0.05 (kernel work on our loopback traffic is not all charged to us).
    """
    elapsed = after.at - before.at
    if elapsed <= 0:
        return 0.0
    return max(0.0, ((after.machine - before.machine) - (after.ours - before.ours)) / elapsed)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.05,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `check` until it is true; fail after `timeout` seconds or when `alive` turns false."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if alive is not None and not alive():
            raise BenchError(f"{what}: process exited before it was ready")
        if time.monotonic() >= deadline:
            raise BenchError(f"{what}: not ready after {timeout:.0f}s")
        time.sleep(interval)


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The status of a GET to `url`, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (OSError, ValueError):
        return None


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of one GET (error statuses included)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read()


def http_post(
    url: str, body: bytes, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """Status and body of one POST of `body` (error statuses included)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read()


def http_ready(url: str) -> Callable[[], bool]:
    """A readiness check: GET `url` answers 200."""
    return lambda: http_status(url) == 200


# --- processes -------------------------------------------------------------------------------


@dataclass
class Service:
    """One long-running process under the benchmark's control."""

    name: str
    argv: list[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cpu: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Service:
        command = pinned(self.argv, self.cpu)
        env = dict(os.environ if self.env is None else self.env)
        with open(self.log_path, "ab") as log:
            # Own process group: Ctrl-C reaches only us, and we stop the children in order.
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError(f"{self.name} is not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float = 20.0) -> None:
        try:
            wait_until(check, timeout, self.name, alive=self.alive)
        except BenchError as err:
            raise BenchError(f"{err}\n--- {self.name} log (tail) ---\n{self.log_tail()}") from None

    def cpu_seconds(self) -> float:
        """CPU time used so far by this service's process group (all its processes)."""
        return group_cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the process group, then SIGKILL if it is still there after `grace`."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            # The leader is not reaped yet, so the group id is still ours.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace)
        # Leftovers of the group (workers that outlived their master), each by its pid: a group
        # id stays reserved while it has members, so these are ours.
        for pid, fields in _group_stats(proc.pid).items():
            if fields[0] in ("Z", "X"):
                continue  # already dead, waiting to be reaped by its parent
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            print(f"warning: {self.name} (pid {proc.pid}) did not exit", file=sys.stderr)


class Services:
    """Starts services and stops all of them, newest first, when the block is left."""

    def __init__(self, prefix: str = "forebay-bench-") -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.dir = Path(self._tmp.name)
        self._started: list[Service] = []
        self.keep_dir = False

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        while self._started:
            service = self._started.pop()
            try:
                service.stop()
            except Exception as err:  # keep stopping the others
                print(f"warning: stopping {service.name}: {err}", file=sys.stderr)
        if not self.keep_dir:
            self._tmp.cleanup()

    @property
    def started(self) -> list[Service]:
        """The services started and not yet stopped, oldest first."""
        return list(self._started)

    def subdir(self, name: str) -> Path:
        path = self.dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cpu: int | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 20.0,
    ) -> Service:
        service = Service(name, list(argv), self.dir / f"{name}.log", env=env, cpu=cpu)
        self._started.append(service)  # registered first, so a failed start is cleaned up too
        service.start()
        if ready is not None:
            service.wait_ready(ready, timeout)
        return service


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks and context managers clean up."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


# --- nginx -----------------------------------------------------------------------------------

NGINX_MAIN = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
{http}
}}
"""


def render_nginx(directory: Path, http: str) -> str:
    """A whole nginx.conf: the `http` block's content plus paths kept inside `directory`."""
    body = "\n".join("    " + line if line.strip() else "" for line in http.strip().splitlines())
    return NGINX_MAIN.format(dir=directory, http=body)


def start_nginx(
    services: Services,
    name: str,
    http: str,
    *,
    port: int,
    cpu: int | None = None,
    ready_path: str = "/",
    timeout: float = 10.0,
) -> Service:
    """Start nginx with `http` as its http-block content; ready when GET `ready_path` is 200."""
    nginx = require_tool(NGINX)
    directory = services.subdir(name)
    (directory / "tmp").mkdir(exist_ok=True)
    # Run as root, nginx's workers drop to an unprivileged user that must reach the temp paths.
    os.chmod(services.dir, 0o755)
    os.chmod(directory, 0o755)
    conf = directory / "nginx.conf"
    conf.write_text(render_nginx(directory, http))
    base = [nginx, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)]
    check = subprocess.run(
        [*base, "-t", "-q"], capture_output=True, text=True, timeout=30, check=False
    )
    if check.returncode != 0:
        raise BenchError(f"nginx config for {name} is invalid:\n{check.stderr}")
    argv = [*base, "-g", "daemon off;"]
    return services.start(
        name,
        argv,
        cpu=cpu,
        ready=http_ready(f"http://{LOOPBACK}:{port}{ready_path}"),
        timeout=timeout,
    )


# --- wrk -------------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_SIZE = re.compile(r"^\s*([\d.]+)(us|ms|s|m|h)\s*$")


@dataclass
class WrkResult:
    requests_per_sec: float
    requests: int
    duration_s: float
    latency_ms: dict[str, float]  # percentile ("50", "99", ...) -> milliseconds
    socket_errors: dict[str, int]  # connect/read/write/timeout
    non_2xx_3xx: int
    command: str
    output: str = field(repr=False)

    @property
    def p50_ms(self) -> float | None:
        return self.latency_ms.get("50")

    @property
    def p99_ms(self) -> float | None:
        return self.latency_ms.get("99")

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx_3xx

    def problems(self) -> list[str]:
        found = []
        if self.non_2xx_3xx:
            found.append(f"{self.non_2xx_3xx} non-2xx/3xx responses")
        bad = {k: v for k, v in self.socket_errors.items() if v}
        if bad:
            found.append("socket errors " + ", ".join(f"{k} {v}" for k, v in bad.items()))
        if self.requests == 0:
            found.append("no requests completed")
        return found

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("output")
        return data


def duration_to_ms(text: str) -> float:
    match = _SIZE.match(text)
    if match is None:
        raise BenchError(f"cannot read wrk duration {text!r}")
    return round(float(match.group(1)) * _UNITS_MS[match.group(2)], 6)


def parse_wrk(output: str, command: str = "") -> WrkResult:
    """Read wrk 4.x's text report."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output, re.M)
    if rps is None or total is None:
        raise BenchError(f"cannot read wrk output:\n{output}")
    latency: dict[str, float] = {}
    dist = output.split("Latency Distribution", 1)
    if len(dist) == 2:
        for pct, value in re.findall(r"^\s+([\d.]+)%\s+(\S+)\s*$", dist[1], re.M):
            latency[pct.removesuffix(".000").removesuffix(".0")] = duration_to_ms(value)
    socket_errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    errs = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errs:
        for key, value in zip(socket_errors, errs.groups(), strict=True):
            socket_errors[key] = int(value)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkResult(
        requests_per_sec=float(rps.group(1)),
        requests=int(total.group(1)),
        duration_s=duration_to_ms(total.group(2) + total.group(3)) / 1000.0,
        latency_ms=latency,
        socket_errors=socket_errors,
        non_2xx_3xx=int(non2xx.group(1)) if non2xx else 0,
        command=command,
        output=output,
    )


def wrk_argv(
    url: str,
    *,
    threads: int,
    connections: int,
    duration: float,
    latency: bool = False,
    timeout: float | None = None,
    headers: Sequence[str] = (),
    script: Path | str | None = None,
) -> list[str]:
    # wrk takes whole seconds only (units s, m, h).
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, math.ceil(duration))}s"]
    if timeout is not None:
        argv.append(f"--timeout={timeout:g}s")
    for header in headers:
        argv += ["-H", header]
    if script is not None:  # a Lua script, e.g. one that sets wrk.method and wrk.body
        argv += ["-s", str(script)]
    if latency:
        argv.append("--latency")
    argv.append(url)
    return argv


def run_wrk(
    url: str,
    *,
    threads: int = 1,
    connections: int = 64,
    duration: float = 5.0,
    latency: bool = False,
    cpu: int | None = None,
    timeout: float | None = None,
    headers: Sequence[str] = (),
    script: Path | str | None = None,
) -> WrkResult:
    """One wrk run (pinned to `cpu` when possible); fails if wrk fails or prints no figures."""
    require_tool(WRK)
    argv = wrk_argv(
        url,
        threads=threads,
        connections=connections,
        duration=duration,
        latency=latency,
        timeout=timeout,
        headers=headers,
        script=script,
    )
    command = shlex.join(pinned(argv, cpu))
    # subprocess.run kills wrk if we are interrupted or it overruns its time.
    out = subprocess.run(
        pinned(argv, cpu),
        capture_output=True,
        text=True,
        timeout=duration + 30.0,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(f"{command} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return parse_wrk(out.stdout, command)
