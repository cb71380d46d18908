"""`Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header), decided without I/O.

A key is scoped to its consumer. The fingerprint covers method, path and body, so the
same key sent with another payload is a client error (422), and the same key while the
first request with it is still being accepted is a conflict (409).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import StrEnum

MAX_KEY_LENGTH = 255
_LENGTH = struct.Struct(">Q")


class Verdict(StrEnum):
    NEW = "new"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the store keeps for a key: the fingerprint and the request it created."""

    fingerprint: str
    request_id: str
    expires_at: float


def fingerprint(method: str, target: str, body: bytes) -> str:
    """SHA-256 over each part preceded by its length (8 bytes, big-endian)."""
    m, t = method.encode(), target.encode()
    h = hashlib.sha256(
        _LENGTH.pack(len(m)) + m + _LENGTH.pack(len(t)) + t + _LENGTH.pack(len(body))
    )
    h.update(body)  # not joined with the rest: a body may be large
    return h.hexdigest()


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()


def verdict(record: KeyRecord | None, fingerprint_: str, in_progress: bool, now: float) -> Verdict:
    """What to do with a request carrying a key, given what is stored for the key."""
    if record is not None and record.expires_at > now:
        return Verdict.REPLAY if record.fingerprint == fingerprint_ else Verdict.MISMATCH
    if in_progress:
        return Verdict.IN_PROGRESS
    return Verdict.NEW
