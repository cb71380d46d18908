"""Cache keys: which stored answer a request may be given.

A key has two parts. The primary key, `path?sorted-query`, is known from the request
alone and finds the stored variants of one resource; it is also what invalidation works
on (by path). Each variant then records the request header values its response `Vary`
names, and the consumer it belongs to unless the response was `public`; a request is
given a variant only when both match.

The method is not part of the primary key because only GET answers are stored; a HEAD
is answered from the GET's entry without its body.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# RFC 3986 unreserved characters: percent-encoding them changes nothing, so it is undone.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset(b"0123456789abcdefABCDEF")

Headers = Sequence[tuple[bytes, bytes]]


def normalise_path(raw: str) -> str:
    """One spelling per path: single slashes, no trailing slash (but `/`), unreserved
    characters decoded, other escapes in upper case. `%2F` stays encoded, since decoding
    it would make a new path segment."""
    if "%" not in raw and "//" not in raw and (len(raw) < 2 or raw[-1] != "/"):
        return raw or "/"
    if "%" in raw:
        raw = _fix_escapes(raw)
    while "//" in raw:
        raw = raw.replace("//", "/")
    if len(raw) > 1:
        raw = raw.rstrip("/") or "/"
    if not raw.startswith("/"):
        raw = "/" + raw
    return raw


def _fix_escapes(raw: str) -> str:
    data = raw.encode("latin-1", "replace")
    out = bytearray()
    i = 0
    while i < len(data):
        c = data[i]
        if c == 0x25 and _is_hex(data[i + 1 : i + 3]):
            value = int(data[i + 1 : i + 3], 16)
            if value in _UNRESERVED:
                out.append(value)
            else:
                out += b"%" + data[i + 1 : i + 3].upper()
            i += 3
        else:
            out.append(c)
            i += 1
    return out.decode("latin-1")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX


def sorted_query(raw: str) -> str:
    """The query's parameters in sorted order, so `?b=2&a=1` and `?a=1&b=2` share a key.
    Empty parameters (`&&`) are dropped; values keep their encoding."""
    if not raw:
        return ""
    if "&" not in raw:
        return raw
    return "&".join(sorted(p for p in raw.split("&") if p))


def primary_key(path: str, query: str) -> str:
    """`path` or `path?query`, both normalised."""
    path = normalise_path(path)
    query = sorted_query(query)
    return f"{path}?{query}" if query else path


def path_of(key: str) -> str:
    """The path part of a primary key."""
    return key.split("?", 1)[0]


def vary_names(values: Iterable[str]) -> tuple[str, ...] | None:
    """The request header names a response's `Vary` lists, lower-case and sorted; None
    for `Vary: *` (the answer varies on something the cache cannot see: not storable)."""
    names: set[str] = set()
    for value in values:
        for item in value.split(","):
            name = item.strip().lower()
            if name == "*":
                return None
            if name:
                names.add(name)
    return tuple(sorted(names))


def vary_values(names: Sequence[str], headers: Headers) -> tuple[str | None, ...]:
    """The request's values of the headers `names`, in the same order (None when absent;
    repeated headers joined with a comma, as HTTP allows)."""
    if not names:
        return ()
    found: dict[str, list[str]] = {}
    wanted = {n.encode("latin-1") for n in names}
    for name, value in headers:
        if name in wanted:
            found.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1").strip())
    return tuple(", ".join(found[n]) if n in found else None for n in names)
