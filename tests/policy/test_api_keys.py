from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.api_keys import display, hash_key, key_id, new_key, valid_key, verify


def test_made_keys_carry_their_id() -> None:
    key = new_key(os.urandom)
    assert key.startswith("fb_") and len(key) == 3 + 12 + 1 + 32
    kid = key_id(key)
    assert len(kid) == 12 and key[3:15] == kid
    assert valid_key(key)
    assert kid in display(kid) and key[16:] not in display(kid)


def test_other_keys_get_a_hash_id() -> None:
    kid = key_id("a-long-config-file-key-0001")
    assert kid.startswith("h") and len(kid) == 12
    assert kid != key_id("a-long-config-file-key-0002")
    assert "config" in display(kid)


def test_salted_hash_verifies_only_the_key() -> None:
    key = new_key(os.urandom)
    salt = os.urandom(16)
    digest = hash_key(key, salt)
    assert verify(key, salt, digest)
    assert not verify(key + "x", salt, digest)
    assert not verify(key, os.urandom(16), digest)
    assert hash_key(key, os.urandom(16)) != digest  # same key, other salt: other record


def test_valid_key() -> None:
    assert not valid_key("short")
    assert not valid_key("has a space in it here")
    assert not valid_key("nön-ascii-key-value-123")
    assert valid_key("0123456789abcdef")


@given(st.text(min_size=1, max_size=80))
def test_key_id_is_total_and_short(key: str) -> None:
    kid = key_id(key)
    assert 1 <= len(kid) <= 12 and kid.isalnum()
