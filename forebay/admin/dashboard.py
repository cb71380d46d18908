"""The dashboard on the admin port: server-rendered page shells, a few ES modules.

Pages are HTML rendered here (layout, navigation, forms) with one small script each that
reads and changes state through the documented admin API under `/api/`, the same API the
CLI and other tools use. Scripts, styles and the chart code are files in this package;
nothing is fetched from elsewhere and there is no build step.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Cookie, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from forebay import __version__
from forebay.admin.import_api import import_router
from forebay.admin.openapi_doc import document_problems
from forebay.admin.session import COOKIE, Sessions, session_router
from forebay.admin.stats import stats_router
from forebay.store.redis_conn import public_url

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# (path, title, page template and script, nav label); the order is the navigation's.
PAGES = [
    ("/endpoints", "Endpoints", "endpoints"),
    ("/requests", "Requests", "requests"),
    ("/live", "Live", "live"),
    ("/errors", "Errors", "errors"),
    ("/consumers", "Consumers", "consumers"),
]

# No inline script at all, so a strict policy costs nothing; frames are refused because
# every page carries buttons that change the gateway (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


SessionCookie = Annotated[str | None, Cookie(alias=COOKIE)]

DURABILITY_DOCS = "https://forebay.dev/redis/#running-redis-so-that-a-202-is-a-promise"


class StoreStatus(BaseModel):
    url: str = Field(description="The store's URL, with any password replaced by ***.")
    durable: bool | None = Field(
        description="True when every acknowledged (202) request survives a crash of the "
        "store's server, false when it may not, null when the server would not say "
        "(Redis with CONFIG disabled). Checked when the gateway started."
    )
    detail: str = Field(description="What the answer rests on.")


def store_status(runtime: Any) -> StoreStatus:
    url: str = runtime.settings.store
    found = runtime.durability
    if found is None:  # only before the runtime has started
        return StoreStatus(url=public_url(url), durable=None, detail="not checked yet")
    return StoreStatus(url=public_url(url), durable=found.durable, detail=found.detail)


def _store_banner(status: StoreStatus) -> str:
    """What a crash of the store could cost, above every page: loud for a Redis that may
    lose acknowledged requests (the 202 promise rests on its persistence), mild for the
    memory store, nothing for SQLite or a Redis that keeps them."""
    url, detail = html.escape(status.url), html.escape(status.detail)
    if status.url.startswith("memory://"):
        return (
            '<p class="store-notice" role="note">The store is in memory '
            f"(<code>{url}</code>): everything it holds, endpoint settings, consumers and "
            "queued requests, is lost when the gateway stops.</p>"
        )
    if not status.url.startswith(("redis://", "rediss://")) or status.durable is True:
        return ""
    fix = (
        "Run Redis with <code>appendonly yes</code> and <code>appendfsync always</code> "
        "(in <code>redis.conf</code>, or <code>CONFIG SET</code> then "
        "<code>CONFIG REWRITE</code>) and restart the gateway; see "
        f'<a href="{DURABILITY_DOCS}">running Redis so that a 202 is a promise</a> '
        "(docs/redis.md)."
    )
    if status.durable is False:
        kind, title = "lossy", "Acknowledged requests may be lost if Redis crashes"
        why = f"Redis at <code>{url}</code>: {detail}."
    else:
        kind, title = "unknown", "Cannot tell whether acknowledged requests survive a Redis crash"
        why = (
            f"The Redis server at <code>{url}</code> does not say how it persists data: "
            f"{detail}. Check its persistence settings yourself (managed services often "
            "disable <code>CONFIG</code>)."
        )
    return (
        f'<section class="store-alert {kind}" id="store-alert" role="alert" '
        'aria-labelledby="store-alert-title">'
        f'<h2 id="store-alert-title">{title}</h2><p>{why}</p><p>{fix}</p></section>'
    )


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / f"{name}.html").read_text(encoding="utf-8"))


def _nav(current: str) -> str:
    links = []
    for path, title, _ in PAGES:
        here = ' aria-current="page"' if path == current else ""
        links.append(f'<a href="{path}"{here}>{title}</a>')
    return "\n".join(links)


def render(
    page: str, title: str, current: str, csrf: str, banner: str = "", **values: str
) -> HTMLResponse:
    body = _template(page).substitute(**values)
    text = _template("base").substitute(
        title=html.escape(title),
        nav=_nav(current) if csrf else "",
        banner=banner,
        csrf=html.escape(csrf),
        body=body,
        script=page,
        version=html.escape(__version__),
        logout="" if not csrf else '<button id="logout" type="button">Log out</button>',
    )
    return HTMLResponse(text, headers=SECURITY_HEADERS)


def pages_router(sessions: Sessions, runtime: Any) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def banner() -> str:
        return _store_banner(store_status(runtime))

    def login_redirect(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    def page(path: str, title: str, name: str) -> None:
        async def show(request: Request, session: SessionCookie = None) -> Response:
            if not sessions.valid(session):
                return login_redirect(request)
            assert session is not None
            return render(name, title, path, sessions.csrf_token(session), banner())

        router.add_api_route(path, show, methods=["GET"], name=f"page-{name}")

    for path, title, name in PAGES:
        page(path, title, name)

    @router.get("/requests/{request_id}")
    async def request_page(request: Request, request_id: str, session: SessionCookie = None) -> Any:
        if not sessions.valid(session):
            return login_redirect(request)
        assert session is not None
        csrf = sessions.csrf_token(session)
        text = html.escape(request_id)
        return render("request", "Request", "/requests", csrf, banner(), id=text)

    # No banner before the token is given: the store's address and settings are the
    # admin's business.
    @router.get("/login")
    async def login_page() -> Response:
        return render("login", "Log in", "", "")

    @router.get("/")
    async def home() -> Response:
        return RedirectResponse("/endpoints", status_code=303)

    return router


def install_dashboard(app: FastAPI, api: APIRouter, runtime: Any, token: str) -> None:
    """Add the dashboard's pages and the API routes only it needed to an admin app.

    Call before `api` is included in `app` (routes are copied when a router is included).
    """
    # Sessions keep no state, so this one agrees with the one in AdminAuth.
    sessions = Sessions(token)
    api.include_router(stats_router())
    api.include_router(import_router(runtime))
    app.include_router(session_router(sessions))
    app.include_router(pages_router(sessions, runtime))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    document_problems(app)
