"""How the SQLite store writes a request's headers: one `name:value` per line, JSON when a
header would not survive that, and JSON rows of earlier versions still read."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from forebay.store.sqlite_rows import decode_headers, encode_headers

# What the data plane stores: token names (RFC 9110 5.6.2), latin-1 values.
_TOKEN = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"),
    min_size=1,
    max_size=20,
)
_VALUE = st.text(alphabet=st.characters(max_codepoint=255), max_size=40)
_ANY = st.text(max_size=20)


@given(st.lists(st.tuples(_TOKEN, _VALUE), max_size=12))
def test_request_headers_come_back_unchanged(headers: list[tuple[str, str]]) -> None:
    assert decode_headers(encode_headers(headers)) == headers


@given(st.lists(st.tuples(_ANY, _ANY), max_size=6))
def test_any_headers_at_all_come_back_unchanged(headers: list[tuple[str, str]]) -> None:
    assert decode_headers(encode_headers(headers)) == headers


@given(st.lists(st.tuples(_TOKEN, _VALUE.filter(lambda v: "\n" not in v)), max_size=12))
def test_the_usual_headers_are_not_stored_as_json(headers: list[tuple[str, str]]) -> None:
    assert not encode_headers(headers).startswith("[")


@given(st.lists(st.tuples(_ANY, _ANY), max_size=6))
def test_rows_stored_as_json_are_read(headers: list[tuple[str, str]]) -> None:
    assert decode_headers(json.dumps(headers)) == headers
