"""`POST /api/import`: a spec or collection uploaded as the request body, merged into the
catalog as `forebay import` merges a file."""

from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from forebay.catalog.importer import import_file
from forebay.catalog.merge import merge_import
from forebay.errors import SpecError

MAX_SPEC_BYTES = 20 * 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class Problem(BaseModel):
    place: str
    problem: str


class ImportReport(BaseModel):
    source: str = Field(description="The name the upload is known by: `upload:<filename>`.")
    format: str = Field(description="openapi-3.0, openapi-3.1, swagger-2.0, postman-2.0/2.1.")
    endpoints: int = Field(description="Operations found in the upload.")
    added: list[str]
    vanished: list[str] = Field(description="Endpoints of an earlier upload of this name gone.")
    returned: list[str]
    skipped: list[Problem] = Field(description="Operations that could not be imported.")


def import_router(runtime: Any) -> APIRouter:
    api = APIRouter(tags=["endpoints"])

    @api.post(
        "/import",
        response_model=ImportReport,
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The spec or collection itself, JSON or YAML.",
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/yaml": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def import_spec(
        request: Request,
        filename: Annotated[
            str,
            Query(
                min_length=1,
                max_length=200,
                description="The uploaded file's name. Uploading the same name again "
                "merges like a re-import: endpoints gone from it are marked vanished.",
            ),
        ],
    ) -> ImportReport:
        """Import an OpenAPI 3.0/3.1, Swagger 2.0 or Postman v2.0/v2.1 document.

        Settings made on existing endpoints are kept. External `$ref`s cannot be followed
        from an upload: bundle the spec into one file first."""
        body = await request.body()
        if len(body) > MAX_SPEC_BYTES:
            raise HTTPException(413, f"A spec may have at most {MAX_SPEC_BYTES} bytes.")
        name = _SAFE_NAME.sub("_", filename)[:200]
        source = f"upload:{name}"
        with tempfile.TemporaryDirectory(prefix="forebay-upload-") as tmp:
            # The importer reads files (and picks YAML or JSON partly by the suffix).
            path = Path(tmp) / f"upload-{name}"  # never "." or ".."
            path.write_bytes(body)
            try:
                result = import_file(path)
            except SpecError as e:
                raise HTTPException(
                    422, f"{e.detail.place + ': ' if e.detail.place else ''}{e.detail.problem}"
                ) from None
        result.source = source
        result.endpoints = [dataclasses.replace(x, source=source) for x in result.endpoints]
        report = merge_import(await runtime.store.endpoints.list(), result)
        if report.changed:
            await runtime.store.endpoints.save(report.changed)
            await runtime.refresh_catalog()
        return ImportReport(
            source=source,
            format=result.format,
            endpoints=len(result.endpoints),
            added=report.added,
            vanished=report.vanished,
            returned=report.returned,
            skipped=[Problem(place=p.place, problem=p.problem) for p in result.problems],
        )

    return api
