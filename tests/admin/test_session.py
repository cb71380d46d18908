"""Session cookies and CSRF tokens: issued from the admin token, checked without state."""

from __future__ import annotations

from forebay.admin.session import SESSION_SECONDS, Sessions


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
