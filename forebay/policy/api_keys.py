"""API keys: their shape, their lookup id and their salted hash. Pure functions; the
randomness is passed in.

A key Forebay makes is `fb_<id>_<secret>`: a 12-hex-digit id that is not secret (it
names the key in lists and logs and finds its record in one lookup) and 192 random bits
of secret. Keys from the config file may be any string of at least `MIN_LENGTH`
characters; their id is derived from a hash of the whole key.

The store keeps `HMAC-SHA256(salt, key)` with a random salt per key, never the key.
A slow password hash (bcrypt, scrypt, Argon2) buys nothing here: it exists to make
guessing a low-entropy password expensive, and a 192-bit random key cannot be guessed at
any speed. HMAC-SHA256 takes about a microsecond, so a key can be checked on every
request; the salt means equal keys never have equal records and precomputed tables are
useless. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable

PREFIX = "fb_"
MIN_LENGTH = 16
SALT_BYTES = 16
_MADE = re.compile(r"fb_([0-9a-f]{12})_[A-Za-z0-9_-]{20,}\Z")


def new_key(random_bytes: Callable[[int], bytes]) -> str:
    """A fresh key: `fb_` + 12 hex digits of id + `_` + 32 characters of secret."""
    key_id = random_bytes(6).hex()
    secret = base64.urlsafe_b64encode(random_bytes(24)).decode("ascii")
    return f"{PREFIX}{key_id}_{secret}"


def key_id(key: str) -> str:
    """The non-secret id that finds a key's record: the embedded id of a key Forebay
    made, or `h` + 11 hex digits of SHA-256 for any other key."""
    m = _MADE.match(key)
    if m is not None:
        return m.group(1)
    return "h" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:11]


def valid_key(key: str) -> bool:
    """Long enough to be a secret, and printable ASCII without spaces (it travels in a
    header)."""
    return len(key) >= MIN_LENGTH and key.isascii() and key.isprintable() and " " not in key


def hash_key(key: str, salt: bytes) -> str:
    return hmac.new(salt, key.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def verify(key: str, salt: bytes, digest: str) -> bool:
    return hmac.compare_digest(hash_key(key, salt), digest)


def display(kid: str) -> str:
    """How a key is shown in lists: its id, never any of the secret."""
    return f"{PREFIX}{kid}_…" if not kid.startswith("h") else f"{kid} (config key)"
