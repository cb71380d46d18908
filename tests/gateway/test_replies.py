"""The accepted-request answers: the hot path's formatting agrees with the general one."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from forebay.dispatch.model import AcceptedRequest
from forebay.gateway.replies import accepted_body, rfc3339, rfc3339_utc, status_url

TIMES = st.floats(min_value=0, max_value=4e9, allow_nan=False)


@given(TIMES)
def test_fast_timestamps_read_as_the_datetime_ones(ts: float) -> None:
    assert rfc3339_utc(ts) == rfc3339(ts)


@given(TIMES)
def test_the_202_body_is_the_json_document(ts: float) -> None:
    r = AcceptedRequest(
        id="06h2oll8p7gm5ro1aunmuvn1inag8ce16f50",
        consumer="",
        endpoint_id="e",
        endpoint="POST /orders",
        method="POST",
        target="/orders",
        headers=[],
        body=b"",
        ordering_key="/orders",
        fingerprint="f",
        accepted_at=ts,
    )
    assert json.loads(accepted_body(r)) == {
        "id": r.id,
        "status": "queued",
        "status_url": status_url(r.id),
        "accepted_at": rfc3339(ts),
    }
