"""Typed settings: every section, its defaults and its checks. Where the values come from
(the YAML file, `FOREBAY_*` variables, flags) is `settings_load.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator

from forebay.catalog.endpoint import EndpointPolicy
from forebay.policy.governor import GovernorSettings
from forebay.policy.patterns import split_pattern
from forebay.settings_protections import (
    AuthSettings,
    ConsumerConfig,
    ErrorCaptureSettings,
    RateLimitSettings,
)


def parse_listen(value: str) -> tuple[str, int]:
    """`"127.0.0.1:8080"`, `":8080"`, `"[::1]:8080"` -> `(host, port)`."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return (host.strip("[]") or "0.0.0.0", int(port))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AdminSettings(_Section):
    listen: str = "127.0.0.1:8081"
    token: str | None = Field(
        None, description="Admin token; a random one is made and logged when unset."
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v


class Timeouts(_Section):
    connect: float = Field(5.0, gt=0, description="Seconds to open a connection to the origin.")
    read: float = Field(30.0, gt=0, description="Seconds of silence allowed from the origin.")
    total: float = Field(60.0, gt=0, description="Seconds for a whole origin exchange.")


class Limits(_Section):
    max_body: ByteSize = Field(ByteSize(10 * 1024 * 1024), description="Request body, 413 past.")
    max_header_bytes: int = Field(32 * 1024, gt=0, description="All request headers, 431 past.")
    max_headers: int = Field(100, gt=0, description="Number of request headers, 431 past.")
    header_timeout: float = Field(
        10.0, gt=0, description="Seconds from a request's first byte to its last header; 408."
    )
    body_timeout: float = Field(
        30.0, gt=0, description="Seconds a request body may stall between reads; 408."
    )
    keep_alive: float = Field(5.0, gt=0, description="Seconds an idle connection is kept open.")
    max_connections: int | None = Field(
        None, gt=0, description="Open client connections per worker; 503 past. None: no cap."
    )


class RetrySettings(_Section):
    max_attempts: int = Field(10, ge=1, description="Attempts before a request is dead.")
    max_age: float = Field(24 * 3600.0, gt=0, description="Seconds after acceptance; then dead.")
    base: float = Field(0.5, gt=0, description="First backoff ceiling, doubled per attempt.")
    cap: float = Field(300.0, gt=0, description="Largest backoff ceiling.")


class AsyncSettings(_Section):
    retry: RetrySettings = Field(default_factory=RetrySettings)
    concurrency: int = Field(16, ge=1, description="Deliveries in flight per process.")
    idempotency_ttl: float = Field(24 * 3600.0, gt=0, description="Seconds a key is kept.")
    keep_done: float = Field(7 * 24 * 3600.0, gt=0, description="Seconds finished requests stay.")
    max_wait: float = Field(60.0, ge=0, description="Cap on Prefer: wait=N, in seconds.")
    retry_after: int = Field(1, ge=0, description="Retry-After on a 202, in seconds.")
    lease: float = Field(30.0, gt=0, description="Seconds a claimed delivery is held.")
    max_response_body: ByteSize = Field(
        ByteSize(10 * 1024 * 1024), description="Largest origin answer stored for replay."
    )


class GovernorConfig(_Section):
    enabled: bool = Field(
        True, description="Adapt in-flight to the origin; off: async.concurrency, fixed."
    )
    initial_limit: float = Field(8.0, ge=1)
    min_limit: float = Field(1.0, ge=1)
    max_limit: float = Field(1000.0, ge=1)
    window: float = Field(0.25, gt=0, description="Seconds per latency sample window.")
    buffer: float = Field(0.05, ge=0, description="Latency above the no-load one tolerated.")
    remeasure_every: float = Field(
        30.0,
        gt=0,
        description="Seconds between no-load probes. Processes sharing one limit probe "
        "together, at multiples of it on the store's clock: give them the same value.",
    )
    breaker_failures: int = Field(5, ge=1, description="Failures in a row that open it.")

    def policy(self) -> GovernorSettings:
        return GovernorSettings(
            initial_limit=self.initial_limit,
            min_limit=self.min_limit,
            max_limit=self.max_limit,
            window=self.window,
            buffer=self.buffer,
            remeasure_every=self.remeasure_every,
            breaker_failures=self.breaker_failures,
        )


class CallbackSettings(_Section):
    allow: list[str] = Field(
        default_factory=list,
        description="Hosts (exact, *.wildcard, IP or CIDR) a client's callback may target.",
    )
    secret: str | None = Field(
        None, description="whsec_... signing secret; a random one is made when unset."
    )
    max_attempts: int = Field(8, ge=1)
    timeout: float = Field(10.0, gt=0)


class CacheSettings(_Section):
    max_bytes: ByteSize = Field(
        ByteSize(64 * 1024 * 1024), description="Memory for cached answers; LRU past it."
    )
    max_entry: ByteSize = Field(
        ByteSize(1024 * 1024), description="Largest answer body that is stored."
    )


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"
    access: bool = Field(True, description="One access-log line per request, at info level.")


class Settings(_Section):
    origin: str | None = None
    listen: str = "127.0.0.1:8080"
    admin: AdminSettings = Field(default_factory=AdminSettings)
    store: str = "sqlite:///forebay.db"
    import_: list[str] = Field(default_factory=list, alias="import")
    endpoints: dict[str, EndpointPolicy] = Field(default_factory=dict)
    strict: bool = Field(False, description="Answer 404 for paths that match no endpoint.")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    limits: Limits = Field(default_factory=Limits)
    log: LogSettings = Field(default_factory=LogSettings)
    async_: AsyncSettings = Field(default_factory=AsyncSettings, alias="async")
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    governor: GovernorConfig = Field(default_factory=GovernorConfig)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    consumers: list[ConsumerConfig] = Field(default_factory=list)
    errors: ErrorCaptureSettings = Field(default_factory=ErrorCaptureSettings)
    workers: int = Field(1, ge=1, le=64)
    # Where the config file lives: relative imports and store paths are read from there.
    base_dir: str = Field(".", exclude=True)

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v

    @field_validator("origin")
    @classmethod
    def _origin(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.rstrip("/")
        if not v.startswith(("http://", "https://")) or len(v.split("://", 1)[1]) == 0:
            raise ValueError(f"{v!r} is not an http:// or https:// URL")
        return v

    @field_validator("store")
    @classmethod
    def _store(cls, v: str) -> str:
        if not v.startswith(("sqlite://", "memory://", "redis://", "rediss://")):
            raise ValueError(f"{v!r}: use sqlite:///PATH, memory:// or redis://HOST:PORT/DB")
        return v

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, v: dict[str, EndpointPolicy]) -> dict[str, EndpointPolicy]:
        for pattern in v:
            split_pattern(pattern)
        return v

    @field_validator("consumers")
    @classmethod
    def _unique(cls, v: list[ConsumerConfig]) -> list[ConsumerConfig]:
        names = [c.name for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"consumer names must be unique: {', '.join(dupes)}")
        return v

    @model_validator(mode="after")
    def _paths(self) -> Settings:
        base = Path(self.base_dir)
        self.import_ = [str(base / p) if not Path(p).is_absolute() else p for p in self.import_]
        if self.store.startswith("sqlite:///") and not self.store.startswith("sqlite:////"):
            self.store = "sqlite:///" + str(base / self.store.removeprefix("sqlite:///"))
        return self

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    @property
    def admin_address(self) -> tuple[str, int]:
        return parse_listen(self.admin.listen)
