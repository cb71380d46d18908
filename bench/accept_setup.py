"""bench.accept's targets: what runs, how it is started and checked, and what is counted.

See `bench/accept.py` for the scenario.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    LOOPBACK,
    BenchError,
    Service,
    Services,
    WrkResult,
    free_port,
    http_post,
    http_ready,
    median,
    require_tool,
    start_nginx,
)
from bench.gateway import clean_env, start_forebay_run
from bench.report import (
    pct,
)

SERVER_CPU = 0  # the server under test, alone
LOAD_CPU = 1  # wrk, Redis and the delivery origin

REDIS = "redis-server"
REDIS_CLI = "redis-cli"
REDIS_QUEUE = "orders"  # the list bench.fastapi_enqueue pushes onto

PATH = "/orders"
BODY = '{"item": 1, "qty": 2}'
NGINX_BODY = '{"id":"x","status":"queued"}'
READY_PATH = "/bench-ready"  # a GET that answers 200, for start_nginx's readiness check

WRK_SCRIPT = f"""\
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""

# nginx answering every path with a fixed status and body: the 202 ceiling, and the
# origin that takes deliveries.
FIXED_HTTP = """
server {{
    listen {host}:{port} backlog=4096;
    location = {ready} {{
        return 200 'ok';
    }}
    location / {{
        default_type application/json;
        return {status} '{body}';
    }}
}}
"""

TARGETS = (
    "nginx",
    "fastapi-redis",
    "fastapi-redis-fsync",
    "forebay-accept",
    "forebay-delivery",
)
LABELS = {
    "nginx": "nginx (ceiling)",
    "fastapi-redis": "FastAPI + redis (no fsync)",
    "fastapi-redis-fsync": "FastAPI + redis (appendfsync always)",
    "forebay-accept": "forebay accept only",
    "forebay-delivery": "forebay accept + delivery",
}
FOREBAY = ("forebay-accept", "forebay-delivery")
FASTAPI = ("fastapi-redis", "fastapi-redis-fsync")
BASELINE = "fastapi-redis"  # "the usual alternative" the 3x target is measured against

# What "good enough" is.
TARGET_VS_NGINX = 0.25  # forebay req/s >= this share of nginx's
TARGET_VS_FASTAPI = 3.0  # forebay req/s >= this multiple of FastAPI + redis (no fsync)
TARGET_P99_MS = 10.0  # forebay p99 at the measured connection count
# CPU used by other processes during a measurement (in cores) above which it is suspect.
BUSY_CORES = 0.15
RETRY_PAUSE = 5.0  # seconds before measuring a target again after a busy run
FSYNC_PROBES = 50


@dataclass
class Round:
    result: WrkResult
    cpu_percent: float  # the server under test's CPU use during the run
    others_cores: float  # CPU used by processes not ours during the run, in cores
    delivered: int | None = None  # forebay: requests delivered by the end of the run
    backlog: int | None = None  # forebay: requests still queued at the end of the run
    idle_delivery: float | None = None  # accept + delivery: delivered/s once wrk stopped


@dataclass
class Instance:
    """One forebay process and its database (one per round and variant)."""

    service: Service
    url: str
    db: Path
    acked: int = 0  # 2xx answers it gave (check, warm-up, measurement)
    stored: int | None = None  # rows in `requests` after it stopped


@dataclass
class Target:
    name: str
    url: str = ""
    server: Service | None = None  # None for forebay: one Instance per round instead
    redis_port: int | None = None  # the FastAPI targets' Redis
    acked: int = 0  # 2xx answers counted, all runs (forebay: see instances)
    stored: int | None = None  # Redis list length after the runs
    rounds: list[Round] = field(default_factory=list)
    discarded: list[Round] = field(default_factory=list)  # measured while the machine was busy
    instances: list[Instance] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.name]

    @property
    def rps(self) -> list[float]:
        return [r.result.requests_per_sec for r in self.rounds]

    @property
    def p50(self) -> list[float]:
        return [pct(r.result, "50") for r in self.rounds]

    @property
    def p99(self) -> list[float]:
        return [pct(r.result, "99") for r in self.rounds]

    @property
    def cpu(self) -> list[float]:
        return [r.cpu_percent for r in self.rounds]

    @property
    def others(self) -> list[float]:
        return [r.others_cores for r in self.rounds]

    def problems(self) -> list[str]:
        found = [
            f"{self.label} round {i}: {p}"
            for i, r in enumerate(self.rounds, 1)
            for p in r.result.problems()
        ]
        found += [
            f"{self.label} discarded run {i}: {p}"
            for i, r in enumerate(self.discarded, 1)
            for p in r.result.problems()
        ]
        return found


def done_count(counts: dict[str, int]) -> int:
    """Requests the dispatcher is done with (delivered, or given up on)."""
    return sum(counts.get(state, 0) for state in ("succeeded", "failed", "dead"))


def ok_count(result: WrkResult) -> int:
    """How many 2xx/3xx answers wrk counted in one run."""
    return result.requests - result.non_2xx_3xx


# --- the storage the figures rest on ----------------------------------------------------------


def filesystem_type(path: Path) -> str:
    """The type of the filesystem `path` is on (ext4, tmpfs, ...), from /proc/mounts."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, parts[2]
    return kind


def fsync_probe(directory: Path, count: int = FSYNC_PROBES) -> float:
    """Median time of a 64-byte append followed by fsync in `directory`, in ms."""
    path = directory / "fsync-probe"
    times: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(count):
            started = time.perf_counter()
            os.write(fd, b"x" * 64)
            os.fsync(fd)
            times.append((time.perf_counter() - started) * 1000.0)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return round(median(times), 3)


def forebay_counts(db: Path) -> dict[str, int]:
    """Requests by state in a forebay database, opened read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)
    try:
        rows = conn.execute("SELECT state, COUNT(*) FROM requests GROUP BY state").fetchall()
    finally:
        conn.close()
    return {str(state): int(n) for state, n in rows}


def redis_cli(port: int, *command: str) -> str:
    out = subprocess.run(
        [REDIS_CLI, "-h", LOOPBACK, "-p", str(port), *command],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout.strip() if out.returncode == 0 else ""


def redis_ready(port: int) -> Callable[[], bool]:
    return lambda: redis_cli(port, "PING") == "PONG"


# --- starting the targets ---------------------------------------------------------------------


def start_redis(services: Services, name: str, fsync: bool) -> int:
    port = free_port()
    directory = services.subdir(name)
    durability = (
        ["--appendonly", "yes", "--appendfsync", "always"] if fsync else ["--appendonly", "no"]
    )
    argv = [
        require_tool(REDIS),
        "--port",
        str(port),
        "--bind",
        LOOPBACK,
        "--dir",
        str(directory),
        "--save",
        "",
        *durability,
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]
    services.start(name, argv, cpu=LOAD_CPU, ready=redis_ready(port), timeout=20.0)
    return port


def start_fastapi(services: Services, name: str, redis_port: int) -> tuple[str, Service]:
    port = free_port()
    env = clean_env()
    root = str(Path(__file__).resolve().parent.parent)  # so `-m bench.fastapi_enqueue` imports
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    server = services.start(
        name,
        [
            sys.executable,
            "-m",
            "bench.fastapi_enqueue",
            "--port",
            str(port),
            "--redis",
            f"redis://{LOOPBACK}:{redis_port}/0",
        ],
        env=env,
        cpu=SERVER_CPU,
        ready=http_ready(f"http://{LOOPBACK}:{port}/healthz"),
        timeout=30.0,
    )
    return f"http://{LOOPBACK}:{port}{PATH}", server


def start_static(services: Services) -> tuple[dict[str, Target], str]:
    """Start nginx, both Redis servers with their FastAPI apps, and the delivery origin."""
    targets = {name: Target(name) for name in TARGETS}

    port = free_port()
    targets["nginx"].server = start_nginx(
        services,
        "nginx",
        FIXED_HTTP.format(host=LOOPBACK, port=port, ready=READY_PATH, status=202, body=NGINX_BODY),
        port=port,
        cpu=SERVER_CPU,
        ready_path=READY_PATH,
    )
    targets["nginx"].url = f"http://{LOOPBACK}:{port}{PATH}"

    for name in FASTAPI:
        redis_port = start_redis(services, f"redis-{name}", fsync=name.endswith("fsync"))
        url, server = start_fastapi(services, name, redis_port)
        targets[name].url, targets[name].server = url, server
        targets[name].redis_port = redis_port

    origin_port = free_port()
    start_nginx(
        services,
        "origin",
        FIXED_HTTP.format(
            host=LOOPBACK, port=origin_port, ready=READY_PATH, status=201, body='{"ok":true}'
        ),
        port=origin_port,
        cpu=LOAD_CPU,
        ready_path=READY_PATH,
    )
    return targets, f"http://{LOOPBACK}:{origin_port}"


def start_forebay(
    services: Services,
    name: str,
    origin: str,
    *,
    store: str | None = None,
    cpu: int = SERVER_CPU,
) -> Instance:
    """A fresh forebay with an empty database in its own directory (or on `store`, a store
    URL several instances may share)."""
    directory = services.subdir(name)
    db = directory / "forebay.db"
    port, admin_port = free_port(), free_port()
    config = {
        "origin": origin,
        "listen": f"{LOOPBACK}:{port}",
        "admin": {"listen": f"{LOOPBACK}:{admin_port}", "token": "bench"},
        "store": store or f"sqlite:///{db}",
        "log": {"level": "warning"},
        "workers": 1,
        "endpoints": {f"POST {PATH}": {"managed": True, "async": True}},
    }
    config_path = directory / "forebay.yaml"
    config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
    server = start_forebay_run(
        services,
        name,
        ["--config", str(config_path)],
        admin_port=admin_port,
        env=clean_env(),
        cpu=cpu,
    )
    return Instance(server, f"http://{LOOPBACK}:{port}{PATH}", db)


def check_answer(name: str, url: str, server: Service | None) -> None:
    """One POST: 202 with a JSON object holding an id (forebay: its whole documented body)."""
    status, body = http_post(url, BODY.encode(), {"Content-Type": "application/json"})
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    want = ("id", "status", "status_url", "accepted_at") if name in FOREBAY else ("id",)
    if status != 202 or not isinstance(doc, dict) or any(k not in doc for k in want):
        log = f"\n--- {name} log (tail) ---\n{server.log_tail()}" if server is not None else ""
        raise BenchError(f"{LABELS[name]} answered {status} {body[:300]!r}, not 202 {want}{log}")
