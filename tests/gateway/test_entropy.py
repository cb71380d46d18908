import os

import pytest

from forebay.gateway.entropy import UrandomPool, urandom


class CountingSource:
    def __init__(self) -> None:
        self.calls: list[int] = []
        self.counter = 0

    def __call__(self, n: int) -> bytes:
        self.calls.append(n)
        out = bytes((self.counter + i) % 256 for i in range(n))
        self.counter += n
        return out


@pytest.mark.parametrize(
    ("page", "sizes", "reads"),
    [
        (64, [16] * 4, [64]),  # exactly one page
        (64, [16] * 5, [64, 64]),  # the fifth id needs a new page
        (64, [22, 22, 22], [64, 64]),  # a tail too short for the next id is dropped
        (16, [40], [40]),  # a request larger than a page gets its own read
        (64, [0, 16], [64]),
    ],
)
def test_reads_the_source_a_page_at_a_time(page: int, sizes: list[int], reads: list[int]) -> None:
    source = CountingSource()
    pool = UrandomPool(source, page=page)
    out = [pool(n) for n in sizes]
    assert [len(b) for b in out] == sizes
    assert source.calls == reads


def test_forget_drops_what_was_read() -> None:
    source = CountingSource()
    pool = UrandomPool(source, page=64)
    pool(16)
    pool.forget()
    pool(16)
    assert source.calls == [64, 64]


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    urandom(16)  # the parent holds a page
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next bytes and leave at once
        os.close(read_end)
        os.write(write_end, urandom(16))
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 16)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != urandom(16)
