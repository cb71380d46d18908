"""Purging the response cache: by path, path pattern, endpoint or everything."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from forebay.catalog.endpoint import endpoint_id
from forebay.policy.cache_keys import normalise_path
from forebay.policy.invalidation import Targets
from forebay.policy.patterns import split_pattern


class PurgeRequest(BaseModel):
    """Exactly one of the fields says what to purge."""

    # "Exactly one of" in the document too: one object shape per way to purge.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["path"], "properties": {"path": {"type": "string", "pattern": "^/"}}},
                {
                    "required": ["pattern"],
                    "properties": {"pattern": {"type": "string", "pattern": "^/"}},
                },
                {
                    "required": ["endpoint"],
                    "properties": {"endpoint": {"type": "string", "minLength": 1}},
                },
                {"required": ["all"], "properties": {"all": {"const": True}}},
            ]
        },
    )

    path: str | None = Field(None, description="One path, with all its query strings.")
    pattern: str | None = Field(
        None, description="Paths matching a pattern: `*` is one segment, `**` any number."
    )
    endpoint: str | None = Field(
        None, description="Every entry of an endpoint: its id (ep_...) or 'METHOD /template'."
    )
    all: bool = Field(False, description="True purges everything.")

    @model_validator(mode="after")
    def _one(self) -> PurgeRequest:
        given = [self.path, self.pattern, self.endpoint, self.all or None]
        if sum(x is not None for x in given) != 1:
            raise ValueError("give exactly one of path, pattern, endpoint or all: true")
        for value in (self.path, self.pattern):
            if value is not None and not value.startswith("/"):
                raise ValueError(f"{value!r} is not a path (it starts with /)")
        return self


class PurgeResult(BaseModel):
    purged: int = Field(description="Stored answers dropped.")


class CacheStats(BaseModel):
    entries: int
    size_bytes: int
    max_bytes: int


def cache_router(runtime: Any) -> APIRouter:
    api = APIRouter(prefix="/cache", tags=["cache"])

    def stage() -> Any:
        found = getattr(runtime, "cache_stage", None)
        if found is None:
            raise HTTPException(
                409,
                "The response cache is not running in this process: it is off with "
                "--workers > 1, and it starts with the data plane.",
            )
        return found

    @api.get("", response_model=CacheStats)
    async def stats() -> CacheStats:
        cache = stage().store
        return CacheStats(
            entries=len(cache), size_bytes=cache.size_bytes, max_bytes=cache.max_bytes
        )

    @api.post("/purge", response_model=PurgeResult)
    async def purge(what: PurgeRequest) -> PurgeResult:
        """Drop stored answers now. Requests already being fetched are not stored."""
        cache = stage()
        if what.all:
            return PurgeResult(purged=cache.clear())
        if what.endpoint is not None:
            eid = what.endpoint
            if not eid.startswith("ep_"):
                try:
                    method, path = split_pattern(eid)
                except ValueError as e:
                    raise HTTPException(422, str(e)) from None
                eid = endpoint_id(method, path)
            return PurgeResult(purged=cache.purge_endpoint(eid))
        if what.pattern is not None:
            return PurgeResult(purged=cache.invalidate(Targets(patterns=(what.pattern,))))
        assert what.path is not None
        path = normalise_path(what.path.split("?", 1)[0])
        return PurgeResult(purged=cache.invalidate(Targets(frozenset({path}))))

    return api
