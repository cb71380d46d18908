"""Method and path normalisation shared by every importer, so all formats agree on keys."""

from __future__ import annotations

import re

from forebay.catalog.model import METHODS, ImportedEndpoint, ImportResult
from forebay.errors import SpecProblem

_SLASHES = re.compile(r"/{2,}")
_QUERY_OR_FRAGMENT = re.compile(r"[?#]")


class PathError(ValueError):
    """A path template that cannot name an endpoint; the message says why."""


def normalize_method(method: object) -> str | None:
    """The upper-case HTTP method, or None when `method` is not one Forebay routes."""
    if not isinstance(method, str):
        return None
    upper = method.strip().upper()
    return upper if upper in METHODS else None


def normalize_path(path: str, prefix: str = "") -> str:
    """`prefix` + `path` as one template: leading `/`, single slashes, no trailing `/`.

    A query string or fragment is dropped because routing never sees it; percent-encoding
    is kept as written because decoding could turn `%2F` into a new path segment.
    """
    prefix = _QUERY_OR_FRAGMENT.split(prefix.strip(), maxsplit=1)[0]
    path = _QUERY_OR_FRAGMENT.split(path.strip(), maxsplit=1)[0]
    joined = _SLASHES.sub("/", f"/{prefix}/{path}")
    if len(joined) > 1:
        joined = joined.rstrip("/")
    _check_template(joined)
    return joined


def _check_template(path: str) -> None:
    opened = -1
    for i, char in enumerate(path):
        if char == "{":
            if opened >= 0:
                raise PathError(f"unbalanced braces in path template {path!r}")
            opened = i
        elif char == "}":
            if opened < 0:
                raise PathError(f"unbalanced braces in path template {path!r}")
            name = path[opened + 1 : i]
            if not name.strip():
                raise PathError(f"empty parameter '{{}}' in path template {path!r}")
            if "/" in name:
                raise PathError(f"parameter {{{name}}} spans a '/' in path template {path!r}")
            opened = -1
    if opened >= 0:
        raise PathError(f"unbalanced braces in path template {path!r}")


def text_or_none(value: object) -> str | None:
    """A name or summary as text; YAML may have read `operationId: 404` as a number."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


class ResultBuilder:
    """Collects one file's endpoints, keeping the first of any endpoints with the same key."""

    def __init__(self, source: str, fmt: str) -> None:
        self.result = ImportResult(source=source, format=fmt)
        self._keys: set[tuple[str, str]] = set()

    def add(
        self, method: str, path: str, operation_id: str | None = None, summary: str | None = None
    ) -> None:
        endpoint = ImportedEndpoint(method, path, self.result.source, operation_id, summary)
        if endpoint.key not in self._keys:
            self._keys.add(endpoint.key)
            self.result.endpoints.append(endpoint)

    def problem(self, place: str, problem: str) -> None:
        self.result.problems.append(SpecProblem(self.result.source, place, problem))
