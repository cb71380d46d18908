from __future__ import annotations

import pytest

from forebay.policy.conditional import etag_matches, not_modified

LM = "Tue, 15 Nov 1994 12:45:26 GMT"


@pytest.mark.parametrize(
    ("inm", "etag", "hit"),
    [
        ('"a"', '"a"', True),
        ('"b", "a"', '"a"', True),
        ('W/"a"', '"a"', True),  # weak comparison
        ('"a"', 'W/"a"', True),
        ('"b"', '"a"', False),
        ("*", '"a"', True),
        ("*", None, False),
        ('"a"', None, False),
    ],
)
def test_etag_matches(inm: str, etag: str | None, hit: bool) -> None:
    assert etag_matches(inm, etag) is hit


@pytest.mark.parametrize(
    ("inm", "ims", "etag", "lm", "result"),
    [
        ('"a"', None, '"a"', LM, True),
        ('"b"', LM, '"a"', LM, False),  # If-None-Match wins over If-Modified-Since
        (None, LM, None, LM, True),
        (None, "Tue, 15 Nov 1994 12:45:25 GMT", None, LM, False),
        (None, "Wed, 16 Nov 1994 00:00:00 GMT", None, LM, True),
        (None, "not a date", None, LM, False),
        (None, LM, '"a"', None, False),
        (None, None, '"a"', LM, False),
    ],
)
def test_not_modified(
    inm: str | None, ims: str | None, etag: str | None, lm: str | None, result: bool
) -> None:
    assert not_modified(inm, ims, etag, lm) is result
