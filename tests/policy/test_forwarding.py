from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.forwarding import HOP_BY_HOP, end_to_end, forwarding_headers


@pytest.mark.parametrize(
    ("headers", "kept"),
    [
        ([(b"x-a", b"1"), (b"connection", b"close")], [(b"x-a", b"1")]),
        (
            [(b"connection", b"x-a, X-B"), (b"x-a", b"1"), (b"x-b", b"2"), (b"x-c", b"3")],
            [(b"x-c", b"3")],
        ),
        ([(b"transfer-encoding", b"chunked"), (b"te", b"trailers"), (b"upgrade", b"h2c")], []),
        (
            [(b"keep-alive", b"timeout=5"), (b"proxy-authorization", b"x"), (b"accept", b"*/*")],
            [(b"accept", b"*/*")],
        ),
        (
            [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
            [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        ),
    ],
)
def test_end_to_end(headers: list[tuple[bytes, bytes]], kept: list[tuple[bytes, bytes]]) -> None:
    assert end_to_end(headers) == kept


def test_drop_removes_named_headers() -> None:
    assert end_to_end([(b"host", b"x"), (b"a", b"1")], frozenset({b"host"})) == [(b"a", b"1")]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"a", b"connection", b"te", b"b", b"upgrade"]),
            st.sampled_from([b"1", b"a", b"b, a", b"close"]),
        )
    )
)
def test_no_hop_by_hop_header_survives(headers: list[tuple[bytes, bytes]]) -> None:
    out = end_to_end(headers)
    assert not {n for n, _ in out} & HOP_BY_HOP
    listed = {t.strip() for n, v in headers if n == b"connection" for t in v.split(b",")}
    assert not {n for n, _ in out} & listed


@pytest.mark.parametrize(
    ("prior", "client", "expect_forwarded", "expect_xff"),
    [
        ([], "10.0.0.1", b'for=10.0.0.1;proto=https;host="api"', b"10.0.0.1"),
        (
            [(b"x-forwarded-for", b"1.1.1.1")],
            "10.0.0.1",
            b'for=10.0.0.1;proto=https;host="api"',
            b"1.1.1.1, 10.0.0.1",
        ),
        (
            [(b"forwarded", b"for=1.1.1.1")],
            "::1",
            b'for=1.1.1.1, for="[::1]";proto=https;host="api"',
            b"::1",
        ),
        ([], None, b'for=unknown;proto=https;host="api"', b"unknown"),
        (
            [(b"forwarded", b""), (b"x-forwarded-for", b""), (b"x-forwarded-for", b"2.2.2.2")],
            "10.0.0.1",
            b'for=10.0.0.1;proto=https;host="api"',
            b"2.2.2.2, 10.0.0.1",
        ),
    ],
    ids=["none", "x-forwarded-for", "forwarded, ipv6", "no client", "empty ones"],
)
def test_forwarding_headers(
    prior: list[tuple[bytes, bytes]],
    client: str | None,
    expect_forwarded: bytes,
    expect_xff: bytes,
) -> None:
    out = dict(forwarding_headers(prior, client, "https", b"api"))
    assert out[b"forwarded"] == expect_forwarded
    assert out[b"x-forwarded-for"] == expect_xff
    assert out[b"x-forwarded-proto"] == b"https"
    assert out[b"x-forwarded-host"] == b"api"
