"""Input rules of the admin API written into its OpenAPI document as JSON Schema, so a
client (or a fuzzer) can know from the document alone which values are accepted. The
Python validators stay the authority; these patterns say the same in ECMA regex."""

from __future__ import annotations

from typing import Any

# A rate as `policy.gcra.parse_rate` reads it: count and burst at least 1.
RATE = (
    r"^\s*0*[1-9][0-9]*\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*"
    r"(burst\s+0*[1-9][0-9]*\s*)?$"
)
# `store.consumers.NAME`.
CONSUMER_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
# `policy.patterns.split_pattern`: a method (or *), white space, a path.
METHOD_PATH = r"^\s*\S+\s+/"


def nullable_pattern(pattern: str) -> dict[str, Any]:
    """A string field that may be null, with its pattern."""
    return {"anyOf": [{"type": "string", "pattern": pattern}, {"type": "null"}]}
