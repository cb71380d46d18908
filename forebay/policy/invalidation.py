"""Which cached GETs a successful mutation makes wrong, derived from the catalog's path
templates.

A 2xx answer to POST, PUT, PATCH or DELETE on a path invalidates:

- the path itself (`/items/5`);
- its parent collection, when the last segment of its template is a parameter
  (`/items` for `/items/{id}`; `/users/7/orders` for `/users/{u}/orders/{o}`). A path
  whose template ends in a literal is a collection already (`POST /users/7/orders`),
  so its parent (`/users/7`) is left alone unless the endpoint lists it. The root is a
  collection like any other (`/` for `/5` under `/{id}`). Without a
  template (an unmatched path) the parent is invalidated: too much is safe, too little
  is not;
- the paths its `Location` and `Content-Location` name (same-origin or relative);
- the endpoint's `invalidates` patterns, with `{name}` bound to the mutation's path
  parameters (`/users/{id}` after `POST /users/{id}/orders`). A pattern left with an
  unbound parameter or a `*` matches paths, segment by segment; `**` any number of them.

Every path counts with all its query strings: `/items` covers `/items?page=2`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from forebay.policy.cache_keys import normalise_path

MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"\{([^{}/]*)\}")
# The gateway's own URLs (async status documents) are never cached.
_OWN_PREFIX = "/_forebay/"
REMEMBERED_PATH = 512  # characters: targets of longer paths are computed, not kept


@dataclass(frozen=True, slots=True)
class Targets:
    """What to invalidate: exact paths, and path patterns (see `pattern_matches`)."""

    paths: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = field(default_factory=tuple)


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


@lru_cache(maxsize=1024)
def _segment_regex(segment: str) -> re.Pattern[str] | None:
    """A regex binding the parameters of a template segment; None for a literal."""
    names = _PARAM.findall(segment)
    if not names:
        return None
    parts = _PARAM.split(segment)
    regex = "".join(
        re.escape(p) if i % 2 == 0 else f"(?P<p{i // 2}>.+?)" for i, p in enumerate(parts)
    )
    return re.compile(regex + r"\Z")


def bind(template: str, path: str) -> dict[str, str] | None:
    """The path parameters `path` gives `template` (`{"id": "5"}` for `/items/{id}` and
    `/items/5`), or None when the path does not fit the template."""
    t_segs, p_segs = _segments(template), _segments(path)
    if len(t_segs) != len(p_segs):
        return None
    bound: dict[str, str] = {}
    for t, p in zip(t_segs, p_segs, strict=True):
        regex = _segment_regex(t)
        if regex is None:
            if t != p:
                return None
            continue
        m = regex.match(p)
        if m is None:
            return None
        for i, name in enumerate(_PARAM.findall(t)):
            bound.setdefault(name.strip(), m.group(f"p{i}"))
    return bound


def parent_collection(path: str, template: str | None) -> str | None:
    """The collection `path` is an item of, if any (see the module docstring)."""
    segs = _segments(path)
    if not segs:
        return None
    if template is not None:
        t_segs = _segments(template)
        if len(t_segs) != len(segs) or _segment_regex(t_segs[-1]) is None:
            return None
    return "/" + "/".join(segs[:-1])


def location_path(
    value: str | None, gateway_hosts: Iterable[str] = (), base: str = "/"
) -> str | None:
    """The path a `Location`/`Content-Location` names, when it is relative or on one of
    `gateway_hosts` (any host when none are given: the origin rarely knows our name). A
    relative reference (`6`, `../tags`) is resolved against `base`, the path of the
    request it answers (RFC 9110, section 10.2.2)."""
    if not value:
        return None
    value = value.strip()
    parts = urlsplit(value)
    if not (parts.scheme or parts.netloc or parts.path.startswith("/")):
        parts = urlsplit(urljoin(base, value))
    hosts = {h.lower() for h in gateway_hosts}
    if parts.netloc and hosts and parts.netloc.lower() not in hosts:
        return None
    path = parts.path
    if not path.startswith("/") or path.startswith(_OWN_PREFIX):
        return None
    return normalise_path(path)


def bind_pattern(pattern: str, params: Mapping[str, str]) -> str:
    """`pattern` with every `{name}` it has a value for replaced; the rest stay."""

    def value(m: re.Match[str]) -> str:
        return params.get(m.group(1).strip(), m.group(0))

    return _PARAM.sub(value, pattern)


def is_pattern(path: str) -> bool:
    return "*" in path or _PARAM.search(path) is not None


@lru_cache(maxsize=1024)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for seg in _segments(pattern):
        if seg == "**":
            out.append(r"(?:/[^/]+)*")
            continue
        literal = _PARAM.sub("\0", seg)  # an unbound parameter: any text in the segment
        regex = re.escape(literal).replace(r"\*", "[^/]*").replace("\0", "[^/]+")
        out.append("/" + regex)
    return re.compile(("".join(out) or "/") + r"\Z")


def pattern_matches(pattern: str, path: str) -> bool:
    """Whether a path matches a pattern: `*` (or an unbound `{name}`) is one segment or a
    part of one, `**` is any number of segments."""
    return _pattern_regex(pattern).match(path) is not None


def targets(
    method: str,
    path: str,
    template: str | None,
    invalidates: Iterable[str] = (),
    location: str | None = None,
    content_location: str | None = None,
) -> Targets:
    """Everything a successful `method path` invalidates; nothing for other methods."""
    if method not in MUTATIONS:
        return Targets()
    target, path = path, normalise_path(path)
    own = _own_targets if len(path) <= REMEMBERED_PATH else _own_targets.__wrapped__
    found = own(path, template, tuple(invalidates))
    named = {p for v in (location, content_location) if (p := location_path(v, base=target))}
    if named <= found.paths:
        return found
    return Targets(found.paths | named, found.patterns)


@lru_cache(maxsize=4096)
def _own_targets(path: str, template: str | None, invalidates: tuple[str, ...]) -> Targets:
    # Writes repeat paths (and every write computes this): remembered, as the answer
    # depends on nothing else.
    paths = {path}
    parent = parent_collection(path, template)
    if parent is not None:
        paths.add(parent)  # the root too: `GET /` lists what `PUT /5` under `/{id}` changes
    patterns: list[str] = []
    params = bind(template, path) if template is not None else None
    for pattern in invalidates:
        bound = bind_pattern(pattern, params or {})
        if is_pattern(bound):
            patterns.append(bound)
        else:
            paths.add(normalise_path(bound))
    return Targets(frozenset(paths), tuple(patterns))
