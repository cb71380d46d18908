"""Conditional GETs (RFC 9110 section 13): whether a stored answer lets the gateway say
304 Not Modified to a client that already holds it."""

from __future__ import annotations

from forebay.policy.freshness import http_date


def _opaque(tag: str) -> str:
    # Weak comparison: W/"x" and "x" name the same representation for GET.
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(if_none_match: str, etag: str | None) -> bool:
    """Whether `If-None-Match` (a list of entity tags, or `*`) names `etag`."""
    if etag is None:
        return False
    wanted = if_none_match.strip()
    if wanted == "*":
        return True
    mine = _opaque(etag)
    return any(_opaque(tag) == mine for tag in wanted.split(",") if tag.strip())


def not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str | None,
    last_modified: str | None,
) -> bool:
    """Whether the client's validators match the stored answer, so 304 is the reply.

    `If-None-Match` wins when present; `If-Modified-Since` is looked at only without it,
    and only when the stored answer has a `Last-Modified` to compare.
    """
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if if_modified_since is None or last_modified is None:
        return False
    since, modified = http_date(if_modified_since), http_date(last_modified)
    return since is not None and modified is not None and modified <= since
