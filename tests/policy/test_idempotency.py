from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.idempotency import (
    MAX_KEY_LENGTH,
    KeyRecord,
    Verdict,
    fingerprint,
    valid_key,
    verdict,
)

BASE = ("POST", "/orders?x=1", b'{"n": 1}')


@pytest.mark.parametrize(
    "other",
    [
        ("PUT", "/orders?x=1", b'{"n": 1}'),
        ("POST", "/orders?x=2", b'{"n": 1}'),
        ("POST", "/orders", b'{"n": 1}'),
        ("POST", "/orders?x=1", b'{"n": 2}'),
        ("POST", "/orders?x=1", b""),
        ("POST", "/orders?x=1", b'{"n": 1} '),
    ],
)
def test_fingerprint_changes_with_method_target_and_body(other: tuple[str, str, bytes]) -> None:
    assert fingerprint(*other) != fingerprint(*BASE)


def test_fingerprint_is_stable_and_hex() -> None:
    fp = fingerprint(*BASE)
    assert fp == fingerprint(*BASE)
    assert len(fp) == 64 and int(fp, 16) >= 0


@pytest.mark.parametrize(
    ("one", "two"),
    [
        (("a", "bc", b""), ("ab", "c", b"")),
        (("POST", "a", b"bc"), ("POST", "ab", b"c")),
        (("POST", "/x", b""), ("POST/", "x", b"")),
        (("", "", b"x"), ("", "x", b"")),
    ],
)
def test_fingerprint_is_unambiguous(
    one: tuple[str, str, bytes], two: tuple[str, str, bytes]
) -> None:
    assert fingerprint(*one) != fingerprint(*two)


@given(
    st.tuples(st.text(max_size=8), st.text(max_size=20), st.binary(max_size=20)),
    st.tuples(st.text(max_size=8), st.text(max_size=20), st.binary(max_size=20)),
)
def test_different_requests_have_different_fingerprints(
    one: tuple[str, str, bytes], two: tuple[str, str, bytes]
) -> None:
    assert (fingerprint(*one) == fingerprint(*two)) == (one == two)


FP = fingerprint(*BASE)
OTHER = fingerprint("POST", "/orders?x=1", b"{}")
LIVE = KeyRecord(FP, "r1", expires_at=200.0)


@pytest.mark.parametrize(
    ("record", "fp", "in_progress", "now", "expected"),
    [
        (None, FP, False, 100.0, Verdict.NEW),
        (None, FP, True, 100.0, Verdict.IN_PROGRESS),
        (LIVE, FP, False, 100.0, Verdict.REPLAY),
        (LIVE, FP, True, 100.0, Verdict.REPLAY),  # a stored record wins
        (LIVE, OTHER, False, 100.0, Verdict.MISMATCH),
        (LIVE, OTHER, True, 100.0, Verdict.MISMATCH),
        (LIVE, FP, False, 199.9, Verdict.REPLAY),
        (LIVE, FP, False, 200.0, Verdict.NEW),  # expired: as if never stored
        (LIVE, OTHER, False, 300.0, Verdict.NEW),
        (LIVE, FP, True, 300.0, Verdict.IN_PROGRESS),
    ],
)
def test_verdict(
    record: KeyRecord | None, fp: str, in_progress: bool, now: float, expected: Verdict
) -> None:
    assert verdict(record, fp, in_progress, now) == expected


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("a", True),
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", True),
        ("k" * MAX_KEY_LENGTH, True),
        ("k" * (MAX_KEY_LENGTH + 1), False),
        ("", False),
        ("a\nb", False),
        ("a\x00", False),
        ("clé", True),
    ],
)
def test_valid_key(key: str, valid: bool) -> None:
    assert valid_key(key) is valid
