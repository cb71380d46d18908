"""The admin token: `Authorization: Bearer <token>` on everything but `/healthz`."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request


class AdminAuth:
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def __call__(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), self._token):
            raise HTTPException(
                status_code=401,
                detail="Send the admin token as 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="forebay-admin"'},
            )
