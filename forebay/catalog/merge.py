"""Merging imports and the config file into the catalog, keeping what users chose.

Pure functions over lists of endpoints: the caller loads the catalog, asks what changes,
and saves those records. Every store backend therefore merges the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from forebay.catalog.endpoint import Endpoint, EndpointPolicy, endpoint_id
from forebay.catalog.model import ImportedEndpoint, ImportResult
from forebay.policy.patterns import is_glob, matches, specificity, split_pattern

CONFIG_SOURCE = "config"


@dataclass(slots=True)
class MergeReport:
    added: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    unchanged: int = 0
    changed: list[Endpoint] = field(default_factory=list)


def new_endpoint(item: ImportedEndpoint) -> Endpoint:
    return Endpoint(
        id=endpoint_id(item.method, item.path),
        method=item.method,
        path=item.path,
        sources=[item.source],
        operation_id=item.operation_id,
        summary=item.summary,
    )


def merge_import(existing: Iterable[Endpoint], result: ImportResult) -> MergeReport:
    """What re-importing `result.source` changes: new endpoints are added, ones no longer in
    that file lose it as a source (and are marked vanished when no source is left), and
    policies are never touched."""
    by_id = {e.id: e for e in existing}
    report = MergeReport()
    seen: set[str] = set()
    for item in result.endpoints:
        eid = endpoint_id(item.method, item.path)
        seen.add(eid)
        current = by_id.get(eid)
        if current is None:
            report.added.append(f"{item.method} {item.path}")
            report.changed.append(new_endpoint(item))
            continue
        updated = current.model_copy(deep=True)
        if result.source not in updated.sources:
            updated.sources.append(result.source)
        updated.operation_id = updated.operation_id or item.operation_id
        updated.summary = updated.summary or item.summary
        if updated.vanished:
            updated.vanished = False
            report.returned.append(updated.name)
        if updated != current:
            report.changed.append(updated)
        else:
            report.unchanged += 1
    for eid, current in by_id.items():
        if eid in seen or result.source not in current.sources:
            continue
        updated = current.model_copy(deep=True)
        updated.sources.remove(result.source)
        if not updated.sources:
            updated.vanished = True
            report.vanished.append(updated.name)
        report.changed.append(updated)
    return report


def seed_policies(
    existing: Iterable[Endpoint], patterns: Mapping[str, EndpointPolicy]
) -> list[Endpoint]:
    """Apply the config file's endpoint policies to every endpoint a user has not set.

    The most specific matching pattern wins. Exact `METHOD /path` entries that name an
    endpoint no spec imported create it, so a config file alone can describe an API.
    """
    parsed = sorted(
        ((*split_pattern(p), policy) for p, policy in patterns.items()),
        key=lambda t: specificity(t[1]),
        reverse=True,
    )
    by_id = {e.id: e for e in existing}
    for method, path, _ in parsed:
        if method != "*" and not is_glob(path):
            eid = endpoint_id(method, path)
            if eid not in by_id:
                by_id[eid] = Endpoint(id=eid, method=method, path=path, sources=[CONFIG_SOURCE])
    changed: list[Endpoint] = []
    for eid, current in by_id.items():
        if current.policy_source == "user":
            continue
        policy = next(
            (p for m, path, p in parsed if matches(m, path, current.method, current.path)),
            None,
        )
        updated = current.model_copy(deep=True)
        if policy is not None:
            updated.policy, updated.policy_source = policy.model_copy(deep=True), "config"
        elif current.policy_source == "config":
            updated.policy, updated.policy_source = EndpointPolicy(), "default"
        if updated != current or eid not in {e.id for e in existing}:
            changed.append(updated)
    return changed
