from __future__ import annotations

from forebay.catalog.endpoint import Endpoint, EndpointPolicy, endpoint_id
from forebay.catalog.merge import merge_import, seed_policies
from forebay.catalog.model import ImportedEndpoint, ImportResult


def result(source: str, *ops: str) -> ImportResult:
    eps = [ImportedEndpoint(op.split()[0], op.split()[1], source) for op in ops]
    return ImportResult(source=source, format="openapi-3.0", endpoints=eps)


def apply(existing: list[Endpoint], changed: list[Endpoint]) -> list[Endpoint]:
    by_id = {e.id: e for e in existing}
    by_id.update({e.id: e for e in changed})
    return list(by_id.values())


def test_first_import_adds_everything() -> None:
    report = merge_import([], result("a.yaml", "GET /items", "POST /items"))
    assert sorted(report.added) == ["GET /items", "POST /items"]
    assert all(e.sources == ["a.yaml"] for e in report.changed)


def test_reimport_is_idempotent() -> None:
    first = merge_import([], result("a.yaml", "GET /items", "POST /items"))
    again = merge_import(first.changed, result("a.yaml", "GET /items", "POST /items"))
    assert again.changed == [] and again.unchanged == 2


def test_reimport_adds_marks_vanished_and_keeps_user_policy() -> None:
    catalog = merge_import([], result("a.yaml", "GET /items", "POST /items")).changed
    post = next(e for e in catalog if e.method == "POST")
    post.policy, post.policy_source = EndpointPolicy(managed=True, **{"async": True}), "user"
    report = merge_import(catalog, result("a.yaml", "GET /items", "GET /items/{id}"))
    assert report.added == ["GET /items/{id}"]
    assert report.vanished == ["POST /items"]
    catalog = apply(catalog, report.changed)
    gone = next(e for e in catalog if e.method == "POST")
    assert gone.vanished and gone.policy.async_ and gone.policy_source == "user"
    back = merge_import(catalog, result("a.yaml", "POST /items"))
    assert back.returned == ["POST /items"]


def test_parameter_names_do_not_split_an_endpoint() -> None:
    catalog = merge_import([], result("spec.yaml", "GET /items/{itemId}")).changed
    report = merge_import(catalog, result("coll.json", "GET /items/{id}"))
    assert report.added == []
    (merged,) = apply(catalog, report.changed)
    assert merged.path == "/items/{itemId}" and merged.sources == ["spec.yaml", "coll.json"]


def test_endpoint_in_two_sources_vanishes_only_when_gone_from_both() -> None:
    catalog = merge_import([], result("a", "GET /x")).changed
    catalog = apply(catalog, merge_import(catalog, result("b", "GET /x")).changed)
    report = merge_import(catalog, result("a"))
    assert report.vanished == []
    catalog = apply(catalog, report.changed)
    assert merge_import(catalog, result("b")).vanished == ["GET /x"]


def test_seed_applies_most_specific_pattern_and_spares_user_choices() -> None:
    catalog = merge_import(
        [], result("a", "GET /reports/daily", "GET /reports/weekly", "POST /orders")
    ).changed
    weekly = next(e for e in catalog if e.path == "/reports/weekly")
    weekly.policy_source = "user"
    patterns = {
        "GET /reports/**": EndpointPolicy(managed=True, cache={"ttl": 300}),
        "GET /reports/daily": EndpointPolicy(managed=True, cache={"ttl": 60}),
        "POST /orders": EndpointPolicy(managed=True, **{"async": True}),
        "PUT /orders/{id}": EndpointPolicy(managed=True, max_attempts=8),
    }
    seeded = {e.name: e for e in seed_policies(catalog, patterns)}
    assert seeded["GET /reports/daily"].policy.cache.ttl == 60  # type: ignore[union-attr]
    assert seeded["POST /orders"].policy.async_
    assert "GET /reports/weekly" not in seeded  # the user's choice stands
    created = seeded["PUT /orders/{id}"]
    assert created.id == endpoint_id("PUT", "/orders/{id}") and created.sources == ["config"]


def test_seed_resets_endpoints_whose_pattern_was_removed() -> None:
    catalog = merge_import([], result("a", "POST /orders")).changed
    catalog = apply(catalog, seed_policies(catalog, {"POST /orders": EndpointPolicy(managed=True)}))
    (reset,) = seed_policies(catalog, {})
    assert reset.policy == EndpointPolicy() and reset.policy_source == "default"
    assert seed_policies(apply(catalog, [reset]), {}) == []
