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
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.accept_report import render, summarize
from bench.accept_setup import (
    BUSY_CORES,
    FASTAPI,
    FOREBAY,
    LABELS,
    LOAD_CPU,
    REDIS,
    REDIS_QUEUE,
    RETRY_PAUSE,
    SERVER_CPU,
    TARGETS,
    WRK_SCRIPT,
    Instance,
    Round,
    Target,
    check_answer,
    done_count,
    filesystem_type,
    forebay_counts,
    fsync_probe,
    ok_count,
    redis_cli,
    start_forebay,
    start_static,
)
from bench.common import (
    LOOPBACK,
    NGINX,
    WRK,
    BenchError,
    Service,
    Services,
    WrkResult,
    can_pin,
    cpu_snapshot,
    exit_on_sigterm,
    free_port,
    others_cores,
    run_wrk,
    tool_version,
)
from bench.report import (
    add_json_option,
    add_wrk_options,
    print_json,
    progress,
    run_guarded,
    scenario_info,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.accept",
        description="Durable accept: nginx ceiling vs FastAPI + Redis vs forebay (202 answers).",
    )
    add_wrk_options(parser, "wrk connections (64)")
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
    add_json_option(parser)
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
                progress(f"warm-up {LABELS[name]} ({self.args.warmup}s)")
                target.acked += ok_count(self.wrk(target.url, self.args.warmup))

    def forebay_instance(self, name: str, tag: str) -> Instance:
        origin = self.closed_origin if name == "forebay-accept" else self.origin
        instance = start_forebay(self.services, f"{name}-{tag}", origin)
        check_answer(name, instance.url, instance.service)
        instance.acked += 1
        if self.args.warmup > 0:
            progress(f"  warm-up {LABELS[name]} ({self.args.warmup}s, fresh process)")
            with _log_on_error(instance.service):
                instance.acked += ok_count(self.wrk(instance.url, self.args.warmup))
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
            target.acked += ok_count(result)
        else:
            instance.acked += ok_count(result)
            counts = forebay_counts(instance.db)
            run.delivered = done_count(counts)
            run.backlog = counts.get("queued", 0) + counts.get("in_flight", 0)
            if name == "forebay-delivery" and self.args.delivery_sample > 0:
                run.idle_delivery = self.delivery_rate(instance, run.delivered)
            self.finish_instance(instance)
            target.instances.append(instance)
        for problem in result.problems():
            progress(f"  WARNING {name}: {problem}")
        return run

    def delivery_rate(self, instance: Instance, delivered: int) -> float:
        """Requests/s the dispatcher delivers to the origin with no incoming load."""
        progress(f"  delivery with no incoming load ({self.args.delivery_sample}s)")
        started = time.monotonic()
        time.sleep(self.args.delivery_sample)
        now = done_count(forebay_counts(instance.db))
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
                progress(f"round {i + 1}/{self.args.runs}: {LABELS[name]}")
                target = self.targets[name]
                for attempt in range(self.args.retries + 1):
                    tag = f"r{i + 1}" + (f"-{attempt + 1}" if attempt else "")
                    run = self.measure_one(name, tag)
                    if run.others_cores < BUSY_CORES or attempt == self.args.retries:
                        break
                    # Someone else's processes took CPU meanwhile: measure again, later.
                    target.discarded.append(run)
                    progress(
                        f"  busy: other processes used {run.others_cores:.2f} cores;"
                        f" measuring again in {RETRY_PAUSE:g}s"
                    )
                    time.sleep(RETRY_PAUSE)
                if run.others_cores >= BUSY_CORES:
                    progress(
                        f"  WARNING {name}: other processes used {run.others_cores:.2f}"
                        " cores meanwhile (kept: no retries left)"
                    )
                target.rounds.append(run)
        for name in FASTAPI:
            target = self.targets[name]
            assert target.redis_port is not None
            length = redis_cli(target.redis_port, "LLEN", REDIS_QUEUE)
            target.stored = int(length) if length.isdigit() else None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    info = scenario_info("bench.accept", argv, {"wrk": [WRK, "-v"], "nginx": [NGINX, "-v"]})
    info["redis"] = tool_version([REDIS, "--version"]).split(" sha=")[0]
    if not can_pin((SERVER_CPU, LOAD_CPU)):
        progress("WARNING: cannot pin to CPUs 0 and 1 (no taskset?); figures will be noisy")
    benches: list[Bench] = []

    def body() -> None:
        with Services(prefix="forebay-bench-accept-") as services:
            services.keep_dir = args.keep
            if args.keep:
                progress(f"keeping {services.dir}")
            info["filesystem"] = filesystem_type(services.dir)
            info["fsync_ms"] = fsync_probe(services.dir)
            script = services.dir / "post.lua"
            script.write_text(WRK_SCRIPT)
            bench = Bench(args, services, script, f"http://{LOOPBACK}:{free_port()}")
            benches.append(bench)
            bench.start()
            bench.run()

    status = run_guarded(body)
    if status is not None:
        return status
    bench = benches[0]
    targets = bench.targets
    problems = [p for t in targets.values() for p in t.problems()]
    summary = summarize(targets)
    print(render(summary, info, args, problems, bench.forebay_logs))
    if args.json:
        print_json(
            {
                "scenario": "accept",
                "runs": args.runs,
                "duration_s": args.duration,
                "connections": args.connections,
                "machine": info,
                **summary,
                "problems": problems,
                "forebay_logs": bench.forebay_logs,
            }
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
