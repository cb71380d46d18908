"""The cache's rules through the real process, in front of the CRUD origin: what the
origin's headers decide (`Location` and `Content-Location` of writes, `Vary`, `public`,
`max-age` and `s-maxage` with `respect_origin`), and stale-if-error when the origin
answers 5xx or the breaker is open.

One gateway serves the module; each test keeps to paths of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from support.crud import CrudOrigin
from support.gateway import Gateway, Response, wait_until

ALPHA = "alpha-rules-key-0123456789"
BETA = "beta-rules-key-0123456789"

CONFIG = f"""
consumers:
  - {{name: alpha, key: "{ALPHA}"}}
  - {{name: beta, key: "{BETA}"}}
endpoints:
  "GET /{{coll}}/{{id}}": {{managed: true, cache: {{ttl: 300}}}}
  "GET /ro/{{id}}": {{managed: true, cache: {{ttl: 300, respect_origin: true}}}}
  "GET /rs/{{id}}": {{managed: true, cache: {{ttl: 1, respect_origin: true}}}}
  "GET /fixed/{{id}}": {{managed: true, cache: {{ttl: 300}}}}
  "GET /sie/{{id}}": {{managed: true, cache: {{ttl: 1, stale_if_error: 300}}}}
  "GET /nosie/{{id}}": {{managed: true, cache: {{ttl: 1}}}}
governor: {{breaker_failures: 1}}
"""

HIT = "forebay; hit"
STORED = "forebay; fwd=uri-miss; stored"


@pytest.fixture(scope="module")
def g(crud_gateway: Callable[[str], Gateway]) -> Gateway:
    return crud_gateway(CONFIG)


def coll() -> str:
    return "r" + uuid.uuid4().hex[:8]


def item() -> str:
    return uuid.uuid4().hex[:8]


def status_of(resp: Response) -> str:
    return resp.headers.get("cache-status", "")


def data(resp: Response) -> Any:
    assert resp.status == 200, (resp.status, resp.body)
    return json.loads(resp.body)


def expired(g: Gateway, path: str) -> Response:
    """Poll `path` until it is no longer answered fresh from the cache; that answer."""
    return wait_until(  # type: ignore[no-any-return]
        lambda: (r := g.request("GET", path)) and status_of(r) != HIT and r,
        timeout=10,
        what=f"{path} to expire",
    )


# -- invalidation by the write's Location / Content-Location -----------------------------


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Location", "/{c}/1"),
        ("Content-Location", "/{c}/1"),
        ("Location", "http://origin.example/{c}/1"),
        ("Content-Location", "http://origin.example/{c}/1/"),
    ],
)
def test_a_write_invalidates_the_path_its_answer_names(
    g: Gateway, crud: CrudOrigin, header: str, value: str
) -> None:
    c = coll()
    crud.put(c, "1", {"v": "old"})
    crud.put(c, "2", {"v": "other"})
    assert data(g.request("GET", f"/{c}/1"))["v"] == "old"
    assert status_of(g.request("GET", f"/{c}/1")) == HIT
    crud.put(c, "1", {"v": "new"})  # changed behind the gateway's back
    # A write to another path (it invalidates /{c}/2 and /{c}, not /{c}/1), whose 2xx
    # answer names /{c}/1.
    crud.extra_headers[f"/{c}/2"] = {header: value.format(c=c)}
    put = g.request("PUT", f"/{c}/2", b'{"v": "other"}', {"Content-Type": "application/json"})
    assert put.status == 200, put.body
    assert put.headers[header] == value.format(c=c)
    after = g.request("GET", f"/{c}/1")
    assert data(after)["v"] == "new"
    assert status_of(after) == STORED
    assert crud.reads_of(f"/{c}/1") == 2


def test_a_failed_write_naming_a_path_invalidates_nothing(g: Gateway, crud: CrudOrigin) -> None:
    c = coll()
    crud.put(c, "1", {"v": "old"})
    g.request("GET", f"/{c}/1")
    crud.extra_headers[f"/{c}/9"] = {"Content-Location": f"/{c}/1"}
    # PATCH of a missing item: 404, which invalidates nothing, whatever it names.
    patch = g.request("PATCH", f"/{c}/9", b"{}", {"Content-Type": "application/json"})
    assert patch.status == 404
    assert status_of(g.request("GET", f"/{c}/1")) == HIT


# -- Vary -------------------------------------------------------------------------------


def test_vary_keeps_one_entry_per_value_of_the_named_header(g: Gateway, crud: CrudOrigin) -> None:
    c = coll()
    path = f"/{c}/1"
    crud.extra_headers[path] = {"Vary": "Accept-Language"}
    en, fr = {"Accept-Language": "en"}, {"Accept-Language": "fr"}
    crud.put(c, "1", {"v": "first"})
    first_en = g.request("GET", path, headers=en)
    assert status_of(first_en) == STORED and data(first_en)["v"] == "first"
    crud.put(c, "1", {"v": "second"})  # so each variant shows which answer it holds
    first_fr = g.request("GET", path, headers=fr)
    assert status_of(first_fr) == STORED and data(first_fr)["v"] == "second"
    for headers, v in ((en, "first"), (fr, "second"), (en, "first"), (fr, "second")):
        again = g.request("GET", path, headers=headers)
        assert (status_of(again), data(again)["v"]) == (HIT, v), headers
    # Without the header: a variant of its own.
    assert status_of(g.request("GET", path)) == STORED
    assert status_of(g.request("GET", path)) == HIT
    assert crud.reads_of(path) == 3


# -- public answers and consumers --------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "shared"),
    [("public", True), ("public, max-age=60", True), (None, False), ("max-age=60", False)],
)
def test_only_public_answers_are_shared_between_consumers(
    g: Gateway, crud: CrudOrigin, cache_control: str | None, shared: bool
) -> None:
    c = coll()
    path = f"/{c}/1"
    if cache_control is not None:
        crud.cache_control[c] = cache_control
    crud.put(c, "1", {"v": "x"})
    alpha, beta = {"X-API-Key": ALPHA}, {"X-API-Key": BETA}
    assert status_of(g.request("GET", path, headers=alpha)) == STORED
    assert status_of(g.request("GET", path, headers=alpha)) == HIT
    first_beta = g.request("GET", path, headers=beta)
    assert status_of(first_beta) == (HIT if shared else STORED)
    assert status_of(g.request("GET", path, headers=beta)) == HIT
    assert crud.reads_of(path) == (1 if shared else 2)


# -- respect_origin ---------------------------------------------------------------------

# (endpoint, origin Cache-Control, still fresh after a 1 s lifetime has run out)
LIFETIMES = [
    ("ro", "max-age=1", False),  # the origin's max-age over the endpoint's 300 s
    ("ro", "s-maxage=1, max-age=300", False),  # s-maxage first
    ("ro", "s-maxage=300, max-age=1", True),
    ("ro", None, True),  # nothing from the origin: the endpoint's TTL
    ("rs", "max-age=300", True),  # longer than the endpoint's 1 s
    ("rs", None, False),
    ("fixed", "max-age=1", True),  # without respect_origin the origin's is ignored
]


def test_respect_origin_takes_the_lifetime_from_the_origin(g: Gateway, crud: CrudOrigin) -> None:
    cases = []
    for prefix, cache_control, lasts in LIFETIMES:
        path = f"/{prefix}/{item()}"
        if cache_control is not None:
            crud.extra_headers[path] = {"Cache-Control": cache_control}
        crud.put(prefix, path.rsplit("/", 1)[1], {"v": 1})
        cases.append((path, cache_control, lasts))
        assert status_of(g.request("GET", path)) == STORED, path
    # All are fresh at first, whatever their lifetime...
    for path, cache_control, _ in cases:
        assert status_of(g.request("GET", path)) == HIT, (path, cache_control)
    # ...but max-age=0 is never served without asking the origin.
    zero = f"/ro/{item()}"
    crud.extra_headers[zero] = {"Cache-Control": "max-age=0"}
    crud.put("ro", zero.rsplit("/", 1)[1], {"v": 1})
    assert status_of(g.request("GET", zero)) == STORED
    assert status_of(g.request("GET", zero)) == "forebay; fwd=stale; fwd-status=304"
    # A 1 s answer stored after all the others: once it has expired, so has every other
    # 1 s answer, and the rest are still fresh.
    control = f"/ro/{item()}"
    crud.extra_headers[control] = {"Cache-Control": "max-age=1"}
    crud.put("ro", control.rsplit("/", 1)[1], {"v": 1})
    g.request("GET", control)
    expired(g, control)
    seen = {
        (path, cache_control): status_of(g.request("GET", path)) for path, cache_control, _ in cases
    }
    wanted = {
        (path, cache_control): HIT if lasts else "forebay; fwd=stale; fwd-status=304"
        for path, cache_control, lasts in cases
    }
    assert seen == wanted


# -- stale-if-error ---------------------------------------------------------------------


def test_stale_if_error_when_the_origin_answers_5xx(g: Gateway, crud: CrudOrigin) -> None:
    # (endpoint, what the origin answers once the entry has expired, what the client gets)
    table = [("sie", code, 200) for code in (500, 502, 503, 504)] + [("nosie", 503, 503)]
    cases = []
    for prefix, code, wanted in table:
        i = item()
        path = f"/{prefix}/{i}"
        crud.put(prefix, i, {"v": "cached"})
        first = g.request("GET", path)
        assert status_of(first) == STORED
        cases.append((path, code, wanted, first.body))
    for path, code, _, _ in cases:
        crud.failing[path] = code
    try:
        for path, code, wanted, cached_body in cases:
            resp = expired(g, path)
            assert resp.status == wanted, (path, code, resp.status)
            if wanted == 200:
                assert resp.body == cached_body
                assert status_of(resp) == (
                    f"forebay; fwd=stale; fwd-status={code}; detail=stale-if-error"
                )
                assert int(resp.headers["age"]) >= 1
            else:
                assert resp.body == b"origin failure"
    finally:
        for path, *_ in cases:
            crud.failing.pop(path, None)
    # The origin answering again: the entry is revalidated, not served stale any more.
    path, *_ = cases[0]
    assert status_of(g.request("GET", path)) == "forebay; fwd=stale; fwd-status=304"


def test_stale_if_error_while_the_breaker_is_open(g: Gateway, crud: CrudOrigin) -> None:
    i = item()
    path = f"/sie/{i}"
    crud.put("sie", i, {"v": "cached"})
    first = g.request("GET", path)
    assert status_of(first) == STORED
    crud.down()
    try:
        # The first request past the TTL finds the origin refused, is served stale, and
        # (breaker_failures: 1) opens the breaker; from then on the stale entry is served
        # without trying the origin: a hit, not a forward.
        def breaker_stale() -> Response | None:
            r = g.request("GET", path)
            s = status_of(r)
            return r if s.startswith("forebay; hit; ttl=") and "stale-if-error" in s else None

        resp = wait_until(breaker_stale, timeout=10, what="a stale answer from the breaker")
        assert resp.status == 200 and resp.body == first.body
        assert status_of(resp).endswith("; detail=stale-if-error")
        assert int(status_of(resp).split("ttl=")[1].split(";")[0]) <= 0
    finally:
        crud.up()
    # Any answer closes the breaker (live requests are not held back while it is open);
    # then the entry is revalidated again.
    assert g.request("GET", f"/{coll()}").status == 200  # a collection: never cached
    wait_until(
        lambda: "stale-if-error" not in status_of(g.request("GET", path)),
        what="the breaker to close",
    )
