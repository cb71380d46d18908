"""Starting forebay for a benchmark: `python -m forebay run ...` as a `Service`, ready when its
admin API's /healthz answers 200."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from bench.common import LOOPBACK, Service, Services, http_ready


def clean_env() -> dict[str, str]:
    """Our environment without FOREBAY_* settings, so only the config file counts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FOREBAY_")}


def start_forebay_run(
    services: Services,
    name: str,
    args: Sequence[str],
    *,
    admin_port: int,
    env: Mapping[str, str],
    cpu: int | None = None,
) -> Service:
    """`python -m forebay run ARGS`; waits (up to 30 s) for the admin API on `admin_port`."""
    return services.start(
        name,
        [sys.executable, "-m", "forebay", "run", *args],
        env=env,
        cpu=cpu,
        ready=http_ready(f"http://{LOOPBACK}:{admin_port}/healthz"),
        timeout=30.0,
    )
