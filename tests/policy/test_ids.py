from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.ids import ID_LENGTH, base32hex, looks_like_request_id, new_request_id

ALPHABET = re.compile(r"[0-9a-v]+")  # base32hex, lower case


def fixed(byte: int) -> Callable[[int], bytes]:
    def random_bytes(n: int) -> bytes:
        assert n == 16
        return bytes([byte]) * n

    return random_bytes


def test_shape() -> None:
    rid = new_request_id(1_700_000_000.123, os.urandom)
    assert len(rid) == ID_LENGTH == 36
    assert ALPHABET.fullmatch(rid)
    assert looks_like_request_id(rid)


def test_the_time_and_the_random_bytes_are_in_the_id() -> None:
    rid = new_request_id(1_700_000_000.1234, lambda n: bytes(range(n)))
    raw = base64.b32hexdecode(rid.upper() + "====")
    assert int.from_bytes(raw[:6], "big") == 1_700_000_000_123
    assert raw[6:] == bytes(range(16))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0" * 35,
        "0" * 37,
        "A" * 36,  # upper case
        "w" * 36,  # outside base32hex
        "0" * 35 + "-",
        "0" * 35 + "\n",
    ],
)
def test_what_is_not_an_id(value: str) -> None:
    assert not looks_like_request_id(value)


def test_consecutive_milliseconds_sort_in_order() -> None:
    # Each 5-bit group takes all 32 values: plain base32's alphabet ("2" < "a") failed here.
    ids = [new_request_id((ms + 0.5) / 1000, fixed(0)) for ms in range(2048)]
    assert sorted(ids) == ids


@given(
    st.lists(st.integers(0, 2**47), min_size=2, max_size=20, unique=True),
    st.data(),
)
def test_ids_sort_by_time_whatever_the_random_bytes(millis: list[int], data: st.DataObject) -> None:
    millis.sort()
    ids = [
        new_request_id((ms + 0.5) / 1000, lambda n: data.draw(st.binary(min_size=n, max_size=n)))
        for ms in millis
    ]
    assert sorted(ids) == ids
    assert all(looks_like_request_id(i) for i in ids)


def test_the_random_part_decides_nothing_about_order_across_time() -> None:
    earlier = new_request_id(1000.0015, fixed(0xFF))
    later = new_request_id(1000.0025, fixed(0x00))
    assert earlier < later


def test_ids_are_unique() -> None:
    ids = {new_request_id(1_700_000_000.0, os.urandom) for _ in range(10_000)}
    assert len(ids) == 10_000


@given(st.binary(min_size=22, max_size=22))
def test_the_encoding_is_rfc_4648_base32hex(raw: bytes) -> None:
    assert base32hex(raw) == base64.b32hexencode(raw).decode("ascii").lower().rstrip("=")
