"""The in-process response cache: bounded in bytes, least recently used out first."""

from __future__ import annotations

import random

import pytest

from forebay.policy.invalidation import Targets
from forebay.store.cache import ENTRY_OVERHEAD, MAX_VARIANTS, CachedResponse, MemoryResponseCache


def entry(size: int = 100, consumer: str | None = None) -> CachedResponse:
    return CachedResponse(
        status=200, headers=[], body=b"", stored_at=0.0, ttl=60.0, consumer=consumer, size=size
    )


def accounted(cache: MemoryResponseCache, *all_keys: str) -> int:
    """The bytes of what is stored, added up from the entries themselves."""
    total = 0
    for key in all_keys:
        for variant in cache._entries.get(key, ()):
            total += variant.size
    return total


# Each step: "+k" stores 100 bytes under /k, "?k" looks /k up. Bound: 300 bytes.
@pytest.mark.parametrize(
    ("steps", "left"),
    [
        pytest.param("+a +b +c +d", "bcd", id="unread: the first stored goes"),
        pytest.param("+a +b +c ?a +d", "acd", id="a read keeps an entry"),
        pytest.param("+a +b +c ?a ?b +d", "abd", id="the least recently read goes"),
        pytest.param("+a +b +c +a +d", "acd", id="storing again keeps it too"),
        pytest.param("+a +b +c ?e +d", "bcd", id="a miss changes nothing"),
        pytest.param("+a +b +c ?a +d +e", "ade", id="two go, in order of use"),
    ],
)
def test_past_the_bound_the_least_recently_used_goes(steps: str, left: str) -> None:
    cache = MemoryResponseCache(max_bytes=300)
    for step in steps.split():
        op, key = step[0], "/" + step[1]
        if op == "+":
            cache.put(key, entry())
        else:
            cache.lookup(key)
    # Read the survivors from the private map: a lookup would change the order.
    assert {k[1:] for k in cache._entries} == set(left)
    assert cache.size_bytes == 100 * len(left)


def test_the_total_never_exceeds_the_bound_and_is_what_is_stored() -> None:
    rng = random.Random(7)
    cache = MemoryResponseCache(max_bytes=5_000)
    names = [f"/p{i}" for i in range(40)]
    for _ in range(2_000):
        key = rng.choice(names)
        if rng.random() < 0.3:
            cache.lookup(key)
        else:
            consumer = rng.choice([None, "alpha", "beta"])
            cache.put(key, entry(rng.randint(1, 1_200), consumer))
        assert cache.size_bytes <= cache.max_bytes
        assert cache.size_bytes == accounted(cache, *names)
    assert len(cache) > 1


# Bound 1000 bytes, a 1-byte entry stored first.
@pytest.mark.parametrize(
    ("size", "stored", "first_kept"),
    [
        pytest.param(1_001, False, True, id="larger: not stored, nothing evicted"),
        pytest.param(1_000, True, False, id="the bound exactly: stored alone"),
        pytest.param(999, True, True, id="both fit"),
    ],
)
def test_an_entry_larger_than_the_bound_is_not_stored(
    size: int, stored: bool, first_kept: bool
) -> None:
    cache = MemoryResponseCache(max_bytes=1_000)
    cache.put("/a", entry(1))
    cache.put("/big", entry(size))
    assert ("/big" in cache._entries, "/a" in cache._entries) == (stored, first_kept)
    assert cache.size_bytes == size * stored + 1 * first_kept


def test_replacing_an_entry_counts_only_the_new_one() -> None:
    cache = MemoryResponseCache(max_bytes=1_000)
    cache.put("/a", entry(100))
    cache.put("/a", entry(250))  # same consumer and Vary values: replaced
    assert cache.size_bytes == 250 and len(cache) == 1
    cache.put("/a", entry(50))
    assert cache.size_bytes == 50 and len(cache) == 1
    cache.put("/a", entry(70, consumer="alpha"))  # another variant: kept beside it
    assert cache.size_bytes == 120 and len(cache) == 2
    found = cache.lookup("/a")
    assert found is not None and sorted(v.size for v in found) == [50, 70]


def test_a_replacement_that_grows_evicts_others_not_itself() -> None:
    cache = MemoryResponseCache(max_bytes=300)
    cache.put("/a", entry(100))
    cache.put("/b", entry(100))
    cache.put("/a", entry(250))
    assert set(cache._entries) == {"/a"}
    assert cache.size_bytes == 250


def test_variants_past_the_bound_make_room_for_the_newest_not_drop_it() -> None:
    cache = MemoryResponseCache(300)
    cache.put("/a", entry(200, consumer="alpha"))
    cache.put("/a", entry(200, consumer="beta"))
    found = cache.lookup("/a")
    assert found is not None and [v.consumer for v in found] == ["beta"]
    assert cache.size_bytes == 200 == accounted(cache, "/a")


def test_an_answer_too_large_to_store_drops_the_one_it_replaces() -> None:
    cache = MemoryResponseCache(300)
    cache.put("/a", entry(100, consumer="alpha"))
    cache.put("/a", entry(100, consumer="beta"))
    cache.put("/a", entry(400, consumer="beta"))  # newer than what is stored, too large
    found = cache.lookup("/a")
    assert found is not None and [v.consumer for v in found] == ["alpha"]
    cache.put("/a", entry(400, consumer="alpha"))
    assert cache.lookup("/a") is None
    assert cache.size_bytes == 0 and not cache._keys_by_path


def test_variants_past_the_limit_and_invalidation_give_their_bytes_back() -> None:
    cache = MemoryResponseCache(max_bytes=100_000)
    for i in range(MAX_VARIANTS + 3):
        cache.put("/a", entry(10, consumer=f"c{i}"))
    assert len(cache) == MAX_VARIANTS
    assert cache.size_bytes == 10 * MAX_VARIANTS
    variants = cache.lookup("/a")
    assert variants is not None and variants[0].consumer == "c3"  # the oldest went
    cache.put("/a?page=2", entry(30))
    cache.put("/b", entry(40))
    assert cache.invalidate(Targets(paths=frozenset({"/a"}))) == MAX_VARIANTS + 1
    assert cache.size_bytes == 40
    assert cache.clear() == 1 and cache.size_bytes == 0


def test_an_entrys_size_is_its_body_headers_and_overhead() -> None:
    e = CachedResponse(
        status=200, headers=[(b"etag", b'"x"')], body=b"12345", stored_at=0.0, ttl=1.0
    )
    assert e.size == 5 + len(b"etag") + len(b'"x"') + ENTRY_OVERHEAD
    cache = MemoryResponseCache(max_bytes=10_000)
    cache.put("/a", e)
    assert cache.size_bytes == e.size
