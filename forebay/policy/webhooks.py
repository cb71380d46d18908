"""Signing completion callbacks the Standard Webhooks way.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
HMAC-SHA256 with the secret's bytes, sent as `v1,<base64>`. Secrets are written
`whsec_<base64>`, as the specification's libraries expect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secret: str,
    msg_id: str,
    timestamp: int,
    body: bytes,
    header: str,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """What a receiver does: any `v1` signature in the header matches, and the timestamp
    is within `tolerance` seconds of `now` (replay protection)."""
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, msg_id, timestamp, body).encode()
    # bytes, not str: compare_digest raises on a str with non-ASCII characters
    return any(hmac.compare_digest(expected, s.encode()) for s in header.split())


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
