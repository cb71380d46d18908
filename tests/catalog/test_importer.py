"""Format detection, whole-file errors, path normalisation and cross-format agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forebay.catalog.importer import detect_format, import_file, import_files
from forebay.catalog.paths import PathError, normalize_method, normalize_path
from forebay.errors import SpecError

FIXTURES = Path(__file__).parent / "fixtures"
SHOP = FIXTURES / "shop"
BROKEN = FIXTURES / "broken"

SHOP_KEYS = {
    ("GET", "/v1/pets"),
    ("POST", "/v1/pets"),
    ("GET", "/v1/pets/{}"),
    ("PUT", "/v1/pets/{}"),
    ("DELETE", "/v1/pets/{}"),
    ("POST", "/v1/pets/{}/photos"),
    ("GET", "/v1/orders"),
    ("POST", "/v1/orders"),
    ("GET", "/v1/orders/{}"),
    ("PATCH", "/v1/orders/{}"),
    ("GET", "/v1/files/{}.json"),
    ("GET", "/v1/{}/{}/pulls/{}"),
    ("GET", "/v1/store/inventory"),
    ("GET", "/v1/health"),
    ("HEAD", "/v1/health"),
}

SHOP_FILES = [
    ("openapi-3.0.yaml", "openapi-3.0"),
    ("openapi-3.1.json", "openapi-3.1"),
    ("swagger-2.0.yaml", "swagger-2.0"),
    ("postman-2.0.json", "postman-2.0"),
    ("postman-2.1.json", "postman-2.1"),
]


@pytest.mark.parametrize(("name", "fmt"), SHOP_FILES)
def test_each_format_of_the_shop_yields_the_same_endpoints(name: str, fmt: str) -> None:
    result = import_file(SHOP / name)

    assert result.format == fmt
    assert result.problems == []
    assert {endpoint.key for endpoint in result.endpoints} == SHOP_KEYS
    # Duplicates (Postman's second "Get a pet" example) are kept once.
    assert len(result.endpoints) == len(SHOP_KEYS)


def test_all_five_formats_agree_with_each_other() -> None:
    key_sets = [{e.key for e in import_file(SHOP / name).endpoints} for name, _ in SHOP_FILES]

    assert all(keys == key_sets[0] for keys in key_sets)


@pytest.mark.parametrize("as_path", [False, True])
def test_source_is_the_path_as_given(monkeypatch: pytest.MonkeyPatch, as_path: bool) -> None:
    # A relative path, from a directory that is not the spec's: refs still resolve
    # against the referring file.
    monkeypatch.chdir(FIXTURES)
    given = "shop/openapi-3.0.yaml"

    result = import_file(Path(given) if as_path else given)

    assert result.source == given
    assert result.problems == []
    assert {endpoint.source for endpoint in result.endpoints} == {given}


def test_import_files_keeps_order_and_raises_on_the_first_bad_file() -> None:
    results = import_files([SHOP / "postman-2.1.json", SHOP / "swagger-2.0.yaml"])
    assert [r.format for r in results] == ["postman-2.1", "swagger-2.0"]

    with pytest.raises(SpecError) as caught:
        import_files([SHOP / "postman-2.1.json", BROKEN / "bad-json.json"])
    assert caught.value.detail.file == str(BROKEN / "bad-json.json")


@pytest.mark.parametrize(
    ("name", "place", "problem"),
    [
        ("bad-yaml.yaml", "line 11, column 6", "invalid YAML: did not find expected key"),
        ("bad-json.json", "line 6, column 5", "invalid JSON: Expecting ',' delimiter"),
        ("unknown-format.yaml", "", "unknown format"),
        ("paths-not-mapping.yaml", "paths", "'paths' must be a mapping"),
        ("does-not-exist.yaml", "", "file not found"),
    ],
)
def test_broken_fixtures_raise_spec_error(name: str, place: str, problem: str) -> None:
    with pytest.raises(SpecError) as caught:
        import_file(BROKEN / name)

    assert caught.value.detail.file == str(BROKEN / name)
    assert caught.value.detail.place == place
    assert problem in caught.value.detail.problem


BAD_DOCUMENTS = [
    ("openapi: 3.2.0\npaths: {}\n", "openapi", "unsupported OpenAPI version '3.2.0'"),
    ("openapi: 2.0.0\npaths: {}\n", "openapi", "unsupported OpenAPI version"),
    ("swagger: '1.2'\npaths: {}\n", "swagger", "unsupported Swagger version '1.2'"),
    ("openapi: 3.0.1\ninfo: {}\n", "paths", "the document has no 'paths'"),
    ("swagger: '2.0'\npaths: '/items'\n", "paths", "got a string"),
    ("openapi: 3.1.0\npaths: null\n", "paths", "got nothing"),
    ("openapi: 3.0.0\nservers: /v1\npaths: {}\n", "servers", "'servers' must be a list"),
    ("openapi: 3.0.0\nservers: [{}]\npaths: {}\n", "servers[0]", "'url' string"),
    ("swagger: '2.0'\nbasePath: [v1]\npaths: {}\n", "basePath", "must be a string"),
    ("- openapi: 3.0.0\n", "", "expected a mapping at the top level, got a list"),
    ("", "", "file is empty"),
    ("# only a comment\n", "", "file is empty"),
    ("name: notes\nitems: []\n", "", "unknown format"),
    (
        '{"info": {"schema": "https://schema.getpostman.com/json/collection/v1.0.0/collection.json"}}',
        "info.schema",
        "unsupported Postman collection schema",
    ),
    ('{"id": "c1", "name": "Old", "order": [], "requests": []}', "", "Postman collection v1"),
    ('{"info": {"_postman_id": "x"}, "item": {"name": "x"}}', "item", "must be a list"),
    ('{"info": {"_postman_id": "x"}, "item": [], "variable": {}}', "variable", "must be a list"),
]


@pytest.mark.parametrize(("text", "place", "problem"), BAD_DOCUMENTS)
def test_wrong_shapes_and_versions_raise(
    tmp_path: Path, text: str, place: str, problem: str
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)

    with pytest.raises(SpecError) as caught:
        import_file(spec)

    assert (caught.value.detail.place, problem in caught.value.detail.problem) == (place, True)


@pytest.mark.parametrize(
    ("version", "fmt"),
    [
        ("3.0.0", "openapi-3.0"),
        ("3.0.3", "openapi-3.0"),
        ("3.0", "openapi-3.0"),
        ("3.1.0", "openapi-3.1"),
        ("3.1.1-rc1", "openapi-3.1"),
    ],
)
def test_openapi_versions(version: str, fmt: str) -> None:
    assert detect_format({"openapi": version, "paths": {}}, "spec.yaml") == fmt


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        # Unquoted, YAML reads these versions as numbers.
        ("swagger: 2.0\npaths: {}\n", "swagger-2.0"),
        ("openapi: 3.0\npaths: {}\n", "openapi-3.0"),
        ("openapi: 3.1\n", "openapi-3.1"),
    ],
)
def test_unquoted_yaml_versions(tmp_path: Path, text: str, fmt: str) -> None:
    spec = tmp_path / "spec.yml"
    spec.write_text(text)

    assert import_file(spec).format == fmt


DOC = {"openapi": "3.0.0", "paths": {"/items": {"get": {"responses": {}}}}}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("spec.json", "openapi: 3.0.0\npaths:\n  /items:\n    get: {responses: {}}\n"),
        ("spec.yaml", json.dumps(DOC, indent=2)),
        ("spec.yaml", "{openapi: 3.0.0, paths: {/items: {get: {responses: {}}}}}"),
        ("spec.txt", "openapi: 3.0.0\npaths: {/items: {get: {responses: {}}}}\n"),
        ("spec", "\ufeff" + json.dumps(DOC)),
    ],
)
def test_json_or_yaml_is_chosen_by_content(tmp_path: Path, name: str, text: str) -> None:
    spec = tmp_path / name
    spec.write_text(text, encoding="utf-8")

    assert [e.key for e in import_file(spec).endpoints] == [("GET", "/items")]


@pytest.mark.parametrize(
    ("content", "place", "problem"),
    [
        (b"openapi: 3.0.0\ninfo:\n  title: \x07bell\n", "line 3, column 10", "control characters"),
        (b"openapi: 3.0.0\ninfo: \xff\xfe\n", "byte 21", "not UTF-8"),
        (b"[" * 100_000, "", "nested too deeply"),
        (b'{"openapi": "3.0.0",\n "paths": {]}\n', "line 2, column 12", "invalid JSON"),
        (b"openapi: 3.0.0\n---\nswagger: '2.0'\n", "line 2, column 1", "single document"),
    ],
)
def test_unparsable_content(tmp_path: Path, content: bytes, place: str, problem: str) -> None:
    spec = tmp_path / "spec.json"
    spec.write_bytes(content)

    with pytest.raises(SpecError) as caught:
        import_file(spec)

    assert caught.value.detail.place == place
    assert problem in caught.value.detail.problem


def test_a_directory_is_not_a_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a directory"):
        import_file(tmp_path)


@pytest.mark.parametrize(
    ("raw", "prefix", "expected"),
    [
        ("/items", "", "/items"),
        ("items", "", "/items"),
        ("/items/", "", "/items"),
        ("//items///{id}//", "", "/items/{id}"),
        ("/", "", "/"),
        ("", "", "/"),
        ("/", "/v1/", "/v1"),
        ("/items", "/api", "/api/items"),
        ("/items", "api/v2", "/api/v2/items"),
        ("/search?q={q}", "", "/search"),
        ("/docs#intro", "", "/docs"),
        ("/a%2Fb/%7Bid%7D", "", "/a%2Fb/%7Bid%7D"),
        ("/files/{path}.json", "", "/files/{path}.json"),
        ("/v1/{org}/{repo}/pulls/{n}", "", "/v1/{org}/{repo}/pulls/{n}"),
        ("/{name}:cancel", "", "/{name}:cancel"),
        ("  /padded  ", "", "/padded"),
    ],
)
def test_normalize_path(raw: str, prefix: str, expected: str) -> None:
    assert normalize_path(raw, prefix) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("/items/{id", "unbalanced braces"),
        ("/items/id}", "unbalanced braces"),
        ("/items/{{id}}", "unbalanced braces"),
        ("/items/{}", "empty parameter"),
        ("/items/{ }", "empty parameter"),
        ("/items/{a/b}", "spans a '/'"),
    ],
)
def test_normalize_path_rejects_bad_templates(raw: str, problem: str) -> None:
    with pytest.raises(PathError, match=problem):
        normalize_path(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("get", "GET"),
        ("Patch", "PATCH"),
        (" delete ", "DELETE"),
        ("trace", "TRACE"),
        ("parameters", None),
        ("x-get", None),
        ("connect", None),
        (200, None),
        (None, None),
    ],
)
def test_normalize_method(raw: object, expected: str | None) -> None:
    assert normalize_method(raw) == expected
