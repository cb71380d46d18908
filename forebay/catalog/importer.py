"""Importing a spec file of any supported format into endpoints."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forebay.catalog.loader import RefResolver, kind_of, read_spec
from forebay.catalog.model import ImportResult
from forebay.catalog.openapi import import_openapi
from forebay.catalog.postman import import_postman, postman_format
from forebay.errors import SpecError

# A pre-release suffix (`3.1.0-rc1`) is accepted; the document shape is the same.
_OPENAPI_VERSIONS = {
    "openapi-3.0": re.compile(r"3\.0(\.\d+)?(-[\w.]+)?"),
    "openapi-3.1": re.compile(r"3\.1(\.\d+)?(-[\w.]+)?"),
}


def import_file(path: str | Path) -> ImportResult:
    """The endpoints in one OpenAPI 3.0/3.1, Swagger 2.0 or Postman v2.0/v2.1 file.

    Raises SpecError when the file cannot be imported at all: missing or unreadable,
    not JSON or YAML, an unknown format or version, or a wrong top-level shape. Problems
    confined to single operations are reported in `ImportResult.problems` instead.
    """
    source = os.fspath(path)
    file = Path(source)
    doc = read_spec(file, source)
    fmt = detect_format(doc, source)
    if fmt.startswith("postman-"):
        return import_postman(doc, source, fmt)
    return import_openapi(doc, source, fmt, RefResolver(file, doc))


def import_files(paths: Iterable[str | Path]) -> list[ImportResult]:
    """`import_file` for each path, in order; the first file that cannot be imported raises."""
    return [import_file(path) for path in paths]


def detect_format(doc: Any, source: str) -> str:
    """The `ImportResult.format` name for a parsed document; SpecError if none fits."""
    if doc is None:
        raise SpecError(source, "", "file is empty")
    if not isinstance(doc, dict):
        raise SpecError(source, "", f"expected a mapping at the top level, got {kind_of(doc)}")
    if "openapi" in doc:
        version = _version(doc["openapi"])
        for fmt, pattern in _OPENAPI_VERSIONS.items():
            if pattern.fullmatch(version):
                return fmt
        raise SpecError(
            source, "openapi", f"unsupported OpenAPI version {version!r} (expected 3.0.x or 3.1.x)"
        )
    if "swagger" in doc:
        version = _version(doc["swagger"])
        if version != "2.0":
            raise SpecError(source, "swagger", f"unsupported Swagger version {version!r}")
        return "swagger-2.0"
    postman = postman_format(doc, source)
    if postman is None:
        raise SpecError(
            source,
            "",
            "unknown format: expected an OpenAPI 3.0/3.1 document ('openapi: 3.x.y'), "
            "a Swagger 2.0 document ('swagger: \"2.0\"') or a Postman v2.0/v2.1 collection",
        )
    return postman


def _version(value: object) -> str:
    # An unquoted `swagger: 2.0` in YAML is the number 2.0.
    return str(value).strip()
