"""Group commit: many waiters per commit, each told its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from forebay.dispatch.model import AcceptedRequest
from forebay.dispatch.writer import GroupCommitWriter
from forebay.store import open_store
from forebay.store.base import RequestStore


def request(n: int, key: str | None = None) -> AcceptedRequest:
    return AcceptedRequest(
        id=f"r{n:05d}",
        consumer="",
        endpoint_id=None,
        endpoint="POST /x",
        method="POST",
        target="/x",
        headers=[],
        body=b"{}",
        ordering_key="/x",
        fingerprint=f"f{n}",
        accepted_at=1000.0 + n,
        idempotency_key=key,
    )


class CountingStore:
    """A real store's accept, counted: how many commits served how many requests."""

    def __init__(self, inner: RequestStore) -> None:
        self.inner = inner
        self.batches: list[int] = []

    async def accept(self, batch: Sequence[AcceptedRequest], key_ttl: float) -> list[str | None]:
        self.batches.append(len(batch))
        return await self.inner.accept(batch, key_ttl)


async def test_concurrent_submits_share_commits(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/f.db")
    counting = CountingStore(store.requests)
    writer = GroupCommitWriter(counting, key_ttl=60)
    results = await asyncio.gather(*(writer.submit(request(n)) for n in range(500)))
    assert results == [None] * 500
    assert sum(counting.batches) == 500
    assert len(counting.batches) < 50  # one commit for many waiters
    assert (await store.requests.counts())["queued"] == 500
    await store.close()


def submit_after(writer: GroupCommitWriter, turns: int, n: int) -> asyncio.Future[str | None]:
    """`request(n)` submitted `turns` turns of the event loop from now: scheduled by a
    chain of callbacks, each run on the next turn."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[str | None] = loop.create_future()

    def step(left: int) -> None:
        if left:
            loop.call_soon(step, left - 1)
            return
        task = loop.create_task(writer.submit(request(n)))
        task.add_done_callback(lambda t: result.set_result(t.result()))

    step(turns)
    return result


@pytest.mark.parametrize(
    ("turns", "batches"),
    [
        # A wave of requests arriving over consecutive turns of the event loop, as the
        # clients answered by one commit come back, is committed together.
        ([0] * 10 + [1] * 10 + [2] * 10 + [3] * 10, [40]),
        # A turn that brings nothing ends the wait: the later requests commit apart.
        ([0] * 10 + [6] * 10, [10, 10]),
        # The wait is bounded: requests still arriving after GATHER_TURNS turns do not
        # hold the first ones back.
        (list(range(20)), [9, 11]),
    ],
)
async def test_requests_arriving_over_a_few_turns_join_one_commit(
    tmp_path: Path, turns: list[int], batches: list[int]
) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/f.db")
    counting = CountingStore(store.requests)
    writer = GroupCommitWriter(counting, key_ttl=60)
    results = await asyncio.gather(*(submit_after(writer, t, n) for n, t in enumerate(turns)))
    assert results == [None] * len(turns)
    assert counting.batches == batches
    await store.close()


async def test_duplicate_key_in_one_batch_reports_the_holder(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/f.db")
    writer = GroupCommitWriter(store.requests, key_ttl=60)
    first, second = await asyncio.gather(
        writer.submit(request(1, key="k")), writer.submit(request(2, key="k"))
    )
    assert first is None and second == "r00001"
    assert await store.requests.get("r00002") is None
    await store.close()


async def test_store_failure_reaches_every_waiter_and_writer_recovers() -> None:
    class Failing(CountingStore):
        fail = True

        async def accept(
            self, batch: Sequence[AcceptedRequest], key_ttl: float
        ) -> list[str | None]:
            if self.fail:
                raise OSError("disk full")
            return await super().accept(batch, key_ttl)

    store = await open_store("memory://")
    failing = Failing(store.requests)
    writer = GroupCommitWriter(failing, key_ttl=60)
    outcomes = await asyncio.gather(
        *(writer.submit(request(n)) for n in range(10)), return_exceptions=True
    )
    assert all(isinstance(o, OSError) for o in outcomes)
    failing.fail = False
    assert await writer.submit(request(99)) is None
    assert (await store.requests.counts())["queued"] == 1


@pytest.mark.parametrize("n", [1, 3000])
async def test_every_waiter_hears_back(n: int) -> None:
    store = await open_store("memory://")
    writer = GroupCommitWriter(store.requests, key_ttl=60)
    results = await asyncio.gather(*(writer.submit(request(i)) for i in range(n)))
    assert len(results) == n and set(results) == {None}
