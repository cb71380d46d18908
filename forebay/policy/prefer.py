"""The `Prefer` request header (RFC 7240): `respond-async` and `wait=N`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preferences:
    respond_async: bool = False
    wait: float | None = None


NONE = Preferences()


def parse_prefer(values: list[str], max_wait: float) -> Preferences:
    """Preferences from every `Prefer` header; unknown ones are ignored, as RFC 7240 says.

    `wait` is capped at `max_wait` so a client cannot hold a connection open for ever.
    """
    respond_async = False
    wait: float | None = None
    for value in values:
        for item in value.split(","):
            token = item.split(";", 1)[0]
            name, _, raw = token.strip().partition("=")
            name = name.strip().lower()
            raw = raw.strip().strip('"')
            if name == "respond-async":
                respond_async = True
            elif name == "wait" and wait is None:
                try:
                    seconds = float(raw)
                except ValueError:
                    continue
                if seconds >= 0:
                    wait = min(seconds, max_wait)
    if not respond_async and wait is None:
        return NONE
    return Preferences(respond_async, wait)
