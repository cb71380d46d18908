"""Unguessable bytes for request ids, read from the operating system a page at a time.

An accepted request's id carries 128 bits from `os.urandom`; one `getrandom()` system call
per request cost about 2% of the accept path. The bytes are the kernel's CSPRNG output
either way; they only wait in this process's memory, which anyone able to read could
read the ids themselves from. A forked child starts with an empty page, so two processes
never hand out the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable

PAGE = 4096


class UrandomPool:
    """Not for several threads at once: two could be handed the same bytes. The data
    plane calls it from its event loop only."""

    def __init__(self, source: Callable[[int], bytes] = os.urandom, page: int = PAGE) -> None:
        self._source = source
        self._page = page
        self._buffer = b""
        self._used = 0

    def __call__(self, n: int) -> bytes:
        """`n` bytes never handed out before."""
        start, end = self._used, self._used + n
        if end > len(self._buffer):
            self._buffer = self._source(max(self._page, n))
            start, end = 0, n
        self._used = end
        return self._buffer[start:end]

    def forget(self) -> None:
        self._buffer, self._used = b"", 0


urandom = UrandomPool()
os.register_at_fork(after_in_child=urandom.forget)
