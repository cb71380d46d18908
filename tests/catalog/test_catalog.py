"""The routing snapshot: matches remembered per method and path, within bounds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from forebay.catalog.catalog import MATCH_PATH_KEPT, MATCHES_KEPT, Catalog
from forebay.catalog.endpoint import Endpoint, EndpointPolicy, endpoint_id
from forebay.catalog.matcher import Router


def make(method: str, path: str) -> Endpoint:
    return Endpoint(
        id=endpoint_id(method, path),
        method=method,
        path=path,
        policy=EndpointPolicy.model_validate({"managed": True}),
    )


ENDPOINTS = [make("GET", "/items"), make("GET", "/items/{id}"), make("POST", "/items")]

_paths = st.lists(st.sampled_from(["items", "5", "orders", "", "x"]), min_size=0, max_size=3).map(
    lambda segs: "/" + "/".join(segs)
)


@given(st.lists(st.tuples(st.sampled_from(["GET", "POST", "PUT"]), _paths), max_size=40))
def test_a_remembered_match_is_the_routers_answer(requests: list[tuple[str, str]]) -> None:
    catalog = Catalog(ENDPOINTS)
    router: Router[str] = Router((e.method, e.path, e.id) for e in ENDPOINTS)
    for method, path in requests + requests:  # the second time from memory
        route, known = catalog.match(method, path)
        expected, expected_known = router.match(method, path)
        assert (route.endpoint_id if route else None, known) == (expected, expected_known)


def test_the_memory_is_bounded_in_entries_and_path_length() -> None:
    catalog = Catalog(ENDPOINTS)
    for i in range(MATCHES_KEPT + 10):
        assert catalog.match("GET", f"/items/{i}")[0] is not None
    assert len(catalog._matched) <= MATCHES_KEPT
    long_path = "/items/" + "9" * (MATCH_PATH_KEPT + 1)
    before = len(catalog._matched)
    route, known = catalog.match("GET", long_path)
    assert route is not None and route.template == "/items/{id}" and known
    assert len(catalog._matched) == before  # answered, not kept
