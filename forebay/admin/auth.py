"""The admin token: `Authorization: Bearer <token>` on everything but `/healthz`, or the
dashboard's session cookie (see `session.py`) with its CSRF header on changes."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from forebay.admin.session import COOKIE, CSRF_HEADER, Sessions

# auto_error=False: these two only read the credentials and describe them in the
# OpenAPI document; AdminAuth decides, so a missing one answers our 401 problem.
_bearer = HTTPBearer(auto_error=False, description="The admin token.")
_cookie = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    description="The dashboard's session (POST /api/session); changes also need "
    f"the {CSRF_HEADER} header.",
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AdminAuth:
    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self.sessions = Sessions(token)

    def __call__(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        cookie: Annotated[str | None, Depends(_cookie)],
    ) -> None:
        if bearer is not None and hmac.compare_digest(bearer.credentials.encode(), self._token):
            return
        if self.sessions.valid(cookie):
            assert cookie is not None
            if request.method in SAFE_METHODS or self.sessions.csrf_ok(
                cookie, request.headers.get(CSRF_HEADER)
            ):
                return
            raise HTTPException(
                status_code=403,
                detail=f"Changes made with the session cookie need the {CSRF_HEADER} header "
                "the dashboard's pages carry; reload the page.",
            )
        raise HTTPException(
            status_code=401,
            detail="Send the admin token as 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": 'Bearer realm="forebay-admin"'},
        )
