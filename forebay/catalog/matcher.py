"""Map `(method, path)` of a request to its endpoint in time that does not grow with the
size of the catalog: a segment trie, walked once per request.

At each segment a literal child wins over a templated one (`/items/new` before
`/items/{id}`), and a segment with a parameter inside it (`{name}.json`) wins over a
bare parameter. The walk backtracks, so a literal that leads nowhere does not hide a
parameter route that matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

_PARAM = re.compile(r"\{([^{}/]*)\}")


@dataclass(slots=True)
class _Node(Generic[T]):
    literal: dict[str, _Node[T]] = field(default_factory=dict)
    mixed: list[tuple[re.Pattern[str], _Node[T]]] = field(default_factory=list)
    param: _Node[T] | None = None
    targets: dict[str, T] = field(default_factory=dict)


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _mixed_pattern(segment: str) -> re.Pattern[str]:
    parts = _PARAM.split(segment)
    # split() alternates literal, name, literal, ...; names become non-empty wildcards.
    regex = "".join(re.escape(p) if i % 2 == 0 else "(.+?)" for i, p in enumerate(parts))
    return re.compile(regex + r"\Z")


class Router(Generic[T]):
    """A routing table from path templates to targets, one per method."""

    def __init__(self, routes: Iterable[tuple[str, str, T]] = ()) -> None:
        self._root: _Node[T] = _Node()
        self._mixed_cache: dict[str, re.Pattern[str]] = {}
        for method, template, target in routes:
            self.add(method, template, target)

    def add(self, method: str, template: str, target: T) -> None:
        node = self._root
        for seg in _segments(template):
            if not _PARAM.search(seg):
                node = node.literal.setdefault(seg, _Node())
            elif _PARAM.fullmatch(seg):
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                pattern = _mixed_pattern(seg)
                for existing, child in node.mixed:
                    if existing.pattern == pattern.pattern:
                        node = child
                        break
                else:
                    child = _Node()
                    node.mixed.append((pattern, child))
                    node = child
        node.targets.setdefault(method, target)

    def match(self, method: str, path: str) -> tuple[T | None, bool]:
        """The target for the request, and whether any method is routed at that path.

        `(None, True)` means the path is known but not for this method (a 405 in strict
        mode); `(None, False)` means the path is unknown.
        """
        segs = [unquote(s) for s in path.split("/") if s] if "%" in path else _segments(path)
        node = self._walk(self._root, segs, 0)
        if node is None:
            return None, False
        target = node.targets.get(method)
        if target is None and method == "HEAD":
            target = node.targets.get("GET")
        return target, True

    def allowed(self, path: str) -> list[str]:
        node = self._walk(self._root, _segments(path), 0)
        return sorted(node.targets) if node else []

    def _walk(self, node: _Node[T], segs: list[str], i: int) -> _Node[T] | None:
        if i == len(segs):
            return node if node.targets else None
        seg = segs[i]
        child = node.literal.get(seg)
        if child is not None:
            found = self._walk(child, segs, i + 1)
            if found is not None:
                return found
        for pattern, mixed_child in node.mixed:
            if pattern.match(seg):
                found = self._walk(mixed_child, segs, i + 1)
                if found is not None:
                    return found
        if node.param is not None:
            return self._walk(node.param, segs, i + 1)
        return None
