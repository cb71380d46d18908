"""`cancel_and_wait`: background tasks end at a stop, even when one cancellation is lost."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from forebay.tasks import cancel_and_wait


class Swallower:
    """A loop around a call that swallows the next `times` cancellations, as a Redis
    client racing its own timeout may: the loop goes round again and waits once more."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.started = asyncio.Event()
        self.swallowed = asyncio.Event()

    async def run(self) -> None:
        self.started.set()
        while True:
            try:
                await asyncio.Event().wait()  # a call that never answers
            except asyncio.CancelledError:
                if self.times == 0:
                    raise
                self.times -= 1
                self.swallowed.set()

    async def start(self, name: str | None = None) -> asyncio.Task[None]:
        task = asyncio.create_task(self.run(), name=name)
        await self.started.wait()
        return task


async def raises_when_cancelled(started: asyncio.Event) -> None:
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise RuntimeError("cleanup failed") from None


async def nothing() -> None:
    return None


@pytest.mark.parametrize("swallowed", [0, 1, 3])
async def test_a_task_ends_even_if_it_swallows_cancellations(swallowed: int) -> None:
    task = await Swallower(swallowed).start()
    await cancel_and_wait([task])
    assert task.cancelled()


async def test_a_single_cancel_would_have_hung() -> None:
    """The case it exists for: one cancel() leaves such a task running."""
    swallower = Swallower(1)
    task = await swallower.start()
    task.cancel()
    await swallower.swallowed.wait()
    assert not task.done()  # back in its loop, and nothing will cancel it again
    await cancel_and_wait([task])
    assert task.done()


async def test_gives_up_after_its_patience_and_names_the_task() -> None:
    stubborn = Swallower(10**9)
    task = await stubborn.start(name="stubborn")
    with structlog.testing.capture_logs() as logs:
        await cancel_and_wait([task], patience=0.3)
    assert not task.done()
    assert [(e["event"], e["tasks"]) for e in logs] == [
        ("stopping: tasks did not end when cancelled; going on", ["stubborn"])
    ]
    stubborn.times = 0
    await cancel_and_wait([task])
    assert task.cancelled()


async def test_ended_tasks_and_failures_are_taken_quietly() -> None:
    done = asyncio.create_task(nothing())
    await done
    started = asyncio.Event()
    failing = asyncio.create_task(raises_when_cancelled(started))
    await started.wait()
    await cancel_and_wait([done, failing])
    assert failing.done() and isinstance(failing.exception(), RuntimeError)
