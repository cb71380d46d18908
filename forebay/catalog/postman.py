"""Endpoints from Postman collections (schema v2.0 and v2.1)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from forebay.catalog.loader import kind_of
from forebay.catalog.model import METHODS, ImportResult
from forebay.catalog.paths import PathError, ResultBuilder, normalize_method, normalize_path
from forebay.errors import SpecError

_SCHEMA_VERSION = re.compile(r"/collection/v(\d+)\.(\d+)(?:\.\d+)?/")
_VARIABLE = re.compile(r"\{\{([^{}]*)\}\}")
_PATH_VARIABLE = re.compile(r"^:([^/{}:]+)$")
_QUERY_OR_FRAGMENT = re.compile(r"[?#]")
# Values may refer to other variables (`{{scheme}}://{{host}}`); a bound stops a cycle.
_MAX_SUBSTITUTION_ROUNDS = 10
# ...and a length bound stops `{"key": "a", "value": "{{a}}{{a}}"}` doubling each round.
_MAX_URL_LENGTH = 65_536


class _ItemError(Exception):
    """A request item that cannot become an endpoint."""


def postman_format(doc: dict[Any, Any], source: str) -> str | None:
    """`postman-2.0` or `postman-2.1` for a collection, None for anything else.

    A collection without a schema URL is taken to be v2.1, what Postman exports today.
    """
    info = doc.get("info")
    if isinstance(info, dict):
        schema = info.get("schema")
        if isinstance(schema, str) and "postman" in schema:
            match = _SCHEMA_VERSION.search(schema)
            if match and match.group(1) == "2" and match.group(2) in ("0", "1"):
                return f"postman-2.{match.group(2)}"
            raise SpecError(
                source,
                "info.schema",
                f"unsupported Postman collection schema {schema!r} (expected v2.0 or v2.1)",
            )
        if "_postman_id" in info and "item" in doc:
            return "postman-2.1"
    if isinstance(doc.get("requests"), list) and "order" in doc:
        raise SpecError(source, "", "Postman collection v1 is not supported; export it as v2.1")
    return None


def import_postman(doc: dict[Any, Any], source: str, fmt: str) -> ImportResult:
    """Every request in the collection, folders included; disabled items are skipped."""
    items = doc.get("item")
    if not isinstance(items, list):
        raise SpecError(source, "item", f"'item' must be a list, got {kind_of(items)}")
    if not isinstance(doc.get("variable", []), list):
        raise SpecError(source, "variable", "'variable' must be a list of key/value entries")
    out = ResultBuilder(source, fmt)
    for entry in _walk(items, _scope(doc, {})):
        try:
            if entry.problem:
                raise _ItemError(entry.problem)
            method, path = _endpoint(entry.item["request"], entry.scope)
        except (_ItemError, PathError) as exc:
            out.problem(entry.place, str(exc))
            continue
        name = entry.item.get("name")
        out.add(method, path, None, name if isinstance(name, str) and name else None)
    return out.result


class _Entry(NamedTuple):
    """A request item (or a broken item or folder) with its place and variables in scope."""

    place: str
    item: dict[Any, Any]
    scope: dict[str, str]
    problem: str = ""


def _walk(items: list[Any], variables: dict[str, str]) -> Iterator[_Entry]:
    # A stack of folder iterators rather than recursion, and each item list walked once:
    # YAML aliases can make a folder contain itself, or repeat a list exponentially often.
    stack = [(iter(enumerate(items)), "", variables)]
    seen = {id(items)}
    while stack:
        level, trail, scope = stack[-1]
        entry = next(level, None)
        if entry is None:
            stack.pop()
            continue
        index, item = entry
        where = f"{trail}item[{index}]"
        if not isinstance(item, dict):
            yield _Entry(where, {}, scope, f"an item must be a mapping, got {kind_of(item)}")
            continue
        if item.get("disabled") is True:
            continue
        name = item.get("name")
        if isinstance(name, str) and name:
            where += f" {json.dumps(name, ensure_ascii=False)}"
        if "request" in item and "item" not in item:
            yield _Entry(where, item, _scope(item, scope))
            continue
        children = item.get("item")
        if not isinstance(children, list):
            problem = "an item needs a 'request' or an 'item' list"
            if "item" in item:
                problem = "a folder's 'item' must be a list of items"
            yield _Entry(where, item, scope, problem)
        elif id(children) in seen:
            problem = "a folder cannot repeat an item list seen before (a YAML alias)"
            yield _Entry(where, item, scope, problem)
        else:
            seen.add(id(children))
            stack.append((iter(enumerate(children)), f"{trail}item[{index}].", _scope(item, scope)))


def _scope(owner: dict[Any, Any], outer: dict[str, str]) -> dict[str, str]:
    """`outer` plus the enabled variables `owner` defines, its own winning."""
    entries = owner.get("variable")
    if not isinstance(entries, list):
        return outer
    scope = dict(outer)
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("disabled") is True:
            continue
        key = entry.get("key", entry.get("id"))  # v2.0 collections may name it `id`
        value = entry.get("value")
        if isinstance(key, str) and key and isinstance(value, str | int | float):
            scope[key] = str(value)
    return scope


def _endpoint(request: Any, variables: dict[str, str]) -> tuple[str, str]:
    method: Any
    url: Any
    if isinstance(request, str):
        method, url = "GET", request
    elif isinstance(request, dict):
        method, url = request.get("method", "GET"), request.get("url")
    else:
        raise _ItemError(f"'request' must be a mapping or a URL, got {kind_of(request)}")
    upper = normalize_method(method)
    if upper is None:
        raise _ItemError(f"method {method!r} is not one of {', '.join(sorted(METHODS))}")
    return upper, _path(_url_text(url), variables)


def _url_text(url: Any) -> str:
    """The URL as one string; the parsed `host`/`path` parts win over `raw` when present."""
    if isinstance(url, str):
        return url
    if not isinstance(url, dict):
        raise _ItemError(f"'url' must be a string or a mapping, got {kind_of(url)}")
    host, path = url.get("host"), url.get("path")
    if host is None and path is None:
        if not isinstance(url.get("raw"), str):
            raise _ItemError("'url' has neither 'raw' nor 'host'/'path'")
        return str(url["raw"])
    host_text = ".".join(_parts(host)) if isinstance(host, list) else _part(host)
    path_text = "/".join(_parts(path)) if isinstance(path, list) else _part(path)
    # No host means a path of its own; with one, the leading text is the host and goes.
    return f"{host_text}/{path_text}" if host_text else f"/{path_text}"


def _parts(values: list[Any]) -> list[str]:
    return [_part(value) for value in values]


def _part(value: Any) -> str:
    if isinstance(value, dict):  # v2.1 allows `{"type": "string", "value": "items"}`
        value = value.get("value")
    return "" if value is None else str(value)


def _path(url: str, variables: dict[str, str]) -> str:
    for _ in range(_MAX_SUBSTITUTION_ROUNDS):
        expanded = _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), url)
        if expanded == url:
            break
        if len(expanded) > _MAX_URL_LENGTH:
            raise _ItemError("the URL's variables expand without end")
        url = expanded
    url = _QUERY_OR_FRAGMENT.split(url, maxsplit=1)[0]
    if "://" in url or url.startswith("//"):
        url = url.split("//", 1)[1]
    if not url.startswith("/"):
        # Postman reads the first segment of a scheme-less URL as the host.
        slash = url.find("/")
        url = url[slash:] if slash >= 0 else "/"
    segments = [_template_segment(segment) for segment in url.split("/")]
    return normalize_path("/".join(segments))


def _template_segment(segment: str) -> str:
    """`:id` and an unresolved `{{id}}` become `{id}`, the template form every format shares."""
    segment = _PATH_VARIABLE.sub(r"{\1}", segment)
    return _VARIABLE.sub(r"{\1}", segment)
