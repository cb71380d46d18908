"""Outcomes of deliveries, recorded in batches.

A delivery's outcome must be stored before anyone is told it is done (the client
polling its status, a callback, the on-done hooks), but nothing else has to wait for it:
the origin's worker is free as soon as it answers. So outcomes are queued here and
written by one task, all that gathered during the previous write in one commit; the
next delivery starts meanwhile. Until its outcome is written a request keeps its lease,
so its lane's next request cannot start before it, and a crash in between delivers it
again with the same `Idempotency-Key` (at least once, as always).
"""

from __future__ import annotations

import asyncio

from forebay.dispatch.model import Finish
from forebay.store.base import RequestStore

MAX_BATCH = 256


class OutcomeRecorder:
    def __init__(self, requests: RequestStore, owner: str) -> None:
        self._requests = requests
        self._owner = owner
        self._pending: list[tuple[str, Finish, float, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None

    async def record(self, request_id: str, result: Finish, now: float) -> bool:
        """Returns once the outcome is stored: False if the lease was no longer ours.
        Raises what the store raised."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((request_id, result, now, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="dispatch-record")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            # One `now` per commit: the latest, so no lane is made due before its time.
            now = max(item[2] for item in batch)
            try:
                done = await self._requests.finish_many(
                    [(rid, result) for rid, result, _, _ in batch], self._owner, now
                )
            except Exception as e:  # every waiter of the batch hears the failure
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (*_, future), ok in zip(batch, done, strict=True):
                if not future.done():
                    future.set_result(ok)

    async def close(self) -> None:
        """Wait until every outcome handed in so far is written."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
