"""OpenAPI 3.0 / 3.1 and Swagger 2.0 import, and the `$ref` resolution behind it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from forebay.catalog.importer import import_file
from forebay.catalog.loader import RefError, RefResolver, read_spec

FIXTURES = Path(__file__).parent / "fixtures"
SHOP = FIXTURES / "shop"
BROKEN = FIXTURES / "broken"


def write_spec(tmp_path: Path, doc: dict[str, Any], name: str = "spec.json") -> Path:
    spec = tmp_path / name
    spec.write_text(json.dumps(doc))
    return spec


def openapi(paths: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths, **top}


def ok(**fields: Any) -> dict[str, Any]:
    return {"responses": {"200": {"description": "ok"}}, **fields}


@pytest.mark.parametrize("name", ["openapi-3.0.yaml", "openapi-3.1.json", "swagger-2.0.yaml"])
def test_operation_ids_and_summaries_are_kept(name: str) -> None:
    result = import_file(SHOP / name)
    by_key = {e.key: (e.operation_id, e.path) for e in result.endpoints}

    # getPet comes from a path item behind a $ref (another file for 3.0, components for 3.1).
    assert by_key[("GET", "/v1/pets/{}")][0] == "getPet"
    assert by_key[("POST", "/v1/orders")][0] == "placeOrder"
    assert by_key[("GET", "/v1/files/{}.json")] == ("getFileJson", "/v1/files/{path}.json")
    summaries = {e.summary for e in result.endpoints}
    assert {"Get a pet", "Upload a photo of a pet", "Change an order"} <= summaries


def test_path_parameter_names_are_kept_as_written() -> None:
    paths = {e.path for e in import_file(SHOP / "openapi-3.1.json").endpoints}

    assert {"/v1/pets/{id}", "/v1/{owner}/{name}/pulls/{number}"} <= paths


def test_webhooks_are_not_endpoints() -> None:
    result = import_file(SHOP / "openapi-3.1.json")

    assert "petAdopted" not in {e.operation_id for e in result.endpoints}
    assert len(result.endpoints) == 15


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ({"url": "https://{host}/v1", "variables": {"host": {"default": "a.example.com"}}}, "/v1"),
        ({"url": "/api"}, "/api"),
        ({"url": "/api/"}, "/api"),
        ({"url": "https://api.example.com"}, ""),
        ({"url": "http://localhost:8080/"}, ""),
        ({"url": "//cdn.example.com/assets"}, "/assets"),
        ({"url": "v2"}, "/v2"),
        (
            {
                "url": "{scheme}://{host}:{port}/{base}/",
                "variables": {
                    "scheme": {"default": "https"},
                    "host": {"default": "api.example.com"},
                    "port": {"default": 8443},
                    "base": {"default": "svc/v3", "enum": ["svc/v3", "svc/v4"]},
                },
            },
            "/svc/v3",
        ),
        ({"url": "https://api.example.com/{tenant}"}, "/{tenant}"),
        ({"url": "https://api.example.com/v1?debug=1"}, "/v1"),
    ],
)
def test_server_prefix(tmp_path: Path, server: dict[str, Any], expected: str) -> None:
    spec = write_spec(tmp_path, openapi({"/items": {"get": ok()}}, servers=[server, {"url": "/x"}]))

    assert [e.path for e in import_file(spec).endpoints] == [f"{expected}/items"]


@pytest.mark.parametrize(
    ("top", "expected"),
    [({"basePath": "/v2"}, "/v2/items"), ({"basePath": "/"}, "/items"), ({}, "/items")],
)
def test_swagger_base_path(tmp_path: Path, top: dict[str, Any], expected: str) -> None:
    doc = {"swagger": "2.0", "info": {}, "paths": {"/items": {"get": ok()}}, **top}

    assert [e.path for e in import_file(write_spec(tmp_path, doc)).endpoints] == [expected]


def test_no_servers_means_no_prefix(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, openapi({"/items": {"get": ok()}}, servers=[]))

    assert [e.path for e in import_file(spec).endpoints] == ["/items"]


def test_dangling_ref_skips_only_that_operation() -> None:
    result = import_file(BROKEN / "dangling-ref.yaml")

    assert [e.operation_id for e in result.endpoints] == ["listItems", "createItem"]
    [problem] = result.problems
    assert problem.place == "paths./items/{id}.get"
    assert "'#/components/schemas/Itme'" in problem.problem
    assert "responses.200.content.application/json.schema" in problem.problem


def test_ref_cycle_is_reported_and_recursive_schemas_are_not() -> None:
    result = import_file(BROKEN / "ref-cycle.yaml")

    assert [e.operation_id for e in result.endpoints] == ["listTrees"]
    [problem] = result.problems
    assert problem.place == "paths./loop.get"
    assert "$ref cycle" in problem.problem


ODD_PROBLEMS = {
    "paths./not-a-mapping.get": "an operation must be a mapping, got a list",
    "paths./unbalanced/{id": "unbalanced braces",
    "paths./empty/{}": "empty parameter",
    "paths./missing-item": "'#/components/pathItems/Nope' does not resolve",
    "paths./bad-path-params/{id}.get": "at path-level parameters[0]",
    "paths./bad-path-params/{id}.delete": "at path-level parameters[0]",
    "paths./missing-file.get": "no-such-file.yaml: file not found",
    "paths./bad-file.get": "bad-json.json at line 6, column 5",
    "paths./remote.get": "remote references are not fetched",
    "paths./scalar-item": "a path item must be a mapping, got a number",
}


@pytest.mark.parametrize(("place", "problem"), ODD_PROBLEMS.items())
def test_odd_operations_are_reported(place: str, problem: str) -> None:
    problems = {p.place: p.problem for p in import_file(BROKEN / "odd-operations.yaml").problems}

    assert problem in problems[place]


def test_odd_operations_report_nothing_else_and_keep_the_good_ones() -> None:
    result = import_file(BROKEN / "odd-operations.yaml")

    assert [p.place for p in result.problems] == list(ODD_PROBLEMS)
    assert [e.key for e in result.endpoints] == [
        ("GET", "/fine"),
        ("TRACE", "/fine"),
        ("POST", "/not-a-mapping"),
        ("PUT", "/also-fine"),
    ]


BREAKAGES: dict[str, tuple[Any, str, str]] = {
    "dangling ref": (
        {"get": ok(parameters=[{"$ref": "#/components/parameters/Gone"}])},
        "paths./things500/{id}.get",
        "does not resolve",
    ),
    "operation not a mapping": ({"get": "TODO"}, "paths./things500/{id}.get", "got a string"),
    "ref cycle": (
        {"get": ok(requestBody={"$ref": "#/components/requestBodies/Loop"})},
        "paths./things500/{id}.get",
        "$ref cycle",
    ),
    "bad path-level parameter": (
        {"parameters": [{"$ref": "#/components/parameters/Gone"}], "get": ok()},
        "paths./things500/{id}.get",
        "path-level parameters[0]",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_one_bad_operation_of_a_thousand(tmp_path: Path, breakage: str) -> None:
    item, place, problem = BREAKAGES[breakage]
    shared = {"$ref": "#/components/schemas/Thing"}
    paths: dict[str, Any] = {
        f"/things{i}/{{id}}": {
            "parameters": [{"$ref": "#/components/parameters/Id"}],
            "get": ok(
                operationId=f"getThing{i}", requestBody={"$ref": "#/components/requestBodies/Thing"}
            ),
        }
        for i in range(1000)
    }
    paths["/things500/{id}"] = item
    components = {
        "schemas": {"Thing": {"type": "object", "properties": {"next": shared}}},
        "parameters": {"Id": {"name": "id", "in": "path", "required": True}},
        "requestBodies": {
            "Thing": {"content": {"application/json": {"schema": shared}}},
            "Loop": {"$ref": "#/components/requestBodies/Loop"},
        },
    }
    spec = write_spec(tmp_path, openapi(paths, components=components))

    result = import_file(spec)

    assert len(result.endpoints) == 999
    assert "getThing500" not in {e.operation_id for e in result.endpoints}
    assert [(p.place, problem in p.problem) for p in result.problems] == [(place, True)]


def test_every_operation_using_a_broken_component_is_reported(tmp_path: Path) -> None:
    # The second operation shares a component the first one already proved good; the
    # broken one next to it must still be found.
    schemas = {"Good": {"type": "string"}, "Bad": {"$ref": "#/components/schemas/Gone"}}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Bad"}}}}
    paths = {
        "/a": {"get": ok(parameters=[{"$ref": "#/components/parameters/P"}])},
        "/b": {"get": ok(parameters=[{"$ref": "#/components/parameters/P"}], requestBody=body)},
        "/c": {"post": ok(requestBody=body)},
    }
    params = {"P": {"name": "p", "in": "query", "schema": {"$ref": "#/components/schemas/Good"}}}
    doc = openapi(paths, components={"schemas": schemas, "parameters": params})

    result = import_file(write_spec(tmp_path, doc))

    assert [e.path for e in result.endpoints] == ["/a"]
    assert [p.place for p in result.problems] == ["paths./b.get", "paths./c.post"]


def test_a_dangling_ref_inside_a_referenced_file_is_found(tmp_path: Path) -> None:
    (tmp_path / "pet.yaml").write_text("Pet:\n  properties:\n    owner:\n      $ref: '#/Owner'\n")
    content = {"application/json": {"schema": {"$ref": "pet.yaml#/Pet"}}}
    doc = openapi({"/pets": {"get": ok(responses={"200": {"content": content}})}})

    [problem] = import_file(write_spec(tmp_path, doc)).problems

    assert problem.problem == (
        "$ref '#/Owner' does not resolve: no 'Owner' in the document root "
        "(at responses.200.content.application/json.schema -> pet.yaml#/Pet: properties.owner)"
    )


def test_duplicate_templates_are_kept_once(tmp_path: Path) -> None:
    paths = {
        "/items/{id}": {"get": ok(operationId="first")},
        "/items/{itemId}/": {"get": ok(operationId="second"), "put": ok(operationId="third")},
    }

    result = import_file(write_spec(tmp_path, openapi(paths)))

    assert [(e.method, e.path, e.operation_id) for e in result.endpoints] == [
        ("GET", "/items/{id}", "first"),
        ("PUT", "/items/{itemId}", "third"),
    ]


def test_refs_in_examples_and_extensions_are_data(tmp_path: Path) -> None:
    media = {"example": {"$ref": "not/a/file.json"}, "x-doc": {"$ref": "#/nowhere"}}
    doc = openapi({"/items": {"get": ok(requestBody={"content": {"application/json": media}})}})

    result = import_file(write_spec(tmp_path, doc))

    assert (len(result.endpoints), result.problems) == (1, [])


def test_path_item_ref_with_sibling_operations(tmp_path: Path) -> None:
    (tmp_path / "items.yaml").write_text("get:\n  operationId: fromFile\n  responses: {}\n")
    doc = openapi({"/items": {"$ref": "items.yaml", "post": ok(operationId="sibling")}})

    result = import_file(write_spec(tmp_path, doc))

    assert [(e.method, e.operation_id) for e in result.endpoints] == [
        ("GET", "fromFile"),
        ("POST", "sibling"),
    ]


def test_path_item_ref_to_a_non_mapping_is_reported(tmp_path: Path) -> None:
    doc = openapi({"/items": {"$ref": "#/info/title"}, "/ok": {"get": ok()}})

    result = import_file(write_spec(tmp_path, doc))

    assert [e.path for e in result.endpoints] == ["/ok"]
    assert [(p.place, "not a path item" in p.problem) for p in result.problems] == [
        ("paths./items", True)
    ]


def test_non_string_path_keys_are_reported(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("openapi: 3.0.0\npaths:\n  404: {get: {responses: {}}}\n  /ok: {get: {}}\n")

    result = import_file(spec)

    assert [e.path for e in result.endpoints] == ["/ok"]
    assert [p.place for p in result.problems] == ["paths.404"]


# --- $ref resolution --------------------------------------------------------------


def resolver(tmp_path: Path, doc: Any, name: str = "root.json") -> tuple[RefResolver, Path]:
    root = write_spec(tmp_path, doc, name)
    return RefResolver(root, read_spec(root, name)), root.resolve()


def test_json_pointer_escapes(tmp_path: Path) -> None:
    doc = {"paths": {"/items/{id}": {"get": "slash"}}, "defs": {"a~b": "tilde", "~1": "literal"}}
    refs, root = resolver(tmp_path, doc)

    cases = {
        "#/paths/~1items~1{id}/get": "slash",
        "#/defs/a~0b": "tilde",
        "#/defs/~01": "literal",
        "#/paths/~1items~1%7Bid%7D/get": "slash",
    }
    for ref, expected in cases.items():
        assert refs.resolve({"$ref": ref}, root) == (expected, root)


def test_pointer_into_lists_and_numeric_yaml_keys(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text("responses:\n  200: [zero, one]\n")
    refs, root = resolver(tmp_path, {})

    assert refs.resolve({"$ref": "other.yaml#/responses/200/1"}, root)[0] == "one"
    with pytest.raises(RefError, match="has no item '2'"):
        refs.resolve({"$ref": "other.yaml#/responses/200/2"}, root)


def test_relative_file_refs_resolve_from_the_referring_file(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "pet.json").write_text('{"owner": {"$ref": "owner.yaml#/Owner"}}')
    (tmp_path / "schemas" / "owner.yaml").write_text("Owner: {type: object}\n")
    refs, root = resolver(tmp_path, {"pet": {"$ref": "schemas/pet.json"}})

    pet, pet_file = refs.resolve({"$ref": "#/pet"}, root)
    assert pet_file == (tmp_path / "schemas" / "pet.json").resolve()
    assert refs.resolve(pet["owner"], pet_file) == (
        {"type": "object"},
        (tmp_path / "schemas" / "owner.yaml").resolve(),
    )
    refs.check({"$ref": "#/pet"}, root)


def test_referenced_files_are_read_once(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("value: first\n")
    refs, root = resolver(tmp_path, {})

    assert refs.resolve({"$ref": "other.yaml#/value"}, root)[0] == "first"
    other.write_text("value: second\n")
    assert refs.resolve({"$ref": "./other.yaml#/value"}, root)[0] == "first"


def test_cycle_across_files(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("B:\n  $ref: 'root.json#/A'\n")
    refs, root = resolver(tmp_path, {"A": {"$ref": "b.yaml#/B"}})

    with pytest.raises(RefError, match=r"\$ref cycle: #/A -> b.yaml#/B -> root.json#/A"):
        refs.resolve({"$ref": "#/A"}, root)


def test_self_ref_is_a_cycle(tmp_path: Path) -> None:
    refs, root = resolver(tmp_path, {"A": {"$ref": "#/A"}})

    with pytest.raises(RefError, match="cycle"):
        refs.check({"schema": {"$ref": "#/A"}}, root)


def test_long_chains_and_deep_documents_do_not_recurse(tmp_path: Path) -> None:
    chain = {f"n{i}": {"$ref": f"#/n{i + 1}"} for i in range(5000)}
    chain["n5000"] = {"type": "string"}
    deep: dict[str, Any] = {"$ref": "#/n0"}
    for _ in range(5000):
        deep = {"items": deep}
    refs, root = resolver(tmp_path, chain)

    assert refs.resolve({"$ref": "#/n0"}, root)[0] == {"type": "string"}
    refs.check(deep, root)


def test_self_containing_yaml_aliases_terminate(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "openapi: 3.0.0\n"
        "paths:\n"
        "  /tree:\n"
        "    get:\n"
        "      responses:\n"
        "        '200': &node\n"
        "          description: ok\n"
        "          children: [*node, *node]\n"
    )

    assert [e.path for e in import_file(spec).endpoints] == ["/tree"]


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("#/nope", "no 'nope' in the document root"),
        ("#/a/b/c", "no 'c' in /a/b"),
        ("#anchor", "not a JSON pointer"),
        ("missing.yaml#/x", "missing.yaml: file not found"),
        ("http://example.com/s.json", "remote references are not fetched"),
    ],
)
def test_unresolvable_refs(tmp_path: Path, ref: str, problem: str) -> None:
    refs, root = resolver(tmp_path, {"a": {"b": {}}})

    with pytest.raises(RefError, match=problem):
        refs.resolve({"$ref": ref}, root)


def test_whole_document_and_file_url_refs(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"kind": "other"}')
    refs, root = resolver(tmp_path, {"kind": "root"})

    assert refs.resolve({"$ref": "#"}, root)[0] == {"kind": "root"}
    assert refs.resolve({"$ref": other.resolve().as_uri()}, root)[0] == {"kind": "other"}
