"""Session cookies and CSRF tokens: issued from the admin token, checked without state."""

from __future__ import annotations

import pytest

from forebay.admin import session
from forebay.admin.session import LOGIN_LIMIT, SESSION_SECONDS, LoginLimiter, Sessions


def test_cookie_is_valid_until_it_expires_and_only_for_its_token() -> None:
    now = [1_000_000.0]
    sessions = Sessions("secret", clock=lambda: now[0])
    cookie = sessions.issue()
    assert sessions.valid(cookie)
    assert Sessions("secret", clock=lambda: now[0]).valid(cookie)  # another process agrees
    assert not Sessions("other", clock=lambda: now[0]).valid(cookie)  # a new token ends it
    now[0] += SESSION_SECONDS + 1
    assert not sessions.valid(cookie)


def test_tampered_or_malformed_cookies_are_refused() -> None:
    sessions = Sessions("secret")
    expires, nonce, mac = sessions.issue().split(".")
    for bad in (
        f"{int(expires) + 3600}.{nonce}.{mac}",  # a later expiry
        f"{expires}.{nonce}x.{mac}",
        f"{expires}.{nonce}.{mac[:-1]}0" if mac[-1] != "0" else f"{expires}.{nonce}.{mac[:-1]}1",
        "",
        "a.b.c",
        "1.2",
        None,
    ):
        assert not sessions.valid(bad), bad


def test_csrf_token_belongs_to_one_session() -> None:
    sessions = Sessions("secret")
    one, two = sessions.issue(), sessions.issue()
    assert sessions.csrf_ok(one, sessions.csrf_token(one))
    assert not sessions.csrf_ok(one, sessions.csrf_token(two))
    assert not sessions.csrf_ok(one, None)


def test_login_limiter_allows_a_burst_of_wrong_tokens_then_one_per_interval() -> None:
    now = [100.0]
    limiter = LoginLimiter(LOGIN_LIMIT, clock=lambda: now[0])
    for _ in range(5):
        assert limiter.wait("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
    assert limiter.wait("10.0.0.1") == 12
    assert limiter.wait("10.0.0.2") == 0  # per address
    now[0] += 12
    assert limiter.wait("10.0.0.1") == 0
    limiter.failed("10.0.0.1")
    assert limiter.wait("10.0.0.1") == 12


def test_login_limiter_table_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "MAX_ADDRESSES", 3)
    now = [100.0]
    limiter = LoginLimiter(LOGIN_LIMIT, clock=lambda: now[0])
    for i in range(3):
        limiter.failed(f"10.0.0.{i}")
    # Full: newcomers share a bucket until old entries have drained.
    for _ in range(5):
        limiter.failed("10.0.1.1")
    assert limiter.wait("10.0.1.2") > 0
    assert limiter.wait("10.0.0.0") == 0
    now[0] += 60
    assert limiter.wait("10.0.1.2") == 0
    assert len(limiter._tat) <= 3
