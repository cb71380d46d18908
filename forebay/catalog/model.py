"""The endpoint model: what an import yields and what the catalog stores."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from forebay.errors import SpecProblem

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

_PARAM = re.compile(r"\{[^{}/]*\}")


def template_shape(path: str) -> str:
    """The path with parameter names erased, so `/items/{id}` and `/items/{item_id}` agree.

    Two imports of one API (an OpenAPI spec and a Postman collection, say) often name
    their parameters differently; the endpoint is the same.
    """
    return _PARAM.sub("{}", path)


@dataclass(frozen=True, slots=True)
class ImportedEndpoint:
    """One operation found in a spec: `METHOD /path/{template}` and where it came from."""

    method: str
    path: str
    source: str
    operation_id: str | None = None
    summary: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, template_shape(self.path))


@dataclass(slots=True)
class ImportResult:
    """Endpoints parsed from one file, plus the operations that were skipped and why."""

    source: str
    format: str
    endpoints: list[ImportedEndpoint] = field(default_factory=list)
    problems: list[SpecProblem] = field(default_factory=list)
