"""Endpoint patterns from the config file: `"POST /orders"`, `"GET /reports/**"`.

A pattern matches endpoint templates, not request paths: `*` stands for one segment,
`**` for any number (including none), and a method of `*` for every method.
"""

from __future__ import annotations

import re
from functools import lru_cache


def split_pattern(pattern: str) -> tuple[str, str]:
    """`"post /orders"` -> `("POST", "/orders")`; raises ValueError naming the problem."""
    parts = pattern.split(None, 1)
    if len(parts) != 2 or not parts[1].startswith("/"):
        raise ValueError(f"{pattern!r} is not 'METHOD /path' (for example 'POST /orders')")
    return parts[0].upper(), parts[1]


def is_glob(path: str) -> bool:
    return "*" in path


@lru_cache(maxsize=1024)
def _compile(path: str) -> re.Pattern[str]:
    out = []
    for seg in path.strip("/").split("/"):
        if seg == "**":
            out.append(r"(?:/[^/]+)*")
        else:
            out.append("/" + re.escape(seg).replace(r"\*", "[^/]*"))
    return re.compile("".join(out) + r"/?\Z" if path != "/" else r"/\Z")


def matches(pattern_method: str, pattern_path: str, method: str, template: str) -> bool:
    """Whether `METHOD template` falls under the pattern."""
    if pattern_method not in ("*", method):
        return False
    return _compile(pattern_path).match(template) is not None


def specificity(pattern_path: str) -> tuple[int, int]:
    """Sort key: literal patterns beat globs, longer literal prefixes beat shorter ones."""
    literal = pattern_path.split("*", 1)[0]
    return (0 if is_glob(pattern_path) else 1, len(literal))
