"""Dashboard sessions: the admin token is given once and traded for a cookie.

The cookie is `<expiry>.<nonce>.<mac>`, an HMAC of the expiry and nonce keyed by the admin
token. Nothing is kept server-side, so a session survives a restart and is valid on
every admin process, and changing the token ends every session at once.
Wrong tokens are limited per client address (`LoginLimiter`), so the token cannot be
guessed at speed. The cookie is
HttpOnly (page scripts cannot read it) and SameSite=Strict (browsers do not send it with
requests that another site starts). State-changing calls made with the cookie must also
carry `X-CSRF-Token`, a second HMAC of the cookie that the server puts in every page it
renders; another origin can read neither, so it cannot forge the header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from forebay.policy.gcra import Limit, decide, retry_after_seconds

COOKIE = "forebay_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


class Sessions:
    """Issues and checks session cookies and their CSRF tokens for one admin token."""

    def __init__(self, token: str, clock: object = time.time) -> None:
        self._key = token.encode()
        self._clock = clock

    def now(self) -> float:
        return self._clock()  # type: ignore[operator, no-any-return]

    def check_token(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._key)

    def issue(self) -> str:
        expires = int(self.now()) + SESSION_SECONDS
        nonce = secrets.token_urlsafe(12)
        return f"{expires}.{nonce}.{_mac(self._key, f'session|{expires}|{nonce}')}"

    def valid(self, cookie: str | None) -> bool:
        if not cookie:
            return False
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        expires, nonce, mac = parts
        good = _mac(self._key, f"session|{expires}|{nonce}")
        return hmac.compare_digest(mac, good) and int(expires) > self.now()

    def csrf_token(self, cookie: str) -> str:
        return _mac(self._key, f"csrf|{cookie}")

    def csrf_ok(self, cookie: str, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given, self.csrf_token(cookie))


# Five wrong tokens at once from an address, then one every 12 seconds. Fixed here: an
# operator typing the token gets it right well within that.
LOGIN_LIMIT = Limit(count=5, period=60.0, burst=5)
# Addresses remembered at most; beyond it, new addresses share one bucket, so a flood
# from many addresses slows itself rather than growing the table.
MAX_ADDRESSES = 10_000
_OVERFLOW = "*"


class LoginLimiter:
    """Wrong admin tokens per client address, by GCRA, in this process's memory."""

    def __init__(self, limit: Limit = LOGIN_LIMIT, clock: object = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tat: dict[str, float] = {}

    def now(self) -> float:
        return self._clock()  # type: ignore[operator, no-any-return]

    def _key(self, address: str, now: float) -> str:
        if address in self._tat or len(self._tat) < MAX_ADDRESSES:
            return address
        # A TAT in the past is a full bucket: forgetting it changes nothing.
        self._tat = {a: t for a, t in self._tat.items() if t > now}
        return address if len(self._tat) < MAX_ADDRESSES else _OVERFLOW

    def wait(self, address: str) -> int:
        """Seconds until `address` may try a token again; 0: it may now."""
        now = self.now()
        d = decide(self.limit, self._tat.get(self._key(address, now)), now)
        return 0 if d.allowed else retry_after_seconds([d])

    def failed(self, address: str) -> None:
        now = self.now()
        key = self._key(address, now)
        d = decide(self.limit, self._tat.get(key), now)
        if d.allowed:
            self._tat[key] = d.tat


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(description="The admin token.")


class SessionInfo(BaseModel):
    expires_in: int = Field(description="Seconds the session cookie stays valid.")
    csrf_token: str = Field(
        description="Send as X-CSRF-Token with state-changing calls authenticated by the cookie."
    )


_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def session_router(sessions: Sessions, limiter: LoginLimiter | None = None) -> APIRouter:
    """`/api/session`: open a session with the token, close it. No token needed to call."""
    api = APIRouter(prefix="/api/session", tags=["session"])
    attempts = limiter or LoginLimiter()

    @api.post(
        "",
        response_model=SessionInfo,
        responses={
            401: {"description": "Wrong token.", "content": _PROBLEM},
            429: {
                "description": "Too many wrong tokens from this address (5 at once, then "
                "one every 12 seconds); try again after `Retry-After` seconds.",
                "headers": {
                    "Retry-After": {
                        "description": "Seconds to wait.",
                        "schema": {"type": "integer", "minimum": 1},
                    }
                },
                "content": _PROBLEM,
            },
        },
    )
    async def login(body: Login, request: Request, response: Response) -> SessionInfo:
        """Trade the admin token for a session cookie (HttpOnly, SameSite=Strict)."""
        address = request.client.host if request.client else "unknown"
        wait = attempts.wait(address)
        if wait:
            raise HTTPException(
                429,
                f"Too many wrong admin tokens from {address}; try again in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        if not sessions.check_token(body.token):
            attempts.failed(address)
            raise HTTPException(401, "That is not the admin token.")
        cookie = sessions.issue()
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            # Secure only over HTTPS: the admin port is plain HTTP on loopback by default,
            # where a Secure cookie would never come back.
            secure=request.url.scheme == "https",
        )
        return SessionInfo(expires_in=SESSION_SECONDS, csrf_token=sessions.csrf_token(cookie))

    @api.delete("", status_code=204)
    async def logout() -> Response:
        """Forget the session cookie in this browser."""
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return api
