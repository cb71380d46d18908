"""The admin API: what the dashboard and the CLI use, described by `/api/openapi.json`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

import forebay
from forebay.admin import metrics
from forebay.admin.auth import AdminAuth
from forebay.admin.cache_api import cache_router
from forebay.admin.consumers_api import consumers_router, errors_router
from forebay.admin.dashboard import StoreStatus, install_dashboard, store_status
from forebay.admin.requests_api import requests_router
from forebay.admin.schema_rules import RATE, nullable_pattern
from forebay.catalog.endpoint import CachePolicy, Endpoint, EndpointPolicy
from forebay.gateway.exchange import new_request_id
from forebay.gateway.problem import problem_body
from forebay.store.consumers import check_rate

log = structlog.get_logger("forebay.admin")

State = Literal["managed", "unmanaged", "async", "cached", "vanished"]


# Policy fields where null is a value of its own (no limit, no callback, the default).
_NULLABLE = frozenset(
    {"cache", "max_attempts", "max_age", "callback", "rate_limit", "consumer_rate_limit"}
)


class PolicyPatch(BaseModel):
    """Fields to change in an endpoint's policy; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    managed: bool | None = None
    async_: bool | None = Field(None, alias="async")
    cache: CachePolicy | None = Field(
        None, description="Turn caching on with this policy (see cache_off to turn it off)."
    )
    cache_off: bool | None = Field(None, description="True turns caching off.")
    invalidates: list[str] | None = None
    max_attempts: int | None = Field(None, ge=1)
    max_age: float | None = Field(None, gt=0)
    callback: str | None = None
    ordering: Literal["path", "none"] | None = None
    rate_limit: str | None = Field(
        None,
        description="All consumers together ('100/s', '20/m burst 40'); null removes.",
        json_schema_extra=nullable_pattern(RATE),
    )
    consumer_rate_limit: str | None = Field(
        None,
        description="Each consumer ('100/s', '20/m burst 40'); null removes.",
        json_schema_extra=nullable_pattern(RATE),
    )

    @field_validator("rate_limit", "consumer_rate_limit")
    @classmethod
    def _rate(cls, v: str | None) -> str | None:
        return check_rate(v)

    def apply(self, policy: EndpointPolicy) -> EndpointPolicy:
        data = policy.model_dump(by_alias=True)
        for key, value in self.model_dump(by_alias=True, exclude_unset=True).items():
            if key == "cache_off":
                if value:
                    data["cache"] = None
            elif value is not None or key in _NULLABLE:
                data[key] = value  # null on a switch or list means "leave it", like absent
        return EndpointPolicy.model_validate(data)


class BulkResult(BaseModel):
    changed: int
    endpoints: list[Endpoint]


class Health(BaseModel):
    status: str
    version: str


class Status(BaseModel):
    version: str
    store: StoreStatus


def _in_state(e: Endpoint, state: State | None) -> bool:
    p = e.policy
    return {
        None: True,
        "managed": p.managed,
        "unmanaged": not p.managed,
        "async": p.managed and p.async_,
        "cached": p.managed and p.cache is not None,
        "vanished": e.vanished,
    }[state]


def _problem(status: int, title: str, detail: Any, headers: dict[str, str] | None = None) -> Any:
    slug = {
        401: "admin-unauthorized",
        404: "not-found",
        409: "conflict",
        422: "invalid-input",
        429: "rate-limited",
        500: "internal-error",
    }.get(status, "admin-error")
    request_id = new_request_id()
    body = problem_body(status, slug, title, detail, request_id)
    headers = {**(headers or {}), "X-Request-Id": request_id}
    return Response(body, status, headers=headers, media_type="application/problem+json")


def create_admin_app(runtime: Any, token: str) -> FastAPI:
    """The admin ASGI app for a `Runtime` (typed loosely to keep this module import-light)."""
    app = FastAPI(
        title="Forebay admin API",
        version=forebay.__version__,
        # Served below, behind the token like everything but /healthz.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    auth = Depends(AdminAuth(token))
    api = APIRouter(prefix="/api", dependencies=[auth])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        headers = dict(exc.headers) if exc.headers else None
        return _problem(exc.status_code, HTTPStatus(exc.status_code).phrase, exc.detail, headers)

    @app.exception_handler(Exception)
    async def _crashed(request: Request, exc: Exception) -> Any:
        response = _problem(
            500,
            "Internal error",
            "The admin API failed on this request. The error is logged with this "
            "request id; quote it when reporting the problem.",
        )
        log.error(
            "admin API error",
            request_id=response.headers["x-request-id"],
            path=request.url.path,
            exc_info=exc,
        )
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        errors = [
            {"where": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
        ]
        return _problem(422, "Invalid input", errors)

    @app.middleware("http")
    async def _single_valued_query(request: Request, call_next: Any) -> Any:
        # Every query parameter of this API takes one value: a repeated one is refused
        # rather than silently taking its last value, as the document promises.
        names = [k for k, _ in request.query_params.multi_items()]
        if len(names) != len(set(names)):
            twice = sorted({n for n in names if names.count(n) > 1})
            detail = [{"where": f"query.{n}", "problem": "given more than once"} for n in twice]
            return _problem(422, "Invalid input", detail)
        return await call_next(request)

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        return Health(status="ok", version=forebay.__version__)

    @app.get("/metrics", dependencies=[auth], tags=["metrics"], response_class=Response)
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @api.get("/status", response_model=Status, tags=["health"])
    async def status() -> Status:
        """This gateway's version and its store: whether an acknowledged request survives
        a crash of the store's server, as the dashboard's banner says."""
        return Status(version=forebay.__version__, store=store_status(runtime))

    async def _get(endpoint_id: str) -> Endpoint:
        found: Endpoint | None = await runtime.store.endpoints.get(endpoint_id)
        if found is None:
            raise HTTPException(404, f"No endpoint with id {endpoint_id!r}.")
        return found

    async def _filtered(method: str | None, q: str | None, state: State | None) -> list[Endpoint]:
        rows = await runtime.store.endpoints.list()
        rows = [
            e
            for e in rows
            if (method is None or e.method == method.upper())
            and (q is None or q.lower() in e.path.lower())
            and _in_state(e, state)
        ]
        return sorted(rows, key=lambda e: (e.path, e.method))

    async def _save(changed: list[Endpoint]) -> None:
        if changed:
            await runtime.store.endpoints.save(changed)
            await runtime.refresh_catalog()

    @api.get("/endpoints", response_model=list[Endpoint], tags=["endpoints"])
    async def list_endpoints(
        method: Annotated[str | None, Query(description="Only this HTTP method.")] = None,
        q: Annotated[str | None, Query(description="Text the path contains.")] = None,
        state: Annotated[State | None, Query()] = None,
    ) -> list[Endpoint]:
        return await _filtered(method, q, state)

    @api.patch("/endpoints", response_model=BulkResult, tags=["endpoints"])
    async def bulk_update(
        patch: PolicyPatch,
        method: Annotated[str | None, Query()] = None,
        q: Annotated[str | None, Query()] = None,
        state: Annotated[State | None, Query()] = None,
    ) -> BulkResult:
        """Change the policy of every endpoint the filter selects."""
        rows = await _filtered(method, q, state)
        for e in rows:
            e.policy, e.policy_source = patch.apply(e.policy), "user"
        await _save(rows)
        return BulkResult(changed=len(rows), endpoints=rows)

    @api.get("/endpoints/{endpoint_id}", response_model=Endpoint, tags=["endpoints"])
    async def get_endpoint(endpoint_id: str) -> Endpoint:
        return await _get(endpoint_id)

    @api.patch("/endpoints/{endpoint_id}", response_model=Endpoint, tags=["endpoints"])
    async def update_endpoint(endpoint_id: str, patch: PolicyPatch) -> Endpoint:
        e = await _get(endpoint_id)
        e.policy, e.policy_source = patch.apply(e.policy), "user"
        await _save([e])
        return e

    @api.delete("/endpoints/{endpoint_id}", status_code=204, tags=["endpoints"])
    async def delete_endpoint(endpoint_id: str) -> Response:
        if not await runtime.store.endpoints.delete(endpoint_id):
            raise HTTPException(404, f"No endpoint with id {endpoint_id!r}.")
        await runtime.refresh_catalog()
        return Response(status_code=204)

    api.include_router(requests_router(runtime))
    api.include_router(cache_router(runtime))
    api.include_router(consumers_router(runtime))
    api.include_router(errors_router(runtime))
    install_dashboard(app, api, runtime, token)
    app.include_router(api)

    @app.get("/api/openapi.json", dependencies=[auth], include_in_schema=False)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    return app
