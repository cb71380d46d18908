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

from forebay import __version__
from forebay.admin.import_api import import_router
from forebay.admin.openapi_doc import document_problems
from forebay.admin.session import COOKIE, Sessions, session_router
from forebay.admin.stats import stats_router

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


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / f"{name}.html").read_text(encoding="utf-8"))


def _nav(current: str) -> str:
    links = []
    for path, title, _ in PAGES:
        here = ' aria-current="page"' if path == current else ""
        links.append(f'<a href="{path}"{here}>{title}</a>')
    return "\n".join(links)


def render(page: str, title: str, current: str, csrf: str, **values: str) -> HTMLResponse:
    body = _template(page).substitute(**values)
    text = _template("base").substitute(
        title=html.escape(title),
        nav=_nav(current) if csrf else "",
        csrf=html.escape(csrf),
        body=body,
        script=page,
        version=html.escape(__version__),
        logout="" if not csrf else '<button id="logout" type="button">Log out</button>',
    )
    return HTMLResponse(text, headers=SECURITY_HEADERS)


def pages_router(sessions: Sessions) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def login_redirect(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    def page(path: str, title: str, name: str) -> None:
        async def show(request: Request, session: SessionCookie = None) -> Response:
            if not sessions.valid(session):
                return login_redirect(request)
            assert session is not None
            return render(name, title, path, sessions.csrf_token(session))

        router.add_api_route(path, show, methods=["GET"], name=f"page-{name}")

    for path, title, name in PAGES:
        page(path, title, name)

    @router.get("/requests/{request_id}")
    async def request_page(request: Request, request_id: str, session: SessionCookie = None) -> Any:
        if not sessions.valid(session):
            return login_redirect(request)
        assert session is not None
        csrf = sessions.csrf_token(session)
        return render("request", "Request", "/requests", csrf, id=html.escape(request_id))

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
    app.include_router(pages_router(sessions))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    document_problems(app)
