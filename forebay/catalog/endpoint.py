"""An endpoint in the catalog: its identity, where it was imported from, and its policy."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forebay.catalog.model import template_shape
from forebay.policy.gcra import parse_rate


class CachePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl: float = Field(60.0, gt=0, description="Seconds a cached answer stays fresh.")
    respect_origin: bool = Field(
        False,
        description="Take the lifetime from the origin's s-maxage, max-age or Expires "
        "when it sends one (the TTL otherwise).",
    )
    stale_while_revalidate: float = Field(
        0.0, ge=0, description="Seconds past the TTL a stale answer is served while refreshed."
    )
    stale_if_error: float = Field(
        0.0,
        ge=0,
        description="Seconds past the TTL a stale answer is served when the origin "
        "fails, times out or its breaker is open.",
    )


class EndpointPolicy(BaseModel):
    """What Forebay does for an endpoint beyond the always-on protections.

    An unmanaged endpoint (the default) is passed through; `async` and `cache` take
    effect only when `managed` is on, so one switch turns all of it off.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    managed: bool = False
    async_: bool = Field(False, alias="async")
    cache: CachePolicy | None = None
    invalidates: list[str] = Field(default_factory=list)
    max_attempts: int | None = Field(None, ge=1, description="Overrides async.retry.")
    max_age: float | None = Field(None, gt=0, description="Seconds; overrides async.retry.")
    callback: str | None = Field(None, description="Default completion callback URL.")
    ordering: Literal["path", "none"] = Field(
        "path",
        description="path: requests to one path are delivered in order, one at a time; "
        "none: each request on its own (for creates that never touch each other).",
    )

    rate_limit: str | None = Field(
        None,
        description="A limit on this endpoint for all consumers together, managed or not: "
        "'100/s', '20/m burst 40'.",
    )
    consumer_rate_limit: str | None = Field(
        None, description="A limit on this endpoint for each consumer (or client address)."
    )

    @field_validator("rate_limit", "consumer_rate_limit")
    @classmethod
    def _rate(cls, v: str | None) -> str | None:
        if v is not None:
            parse_rate(v)
        return v

    def is_default(self) -> bool:
        return self == EndpointPolicy()


class Endpoint(BaseModel):
    """A catalog entry. `path` is a template such as `/items/{id}`."""

    id: str
    method: str
    path: str
    policy: EndpointPolicy = Field(default_factory=EndpointPolicy)
    policy_source: str = Field(
        "default", description="default, config (seeded from the config file) or user."
    )
    sources: list[str] = Field(default_factory=list)
    operation_id: str | None = None
    summary: str | None = None
    vanished: bool = Field(False, description="Gone from the spec it was imported from.")

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, template_shape(self.path))

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def endpoint_id(method: str, path: str) -> str:
    """A stable id for `METHOD /template`, the same whatever the parameters are called."""
    digest = hashlib.blake2s(f"{method} {template_shape(path)}".encode(), digest_size=6)
    return "ep_" + digest.hexdigest()
