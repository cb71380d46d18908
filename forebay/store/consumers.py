"""Consumers and their API keys: the records, the store protocol and the memory backend.

A consumer is a name with its own rate limit and, optionally, the endpoints it may use.
It holds any number of keys; a key record keeps a salted hash of the key, never the key
(`policy/api_keys.py`). The data plane does not read this store per request: it holds a
snapshot (`gateway/keyring.py`) and loads a new one when `version()` moves.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence
from typing import Annotated, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from forebay.policy.api_keys import display
from forebay.policy.gcra import parse_rate
from forebay.policy.patterns import split_pattern

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
Source = Literal["config", "user"]


def check_name(v: str) -> str:
    if NAME.match(v) is None:
        raise ValueError(
            f"{v!r} is not a consumer name: 1 to 64 letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit"
        )
    return v


def check_rate(v: str | None) -> str | None:
    if v is not None:
        parse_rate(v)
    return v


def check_patterns(v: list[str] | None) -> list[str] | None:
    for pattern in v or ():
        split_pattern(pattern)
    return v


# The fields a consumer is declared with, validated the same way wherever they are taken
# in: the store's records, the admin API and the config file.
ConsumerName = Annotated[str, AfterValidator(check_name)]
RateText = Annotated[str | None, AfterValidator(check_rate)]
EndpointPatterns = Annotated[list[str] | None, AfterValidator(check_patterns)]


class Consumer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ConsumerName
    rate_limit: RateText = Field(
        None, description="This consumer's limit across all endpoints: '100/s', '20/m burst 40'."
    )
    endpoints: EndpointPatterns = Field(
        None,
        description="Endpoint patterns ('GET /orders/**') this consumer may call; "
        "null: every endpoint.",
    )
    source: Source = "user"
    created_at: float = 0.0


class ApiKey(BaseModel):
    """A key's record: its id, owner and salted hash."""

    model_config = ConfigDict(extra="forbid")

    id: str
    consumer: str
    salt: str = Field(description="Hex.")
    digest: str = Field(description="HMAC-SHA256(salt, key), hex.")
    created_at: float
    revoked_at: float | None = None
    source: Source = "user"
    label: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def shown(self) -> str:
        return display(self.id)


class ConsumerStore(Protocol):
    async def list(self) -> list[Consumer]: ...

    async def get(self, name: str) -> Consumer | None: ...

    async def save(self, consumer: Consumer) -> None:
        """Insert or replace; bumps the version."""

    async def delete(self, name: str) -> bool:
        """The consumer and all its keys."""

    async def keys(self, consumer: str | None = None) -> builtins.list[ApiKey]:
        """Every key (revoked ones too), or those of one consumer; oldest first."""

    async def get_key(self, key_id: str) -> ApiKey | None: ...

    async def add_keys(self, keys: Sequence[ApiKey]) -> None:
        """Insert or replace these key records; bumps the version."""

    async def revoke_key(self, key_id: str, now: float) -> bool:
        """Mark an active key revoked; False when there is no such active key."""

    async def delete_keys(self, key_ids: Sequence[str]) -> int: ...

    async def version(self) -> int:
        """Changes whenever a consumer or key does; cheap enough to poll."""


class MemoryConsumerStore:
    def __init__(self) -> None:
        self._consumers: dict[str, Consumer] = {}
        self._keys: dict[str, ApiKey] = {}
        self._version = 0

    async def list(self) -> list[Consumer]:
        return [c.model_copy(deep=True) for c in self._consumers.values()]

    async def get(self, name: str) -> Consumer | None:
        found = self._consumers.get(name)
        return found.model_copy(deep=True) if found else None

    async def save(self, consumer: Consumer) -> None:
        self._consumers[consumer.name] = consumer.model_copy(deep=True)
        self._version += 1

    async def delete(self, name: str) -> bool:
        if self._consumers.pop(name, None) is None:
            return False
        for kid in [k.id for k in self._keys.values() if k.consumer == name]:
            del self._keys[kid]
        self._version += 1
        return True

    async def keys(self, consumer: str | None = None) -> builtins.list[ApiKey]:
        rows = [k for k in self._keys.values() if consumer is None or k.consumer == consumer]
        return [k.model_copy() for k in sorted(rows, key=lambda k: (k.created_at, k.id))]

    async def get_key(self, key_id: str) -> ApiKey | None:
        found = self._keys.get(key_id)
        return found.model_copy() if found else None

    async def add_keys(self, keys: Sequence[ApiKey]) -> None:
        for k in keys:
            self._keys[k.id] = k.model_copy()
        self._version += 1

    async def revoke_key(self, key_id: str, now: float) -> bool:
        found = self._keys.get(key_id)
        if found is None or not found.active:
            return False
        self._keys[key_id] = found.model_copy(update={"revoked_at": now})
        self._version += 1
        return True

    async def delete_keys(self, key_ids: Sequence[str]) -> int:
        gone = sum(self._keys.pop(k, None) is not None for k in key_ids)
        self._version += gone > 0
        return gone

    async def version(self) -> int:
        return self._version
