"""Durable accept: how fast forebay answers writes with 202 after committing them to disk.

What runs (one worker each):

- nginx (ceiling): nginx answering every `POST /orders` with
  `return 202 '{"id":"x","status":"queued"}'`. Stores nothing; the most any server can do.
- FastAPI + Redis: what a Python team usually writes instead (`bench/fastapi_enqueue.py`):
  FastAPI on uvicorn (uvloop, httptools, access log off) that `LPUSH`es a JSON record with an
  id to Redis (redis.asyncio, hiredis) and answers 202. Two private Redis servers back it:
  `redis (no fsync)`, `--save "" --appendonly no`, which keeps the queue in memory only, and
  `redis (appendfsync always)`, `--appendonly yes --appendfsync always`, which writes and
  fsyncs its append-only file before it replies (batched per event-loop turn).
- forebay: `python -m forebay run --config FILE`, with `POST /orders` managed and async, a
  SQLite store (WAL, synchronous=FULL, group commit) in the temporary directory, logging at
  `warning`. Two variants, each started afresh with an empty database for every round:
  - `forebay accept only`: the origin is a closed port, so the dispatcher pauses after its
    first refused connection and the accept path has the core to itself;
  - `forebay accept + delivery`: the origin is an nginx answering 201, so the dispatcher
    delivers the backlog in the background, in the same process, on the same core.

The server under test (nginx, the FastAPI app, forebay) is pinned to CPU 0; wrk, Redis and the
origin share CPU 1. Every measurement is `wrk -t1 -c{connections} -d{duration} --latency` with a
Lua script that POSTs a small JSON body: requests/s, p50, p99. Rounds interleave the targets,
rotating their order; the figures are medians over the rounds.

Checks: every target answers a POST with 202 and a JSON id before it is measured; wrk must
report no non-2xx answers and no socket errors; after the runs, each forebay database (opened
read-only) must hold at least as many requests as wrk counted 2xx answers (nothing acknowledged
was lost), and each Redis list at least as many records.

Run with `python -m bench.accept`; `--help` lists the options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    LOOPBACK,
    NGINX,
    WRK,
    BenchError,
    Service,
    Services,
    WrkResult,
    bench_command,
    can_pin,
    cpu_snapshot,
    exit_on_sigterm,
    free_port,
    http_post,
    http_ready,
    machine_info,
    median,
    others_cores,
    require_tool,
    run_wrk,
    start_nginx,
    tool_version,
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

CEILING_HTTP = """
server {{
    listen {host}:{port} backlog=4096;
    location = {ready} {{
        return 200 'ok';
    }}
    location / {{
        default_type application/json;
        return 202 '{body}';
    }}
}}
"""

ORIGIN_HTTP = """
server {{
    listen {host}:{port} backlog=4096;
    location = {ready} {{
        return 200 'ok';
    }}
    location / {{
        default_type application/json;
        return 201 '{{"ok":true}}';
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
        return [_pct(r.result, "50") for r in self.rounds]

    @property
    def p99(self) -> list[float]:
        return [_pct(r.result, "99") for r in self.rounds]

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


def _pct(result: WrkResult, pct: str) -> float:
    value = result.latency_ms.get(pct)
    if value is None:
        raise BenchError(f"wrk printed no {pct}th percentile:\n{result.output}")
    return value


def _delivered(counts: dict[str, int]) -> int:
    """Requests the dispatcher is done with (delivered, or given up on)."""
    return sum(counts.get(state, 0) for state in ("succeeded", "failed", "dead"))


def _ok(result: WrkResult) -> int:
    """How many 2xx/3xx answers wrk counted in one run."""
    return result.requests - result.non_2xx_3xx


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.accept",
        description="Durable accept: nginx ceiling vs FastAPI + Redis vs forebay (202 answers).",
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds over all targets (3)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up per target (2; 0 for none)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help=(
            f"measure a target again, at most N times, when other processes used"
            f" >= {BUSY_CORES} cores meanwhile (2; the last attempt is kept either way)"
        ),
    )
    parser.add_argument(
        "--delivery-sample",
        type=int,
        default=10,
        help=(
            "seconds to watch 'forebay accept + delivery' deliver its backlog after each run,"
            " with no incoming load (10; 0 for none)"
        ),
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (configs, logs, databases) and print where it is",
    )
    args = parser.parse_args(argv)
    if (
        args.runs < 1
        or args.duration <= 0
        or args.connections < 1
        or args.warmup < 0
        or args.retries < 0
        or args.delivery_sample < 0
    ):
        parser.error(
            "--runs and --connections must be >= 1, --duration > 0,"
            " --warmup, --retries and --delivery-sample >= 0"
        )
    return args


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


def _clean_env() -> dict[str, str]:
    """Our environment without FOREBAY_* settings, so only the config file counts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FOREBAY_")}


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
    env = _clean_env()
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
        CEILING_HTTP.format(host=LOOPBACK, port=port, ready=READY_PATH, body=NGINX_BODY),
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
        ORIGIN_HTTP.format(host=LOOPBACK, port=origin_port, ready=READY_PATH),
        port=origin_port,
        cpu=LOAD_CPU,
        ready_path=READY_PATH,
    )
    return targets, f"http://{LOOPBACK}:{origin_port}"


def start_forebay(services: Services, name: str, origin: str) -> Instance:
    """A fresh forebay with an empty database in its own directory."""
    directory = services.subdir(name)
    db = directory / "forebay.db"
    port, admin_port = free_port(), free_port()
    config = {
        "origin": origin,
        "listen": f"{LOOPBACK}:{port}",
        "admin": {"listen": f"{LOOPBACK}:{admin_port}", "token": "bench"},
        "store": f"sqlite:///{db}",
        "log": {"level": "warning"},
        "workers": 1,
        "endpoints": {f"POST {PATH}": {"managed": True, "async": True}},
    }
    config_path = directory / "forebay.yaml"
    config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
    server = services.start(
        name,
        [sys.executable, "-m", "forebay", "run", "--config", str(config_path)],
        env=_clean_env(),
        cpu=SERVER_CPU,
        ready=http_ready(f"http://{LOOPBACK}:{admin_port}/healthz"),
        timeout=30.0,
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


# --- measuring --------------------------------------------------------------------------------


@contextlib.contextmanager
def _log_on_error(service: Service) -> Iterator[None]:
    """Add the tail of `service`'s log to a BenchError raised in the block."""
    try:
        yield
    except BenchError as err:
        raise BenchError(
            f"{err}\n--- {service.name} log (tail) ---\n{service.log_tail()}"
        ) from None


class Bench:
    def __init__(
        self, args: argparse.Namespace, services: Services, script: Path, closed_origin: str
    ) -> None:
        self.args = args
        self.services = services
        self.script = script
        self.closed_origin = closed_origin
        self.origin = ""
        self.targets: dict[str, Target] = {}
        self.forebay_logs: dict[str, str] = {}  # instance name -> its log, when not empty

    def wrk(self, url: str, duration: float) -> WrkResult:
        return run_wrk(
            url,
            connections=self.args.connections,
            duration=duration,
            latency=True,
            cpu=LOAD_CPU,
            script=self.script,
        )

    def start(self) -> None:
        self.targets, self.origin = start_static(self.services)
        for name in TARGETS:
            target = self.targets[name]
            if name in FOREBAY:
                continue
            check_answer(name, target.url, target.server)
            target.acked += 1
            if self.args.warmup > 0:
                _progress(f"warm-up {LABELS[name]} ({self.args.warmup}s)")
                target.acked += _ok(self.wrk(target.url, self.args.warmup))

    def forebay_instance(self, name: str, tag: str) -> Instance:
        origin = self.closed_origin if name == "forebay-accept" else self.origin
        instance = start_forebay(self.services, f"{name}-{tag}", origin)
        check_answer(name, instance.url, instance.service)
        instance.acked += 1
        if self.args.warmup > 0:
            _progress(f"  warm-up {LABELS[name]} ({self.args.warmup}s, fresh process)")
            with _log_on_error(instance.service):
                instance.acked += _ok(self.wrk(instance.url, self.args.warmup))
        return instance

    def measure_one(self, name: str, tag: str) -> Round:
        """One measurement of target `name`; `tag` names a fresh forebay's directory."""
        target = self.targets[name]
        instance = self.forebay_instance(name, tag) if name in FOREBAY else None
        url = instance.url if instance is not None else target.url
        server = instance.service if instance is not None else target.server
        assert server is not None
        alive = self.services.started
        before = cpu_snapshot(alive)
        cpu_before, started = server.cpu_seconds(), time.monotonic()
        with _log_on_error(server):
            result = self.wrk(url, self.args.duration)
        if not server.alive():
            raise BenchError(
                f"{target.label} exited during its run ({tag})\n"
                f"--- {server.name} log (tail) ---\n{server.log_tail()}"
            )
        used = server.cpu_seconds() - cpu_before
        cpu_percent = round(100.0 * used / (time.monotonic() - started), 1)
        others = round(others_cores(before, cpu_snapshot(alive)), 2)
        run = Round(result, cpu_percent, others)
        if instance is None:
            target.acked += _ok(result)
        else:
            instance.acked += _ok(result)
            counts = forebay_counts(instance.db)
            run.delivered = _delivered(counts)
            run.backlog = counts.get("queued", 0) + counts.get("in_flight", 0)
            if name == "forebay-delivery" and self.args.delivery_sample > 0:
                run.idle_delivery = self.delivery_rate(instance, run.delivered)
            self.finish_instance(instance)
            target.instances.append(instance)
        for problem in result.problems():
            _progress(f"  WARNING {name}: {problem}")
        return run

    def delivery_rate(self, instance: Instance, delivered: int) -> float:
        """Requests/s the dispatcher delivers to the origin with no incoming load."""
        _progress(f"  delivery with no incoming load ({self.args.delivery_sample}s)")
        started = time.monotonic()
        time.sleep(self.args.delivery_sample)
        now = _delivered(forebay_counts(instance.db))
        return round((now - delivered) / (time.monotonic() - started), 1)

    def finish_instance(self, instance: Instance) -> None:
        """Stop a forebay, then count what its database holds and keep any log lines."""
        instance.service.stop()
        instance.stored = sum(forebay_counts(instance.db).values())
        text = instance.service.log_tail(40).strip()
        if text and text != "(no log)":
            self.forebay_logs[instance.service.name] = text

    def run(self) -> None:
        for i in range(self.args.runs):
            shift = i % len(TARGETS)
            order = TARGETS[shift:] + TARGETS[:shift]
            for name in order:
                _progress(f"round {i + 1}/{self.args.runs}: {LABELS[name]}")
                target = self.targets[name]
                for attempt in range(self.args.retries + 1):
                    tag = f"r{i + 1}" + (f"-{attempt + 1}" if attempt else "")
                    run = self.measure_one(name, tag)
                    if run.others_cores < BUSY_CORES or attempt == self.args.retries:
                        break
                    # Someone else's processes took CPU meanwhile: measure again, later.
                    target.discarded.append(run)
                    _progress(
                        f"  busy: other processes used {run.others_cores:.2f} cores;"
                        f" measuring again in {RETRY_PAUSE:g}s"
                    )
                    time.sleep(RETRY_PAUSE)
                if run.others_cores >= BUSY_CORES:
                    _progress(
                        f"  WARNING {name}: other processes used {run.others_cores:.2f}"
                        " cores meanwhile (kept: no retries left)"
                    )
                target.rounds.append(run)
        for name in FASTAPI:
            target = self.targets[name]
            assert target.redis_port is not None
            length = redis_cli(target.redis_port, "LLEN", REDIS_QUEUE)
            target.stored = int(length) if length.isdigit() else None


# --- the report -------------------------------------------------------------------------------


def summarize(targets: dict[str, Target]) -> dict[str, Any]:
    rps = {name: median(t.rps) for name, t in targets.items()}
    p50 = {name: median(t.p50) for name, t in targets.items()}
    p99 = {name: median(t.p99) for name, t in targets.items()}
    ratios: dict[str, dict[str, float]] = {}
    met: dict[str, dict[str, bool]] = {}
    for name in FOREBAY:
        ratios[name] = {
            "vs_nginx": rps[name] / rps["nginx"],
            **{f"vs_{other}": rps[name] / rps[other] for other in FASTAPI},
        }
        met[name] = {
            "vs_nginx": ratios[name]["vs_nginx"] >= TARGET_VS_NGINX,
            "vs_fastapi": ratios[name][f"vs_{BASELINE}"] >= TARGET_VS_FASTAPI,
            "p99": p99[name] < TARGET_P99_MS,
        }
    durability: dict[str, dict[str, Any]] = {}
    for name, t in targets.items():
        if name in FOREBAY:
            acked = sum(i.acked for i in t.instances)
            stored_values = [i.stored for i in t.instances]
            stored = None if None in stored_values else sum(i or 0 for i in stored_values)
        elif name in FASTAPI:
            acked, stored = t.acked, t.stored
        else:
            continue
        durability[name] = {
            "acknowledged": acked,
            "stored": stored,
            "ok": stored is not None and stored >= acked,
        }
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "server_cpu_percent": {n: round(median(t.cpu), 1) for n, t in targets.items()},
        "idle_delivery_per_s": _median_or_none(
            [r.idle_delivery for r in targets["forebay-delivery"].rounds]
        ),
        "ratios": ratios,
        "target_met": met,
        "durability_check": durability,
        "per_run": {
            name: {
                "rps": t.rps,
                "p50_ms": t.p50,
                "p99_ms": t.p99,
                "server_cpu_percent": t.cpu,
                "others_cores": t.others,
                "non_2xx_3xx": [r.result.non_2xx_3xx for r in t.rounds],
                "discarded_busy": [
                    {"rps": r.result.requests_per_sec, "others_cores": r.others_cores}
                    for r in t.discarded
                ],
                **(
                    {
                        "delivered_by_end": [r.delivered for r in t.rounds],
                        "backlog_at_end": [r.backlog for r in t.rounds],
                        "idle_delivery_per_s": [r.idle_delivery for r in t.rounds],
                    }
                    if name in FOREBAY
                    else {}
                ),
            }
            for name, t in targets.items()
        },
    }


def _median_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return median(known) if known else None


def _fmt_list(values: Sequence[float | int | None], spec: str) -> str:
    return " / ".join("-" if v is None else format(v, spec) for v in values)


def _yes(flag: bool) -> str:
    return "met" if flag else "NOT met"


def render(
    summary: dict[str, Any],
    info: dict[str, Any],
    args: argparse.Namespace,
    problems: list[str],
    forebay_logs: dict[str, str],
) -> str:
    rps, p50, p99 = summary["rps"], summary["p50_ms"], summary["p99_ms"]
    cpu, per_run = summary["server_cpu_percent"], summary["per_run"]
    width = max(len(label) for label in LABELS.values())
    lines = [
        f"Durable accept (POST {PATH} -> 202): median of {args.runs} run(s), "
        f"{args.duration:g}s per wrk run, -t1 -c{args.connections}",
        "",
        f"{'target':<{width}} {'req/s':>8} {'cpu%':>5} {'p50 ms':>7} {'p99 ms':>7}",
    ]
    for name in TARGETS:
        lines.append(
            f"{LABELS[name]:<{width}} {rps[name]:>8.0f} {cpu[name]:>5.0f} "
            f"{p50[name]:>7.3f} {p99[name]:>7.3f}"
        )
    idle = summary["idle_delivery_per_s"]
    if idle is not None:
        lines += [
            "",
            f"forebay delivery to the origin with no incoming load: {idle:.0f} requests/s"
            f" (median; {args.delivery_sample}s after each 'accept + delivery' run)",
        ]
    lines += [
        "",
        "cpu%: the server under test's CPU use during the run (100 = one core; for FastAPI,"
        " the app only, Redis runs on the load CPU)",
        f"others: CPU used by processes not ours during the run (cores); a run with >="
        f" {BUSY_CORES} is measured again, at most {args.retries} time(s)",
        "",
        "targets (forebay):",
    ]
    for name in FOREBAY:
        ratio, met = summary["ratios"][name], summary["target_met"][name]
        lines += [
            f"  {LABELS[name]}:",
            f"    /nginx                  {ratio['vs_nginx']:>6.2f}"
            f"  (target >= {TARGET_VS_NGINX}: {_yes(met['vs_nginx'])})",
            f"    /FastAPI+redis no fsync {ratio['vs_fastapi-redis']:>6.2f}"
            f"  (target >= {TARGET_VS_FASTAPI:g}: {_yes(met['vs_fastapi'])})",
            f"    /FastAPI+redis fsync    {ratio['vs_fastapi-redis-fsync']:>6.2f}"
            "  (same durability as forebay; no target)",
            f"    p99                     {p99[name]:>6.2f} ms"
            f" (target < {TARGET_P99_MS:g} ms at -c{args.connections}: {_yes(met['p99'])})",
        ]
    lines += ["", "durability check (acknowledged = 2xx answers wrk and the checks counted):"]
    for name, check in summary["durability_check"].items():
        where = "rows in requests" if name in FOREBAY else f"items in redis list {REDIS_QUEUE}"
        verdict = "ok" if check["ok"] else "LOST ACKNOWLEDGED WRITES (or could not count)"
        lines.append(
            f"  {LABELS[name]:<{width}} acknowledged {check['acknowledged']:>7}, "
            f"{where} {check['stored'] if check['stored'] is not None else '?':>7}: {verdict}"
        )
    lines += [
        "  (redis no fsync: nothing was lost here only because nothing crashed; it keeps the",
        "   queue in memory and loses every acknowledged write on a crash or restart.",
        "   redis appendfsync always and forebay fsync before they answer.)",
        "",
        "per run (in order):",
    ]
    for name in TARGETS:
        run = per_run[name]
        lines.append(
            f"  {LABELS[name]:<{width}} req/s {_fmt_list(run['rps'], '.0f')}"
            f" | cpu% {_fmt_list(run['server_cpu_percent'], '.0f')}"
            f" | p50 {_fmt_list(run['p50_ms'], '.2f')}"
            f" | p99 {_fmt_list(run['p99_ms'], '.2f')}"
            f" | others {_fmt_list(run['others_cores'], '.2f')}"
        )
        if name in FOREBAY:
            lines.append(
                f"  {'':<{width}} delivered by the end of the run"
                f" {_fmt_list(run['delivered_by_end'], 'd')}"
                f" | backlog left {_fmt_list(run['backlog_at_end'], 'd')}"
            )
        if name == "forebay-delivery" and any(run["idle_delivery_per_s"]):
            lines.append(
                f"  {'':<{width}} then, with no incoming load: delivered/s"
                f" {_fmt_list(run['idle_delivery_per_s'], '.0f')}"
            )
        if run["discarded_busy"]:
            lines.append(
                f"  {'':<{width}} measured again after busy runs (discarded): req/s "
                + _fmt_list([d["rps"] for d in run["discarded_busy"]], ".0f")
                + " | others "
                + _fmt_list([d["others_cores"] for d in run["discarded_busy"]], ".2f")
            )
    pinning = f"pinned: server under test CPU {SERVER_CPU}, wrk+redis+origin CPU {LOAD_CPU}"
    lines += [
        "",
        f"python:   {info['implementation']} {info['python']} ({info['interpreter']})",
        f"cpu:      {info['cpu_model']}, {info['usable_cpus']} usable CPUs, "
        + (pinning if info["pinning"] else "NOT pinned (no taskset, or CPU 0 or 1 not ours)"),
        f"disk:     temporary directory on {info['filesystem']}; write+fsync of 64 bytes:"
        f" {info['fsync_ms']:.3f} ms (median of {FSYNC_PROBES})",
        f"tools:    {info['wrk']}; {info['nginx']}; {info['redis']}",
        f"command:  {info['command']}",
        f"wrk:      taskset -c {LOAD_CPU} wrk -t1 -c{args.connections} -d{args.duration:g}s"
        f" --latency -s post.lua http://{LOOPBACK}:PORT{PATH}",
        f"post.lua: {' '.join(WRK_SCRIPT.split())}",
        "forebay:  a fresh process and empty database per round and variant, warmed up first;"
        " accept only = origin a closed port",
    ]
    busiest = max(max(run["others_cores"]) for run in per_run.values())
    if busiest >= BUSY_CORES:
        lines.append(
            f"WARNING: other processes used up to {busiest:.2f} cores during measurements;"
            " those figures are noisy"
        )
    if problems:
        lines += ["", f"WARNING: {len(problems)} wrk run(s) reported errors:"]
        lines += [f"  {p}" for p in problems]
    else:
        lines += ["", "wrk errors: none (no socket errors, no non-2xx/3xx responses)"]
    if forebay_logs:
        lines += ["", "forebay logged (level warning and above):"]
        for instance, text in forebay_logs.items():
            lines.append(f"--- {instance} (tail) ---")
            lines += text.splitlines()
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    info = machine_info()
    info["command"] = bench_command("bench.accept", sys.argv[1:] if argv is None else argv)
    info["wrk"] = tool_version([WRK, "-v"])
    info["nginx"] = tool_version([NGINX, "-v"])
    info["redis"] = tool_version([REDIS, "--version"]).split(" sha=")[0]
    if not can_pin((SERVER_CPU, LOAD_CPU)):
        _progress("WARNING: cannot pin to CPUs 0 and 1 (no taskset?); figures will be noisy")
    try:
        with Services(prefix="forebay-bench-accept-") as services:
            services.keep_dir = args.keep
            if args.keep:
                _progress(f"keeping {services.dir}")
            info["filesystem"] = filesystem_type(services.dir)
            info["fsync_ms"] = fsync_probe(services.dir)
            script = services.dir / "post.lua"
            script.write_text(WRK_SCRIPT)
            bench = Bench(args, services, script, f"http://{LOOPBACK}:{free_port()}")
            bench.start()
            bench.run()
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    targets = bench.targets
    problems = [p for t in targets.values() for p in t.problems()]
    summary = summarize(targets)
    print(render(summary, info, args, problems, bench.forebay_logs))
    if args.json:
        doc = {
            "scenario": "accept",
            "runs": args.runs,
            "duration_s": args.duration,
            "connections": args.connections,
            "machine": info,
            **summary,
            "problems": problems,
            "forebay_logs": bench.forebay_logs,
        }
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
