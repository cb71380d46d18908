"""Operators' view of asynchronous requests: find, inspect, cancel, replay."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from forebay.dispatch.model import AcceptedRequest, RequestFilter
from forebay.gateway.replies import rfc3339, status_document
from forebay.policy.request_states import State

REPLAY_PAGE = 500


class RequestSummary(BaseModel):
    id: str
    status: State
    consumer: str
    endpoint: str
    endpoint_id: str | None
    method: str
    target: str
    attempts: int
    accepted_at: str | None
    updated_at: str | None


class AttemptOut(BaseModel):
    number: int
    at: str | None
    status: int | None
    latency_ms: float | None
    error: str | None


class ResponseOut(BaseModel):
    status: int
    headers: list[list[str]]
    body: str
    body_encoding: str = Field(description="utf-8, or base64 for a binary body.")


class RequestDetail(BaseModel):
    id: str
    status: State
    consumer: str
    endpoint: str
    method: str
    target: str
    ordering_key: str
    accepted_at: str | None
    updated_at: str | None
    next_attempt_at: str | None
    attempts: list[AttemptOut]
    status_url: str
    response: ResponseOut | None
    callback: str | None


class QueueCounts(BaseModel):
    counts: dict[str, int]


class ReplayResult(BaseModel):
    replayed: int


def summary(r: AcceptedRequest) -> RequestSummary:
    return RequestSummary(
        id=r.id,
        status=r.state,
        consumer=r.consumer,
        endpoint=r.endpoint,
        endpoint_id=r.endpoint_id,
        method=r.method,
        target=r.target,
        attempts=r.attempts,
        accepted_at=rfc3339(r.accepted_at),
        updated_at=rfc3339(r.updated_at),
    )


def detail(r: AcceptedRequest) -> RequestDetail:
    return RequestDetail.model_validate({**status_document(r), "consumer": r.consumer})


def requests_router(runtime: Any) -> APIRouter:
    api = APIRouter(prefix="/requests", tags=["requests"])

    def store() -> Any:
        return runtime.store.requests

    async def _get(request_id: str) -> AcceptedRequest:
        found: AcceptedRequest | None = await store().get(request_id)
        if found is None:
            raise HTTPException(404, f"No request with id {request_id!r}.")
        return found

    @api.get("", response_model=list[RequestSummary])
    async def list_requests(
        state: State | None = None,
        endpoint_id: str | None = None,
        consumer: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[str | None, Query(description="An id; older requests only.")] = None,
    ) -> list[RequestSummary]:
        """Newest first; page with `before` set to the last id of the previous page."""
        rows = await store().find(RequestFilter(state, endpoint_id, consumer, limit, before))
        return [summary(r) for r in rows]

    @api.get("/counts", response_model=QueueCounts)
    async def counts() -> QueueCounts:
        return QueueCounts(counts=await store().counts())

    @api.post("/replay", response_model=ReplayResult)
    async def replay_dead(
        endpoint_id: str | None = None, consumer: str | None = None
    ) -> ReplayResult:
        """Queue every dead request (of one endpoint or consumer, if given) again."""
        total = 0
        while True:
            page = await store().find(RequestFilter(State.DEAD, endpoint_id, consumer, REPLAY_PAGE))
            if not page:
                return ReplayResult(replayed=total)
            total += await store().replay([r.id for r in page], time.time())

    @api.get("/{request_id}", response_model=RequestDetail)
    async def get_request(request_id: str) -> RequestDetail:
        return detail(await _get(request_id))

    @api.post("/{request_id}/cancel", response_model=RequestDetail)
    async def cancel(request_id: str) -> RequestDetail:
        r = await _get(request_id)
        if r.state == State.QUEUED:
            r = await store().cancel(request_id, time.time()) or r
        if r.state != State.CANCELLED:
            raise HTTPException(409, f"The request is {r.state.value}; only queued ones cancel.")
        return detail(r)

    @api.post("/{request_id}/replay", response_model=RequestDetail)
    async def replay(request_id: str) -> RequestDetail:
        r = await _get(request_id)
        if r.state != State.DEAD or not await store().replay([request_id], time.time()):
            raise HTTPException(409, f"The request is {r.state.value}; only dead ones replay.")
        return detail(await _get(request_id))

    return api
