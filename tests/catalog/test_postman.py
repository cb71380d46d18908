"""Postman collection v2.0 / v2.1 import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from forebay.catalog.importer import import_file
from forebay.catalog.model import ImportResult

SHOP = Path(__file__).parent / "fixtures" / "shop"
SCHEMA_21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
BASE_URL = {"key": "baseUrl", "value": "https://api.example.com/v1"}


def collection(
    tmp_path: Path, items: list[Any], variables: list[Any] | None = None, **info: Any
) -> ImportResult:
    doc: dict[str, Any] = {
        "info": {"name": "c", "schema": SCHEMA_21, **info},
        "item": items,
        "variable": [BASE_URL] if variables is None else variables,
    }
    spec = tmp_path / "collection.json"
    spec.write_text(json.dumps(doc))
    return import_file(spec)


def get(url: Any, name: str = "r") -> dict[str, Any]:
    return {"name": name, "request": {"method": "GET", "url": url}}


def test_shop_v21_names_are_summaries_without_operation_ids() -> None:
    result = import_file(SHOP / "postman-2.1.json")
    by_key = {e.key: e for e in result.endpoints}

    assert by_key[("GET", "/v1/pets/{}")].summary == "Get a pet"
    assert by_key[("GET", "/v1/pets/{}")].path == "/v1/pets/{petId}"
    assert by_key[("GET", "/v1/{}/{}/pulls/{}")].path == "/v1/{owner}/{name}/pulls/{number}"
    assert {e.operation_id for e in result.endpoints} == {None}


def test_shop_v21_skips_disabled_items_folders_and_variables() -> None:
    paths = {e.path for e in import_file(SHOP / "postman-2.1.json").endpoints}

    # The disabled baseUrl entry would move everything to /v0.
    assert all(path.startswith("/v1/") for path in paths)
    assert "/v1/pets/export" not in paths
    assert "/v1/admin/cache" not in paths


def test_shop_v20_keeps_the_first_of_duplicate_requests() -> None:
    result = import_file(SHOP / "postman-2.0.json")
    pets = [e for e in result.endpoints if e.key == ("GET", "/v1/pets/{}")]

    assert [(e.path, e.summary) for e in pets] == [("/v1/pets/{petId}", "Get a pet")]


URLS = [
    ("{{baseUrl}}/items/:id", "/v1/items/{id}"),
    ("{{baseUrl}}/items/:id/", "/v1/items/{id}"),
    ("https://api.example.com/items?limit=1#top", "/items"),
    ("api.example.com/items", "/items"),
    ("localhost:3000/items", "/items"),
    ("/items", "/items"),
    ("http://localhost:3000", "/"),
    ("{{baseUrl}}", "/v1"),
    ("{{unknownHost}}/items/{{itemId}}", "/items/{itemId}"),
    ("{{baseUrl}}/files/{{name}}.json", "/v1/files/{name}.json"),
    ("{{baseUrl}}/a%2Fb/:id", "/v1/a%2Fb/{id}"),
    ("{{baseUrl}}//items//:id", "/v1/items/{id}"),
    ("{{baseUrl}}/v1:batchGet", "/v1/v1:batchGet"),
    ("//cdn.example.com/items", "/items"),
    ({"raw": "{{baseUrl}}/raw-only"}, "/v1/raw-only"),
    ({"host": ["api", "example", "com"], "path": ["items", ":id"]}, "/items/{id}"),
    ({"host": "{{baseUrl}}", "path": "items/:id/"}, "/v1/items/{id}"),
    (
        {"host": ["{{baseUrl}}"], "path": ["items", {"type": "string", "value": ":id"}]},
        "/v1/items/{id}",
    ),
    ({"path": ["items", ":id"]}, "/items/{id}"),
    (
        {"raw": "https://wrong.example.com/raw", "host": ["{{baseUrl}}"], "path": ["parts"]},
        "/v1/parts",
    ),
    (
        {
            "raw": "{{baseUrl}}/items/:id?x=1",
            "host": ["{{baseUrl}}"],
            "path": ["items", ":id"],
            "query": [{"key": "x", "value": "1"}],
            "variable": [{"key": "id", "value": "7"}],
        },
        "/v1/items/{id}",
    ),
]


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_url_forms(tmp_path: Path, url: Any, expected: str) -> None:
    result = collection(tmp_path, [get(url)])

    assert (result.problems, [e.path for e in result.endpoints]) == ([], [expected])


@pytest.mark.parametrize(
    ("variables", "url", "expected"),
    [
        ([{"key": "base", "value": "/api"}], "{{base}}/items", "/api/items"),
        ([{"key": "base", "value": "api.example.com/v3"}], "{{base}}/items", "/v3/items"),
        ([{"key": "v", "value": 2}, {"key": "h", "value": "x.io"}], "{{h}}/v{{v}}/x", "/v2/x"),
        (
            [
                {"key": "base", "value": "{{scheme}}://{{host}}/{{version}}"},
                {"key": "scheme", "value": "https"},
                {"key": "host", "value": "h"},
                {"key": "version", "value": "v{{major}}"},
                {"key": "major", "value": 9},
            ],
            "{{base}}/items",
            "/v9/items",
        ),
        ([{"key": "a", "value": "{{b}}"}, {"key": "b", "value": "{{a}}"}], "{{a}}/items", "/items"),
        ([{"id": "base", "value": "https://h/v0"}], "{{base}}/items", "/v0/items"),
        (
            [
                {"key": "base", "value": "https://h/new"},
                {"key": "base", "value": "https://h/old", "disabled": True},
            ],
            "{{base}}/items",
            "/new/items",
        ),
        ([{"key": "id", "value": "42"}], "https://h/items/{{id}}", "/items/42"),
        ([], "https://h/items/{{id}}", "/items/{id}"),
    ],
)
def test_collection_variables(
    tmp_path: Path, variables: list[Any], url: str, expected: str
) -> None:
    result = collection(tmp_path, [get(url)], variables)

    assert [e.path for e in result.endpoints] == [expected]


def test_folder_variables_apply_inside_the_folder_only(tmp_path: Path) -> None:
    folder = {
        "name": "v2",
        "variable": [{"key": "baseUrl", "value": "https://api.example.com/v2"}],
        "item": [get("{{baseUrl}}/inner")],
    }

    result = collection(tmp_path, [folder, get("{{baseUrl}}/outer")])

    assert [e.path for e in result.endpoints] == ["/v2/inner", "/v1/outer"]


def test_nested_folders_and_disabled_entries(tmp_path: Path) -> None:
    items = [
        get("{{baseUrl}}/top", "Top"),
        {
            "name": "Level 1",
            "item": [
                {"name": "Level 2", "item": [get("{{baseUrl}}/deep", "Deep")]},
                {**get("{{baseUrl}}/off", "Off"), "disabled": True},
                {"name": "Off folder", "disabled": True, "item": [get("{{baseUrl}}/off2")]},
                {"name": "Still on", "disabled": False, **get("{{baseUrl}}/on")},
            ],
        },
    ]

    result = collection(tmp_path, items)

    assert [e.path for e in result.endpoints] == ["/v1/top", "/v1/deep", "/v1/on"]


def test_methods_and_request_forms(tmp_path: Path) -> None:
    items = [
        {"name": "string request", "request": "{{baseUrl}}/s"},
        {"name": "no method", "request": {"url": "{{baseUrl}}/m"}},
        {"name": "lower case", "request": {"method": "delete", "url": "{{baseUrl}}/m"}},
    ]

    result = collection(tmp_path, items)

    assert [(e.method, e.path, e.summary) for e in result.endpoints] == [
        ("GET", "/v1/s", "string request"),
        ("GET", "/v1/m", "no method"),
        ("DELETE", "/v1/m", "lower case"),
    ]


BAD_ITEMS = [
    (get("{{baseUrl}}/ok"), None),
    ({"name": "Weird", "request": {"method": "PROPFIND", "url": "/x"}}, "method 'PROPFIND'"),
    ({"name": "No URL", "request": {"method": "GET"}}, "'url' must be a string or a mapping"),
    ({"name": "Empty URL", "request": {"url": {"query": []}}}, "neither 'raw' nor"),
    ({"name": "Bad template", "request": {"url": "/items/{id"}}, "unbalanced braces"),
    ({"name": "Empty var", "request": {"url": "/items/{{}}"}}, "empty parameter"),
    ({"name": "Nothing"}, "needs a 'request' or an 'item' list"),
    ({"name": "Bad folder", "item": {"name": "x"}}, "'item' must be a list"),
    ({"name": "Bad request", "request": 42}, "'request' must be a mapping or a URL"),
    ({"name": "Growing", "request": "/{{grow}}"}, "expand without end"),
    ("just a string", "an item must be a mapping"),
]


def test_bad_items_are_reported_with_their_place(tmp_path: Path) -> None:
    items = [
        {"name": "Folder", "item": [{"name": "Inner", "item": [item for item, _ in BAD_ITEMS]}]}
    ]
    variables = [BASE_URL, {"key": "grow", "value": "{{grow}}" * 50}]

    result = collection(tmp_path, items, variables)

    assert [e.path for e in result.endpoints] == ["/v1/ok"]
    expected = [(i, problem) for i, (_, problem) in enumerate(BAD_ITEMS) if problem]
    assert len(result.problems) == len(expected)
    for problem, (index, text) in zip(result.problems, expected, strict=True):
        assert problem.place.startswith(f"item[0].item[0].item[{index}]")
        assert text in problem.problem


def test_place_names_the_item(tmp_path: Path) -> None:
    items = [
        get("/a"),
        get("/b"),
        {
            "name": "Items",
            "item": [{"name": "Get item", "request": {"method": "BREW", "url": "/"}}],
        },
        {"name": 'Say "hi"', "request": {"method": "BREW", "url": "/"}},
    ]

    result = collection(tmp_path, items)

    assert [p.place for p in result.problems] == [
        'item[2].item[0] "Get item"',
        r'item[3] "Say \"hi\""',
    ]


@pytest.mark.parametrize(
    ("info", "fmt"),
    [
        (
            {"schema": "https://schema.getpostman.com/json/collection/v2.0.0/collection.json"},
            "postman-2.0",
        ),
        (
            {"schema": "https://schema.postman.com/json/collection/v2.1.0/collection.json"},
            "postman-2.1",
        ),
        ({"schema": None, "_postman_id": "1d3e"}, "postman-2.1"),
    ],
)
def test_version_detection(tmp_path: Path, info: dict[str, Any], fmt: str) -> None:
    assert collection(tmp_path, [get("/x")], **info).format == fmt


def test_yaml_collection_whose_folder_contains_itself(tmp_path: Path) -> None:
    spec = tmp_path / "collection.yaml"
    spec.write_text(
        "info: {_postman_id: loop}\n"
        "item: &top\n"
        "  - {name: Self, item: *top}\n"
        "  - {name: Ping, request: 'https://h/ping'}\n"
    )

    result = import_file(spec)

    assert [e.path for e in result.endpoints] == ["/ping"]
    assert [(p.place, p.problem) for p in result.problems] == [
        ('item[0] "Self"', "a folder cannot repeat an item list seen before (a YAML alias)")
    ]
