"""W3C Trace Context: keep a valid `traceparent`, start one when there is none."""

from __future__ import annotations

import re
from collections.abc import Callable

_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def valid_traceparent(value: bytes) -> bool:
    """True for a well-formed version-00 style header with non-zero trace and parent ids."""
    m = _TRACEPARENT.match(value.strip())
    if m is None or value.startswith(b"ff"):
        return False
    return m.group(1) != b"0" * 32 and m.group(2) != b"0" * 16


def new_traceparent(random_bytes: Callable[[int], bytes]) -> bytes:
    """A fresh sampled traceparent; `random_bytes` is `os.urandom` outside tests."""
    return b"00-" + random_bytes(16).hex().encode() + b"-" + random_bytes(8).hex().encode() + b"-01"
