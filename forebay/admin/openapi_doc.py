"""Make the admin API's OpenAPI document say what the API really answers on errors.

FastAPI documents a 422 with its own `HTTPValidationError` body as `application/json`,
and nothing else; the admin API answers every error as an RFC 9457 problem
(`application/problem+json`), with 401 without the token and 403 for a session cookie
without its CSRF header. This rewrites the generated document once, when first asked.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URL naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {
            "description": "What went wrong: a sentence, or for invalid input a list of "
            "{where, problem}.",
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"where": {"type": "string"}, "problem": {"type": "string"}},
                    },
                },
                {"type": "null"},
            ],
        },
    },
}

_REF = {"$ref": "#/components/schemas/Problem"}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _REF}}}


def rewrite(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    for item in doc.get("paths", {}).values():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            if "422" in responses or op.get("parameters") or op.get("requestBody"):
                responses["422"] = _problem("The input does not fit; `detail` says where.")
            if op.get("security"):
                responses["401"] = _problem("No admin token or session, or a wrong one.")
                responses["403"] = _problem("A session cookie without its CSRF header.")
            # The rest (404 no such thing, 409 not in a state for it, 413 too large) as
            # each operation's description says.
            responses.setdefault("4XX", _problem("Another client error, as a problem."))
    return doc


def document_problems(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = rewrite(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
