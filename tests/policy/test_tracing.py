from __future__ import annotations

import itertools

import pytest

from forebay.policy.tracing import new_traceparent, valid_traceparent


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", True),
        (b"00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),
        (b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        (b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", False),
        (b"garbage", False),
        (b"", False),
    ],
)
def test_valid_traceparent(value: bytes, valid: bool) -> None:
    assert valid_traceparent(value) is valid


def test_new_traceparent_uses_the_given_randomness() -> None:
    counter = itertools.count(1)
    tp = new_traceparent(lambda n: bytes([next(counter)]) * n)
    assert tp == b"00-" + b"01" * 16 + b"-" + b"02" * 8 + b"-01"
    assert valid_traceparent(tp)
