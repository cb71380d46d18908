"""The headers stored with an accepted request for its delivery."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.gateway.accept_headers import _chained, delivery_headers, own_headers

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def scope(headers: list[tuple[bytes, bytes]], client: str | None = "10.0.0.7") -> dict[str, Any]:
    return {
        "headers": headers,
        "client": (client, 40000) if client else None,
        "scheme": "https",
    }


def stored(headers: list[tuple[bytes, bytes]], client: str | None = "10.0.0.7") -> dict[str, str]:
    s = scope(headers, client)
    return dict(delivery_headers(s, own_headers(headers), "key-1"))


def test_a_plain_request_gets_this_hops_forwarding_headers() -> None:
    out = stored(
        [(b"host", b"api.example"), (b"content-type", b"application/json"), (b"accept", b"*/*")]
    )
    assert out.pop("traceparent").startswith("00-")
    assert out == {
        "content-type": "application/json",
        "accept": "*/*",
        "forwarded": 'for=10.0.0.7;proto=https;host="api.example"',
        "x-forwarded-for": "10.0.0.7",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "api.example",
        "idempotency-key": "key-1",
    }


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            [(b"x-forwarded-for", b"192.0.2.1"), (b"forwarded", b"for=192.0.2.1")],
            {
                "x-forwarded-for": "192.0.2.1, 10.0.0.7",
                "forwarded": "for=192.0.2.1, for=10.0.0.7;proto=https",
            },
        ),
        (
            [(b"connection", b"keep-alive, x-hop"), (b"x-hop", b"1"), (b"x-end", b"2")],
            {"x-end": "2", "x-forwarded-for": "10.0.0.7"},
        ),
        ([(b"x-forwarded-for", b"")], {"x-forwarded-for": "10.0.0.7"}),
    ],
)
def test_chains_are_extended_and_connection_tokens_dropped(
    headers: list[tuple[bytes, bytes]], expected: dict[str, str]
) -> None:
    out = stored(headers)
    for name, value in expected.items():
        assert out[name] == value
    assert "x-hop" not in out and "connection" not in out


def test_the_gateways_own_headers_are_not_stored_but_set_again() -> None:
    out = stored(
        [
            (b"prefer", b"respond-async"),
            (b"idempotency-key", b"client-key"),
            (b"forebay-callback", b"https://hooks.example/x"),
            (b"forebay-ordering-key", b"k"),
            (b"content-length", b"2"),
            (b"expect", b"100-continue"),
            (b"transfer-encoding", b"chunked"),
        ]
    )
    assert set(out) == {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "traceparent",
        "idempotency-key",
    }
    assert out["idempotency-key"] == "key-1"  # the one accept chose, passed in


@pytest.mark.parametrize(
    ("sent", "kept"), [(TRACEPARENT, True), ("00-zz-yy-01", False), ("", False)]
)
def test_a_valid_traceparent_is_kept_and_another_replaced(sent: str, kept: bool) -> None:
    out = stored([(b"traceparent", sent.encode())])
    assert (out["traceparent"] == TRACEPARENT) is kept
    assert out["traceparent"].startswith("00-") and len(out["traceparent"]) == 55


def test_each_request_gets_its_own_list() -> None:
    """The hop's headers are made once per connection; no request's list is another's."""
    headers = [(b"host", b"api.example")]
    first = delivery_headers(scope(headers), own_headers(headers), "a")
    first.append(("x-added", "1"))
    second = delivery_headers(scope(headers), own_headers(headers), "b")
    assert ("x-added", "1") not in second
    assert first[:4] == second[:4]
    assert first[4] != second[4]  # each its own trace id


def test_no_client_address_is_unknown() -> None:
    out = stored([(b"host", b"api.example")], client=None)
    assert out["x-forwarded-for"] == "unknown"
    assert out["forwarded"].startswith("for=unknown;")


names = st.sampled_from(
    [b"host", b"accept", b"x-a", b"forwarded", b"x-forwarded-for", b"connection", b"te", b"x-b"]
)
values = st.sampled_from([b"", b"1", b"x-a", b"keep-alive, x-b", b"for=192.0.2.9", b"a.example"])


@given(
    headers=st.lists(st.tuples(names, values), max_size=8),
    client=st.sampled_from(["10.0.0.7", "2001:db8::1", None]),
)
def test_the_one_pass_gives_what_the_general_path_gives(
    headers: list[tuple[bytes, bytes]], client: str | None
) -> None:
    s = scope(headers, client)
    own = own_headers(headers)
    fast = delivery_headers(s, own, "k")[:-2]  # less the trace context and the key
    assert fast == _chained(headers, client, "https", own.get(b"host"))
