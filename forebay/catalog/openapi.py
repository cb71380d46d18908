"""Endpoints from OpenAPI 3.0 / 3.1 documents and Swagger 2.0 documents."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from forebay.catalog.loader import RefError, RefResolver, kind_of
from forebay.catalog.model import ImportResult
from forebay.catalog.paths import (
    PathError,
    ResultBuilder,
    normalize_method,
    normalize_path,
    text_or_none,
)
from forebay.errors import SpecError

_SERVER_VARIABLE = re.compile(r"\{([^{}]*)\}")

# Each path-item field paired with the file its own `$ref`s are relative to.
_Fields = dict[Any, tuple[Any, Path]]


def import_openapi(doc: dict[Any, Any], source: str, fmt: str, refs: RefResolver) -> ImportResult:
    """Every (method, path) operation in an OpenAPI or Swagger document.

    An operation that cannot be read is reported in `problems` and skipped, so one bad
    operation never costs the rest of the file; a document whose overall shape is wrong
    raises SpecError.
    """
    prefix = _base_path(doc, source) if fmt == "swagger-2.0" else _server_prefix(doc, source)
    # 3.1 lets a document hold only webhooks or components; earlier versions need paths.
    paths = doc.get("paths", {}) if fmt == "openapi-3.1" else doc.get("paths")
    if "paths" not in doc and paths is None:
        raise SpecError(source, "paths", "the document has no 'paths'")
    if not isinstance(paths, dict):
        raise SpecError(
            source, "paths", f"'paths' must be a mapping of path templates, got {kind_of(paths)}"
        )
    out = ResultBuilder(source, fmt)
    for raw_path, item in paths.items():
        _import_path_item(raw_path, item, prefix, refs, out)
    return out.result


def _import_path_item(
    raw_path: Any, item: Any, prefix: str, refs: RefResolver, out: ResultBuilder
) -> None:
    place = f"paths.{raw_path}"
    if not isinstance(raw_path, str):
        out.problem(place, f"a path must be a string, got {kind_of(raw_path)}")
        return
    if raw_path.startswith("x-"):
        return
    try:
        path = normalize_path(raw_path, prefix)
        fields = _path_item_fields(item, refs)
    except (PathError, RefError) as exc:
        out.problem(place, str(exc))
        return
    # No stand-in `[]` for absent parameters: the resolver remembers checked containers by
    # id, and a temporary one's id could be reused by a file loaded later.
    params, params_file = fields.get("parameters", (None, refs.root))
    for key, (operation, file) in fields.items():
        method = normalize_method(key)
        if method is None:
            continue
        op_place = f"{place}.{key}"
        if not isinstance(operation, dict):
            out.problem(op_place, f"an operation must be a mapping, got {kind_of(operation)}")
            continue
        try:
            refs.check(operation, file)
            if params is not None:
                refs.check(params, params_file, "path-level parameters")
        except RefError as exc:
            out.problem(op_place, str(exc))
            continue
        summary = text_or_none(operation.get("summary"))
        out.add(method, path, text_or_none(operation.get("operationId")), summary)


def _path_item_fields(item: Any, refs: RefResolver) -> _Fields:
    """The path item's fields, a `$ref`'d item's included, each with the file it came from.

    Fields written next to a `$ref` win over the referenced ones, as most tools read them.
    """
    if not isinstance(item, dict):
        raise PathError(f"a path item must be a mapping, got {kind_of(item)}")
    fields: _Fields = {}
    if "$ref" in item:
        target, file = refs.resolve(item, refs.root)
        if not isinstance(target, dict):
            raise RefError(f"$ref {item['$ref']!r} is not a path item: got {kind_of(target)}")
        fields = {key: (value, file) for key, value in target.items()}
    fields.update((key, (value, refs.root)) for key, value in item.items() if key != "$ref")
    return fields


def _server_prefix(doc: dict[Any, Any], source: str) -> str:
    """The path part of the first server URL, its variables set to their defaults."""
    servers = doc.get("servers")
    if servers is None or servers == []:
        return ""
    if not isinstance(servers, list):
        raise SpecError(source, "servers", f"'servers' must be a list, got {kind_of(servers)}")
    server = servers[0]
    if not isinstance(server, dict) or not isinstance(server.get("url"), str):
        raise SpecError(source, "servers[0]", "a server must be a mapping with a 'url' string")
    variables = server.get("variables")
    defaults = variables if isinstance(variables, dict) else {}

    def substitute(match: re.Match[str]) -> str:
        variable = defaults.get(match.group(1))
        if isinstance(variable, dict) and variable.get("default") is not None:
            return str(variable["default"])
        return match.group(0)

    url = _SERVER_VARIABLE.sub(substitute, server["url"])
    # Not urlsplit: a variable left without a default (`{scheme}://...`) is no valid scheme.
    if "://" in url or url.startswith("//"):
        after_scheme = url.split("//", 1)[1]
        slash = after_scheme.find("/")
        return after_scheme[slash:] if slash >= 0 else ""
    return url


def _base_path(doc: dict[Any, Any], source: str) -> str:
    base_path = doc.get("basePath", "")
    if not isinstance(base_path, str):
        raise SpecError(
            source, "basePath", f"'basePath' must be a string, got {kind_of(base_path)}"
        )
    return base_path
