"""The API key cache on a real store: requests do not wait for its reads under steady use, and
a revoked key is still refused within the ttl."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

from netra_analytics.auth.keys import REFRESH_EARLY, KeyTable, create_key, revoke_key
from netra_analytics.store.chdb_backend import ChdbStore

READ_SECONDS = 0.3  # a slow store: each read of the key table takes this long
TTL = 1.0


class SlowReads:
    """The real store, with every query held for READ_SECONDS (a loaded engine)."""

    def __init__(self, store: ChdbStore) -> None:
        self.store = store
        self.reads = 0
        self.lock = threading.Lock()

    def query_rows(self, sql: str, params: Any = None) -> Any:
        with self.lock:
            self.reads += 1
        time.sleep(READ_SECONDS)
        return self.store.query_rows(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_lookups_under_steady_use_never_wait_for_a_read(store: ChdbStore) -> None:
    key = create_key(store, f"cache-{uuid.uuid4().hex[:8]}", "analyst")
    slow = SlowReads(store)
    table = KeyTable(lambda: slow, ttl=TTL)

    async def scenario() -> list[float]:
        assert await table.lookup(key) is not None  # the first read: waited for
        waits = []
        end = time.monotonic() + 4 * TTL
        while time.monotonic() < end:  # a request every 50 ms, as under traffic
            started = time.monotonic()
            assert await table.lookup(key) is not None
            waits.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
        return waits

    waits = asyncio.run(scenario())
    assert slow.reads >= 4  # it kept reading: about once per REFRESH_EARLY of the ttl
    assert max(waits) < READ_SECONDS / 3, max(waits)


def test_a_revoked_key_is_refused_within_the_ttl_with_early_reads(store: ChdbStore) -> None:
    name = f"cache-{uuid.uuid4().hex[:8]}"
    key = create_key(store, name, "analyst")
    table = KeyTable(lambda: store, ttl=TTL)

    async def scenario() -> float:
        assert await table.lookup(key) is not None
        await asyncio.sleep(TTL * REFRESH_EARLY * 0.5)
        revoke_key(store, name)
        revoked = time.monotonic()
        for _ in range(200):  # polled as requests come, every 20 ms
            if await table.lookup(key) is None:
                return time.monotonic() - revoked
            await asyncio.sleep(0.02)
        raise AssertionError("the revoked key is still honoured after 4 s")

    assert asyncio.run(scenario()) <= TTL + 0.2
