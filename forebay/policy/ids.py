"""Ids of accepted requests: time-ordered and unguessable.

48 bits of milliseconds since the epoch, then 128 random bits, in lower-case base32hex
(RFC 4648 section 7, whose alphabet keeps the bytes' order, unlike plain base32's):
sorting ids sorts them by acceptance time, and knowing one id says nothing about the
next. The status URL is the only capability a client needs, so it must not be guessed.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

ID_LENGTH = 36  # 22 bytes of base32, without padding
_ID = re.compile(r"[0-9a-v]{36}")


def new_request_id(now: float, random_bytes: Callable[[int], bytes]) -> str:
    """An id for a request accepted at `now` (seconds since the epoch)."""
    millis = int(now * 1000) & ((1 << 48) - 1)
    raw = millis.to_bytes(6, "big") + random_bytes(16)
    return base64.b32hexencode(raw).decode("ascii").lower().rstrip("=")


def looks_like_request_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None
