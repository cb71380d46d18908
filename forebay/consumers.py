"""Managing consumers and keys, the same way from the CLI, the admin API and the config
file: create a consumer, issue a key (shown once), revoke it, seed the file's consumers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

import structlog

from forebay.policy import api_keys
from forebay.settings_protections import ConsumerConfig
from forebay.store.consumers import ApiKey, Consumer, ConsumerStore, Source

log = structlog.get_logger("forebay")


def key_record(
    key: str, consumer: str, source: Source = "user", label: str | None = None
) -> ApiKey:
    salt = os.urandom(api_keys.SALT_BYTES)
    return ApiKey(
        id=api_keys.key_id(key),
        consumer=consumer,
        salt=salt.hex(),
        digest=api_keys.hash_key(key, salt),
        created_at=time.time(),
        source=source,
        label=label,
    )


async def issue_key(
    store: ConsumerStore, consumer: str, label: str | None = None
) -> tuple[str, ApiKey]:
    """A new key for `consumer`: the key itself (to show once) and its stored record."""
    while True:
        key = api_keys.new_key(os.urandom)
        record = key_record(key, consumer, "user", label)
        if await store.get_key(record.id) is None:  # 48-bit ids: a clash is rare, not never
            break
    await store.add_keys([record])
    return key, record


async def seed_consumers(
    store: ConsumerStore, configured: Sequence[ConsumerConfig], environ: Mapping[str, str]
) -> None:
    """Make the store agree with the config file's consumers.

    The file is the truth for what it declares: its consumers' limits and endpoints, and
    their config keys (keys dropped from the file are deleted). Consumers the file once
    declared and no longer does are deleted. Consumers and keys made with the CLI or the
    admin API are left alone.
    """
    now = time.time()
    wanted = {c.name for c in configured}
    for existing in await store.list():
        if existing.source == "config" and existing.name not in wanted:
            await store.delete(existing.name)
            log.info("consumer removed from the config file; deleted", consumer=existing.name)
    for c in configured:
        before = await store.get(c.name)
        consumer = Consumer(
            name=c.name,
            rate_limit=c.rate_limit,
            endpoints=c.endpoints,
            source="config",
            created_at=before.created_at if before else now,
        )
        if consumer != before:
            await store.save(consumer)
        keys = {api_keys.key_id(k): k for k in c.all_keys(environ)}
        held = {k.id: k for k in await store.keys(c.name) if k.source == "config"}
        stale = [kid for kid in held if kid not in keys]
        if stale:
            await store.delete_keys(stale)
        fresh = [
            key_record(key, c.name, "config")
            for kid, key in keys.items()
            if kid not in held
            or not held[kid].active
            or not api_keys.verify(key, bytes.fromhex(held[kid].salt), held[kid].digest)
        ]
        if fresh:
            await store.add_keys(fresh)
