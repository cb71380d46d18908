"""Whether an origin answer may be stored, and for how long it may be served (RFC 9111).

Forebay is a shared cache. It never stores an answer marked `no-store` or `private`,
nor one with `Set-Cookie` unless it is `public`, nor one whose `Vary` is `*`; an answer
to a request with `Authorization` only when the origin says other users may have it
(`public`, `s-maxage` or `must-revalidate`, RFC 9111 section 3.5).

The lifetime is the endpoint's TTL, or with `respect_origin` the origin's `s-maxage`,
`max-age` or `Expires` (in that order; the TTL when it sends none). `no-cache` stores the
answer but revalidates it on every use; `must-revalidate` and `proxy-revalidate` forbid
serving it stale. Ages count from the origin's `Age`, if it sent one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# Statuses cacheable without explicit freshness (RFC 9110 section 15.1); 206 is left out
# because ranges are not stored.
CACHEABLE_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})


@dataclass(frozen=True, slots=True)
class CacheRules:
    """An endpoint's cache settings, as the policy sees them (seconds)."""

    ttl: float
    respect_origin: bool = False
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an answer is stored and, if so, how it may be served."""

    store: bool
    reason: str = ""  # why not, for Cache-Status `detail` (empty when stored)
    ttl: float = 0.0
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    public: bool = False  # shared by every consumer
    shared_with_authorization: bool = False  # may answer requests with Authorization
    initial_age: float = 0.0


def parse_cache_control(values: Iterable[str]) -> dict[str, str | None]:
    """`Cache-Control` directives, names lower-case, quoted values unquoted. A directive
    repeated keeps its first value."""
    out: dict[str, str | None] = {}
    for value in values:
        for item in _split_commas(value):
            name, eq, arg = item.partition("=")
            name = name.strip().lower()
            if not name:
                continue
            arg = arg.strip()
            if len(arg) >= 2 and arg[0] == arg[-1] == '"':
                arg = arg[1:-1]
            out.setdefault(name, arg if eq else None)
    return out


def _split_commas(value: str) -> list[str]:
    # Commas inside quotes (private="a, b") do not separate directives.
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def seconds(value: str | None) -> float | None:
    """A delta-seconds value, or None when it is not one."""
    if value is None:
        return None
    value = value.strip()
    return float(value) if value.isdigit() else None


def http_date(value: str | None) -> float | None:
    """An HTTP date as a Unix time, or None when it is not one."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def verdict(
    status: int,
    cache_control: Iterable[str],
    rules: CacheRules,
    *,
    age: str | None = None,
    date: str | None = None,
    expires: str | None = None,
    vary_star: bool = False,
    set_cookie: bool = False,
    authorization: bool = False,
) -> Verdict:
    """Decide whether a GET answer is stored, from its status and headers."""
    cc = parse_cache_control(cache_control)
    public = "public" in cc
    if status not in CACHEABLE_STATUSES:
        return Verdict(False, "status")
    if "no-store" in cc:
        return Verdict(False, "no-store")
    if "private" in cc:
        return Verdict(False, "private")
    if vary_star:
        return Verdict(False, "vary")
    if set_cookie and not public:
        return Verdict(False, "set-cookie")
    shared_auth = public or "s-maxage" in cc or "must-revalidate" in cc
    if authorization and not shared_auth:
        return Verdict(False, "authorization")
    ttl = rules.ttl
    swr, sie = rules.stale_while_revalidate, rules.stale_if_error
    if rules.respect_origin:
        origin_ttl = seconds(cc.get("s-maxage"))
        if origin_ttl is None:
            origin_ttl = seconds(cc.get("max-age"))
        if origin_ttl is None and expires is not None:
            expires_at, dated = http_date(expires), http_date(date)
            if expires_at is None:
                origin_ttl = 0.0  # an invalid Expires means "already expired" (5.3)
            elif dated is not None:
                origin_ttl = max(0.0, expires_at - dated)
        if origin_ttl is not None:
            ttl = origin_ttl
        swr = seconds(cc.get("stale-while-revalidate")) or swr
        sie = seconds(cc.get("stale-if-error")) or sie
    if "no-cache" in cc:
        ttl = 0.0
    if "must-revalidate" in cc or "proxy-revalidate" in cc:
        swr = sie = 0.0
    return Verdict(
        True,
        ttl=ttl,
        stale_while_revalidate=swr,
        stale_if_error=sie,
        public=public,
        shared_with_authorization=shared_auth,
        initial_age=seconds(age) or 0.0,
    )


def current_age(initial_age: float, stored_at: float, now: float) -> float:
    """How old a stored answer is now: its age when stored plus the time it has been kept."""
    return initial_age + max(0.0, now - stored_at)


def is_fresh(ttl: float, age: float) -> bool:
    return age < ttl


def within(ttl: float, grace: float, age: float) -> bool:
    """Whether an answer past its TTL is still inside a grace period (stale-while-
    revalidate or stale-if-error) of `grace` seconds."""
    return grace > 0 and age < ttl + grace
