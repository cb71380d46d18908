"""Consumers and their API keys (`/api/consumers`), and captured errors (`/api/errors`).

A key is shown once, in the answer that creates it; afterwards only its id is."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from forebay.admin.schema_rules import CONSUMER_NAME, METHOD_PATH, RATE, nullable_pattern
from forebay.admin.usage import USAGE, Usage
from forebay.catalog.endpoint import endpoint_id
from forebay.consumers import issue_key
from forebay.policy.patterns import split_pattern
from forebay.store.consumers import (
    ApiKey,
    Consumer,
    ConsumerName,
    EndpointPatterns,
    RateText,
)
from forebay.store.errors_log import CapturedError


class KeyOut(BaseModel):
    id: str
    shown: str = Field(description="How the key is shown: its id, never the secret.")
    created_at: float
    revoked_at: float | None
    source: str
    label: str | None

    @classmethod
    def of(cls, k: ApiKey) -> KeyOut:
        return cls(
            id=k.id,
            shown=k.shown,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
            source=k.source,
            label=k.label,
        )


class ConsumerOut(Consumer):
    keys: list[KeyOut] = Field(default_factory=list)
    usage: Usage | None = Field(
        None,
        description="Requests made with this consumer's keys, counted in memory by the "
        "process serving them; null when that is another process (more than one worker).",
    )


_PATTERNS: dict[str, Any] = {
    "anyOf": [
        {"type": "array", "items": {"type": "string", "pattern": METHOD_PATH}},
        {"type": "null"},
    ]
}


class ConsumerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ConsumerName = Field(json_schema_extra={"pattern": CONSUMER_NAME})
    rate_limit: RateText = Field(None, json_schema_extra=nullable_pattern(RATE))
    endpoints: EndpointPatterns = Field(None, json_schema_extra=_PATTERNS)
    key_label: str | None = Field(None, description="A note stored with the first key.")


class ConsumerPatch(BaseModel):
    """Fields to change; absent fields stay. `rate_limit: null` removes the limit."""

    model_config = ConfigDict(extra="forbid")

    rate_limit: RateText = Field(None, json_schema_extra=nullable_pattern(RATE))
    endpoints: EndpointPatterns = Field(None, json_schema_extra=_PATTERNS)


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str | None = None


class IssuedKey(BaseModel):
    consumer: str
    key: str = Field(description="The API key. Shown this once; only its hash is kept.")
    key_id: str


def consumers_router(runtime: Any) -> APIRouter:
    api = APIRouter(prefix="/consumers", tags=["consumers"])

    def store() -> Any:
        return runtime.store.consumers

    async def changed() -> None:
        await runtime.refresh_keyring()

    # With several workers the data plane runs in other processes, whose counts this
    # process cannot see: no usage then, rather than zeros that look true.
    counted_here = getattr(runtime.settings, "workers", 1) == 1

    async def out(c: Consumer) -> ConsumerOut:
        keys = [KeyOut.of(k) for k in await store().keys(c.name)]
        usage = USAGE.of(c.name) if counted_here else None
        return ConsumerOut(**c.model_dump(), keys=keys, usage=usage)

    async def existing(name: str) -> Consumer:
        found: Consumer | None = await store().get(name)
        if found is None:
            raise HTTPException(404, f"No consumer {name!r}.")
        return found

    @api.get("", response_model=list[ConsumerOut])
    async def list_consumers() -> list[ConsumerOut]:
        consumers = await store().list()
        USAGE.retain({c.name for c in consumers})
        return [await out(c) for c in consumers]

    @api.post("", response_model=IssuedKey, status_code=201)
    async def create_consumer(body: ConsumerIn) -> IssuedKey:
        """Create a consumer with one key; the key is in this answer and nowhere else."""
        if await store().get(body.name) is not None:
            raise HTTPException(409, f"A consumer {body.name!r} exists already.")
        c = Consumer(
            name=body.name,
            rate_limit=body.rate_limit,
            endpoints=body.endpoints,
            created_at=time.time(),
        )
        await store().save(c)
        key, record = await issue_key(store(), c.name, body.key_label)
        await changed()
        return IssuedKey(consumer=c.name, key=key, key_id=record.id)

    @api.get("/{name}", response_model=ConsumerOut)
    async def get_consumer(name: str) -> ConsumerOut:
        return await out(await existing(name))

    @api.patch("/{name}", response_model=ConsumerOut)
    async def update_consumer(name: str, patch: ConsumerPatch) -> ConsumerOut:
        c = await existing(name)
        data = c.model_dump()
        data.update(patch.model_dump(exclude_unset=True))
        c = Consumer.model_validate(data)
        await store().save(c)
        await changed()
        return await out(c)

    @api.delete("/{name}", status_code=204)
    async def delete_consumer(name: str) -> Response:
        if not await store().delete(name):
            raise HTTPException(404, f"No consumer {name!r}.")
        await changed()
        return Response(status_code=204)

    @api.post("/{name}/keys", response_model=IssuedKey, status_code=201)
    async def add_key(name: str, body: KeyIn | None = None) -> IssuedKey:
        """Another key for the consumer (to rotate: add one, move clients, revoke the old)."""
        await existing(name)
        key, record = await issue_key(store(), name, body.label if body else None)
        await changed()
        return IssuedKey(consumer=name, key=key, key_id=record.id)

    @api.delete("/{name}/keys/{key_id}", status_code=204)
    async def revoke_key(name: str, key_id: str) -> Response:
        """Revoke a key: refused within half a second on every gateway process."""
        k = await store().get_key(key_id)
        if k is None or k.consumer != name:
            raise HTTPException(404, f"Consumer {name!r} has no key {key_id!r}.")
        if not await store().revoke_key(key_id, time.time()):
            raise HTTPException(409, f"The key {key_id!r} is revoked already.")
        await changed()
        return Response(status_code=204)

    return api


def errors_router(runtime: Any) -> APIRouter:
    api = APIRouter(tags=["errors"])

    def resolve(endpoint: str | None) -> str | None:
        if endpoint is None or endpoint.startswith("ep_") or endpoint == "unmatched":
            return endpoint
        try:
            method, path = split_pattern(endpoint)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        return endpoint_id(method, path)

    @api.get("/errors", response_model=list[CapturedError])
    async def recent_errors(
        endpoint: Annotated[
            str | None,
            Query(description="An endpoint id (ep_...), 'METHOD /template' or 'unmatched'."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[CapturedError]:
        """The last failed exchanges (status 500 or more), newest first, redacted."""
        if runtime.capture is not None:
            await runtime.capture.flush()
        rows: list[CapturedError] = await runtime.store.errors.recent(resolve(endpoint), limit)
        return rows

    @api.get("/endpoints/{endpoint_id}/errors", response_model=list[CapturedError])
    async def endpoint_errors(
        endpoint_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[CapturedError]:
        return await recent_errors(endpoint_id, limit)

    @api.delete("/errors", status_code=204)
    async def clear_errors(endpoint: str | None = None) -> Response:
        await runtime.store.errors.clear(resolve(endpoint))
        return Response(status_code=204)

    return api
