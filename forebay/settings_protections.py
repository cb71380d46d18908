"""Settings of the always-on protections: authentication, consumers declared in the
config file, rate limits and error capture. Part of `Settings`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forebay.errors import ConfigError
from forebay.policy.api_keys import MIN_LENGTH, valid_key
from forebay.policy.gcra import parse_rate
from forebay.store.consumers import ConsumerName, EndpointPatterns, RateText


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _header_name(v: str | None) -> str | None:
    if v is not None and (not v or not all(c.isalnum() or c in "-_" for c in v)):
        raise ValueError(f"{v!r} is not a header name")
    return v.lower() if v else v


class AuthSettings(_Section):
    required: bool = Field(False, description="Refuse requests without a known key (401).")
    header: str | None = Field(
        None,
        description="Another header that carries the key, besides Authorization: "
        "Bearer and X-API-Key.",
    )
    query: str | None = Field(None, description="A query parameter that carries the key.")
    forward: Literal["strip", "forward", "consumer"] = Field(
        "strip",
        description="What the origin gets of a recognised key: strip it, forward it as "
        "sent, or strip it and send the consumer's name in consumer_header.",
    )
    consumer_header: str = Field("x-forebay-consumer", description="See forward: consumer.")
    cache_seconds: float = Field(
        10.0, ge=0, description="Seconds a verified key is remembered (revocation is sooner)."
    )

    @field_validator("header", "consumer_header")
    @classmethod
    def _names(cls, v: str | None) -> str | None:
        return _header_name(v)


class RateLimitSettings(_Section):
    consumer: str | None = Field(
        None, description="Default limit of each consumer without one of its own: '100/s'."
    )
    anonymous: str | None = Field(
        None, description="Limit of each client address that sends no key."
    )
    redis: str | None = Field(
        None,
        description="redis://HOST:PORT/DB whose counters all instances share; unset: the "
        "store's Redis when the store is one, else counters in each process's memory.",
    )
    timeout: float = Field(0.25, gt=0, description="Seconds to wait for Redis per request.")
    fail: Literal["open", "closed"] = Field(
        "open", description="When Redis cannot be reached: let requests through, or 503."
    )

    @field_validator("consumer", "anonymous")
    @classmethod
    def _rates(cls, v: str | None) -> str | None:
        if v is not None:
            parse_rate(v)
        return v

    @field_validator("redis")
    @classmethod
    def _redis(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{v!r} is not a redis:// URL")
        return v


class ConsumerConfig(_Section):
    """A consumer declared in the config file; seeded into the store at every start."""

    name: ConsumerName
    key: str | None = Field(None, description="One key (16 characters or more).")
    keys: list[str] = Field(default_factory=list, description="More keys.")
    key_env: str | None = Field(None, description="An environment variable holding a key.")
    rate_limit: RateText = None
    endpoints: EndpointPatterns = None

    def all_keys(self, environ: Mapping[str, str]) -> list[str]:
        found = ([self.key] if self.key else []) + list(self.keys)
        if self.key_env:
            value = environ.get(self.key_env)
            if not value:
                raise ConfigError(
                    f"consumers: {self.name}: the environment variable {self.key_env} is not set"
                )
            found.append(value)
        for k in found:
            if not valid_key(k):
                raise ConfigError(
                    f"consumers: {self.name}: a key must be at least {MIN_LENGTH} printable "
                    "ASCII characters without spaces"
                )
        return found


class ErrorCaptureSettings(_Section):
    keep: int = Field(20, ge=1, le=1000, description="Errors kept per endpoint.")
    body_bytes: int = Field(2048, ge=0, description="Bytes of each answer kept as a sample.")
