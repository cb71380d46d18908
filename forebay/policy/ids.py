"""Ids of accepted requests: time-ordered and unguessable.

48 bits of milliseconds since the epoch, then 128 random bits, in lower-case base32hex
(RFC 4648 section 7, whose alphabet keeps the bytes' order, unlike plain base32's):
sorting ids sorts them by acceptance time, and knowing one id says nothing about the
next. The status URL is the only capability a client needs, so it must not be guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ID_LENGTH = 36  # 22 bytes of base32, without padding
_ID = re.compile(r"[0-9a-v]{36}")
_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
# Two characters (10 bits) at a time: the standard library's base32 is pure Python on
# older interpreters, and an accept makes one id per request.
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_SHIFTS = tuple(range(170, -1, -10))


def base32hex(raw: bytes) -> str:
    """22 bytes as 36 characters of lower-case base32hex, without padding (RFC 4648)."""
    value = int.from_bytes(raw, "big") << 4  # 176 bits, padded to 36 five-bit digits
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def new_request_id(now: float, random_bytes: Callable[[int], bytes]) -> str:
    """An id for a request accepted at `now` (seconds since the epoch)."""
    millis = int(now * 1000) & ((1 << 48) - 1)
    return base32hex(millis.to_bytes(6, "big") + random_bytes(16))


def looks_like_request_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None
